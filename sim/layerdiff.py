"""By-layer comparison: the first frame's internal link streams of the RTL against FINN's python execution.

The golden model is the generic hardware-layer graph (the build's ``verify`` checkpoint), executed by FINN/QONNX
with the full execution context: every layer's output tensor. A folded node ``MVAU_hls_3`` is the generic node
``MVAU_3``. Every link the harness dumped carries one layer's output in stream order; NHWC flattening equals stream
order for every kernel except the depthwise sliding window, whose (kernel position, channel) vector is reordered
here to (channel fold, kernel position, SIMD lane) before comparing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from boards.runtime.stream import unpack_words


@dataclass(frozen=True)
class LayerDiff:
    """One layer's first-frame comparison: elements compared, how many differ, and the first difference."""

    layer: str
    golden_node: str
    link: str
    elements: int
    beats: int
    expected_beats: int
    mismatches: int
    first: str

    @property
    def ok(self) -> bool:
        return self.mismatches == 0 and self.beats == self.expected_beats


def generic_name(folded: str) -> str:
    """``MVAU_hls_3`` -> ``MVAU_3`` (the generic node of a specialised one)."""
    for tag in ("_hls_", "_rtl_"):
        if tag in folded:
            base, _, idx = folded.rpartition(tag)
            return f"{base}_{idx}"
    return folded


def golden_context(verify_onnx: Path, frame: np.ndarray) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """FINN's full execution context of the generic HW graph on one NHWC frame, and node name -> output tensor."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx

    model = ModelWrapper(str(verify_onnx))
    ctx = execute_onnx(model, {model.graph.input[0].name: frame[None].astype(np.float32)},
                       return_full_exec_context=True)
    return ctx, {n.name: n.output[0] for n in model.graph.node}


def _stream_order(stage: dict, golden: np.ndarray) -> np.ndarray:
    """The golden tensor flattened in the kernel's stream order."""
    p = stage["parameters"]
    flat = np.asarray(golden).reshape(-1)
    if stage["kernel"] == "qdet_swg" and p["DEPTHWISE"]:
        k, c, simd = p["K_H"] * p["K_W"], p["C"], p["SIMD"]
        return flat.reshape(-1, k, c // simd, simd).transpose(0, 2, 1, 3).reshape(-1)
    return flat


def read_dump(path: Path) -> dict[int, list[str]]:
    """dump.txt ("link_index hexword" lines) -> words per link index."""
    words: dict[int, list[str]] = {}
    with open(path) as f:
        for line in f:
            idx, word = line.split()
            words.setdefault(int(idx), []).append(word)
    return words


def compare_layers(manifest: dict, dump: dict[int, list[str]], ctx: dict[str, np.ndarray],
                   outputs: dict[str, str]) -> list[LayerDiff]:
    """Compare every dumped layer link with the golden tensor of its layer, in stream order."""
    index = {l["name"]: i for i, l in enumerate(manifest["links"])}
    diffs = []
    for stage in manifest["stages"]:
        if stage["role"] != "layer":
            continue
        link = manifest["links"][index[stage["link_out"]]]
        node = generic_name(stage["node"])
        if node not in outputs:
            continue
        golden = _stream_order(stage, ctx[outputs[node]]).astype(np.int64)
        words = dump.get(index[link["name"]], [])
        got = unpack_words(words, link["elems"], link["bits"], link["signed"]).reshape(-1)
        n = min(len(got), len(golden))
        bad = np.flatnonzero(got[:n] != golden[:n])
        first = ""
        if bad.size:
            i = int(bad[0])
            first = (f"element {i} (beat {i // link['elems']}, lane {i % link['elems']}): RTL {int(got[i])}, "
                     f"golden {int(golden[i])}")
        elif len(words) != link["beats_per_frame"]:
            first = f"{len(words)} of {link['beats_per_frame']} beats arrived"
        diffs.append(LayerDiff(stage["node"], node, link["name"], n, len(words), link["beats_per_frame"],
                               int(bad.size), first))
    return diffs


def first_divergence(diffs: list[LayerDiff]) -> str:
    """A sentence naming the first layer whose output differs (or saying that none does)."""
    for d in diffs:
        if not d.ok:
            return (f"first diverging layer: {d.layer} (golden node {d.golden_node}, link {d.link}): "
                    f"{d.mismatches} of {d.elements} elements differ; first at {d.first}")
    return "every layer's first-frame output matches FINN's python execution"
