"""Whole-network RTL simulation of a qdet build: frames through BUILD/rtl's qdet_top under cocotb.

Per-cycle Python driving runs at ~20-50k cycles/s, too slow for whole frames, so the harness
(sim/hdl/qdet_net_tb.sv.j2, rendered per build) streams the packed input beats from an HDL-side buffer with
random input idle and output stall, writes every output beat with its cycle, counts cycles and has a watchdog;
cocotb only clocks it (sim/tb/network.py). Results are compared with BUILD/golden/outputs.npy; on a mismatch the
first frame is re-run with every layer's output link dumped and compared with FINN's python execution of the
generic HW graph, to name the first diverging layer. Everything lands in the build's sim folder (result, summary,
the simulator's log; see flows/build.py).
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from flows.build import BuildLayout
from boards.runtime.stream import pack_words, unpack_words

HARNESS = "qdet_net_tb"
_TEMPLATE = Path(__file__).resolve().parent / "hdl" / "qdet_net_tb.sv.j2"
# The harness buffer holds this many frames unless a run asks for more (a larger buffer means a recompile).
BUFFER_FRAMES = 16


class SimError(RuntimeError):
    """The simulation did not finish as expected (watchdog, cycle limit, missing files)."""


@dataclass(frozen=True)
class SimConfig:
    """One simulation run.

    ``backpressure`` is the probability of an idle input cycle and of a stalled output cycle; ``output_stall``
    overrides the latter (1.0: the output is never ready, which only the watchdog ends). ``max_cycles`` 0 means
    "frames x the estimate x 4 + 2 M" (a bound, not a timing check).
    """

    images: int = 8
    simulator: str = "verilator"
    backpressure: float = 0.0
    output_stall: float | None = None
    seed: int = 0
    watchdog_cycles: int = 20000
    max_cycles: int = 0
    diagnose: bool = True
    timeout_s: float | None = 1800
    build_args: tuple[str, ...] = ()
    # The harness toggles its own clock (Verilator --timing) instead of cocotb driving it; None: on for Verilator.
    hdl_clock: bool | None = None

    def __post_init__(self) -> None:
        from sim.tools import SIMULATORS

        if self.images < 1:
            raise SimError(f"--images must be >= 1, got {self.images}")
        if self.simulator not in SIMULATORS:
            raise SimError(f"--simulator {self.simulator!r} is not one of {', '.join(SIMULATORS)}")
        for option, p in (("--backpressure", self.backpressure), ("output stall", self.output_stall)):
            if p is not None and not 0.0 <= p <= 1.0:
                raise SimError(f"{option} is a probability in [0, 1], got {p:g}")
        if self.watchdog_cycles < 1 or self.max_cycles < 0:
            raise SimError("the watchdog needs >= 1 cycle and the cycle limit must be >= 0 (0: automatic)")


@dataclass
class SimResult:
    """What ``qdet sim`` reports (the build's sim result)."""

    frames: int
    mismatches: int
    mismatched_frames: list[int]
    cycles_per_frame: float | None
    ii_cycles: float | None
    latency_cycles: int | None
    fps: float | None
    clock_mhz: float | None
    simulator: str
    sim_cycles: int
    sim_wall_s: float
    sim_cycles_per_s: float
    compile_s: float
    backpressure: float
    output_stall: float
    estimate_cycles_per_frame: int | None
    ratio_to_estimate: float | None
    status: str  # "done", "watchdog", "cycle limit"
    message: str
    frame_done_cycles: list[int] = field(default_factory=list)
    steady_cycles_per_frame: float | None = None
    link_stats: list[dict] = field(default_factory=list)
    layers: list[dict] = field(default_factory=list)
    fifo_occupancy: list[dict] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"


def _threshold(p: float) -> int:
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"probability {p} outside [0, 1]")
    return int(round(p * 65536))


def render_harness(manifest: dict, capacity: int, hdl_clock: bool = False) -> str:
    """The harness source for this build's top: its port widths, buffer size and internal links.

    ``hdl_clock``: the harness toggles its own clock (needs a simulator with timing support, Verilator --timing)
    instead of taking it from cocotb."""
    from jinja2 import Environment, StrictUndefined

    dumped = {s["link_out"] for s in manifest["stages"] if s["role"] == "layer"}
    links = [dict(l, index=i, beats=l["beats_per_frame"], dump=l["name"] in dumped)
             for i, l in enumerate(manifest["links"])]
    env = Environment(undefined=StrictUndefined, keep_trailing_newline=True)
    return env.from_string(_TEMPLATE.read_text()).render(
        in_pad=manifest["ports"]["s_axis"]["width"], outs=output_ports(manifest), fifos=fifo_stages(manifest),
        capacity=capacity, links=links, hdl_clock=hdl_clock)


def output_ports(manifest: dict) -> list[dict]:
    """The top's output ports in order (``m_axis``, ``m1_axis``, ...), each with its name."""
    from hls.gen.stitch import output_port

    ports, index = [], 0
    while output_port(index) in manifest["ports"]:
        ports.append(dict(manifest["ports"][output_port(index)], name=output_port(index)))
        index += 1
    return ports


def fifo_stages(manifest: dict) -> list[dict]:
    """Every FIFO instance with its name, depth and the indices of its input and output links."""
    index = {l["name"]: i for i, l in enumerate(manifest["links"])}
    return [{"name": s["node"], "instance": s["instance"], "depth": s["parameters"]["DEPTH"],
             "in_index": index[s["link_in"]], "out_index": index[s["link_out"]]}
            for s in manifest["stages"] if s["role"] == "fifo"]


def input_lines(manifest: dict, frames: np.ndarray) -> list[str]:
    """NHWC uint frames -> the input port's hex beats (elements of one beat in its LSBs)."""
    port = manifest["ports"]["s_axis"]
    lanes = np.asarray(frames, np.int64).reshape(-1, port["elems"])
    return pack_words(lanes, port["bits"])


@dataclass(frozen=True)
class Trace:
    """A parsed trace.txt."""

    frame_start: dict[int, int]
    out_cycles: dict[int, list[int]]  # per output port
    out_words: dict[int, list[str]]
    status: str
    end_cycle: int
    links: list[tuple[str, int, int, int]]
    stats: list[tuple[int, int, int, int]]
    fifo_max: dict[int, int]


def read_trace(path: Path) -> Trace:
    """Parse the harness's trace file."""
    starts, cycles, words, links, stats, fifo_max = {}, {}, {}, [], [], {}
    status, end = "incomplete", 0
    with open(path) as f:
        for line in f:
            kind, *rest = line.split()
            if kind == "O":
                port = int(rest[0])
                cycles.setdefault(port, []).append(int(rest[1]))
                words.setdefault(port, []).append(rest[2])
            elif kind == "F":
                fifo_max[int(rest[0])] = int(rest[1])
            elif kind == "I":
                starts[int(rest[0])] = int(rest[1])
            elif kind in ("D", "W", "T"):
                status = {"D": "done", "W": "watchdog", "T": "cycle limit"}[kind]
                end = int(rest[0])
            elif kind == "S":
                stats.append(tuple(int(v) for v in rest))
            elif kind == "L":
                links.append((rest[0], int(rest[1]), int(rest[2]), int(rest[3])))
    return Trace(starts, cycles, words, status, end, links, stats, fifo_max)


def watchdog_message(manifest: dict, trace: Trace) -> str:
    """Where the data stopped, and why.

    A stage that holds data on an input link but is not stalled by any of its outputs is where the flow stops: an
    output port that is never ready, or a join waiting for one input while the other's branch is full (a
    reconvergent FIFO too shallow for what the long branch delays). The message names that stage, the full FIFOs
    on the branch that holds data and the starved link on the branch that does not."""
    links = {l["name"]: l for l in manifest["links"]}
    state = {n: (bool(v), bool(r), c) for n, v, r, c in trace.links}
    held = {n for n, (v, r, _) in state.items() if v and not r}
    starved = {n for n, (v, r, _) in state.items() if r and not v}
    producer_of = {l: s for s in manifest["stages"] for l in s.get("outputs", [s["link_out"]])}
    fifo_of = {s["link_out"]: s for s in manifest["stages"] if s["role"] == "fifo"}
    outs = sum(len(w) for w in trace.out_words.values())
    parts = [f"watchdog: no stream moved for the watchdog's cycles (stopped at cycle {trace.end_cycle}); "
             f"{outs} output beats arrived"]

    def full_fifos(link: str) -> list[str]:
        """The full FIFOs upstream of a held link, following held links (nearest first)."""
        found, todo = [], [link]
        while todo:
            name = todo.pop()
            stage = fifo_of.get(name)
            if stage is not None and stage["link_in"] in held:
                depth = stage["parameters"]["DEPTH"]
                beats = state[stage["link_in"]][2] - state[name][2]
                found.append(f"FIFO {stage['node']} (depth {depth}, {beats} beats held)")
            src = producer_of.get(name)
            todo += [i for i in (src.get("inputs", [src["link_in"]]) if src else []) if i in held]
        return found

    for port, p in manifest["ports"].items():
        if port != "s_axis" and p.get("link") in held:
            parts.append(f"data stops at link {p['link']} ({links[p['link']]['producer']} -> {port}): the output "
                         f"port {port} is not ready")
    for stage in manifest["stages"]:
        ins = stage.get("inputs", [stage["link_in"]])
        outs_of = stage.get("outputs", [stage["link_out"]])
        stuck = [i for i in ins if i in held]
        if not stuck or any(o in held for o in outs_of):
            continue  # takes everything, or is stalled by its own consumer
        waiting = [i for i in ins if i in starved]
        what = f"{stage['node']} ({stage['op_type']})"
        if waiting:
            full = [f for i in stuck for f in full_fifos(i)]
            more = f" (and {len(full) - 1} full FIFOs upstream of it)" if len(full) > 1 else ""
            parts.append(f"deadlock at {what}: it waits for input {', '.join(waiting)} (starved, from "
                         f"{', '.join(links[w]['producer'] for w in waiting)}) while input {', '.join(stuck)} holds "
                         f"data it cannot take" + (f"; the branch that holds data is full at {full[0]}{more}: "
                                                  "deepen it (see report/fifo_sizing.json for the computed depths; "
                                                  "qdet sim --size-fifos measures them)" if full else ""))
        else:
            parts.append(f"data stops at {what}: input {', '.join(stuck)} is valid but not taken")
    if len(parts) == 1 and starved:
        parts.append("starved (ready, no data): " + ", ".join(
            f"{n} ({links[n]['producer']} -> {links[n]['consumer']})" for n in sorted(starved)[:6]))
    return "; ".join(parts)


def _run(rtl: Path, manifest: dict, run_dir: Path, cfg: SimConfig, frames: np.ndarray, *, dump: bool,
         max_cycles: int, log: Path | None = None) -> tuple[Trace, float, float]:
    """Write the harness inputs, compile (incrementally) and run; returns the trace, compile s and run wall s."""
    from sim.cocotb_run import run_cocotb

    run_dir.mkdir(parents=True, exist_ok=True)
    capacity = max(BUFFER_FRAMES, len(frames)) * manifest["ports"]["s_axis"]["beats_per_frame"]
    harness = run_dir / f"{HARNESS}.sv"
    # Verilator runs the clock natively (--timing); Icarus takes it from cocotb (its own delays would be as slow).
    hdl_clock = cfg.simulator == "verilator" if cfg.hdl_clock is None else cfg.hdl_clock
    if hdl_clock and cfg.simulator != "verilator":
        raise SimError("the harness clock needs Verilator's timing support; use hdl_clock=False with Icarus")
    text = render_harness(manifest, capacity, hdl_clock)
    if not harness.is_file() or harness.read_text() != text:
        harness.write_text(text)
    for mem in sorted(rtl.glob("*.mem")):
        shutil.copyfile(mem, run_dir / mem.name)
    (run_dir / "input.hex").write_text("".join(f"{w}\n" for w in input_lines(manifest, frames)))
    outs = output_ports(manifest)
    words = [len(frames), manifest["ports"]["s_axis"]["beats_per_frame"], outs[0]["beats_per_frame"],
             _threshold(cfg.backpressure), _threshold(cfg.backpressure if cfg.output_stall is None else
                                                      cfg.output_stall),
             cfg.seed & 0xFFFFFFFF, cfg.watchdog_cycles, int(dump), max_cycles,
             *(o["beats_per_frame"] for o in outs[1:])]
    (run_dir / "tb_config.hex").write_text("".join(f"{w:08x}\n" for w in words))
    for stale in ("trace.txt", "dump.txt", "timing.json"):
        (run_dir / stale).unlink(missing_ok=True)
    sources = [rtl / name for name in manifest["kernel_sources"]] + [rtl / "qdet_top.sv", harness]
    args = list(cfg.build_args)
    if cfg.simulator == "verilator":
        # Wide links (a 27-element parallel window) trip width lint warnings that are not errors here.
        # Unrolling every loop (an MVAU's SIMD products and adder tree reach ~200 iterations, past Verilator's default
        # 64) turns variable part-selects of wide words into constant shifts; with -O3 and a -O2 C++ build this
        # measured 2.5x the cycles/s of the defaults on tinydet.
        # Verilator writes a whole network's registered logic as a few huge C++ functions, and g++'s instruction
        # combiner is superlinear in a function's size: FINN's CNV with DSP-packed MVAUs spent 13+ CPU minutes (4.7
        # GB) on one file and had not finished; combining at most 2 instructions compiled it in 100 s. On CNV as the
        # folder now builds it: 69 s -> 22 s of compile, 225k -> 221k cycles/s (the same, within noise).
        args = ["-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC", "-Wno-LATCH", "-O3", "--unroll-count", "1024",
                "--unroll-stmts", "1000000", "-CFLAGS", "-O2", "-CFLAGS", "--param=max-combine-insns=2", *args]
        if hdl_clock:
            args = ["--timing", "-CFLAGS", "-fcoroutines", *args]
    start = time.perf_counter()
    run_cocotb(simulator=cfg.simulator, sources=sources, toplevel=HARNESS, test_module="sim.tb.network",
               build_dir=run_dir, timeout_s=cfg.timeout_s, build_args=args, optimize=True,
               test_env={"QDET_NET_HDL_CLOCK": str(int(hdl_clock))}, log_file=log)
    total = time.perf_counter() - start
    timing = json.loads((run_dir / "timing.json").read_text()) if (run_dir / "timing.json").is_file() else {}
    wall = float(timing.get("wall_s", total))
    trace = read_trace(run_dir / "trace.txt")
    return trace, max(0.0, total - wall), wall


def steady_interval(done: list[int]) -> float | None:
    """Cycles per frame once the pipeline is full: the median of the last half of the intervals between frame
    completions (None for fewer than two frames).

    The first frames pay for filling the FIFOs (UltraNet on Ultra96-V2: 154,976 and 154,264 cycles, then 153,600
    from the third frame on), so the mean over a short run overstates what frames back to back cost; the median
    also ignores a last frame that finishes early because no next frame follows it.

    >>> steady_interval([100, 250, 380, 500, 620, 740])
    120.0
    >>> steady_interval([0, 7]), steady_interval([5])
    (7.0, None)
    """
    steps = [b - a for a, b in zip(done, done[1:])]
    if not steps:
        return None
    return float(np.median(steps[len(steps) // 2:]))


def _frame_outputs(port: dict, words: list[str], count: int) -> np.ndarray:
    vals = unpack_words(words, port["elems"], port["bits"], port["signed"])
    return vals.reshape(count, -1)


def simulate(build: Path | BuildLayout, cfg: SimConfig = SimConfig(), *, regenerate: bool = False) -> SimResult:
    """Simulate ``cfg.images`` golden frames of ``build`` back to back; writes the build's sim result and summary.

    The RTL is generated first when the build has none, when it was generated from an earlier folding, or with
    ``regenerate``. Frames beyond the build's golden
    set repeat it cyclically.
    """
    from dataclasses import asdict as fields_of

    from hls.backend import get_backend
    from hls.gen import GenConfig, load_manifest

    layout = BuildLayout.of(build)
    layout.check_existing()
    golden_in, golden_outs = layout.read_golden_ports()
    if regenerate or not layout.has_rtl() or layout.rtl_is_stale():
        config = GenConfig.of_manifest(layout.read_manifest()) if layout.has_rtl() else GenConfig()
        get_backend("rtl").generate(layout, **fields_of(config))
    rtl = layout.rtl_dir
    manifest = load_manifest(rtl)
    pick = [k % len(golden_in) for k in range(cfg.images)]
    est = layout.read_optional(layout.estimates) or {}
    est_cycles = est.get("cycles_per_frame")
    clock = layout.target()[1]
    max_cycles = cfg.max_cycles or int(cfg.images * (est_cycles or 10 ** 6) * 4 + 2_000_000)
    out_dir = layout.sim_dir
    # One compiled model per simulator and clock mode, so switching between them never rebuilds the other.
    clock_mode = "" if (cfg.hdl_clock is None or cfg.hdl_clock == (cfg.simulator == "verilator")) else "_cocotb_clock"
    run_dir = layout.sim_run_dir(cfg.simulator + clock_mode)

    out_dir.mkdir(parents=True, exist_ok=True)
    trace, compile_s, wall = _run(rtl, manifest, run_dir, cfg, golden_in[pick], dump=False, max_cycles=max_cycles,
                                  log=layout.sim_log)
    ports = output_ports(manifest)
    if len(golden_outs) != len(ports):
        raise SimError(f"the build has golden frames for {len(golden_outs)} outputs, its RTL {len(ports)} output "
                       "ports: rerun `qdet build` from its verify step (--from verify)")
    # A frame is complete when every output port has delivered it; it is bit-exact when every port's data is.
    complete = min(len(trace.out_words.get(p, [])) // port["beats_per_frame"] for p, port in enumerate(ports))
    bad_frames, mismatches = set(), 0
    for p, port in enumerate(ports):
        if not complete:
            break
        per_frame = port["beats_per_frame"]
        got = _frame_outputs(port, trace.out_words[p][:complete * per_frame], complete)
        expected = golden_outs[p][pick[:complete]].reshape(complete, -1)
        bad_frames.update(k for k in range(complete) if not np.array_equal(got[k], expected[k]))
        mismatches += int((got != expected).sum())
    bad_frames = sorted(bad_frames)
    # A frame is done when its last beat left on the last port to deliver it.
    done = [max(trace.out_cycles[p][(k + 1) * port["beats_per_frame"] - 1] for p, port in enumerate(ports))
            for k in range(complete)]
    cpf = (done[-1] - done[0]) / (len(done) - 1) if len(done) > 1 else None
    steady = steady_interval(done)
    starts = [trace.frame_start[k] for k in sorted(trace.frame_start)]
    ii = (starts[-1] - starts[0]) / (len(starts) - 1) if len(starts) > 1 else None
    latency = done[0] - trace.frame_start[0] if done and 0 in trace.frame_start else None

    message, layers = "", []
    if trace.status == "watchdog":
        message = watchdog_message(manifest, trace)
    elif trace.status != "done":
        message = f"{trace.status}: stopped at cycle {trace.end_cycle} with {complete} of {cfg.images} frames out"
    elif bad_frames:
        message = f"{mismatches} output elements differ in frames {bad_frames}"
        if cfg.diagnose:
            layers, where = diagnose(layout, manifest, cfg, golden_in[pick[bad_frames[0]]], max_cycles)
            message += f"; frame {bad_frames[0]} by layer: {where}"
    else:
        message = f"{complete} frames bit-exact"
    result = SimResult(
        frames=complete, mismatches=mismatches,
        mismatched_frames=bad_frames, cycles_per_frame=cpf, steady_cycles_per_frame=steady, ii_cycles=ii,
        latency_cycles=latency,
        fps=(clock * 1e6 / cpf) if (clock and cpf) else None, clock_mhz=clock, simulator=cfg.simulator,
        sim_cycles=trace.end_cycle, sim_wall_s=round(wall, 3),
        sim_cycles_per_s=round(trace.end_cycle / wall, 1) if wall > 0 else 0.0, compile_s=round(compile_s, 3),
        backpressure=cfg.backpressure,
        output_stall=cfg.backpressure if cfg.output_stall is None else cfg.output_stall,
        estimate_cycles_per_frame=est_cycles,
        ratio_to_estimate=round(cpf / est_cycles, 4) if (cpf and est_cycles) else None,
        status=trace.status, message=message, frame_done_cycles=done, layers=layers,
        link_stats=[{"link": manifest["links"][i]["name"], "producer": manifest["links"][i]["producer"],
                     "consumer": manifest["links"][i]["consumer"], "beats": b, "held": h, "starved": st}
                    for i, b, h, st in trace.stats],
        fifo_occupancy=[{"fifo": f["name"], "depth": f["depth"], "max_occupancy": trace.fifo_max[i]}
                        for i, f in enumerate(fifo_stages(manifest)) if i in trace.fifo_max])
    out_dir.mkdir(parents=True, exist_ok=True)
    layout.sim_result.write_text(result.to_json())
    layout.sim_summary.write_text(summary_markdown(layout.root, result))
    return result


def simulate_backend(build: Path | BuildLayout, regenerate: bool = False, **options) -> SimResult:
    """The rtl backend's ``simulate`` (:mod:`hls.backend`): :func:`simulate` with :class:`SimConfig`'s fields by
    name."""
    return simulate(build, SimConfig(**options), regenerate=regenerate)


def diagnose(build: BuildLayout, manifest: dict, cfg: SimConfig, frame: np.ndarray, max_cycles: int
             ) -> tuple[list[dict], str]:
    """Re-run one frame with every layer link dumped and compare each with FINN's python execution."""
    from sim.layerdiff import compare_layers, first_divergence, golden_context, read_dump

    run_dir = build.sim_run_dir(cfg.simulator)
    _run(build.rtl_dir, manifest, run_dir, cfg, frame[None], dump=True, max_cycles=max_cycles,
         log=build.sim_diagnose_log)
    ctx, outputs = golden_context(build.step_checkpoint("verify"), frame)
    diffs = compare_layers(manifest, read_dump(run_dir / "dump.txt"), ctx, outputs)
    return [asdict(d) for d in diffs], first_divergence(diffs)


def summary_markdown(build: Path, r: SimResult) -> str:
    """A short human summary of a run."""
    def fmt(v, spec=",.0f"):
        return "n/a" if v is None else format(v, spec)

    lines = [f"# RTL simulation of {build.name}", "",
             f"- status: **{r.status}**, {r.frames} frames, {r.mismatches} mismatching elements: {r.message}",
             f"- cycles per frame: {fmt(r.steady_cycles_per_frame)} in steady state (the median of the last half of "
             f"the frame intervals), {fmt(r.cycles_per_frame)} on average over all frames; estimate "
             f"{fmt(r.estimate_cycles_per_frame)} (mean / estimate {fmt(r.ratio_to_estimate, '.3f')})",
             f"- input frame interval {fmt(r.ii_cycles)} cycles; latency of frame 0 {fmt(r.latency_cycles)} cycles",
             f"- {fmt(r.fps, ',.1f')} FPS at {fmt(r.clock_mhz, 'g')} MHz",
             f"- {r.simulator}: {r.sim_cycles:,} cycles in {r.sim_wall_s:.1f} s = {r.sim_cycles_per_s:,.0f} "
             f"cycles/s (compile and start-up {r.compile_s:.1f} s); backpressure {r.backpressure:g}, output stall "
             f"{r.output_stall:g}", ""]
    if r.layers:
        lines += ["| layer | link | elements | mismatches | first |", "|---|---|---:|---:|---|"]
        lines += [f"| {d['layer']} | {d['link']} | {d['elements']} | {d['mismatches']} | {d['first']} |"
                  for d in r.layers]
    return "\n".join(lines) + "\n"
