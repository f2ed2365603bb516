"""The folder's LUT model of the stream kernels qdet's RTL backend instantiates, calibrated against yosys.

FINN's LUT models of the sliding window, padding, width converter and max pool describe FINN's own RTL and HLS
implementations, not qdet's kernels: on UltraNet (Ultra96-V2, 153,600 cycles per frame) FINN costs the twelve
sliding windows at 10,816 LUTs where yosys counts 2,619 for ``qdet_swg``, the width converters at 1,996 (3,095),
and padding and max pool at 0 (344 and 228). The estimate then overstated the design by 9% and ``--max-fps``
stopped a level short of what fits. Here each kernel's LUT count is a non-negative combination of a few stream
widths (:func:`features`), fitted to the measured table ``flows/calibration/stream_kernels.json`` (single instances
synthesized by yosys' ``synth_xilinx``; ``python -m bench.stream_calibration`` regenerates it). Cycles, block RAM,
UltraRAM and DSPs stay FINN's."""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path

import numpy as np

from flows.mac_costs import relative_nnls

TABLE = Path(__file__).resolve().parent / "calibration" / "stream_kernels.json"
# FINN op type (before _hls/_rtl) -> the qdet kernel its RTL backend instantiates.
KERNEL_OF = {"ConvolutionInputGenerator": "qdet_swg", "FMPadding": "qdet_fmpad",
             "StreamingDataWidthConverter": "qdet_dwc", "Pool": "qdet_maxpool"}


def features(kernel: str, p: dict) -> list[float]:
    """The structural terms of one kernel instance with Verilog parameters ``p``: a constant, then the widths its
    registers and multiplexers scale with."""
    if kernel == "qdet_swg":
        beat = p["SIMD"] * p["BITS"]
        window = beat * p["K_H"] * p["K_W"] if p["PARALLEL_WINDOW"] else 0  # the whole-window output register
        # The line buffer's address counters grow with its depth (the buffer itself is block RAM).
        return [1.0, float(beat), float(window), math.log2(p["IFM_W"] * p["C"] / p["SIMD"] + 1)]
    if kernel == "qdet_dwc":
        i, o, bits = p["IN_ELEMS"], p["OUT_ELEMS"], p["BITS"]
        if i == o:  # a qdet_skid
            return [1.0, 0.0, 0.0, float(i * bits), 0.0]
        if max(i, o) % min(i, o):  # no integer ratio: the element buffer of max + 2 min - 1 (qdet_dwc's header)
            return [1.0, 0.0, 0.0, 0.0, float((max(i, o) + 2 * min(i, o) - 1) * bits)]
        # The wide register, shifted or filled a narrow beat at a time, and the skid on the narrow side.
        return [1.0, float(max(i, o) * bits), float(min(i, o) * bits), 0.0, 0.0]
    if kernel == "qdet_fmpad":
        return [1.0, float(p["SIMD"] * p["BITS"])]
    if kernel == "qdet_maxpool":
        return [1.0, float(p["PE"] * p["BITS"])]
    raise KeyError(f"no stream cost model for {kernel}")


def fit(points: list[dict]) -> dict[str, list[float]]:
    """One coefficient vector per kernel over the measured points ({"kernel", "params", "lut"} each)."""
    model = {}
    for kernel in sorted({p["kernel"] for p in points}):
        rows = [p for p in points if p["kernel"] == kernel]
        a = np.array([features(kernel, p["params"]) for p in rows])
        model[kernel] = relative_nnls(a, np.array([float(p["lut"]) for p in rows]))
    return model


def predict(model: dict[str, list[float]], kernel: str, params: dict) -> float:
    """LUTs of one instance by the fitted ``model``."""
    return float(np.dot(model[kernel], features(kernel, params)))


@functools.lru_cache(maxsize=1)
def default_model() -> dict[str, list[float]]:
    """The model fitted to the repository's calibration table (read once, on first use)."""
    return fit(json.loads(TABLE.read_text())["points"])


def stream_luts(op, model=None) -> float | None:
    """The calibrated LUTs of the kernel the RTL backend generates for a sliding window, padding, width converter or
    max pool node (priced with the generator's own parameters); None for any other node, whose FINN model stands."""
    from hls.gen.ops import GenerateError, view_of

    node = op.onnx_node
    kernel = KERNEL_OF.get(node.op_type.rpartition("_")[0])
    if kernel is None:
        return None
    try:
        view = view_of(model, node)
    except GenerateError:
        return None  # a node the RTL backend rejects: the generator says why; FINN's model meanwhile
    if view.kernel != kernel:  # e.g. an average pool, which is another kernel
        return None
    return predict(default_model(), kernel, view.params())
