"""Simulation speed benchmark: whole-network frames per second of the RTL simulation and the C simulation of the
same builds, side by side.

For each build: Verilator on the RTL (``qdet sim``'s default set-up: the harness runs its own clock; no
backpressure, the RTL's fastest) and g++'s C simulation of the HLS C++ (``qdet sim --backend cpp``). Both stream
the build's golden frames back to back and must be bit-exact; frames per second exclude compilation (reported
apart). The C simulation must reach at least 20x the RTL simulation's frames per second. Writes
``bench/results/sim_speed.{json,md,png}``.

    python -m bench.sim_speed [BUILD ...] [--frames 8] [--c-frames 64] [--work DIR]

Without BUILD arguments it builds tinydet (pynq-z2), tinyyolo (pynq-z2) and UltraNet (ultra96-v2, 200 MHz) with
random weights (bench.pipelining.build: the speeds depend on shapes and folding, not on weight values).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench.accuracy import RESULTS
from quant_models.plots import png_figure

NETS = (("tinydet", "pynq-z2", None), ("tinyyolo", "pynq-z2", None), ("ultranet", "ultra96-v2", 200.0))
TARGET = 20.0  # the C simulation's frames/s over the RTL simulation's, at least


def measure(build: Path, frames: int, c_frames: int) -> dict[str, Any]:
    """One build: Verilator and the C simulation, each bit-exact, frames per second of each."""
    from flows.build import BuildLayout
    from hls.backend import get_backend
    from sim.network import SimConfig, simulate

    layout = BuildLayout(build)
    simulate(layout, SimConfig(images=1, diagnose=False))  # compiles the Verilator model (not timed below)
    rtl = simulate(layout, SimConfig(images=frames, diagnose=False))
    if rtl.status != "done" or rtl.mismatches:
        raise SystemExit(f"{build}: RTL simulation {rtl.status}, {rtl.mismatches} mismatches: {rtl.message}")
    cpp = get_backend("cpp")
    first = cpp.simulate(layout, images=1, regenerate=True)  # generates and compiles (timed apart)
    c = cpp.simulate(layout, images=c_frames)
    if c.status != "done" or c.mismatches:
        raise SystemExit(f"{build}: C simulation {c.status}, {c.mismatches} mismatches: {c.message}")
    est = layout.read_estimates()
    rtl_fps = rtl.frames / rtl.sim_wall_s
    return {"build": str(build), "board": est["board"], "estimate_cycles_per_frame": est["cycles_per_frame"],
            "rtl": {"frames": rtl.frames, "wall_s": rtl.sim_wall_s, "frames_per_s": rtl_fps,
                    "cycles_per_s": rtl.sim_cycles_per_s, "cycles_per_frame": rtl.cycles_per_frame,
                    "compile_s": rtl.compile_s, "mismatches": rtl.mismatches},
            "cpp": {"frames": c.frames, "wall_s": c.run_wall_s, "frames_per_s": c.frames_per_s,
                    "compile_s": first.compile_s, "mismatches": c.mismatches},
            "ratio": c.frames_per_s / rtl_fps}


def to_markdown(record: dict[str, Any]) -> str:
    """The results table."""
    lines = ["# Whole-network simulation speed: RTL (Verilator) vs C simulation (g++), frames per second", "",
             f"Measured {record['date']} on {record['machine']}. Each row's two simulations stream the build's golden "
             "frames back to back and are bit-exact against them; wall times exclude compilation. Verilator runs "
             f"without backpressure (its fastest). Target: the C simulation at least {TARGET:g}x the RTL's frames/s.",
             "", "| build | board | est. cycles/frame | RTL frames | RTL wall (s) | RTL frames/s | RTL cycles/s | "
             "C frames | C wall (s) | C frames/s | C / RTL | compile RTL / C (s) |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in record["rows"]:
        a, c = r["rtl"], r["cpp"]
        lines.append(f"| `{Path(r['build']).name}` | {r['board']} | {r['estimate_cycles_per_frame']:,} | {a['frames']} | "
                     f"{a['wall_s']:.2f} | {a['frames_per_s']:,.1f} | {a['cycles_per_s']:,.0f} | {c['frames']} | "
                     f"{c['wall_s']:.3f} | {c['frames_per_s']:,.1f} | **{r['ratio']:.1f}x** | "
                     f"{a['compile_s']:.0f} / {c['compile_s']:.0f} |")
    return "\n".join(lines) + "\n"


def plot(record: dict[str, Any], path: Path) -> None:
    """Frames per second of both simulations per build (log scale)."""
    import numpy as np

    with png_figure(path, 1, (7, 3)) as (fig, ax):
        names = [Path(r["build"]).name for r in record["rows"]]
        y = np.arange(len(names))
        ax.barh(y - 0.2, [r["rtl"]["frames_per_s"] for r in record["rows"]], 0.4, label="RTL (Verilator)")
        ax.barh(y + 0.2, [r["cpp"]["frames_per_s"] for r in record["rows"]], 0.4, label="C simulation (g++)")
        ax.set_yticks(y, names)
        ax.set_xscale("log")
        ax.set_xlabel("frames per second (log)")
        ax.legend()
        ax.invert_yaxis()


def _cores() -> int:
    import os

    return len(os.sched_getaffinity(0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("builds", type=Path, nargs="*", help="build directories (default: build the three nets)")
    parser.add_argument("--frames", type=int, default=8, help="frames of the RTL simulation")
    parser.add_argument("--c-frames", type=int, default=64, help="frames of the C simulation")
    parser.add_argument("--work", type=Path, default=Path("bench/work/sim_speed"))
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args()
    builds = list(args.builds)
    if not builds:
        from bench.pipelining import build

        args.work.mkdir(parents=True, exist_ok=True)
        for arch, board, clock in NETS:
            tick = time.perf_counter()
            builds.append(build(arch, board, clock, args.work))
            print(f"built {arch} in {time.perf_counter() - tick:.0f} s", flush=True)
    rows = []
    for b in builds:
        rows.append(measure(b, args.frames, args.c_frames))
        r = rows[-1]
        print(f"{b}: RTL {r['rtl']['frames_per_s']:.2f} frames/s, C {r['cpp']['frames_per_s']:.1f} frames/s "
              f"({r['ratio']:.1f}x)", flush=True)
    record = {"rows": rows, "target_ratio": TARGET, "machine": f"{platform.machine()}, {_cores()} cores",
              "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "sim_speed.json").write_text(json.dumps(record, indent=2) + "\n")
    (args.results / "sim_speed.md").write_text(to_markdown(record))
    plot(record, args.results / "sim_speed.png")
    print(to_markdown(record))


if __name__ == "__main__":
    main()
