"""C simulation of a qdet build's C++ backend: g++ builds BUILD/cpp into a shared library, ctypes streams frames.

The golden frames go in as an AXI DMA would move them (:func:`boards.runtime.stream.pack_bytes`), one ``qdet_top`` call per
frame; the outputs come back the same way and are compared bit for bit with BUILD/golden. Inside the library every
kernel runs as its own process against bounded streams (hls/cpp/include/qdet_csim.h), so a FIFO too shallow for a
reconvergent branch deadlocks here as in hardware, and the error names the stream. On a mismatch the first bad
frame is re-run with every stream traced and each layer's output compared with FINN's python execution of the
generic HW graph (:mod:`sim.layerdiff`, as the RTL simulation does), naming the first diverging layer.
Everything lands in BUILD/sim/cpp (flows/build.py): result.json, summary.md, compile.log, the library.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from flows.build import BuildLayout
from boards.runtime.csim import CsimLibrary
from boards.runtime.stream import frame_lanes, pack_bytes, unpack_bytes

LIBRARY = "libqdet_top_{}.so"  # named by the sources' hash: a process never reuses a stale dlopen of the same path


class CsimError(RuntimeError):
    """The C simulation could not run (missing build parts, a compile error); the message says what to do."""


@dataclass(frozen=True)
class CsimConfig:
    """One C simulation run: ``images`` golden frames (cyclically), by-layer diagnosis of the first bad frame."""

    images: int = 16
    diagnose: bool = True
    regenerate: bool = False

    def __post_init__(self) -> None:
        if self.images < 1:
            raise CsimError(f"--images must be >= 1, got {self.images}")


@dataclass
class CsimResult:
    """What ``qdet sim BUILD --backend cpp`` measured (BUILD/sim/cpp/result.json)."""

    status: str  # "done", "deadlock" or "error"
    frames: int
    mismatches: int
    mismatched_frames: list[int]
    message: str
    frames_per_s: float | None
    run_wall_s: float
    compile_s: float
    streams: list[dict] = field(default_factory=list)  # per link: depth, max occupancy, beats
    layers: list[dict] = field(default_factory=list)  # by-layer diagnosis of the first bad frame
    backend: str = "cpp"

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"


def _library(layout: BuildLayout, manifest: dict) -> tuple[Path, float]:
    """The compiled C simulation of the build's cpp folder (compiled when its sources changed); compile seconds."""
    from hls.cpp.csim import CXXFLAGS, compile_cpp

    key = hashlib.sha256(json.dumps([manifest["files"], CXXFLAGS], sort_keys=True).encode()).hexdigest()[:16]
    lib = layout.csim_file(LIBRARY.format(key))
    if lib.is_file():
        return lib, 0.0
    layout.csim_dir.mkdir(parents=True, exist_ok=True)
    for old in layout.csim_dir.glob(LIBRARY.format("*")):
        old.unlink()
    cpp = layout.cpp_dir
    start = time.perf_counter()
    compile_cpp([cpp / s for s in manifest["csim_sources"]], lib, shared=True,
                include=[cpp / manifest["csim_dir"], cpp], qdet_headers=False, log=layout.csim_file("compile.log"))
    return lib, time.perf_counter() - start


def compiled_library(build: Path | BuildLayout, regenerate: bool = False) -> tuple[Path, float, dict]:
    """The build's C-simulation library (the cpp folder generated when absent, stale or with ``regenerate``,
    compiled when its sources changed), the compile seconds and the cpp manifest: what ``qdet sim --backend cpp``,
    the ``cpp-sim`` runtime platform and ``qdet deploy`` load."""
    from hls.backend import get_backend

    layout = BuildLayout.of(build)
    layout.check_existing()
    if regenerate or not layout.has_cpp() or layout.is_stale("cpp"):
        get_backend("cpp").generate(layout)
    manifest = layout.read_cpp_manifest()
    return (*_library(layout, manifest), manifest)


class _Top:
    """The library with the build's port geometry: golden NHWC frames in, output bytes per port back."""

    def __init__(self, lib: Path, manifest: dict):
        self.lib = CsimLibrary(lib)
        self.ports = manifest["ports"]
        # In port order (the manifest's JSON keys are sorted: m1_axis would come before m_axis).
        from hls.gen.stitch import output_port

        self.outs = [output_port(i) for i in range(len(self.ports) - 1)]

    def run(self, frames: np.ndarray) -> tuple[int, list[np.ndarray], str, float]:
        """(frames completed, output bytes per port, error, wall seconds) for ``frames`` (NHWC integer frames)."""
        inp = self.ports["s_axis"]
        data = np.ascontiguousarray(pack_bytes(frame_lanes(frames, inp["elems"]), inp["bits"], inp["width"]))
        outs = [np.zeros((len(frames) * self.ports[n]["beats_per_frame"], self.ports[n]["width"] // 8), np.uint8)
                for n in self.outs]
        done, err, wall = self.lib.run(len(frames), data, outs)
        return done, outs, err, wall

    def stats(self) -> dict[str, tuple[int, ...]]:
        return self.lib.stats()

    def trace(self, path: Path | None) -> None:
        self.lib.trace(path)


def explain(manifest: dict, message: str) -> str:
    """The library's error with every stream (a link name in quotes) described by its two ends, and a full FIFO
    stream named by its FIFO node."""
    links = {l["name"]: l for l in manifest["links"]}
    fifo_of = {s["link_out"]: s for s in manifest["stages"] if s["role"] == "fifo"}

    def name(match: str) -> str:
        l = links.get(match)
        if l is None:
            return f"'{match}'"
        fifo = fifo_of.get(match)
        what = f" = FIFO {fifo['node']}" if fifo else ""
        return f"'{match}' ({l['producer']} -> {l['consumer']}{what})"

    import re

    return re.sub(r"'(l\d+)'", lambda m: name(m.group(1)), message)


def _stream_rows(manifest: dict, stats: dict[str, tuple[int, ...]]) -> list[dict]:
    """Each stream's depth, C-simulation capacity (the depth, except on a stream on no reconvergent path) and the
    largest occupancy it reached, which only on a stream held at its depth says what the hardware needs."""
    return [{"link": s["link"], "producer": s["producer"], "consumer": s["consumer"], "depth": s["depth"],
             "capacity": stats[s["link"]][1], "max_occupancy": stats[s["link"]][2], "beats": stats[s["link"]][3]}
            for s in manifest["streams"] if s["link"] in stats]


def simulate(build: Path | BuildLayout, cfg: CsimConfig = CsimConfig(), **options) -> CsimResult:
    """C-simulate ``cfg.images`` golden frames of ``build`` (the cpp folder is generated when absent, stale, or
    with ``cfg.regenerate``); writes BUILD/sim/cpp/result.json and summary.md. ``options`` override ``cfg``'s
    fields (the backend registry passes them by name)."""
    from dataclasses import replace

    cfg = replace(cfg, **options)
    layout = BuildLayout.of(build)
    layout.check_existing()
    golden_in, golden_outs = layout.read_golden_ports()
    lib, compile_s, manifest = compiled_library(layout, cfg.regenerate)
    top = _Top(lib, manifest)
    if len(golden_outs) != len(top.outs):
        raise CsimError(f"the build has golden frames for {len(golden_outs)} outputs, its C++ {len(top.outs)} output "
                        "ports: rerun `qdet build` from its verify step (--from verify)")
    pick = [k % len(golden_in) for k in range(cfg.images)]
    top.stats()  # clears what an earlier run in this process left
    done, outs, err, wall = top.run(golden_in[pick])
    streams = _stream_rows(manifest, top.stats())
    bad, mismatches = set(), 0
    for p, name in enumerate(top.outs if done else []):
        port = manifest["ports"][name]
        got = unpack_bytes(outs[p], port["elems"], port["bits"], port["signed"]).reshape(len(pick), -1)[:done]
        want = golden_outs[p][pick[:done]].reshape(done, -1)
        bad.update(k for k in range(done) if not np.array_equal(got[k], want[k]))
        mismatches += int((got != want).sum())
    bad_frames = sorted(bad)
    layers: list[dict] = []
    if err:
        status = "deadlock" if "deadlock" in err else "error"
        message = explain(manifest, err)
    elif bad_frames:
        status = "done"
        message = f"{mismatches} output elements differ in frames {bad_frames}"
        if cfg.diagnose:
            layers, where = diagnose(layout, top, manifest, golden_in[pick[bad_frames[0]]])
            message += f"; frame {bad_frames[0]} by layer: {where}"
    else:
        status, message = "done", f"{done} frames bit-exact"
    result = CsimResult(status=status, frames=done, mismatches=mismatches, mismatched_frames=bad_frames,
                        message=message, frames_per_s=round(done / wall, 2) if done and wall > 0 else None,
                        run_wall_s=round(wall, 4), compile_s=round(compile_s, 2), streams=streams, layers=layers)
    layout.csim_dir.mkdir(parents=True, exist_ok=True)
    layout.csim_result.write_text(result.to_json())
    layout.csim_summary.write_text(summary_markdown(layout.root, result))
    return result


def diagnose(layout: BuildLayout, top: _Top, manifest: dict, frame: np.ndarray) -> tuple[list[dict], str]:
    """Re-run one frame with every stream traced and compare each layer's output with FINN's python execution."""
    from sim.layerdiff import compare_layers, first_divergence, golden_context

    path = layout.csim_file("trace.txt")
    top.trace(path)
    try:
        top.run(frame[None])
    finally:
        top.trace(None)
    index = {l["name"]: i for i, l in enumerate(manifest["links"])}
    dump: dict[int, list[str]] = {}
    for line in path.read_text().splitlines():
        name, word = line.split()
        if name in index:
            dump.setdefault(index[name], []).append(word)
    ctx, outputs = golden_context(layout.step_checkpoint("verify"), frame)
    diffs = compare_layers(manifest, dump, ctx, outputs)
    return [asdict(d) for d in diffs], first_divergence(diffs)


def summary_markdown(build: Path, r: CsimResult) -> str:
    """A short human summary of a C simulation."""
    fps = "n/a" if r.frames_per_s is None else f"{r.frames_per_s:,.1f}"
    lines = [f"# C simulation of {build.name}", "",
             f"- status: **{r.status}**, {r.frames} frames, {r.mismatches} mismatching elements: {r.message}",
             f"- {fps} frames/s ({r.run_wall_s:.3f} s for {r.frames} frames; compile {r.compile_s:.1f} s)", ""]
    if r.streams:
        lines += ["| stream | producer -> consumer | depth | C-sim capacity | max occupancy |", "|---|---|---:|---:|---:|"]
        lines += [f"| {s['link']} | {s['producer']} -> {s['consumer']} | {s['depth']} | {s['capacity']} | "
                  f"{s['max_occupancy']} |" for s in r.streams]
        lines += ["", "A stream on no reconvergent path may hold more than its depth here (its capacity cannot decide "
                  "a deadlock, so the C simulation lets its producer run ahead); elsewhere capacity = depth."]
        lines.append("")
    if r.layers:
        lines += ["| layer | link | elements | mismatches | first |", "|---|---|---:|---:|---|"]
        lines += [f"| {d['layer']} | {d['link']} | {d['elements']} | {d['mismatches']} | {d['first']} |"
                  for d in r.layers]
    return "\n".join(lines) + "\n"
