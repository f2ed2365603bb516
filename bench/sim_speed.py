"""Simulation speed benchmark: simulated cycles per second of a whole tinydet under cocotb, side by side.

Rows: Verilator with the harness running its own clock (the default of ``qdet sim``), Verilator with cocotb driving
the clock every cycle, and Icarus (cocotb clock). Each row streams golden val frames of one build back to back with
random backpressure and must be bit-exact. Writes ``bench/results/sim_speed.{json,md,png}``.

    python -m bench.sim_speed BUILD            # BUILD: a tinydet build, e.g. demo/build after `make demo`
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench.accuracy import RESULTS
from quant_models.plots import png_figure


@dataclass(frozen=True)
class Row:
    """One simulator set-up."""

    name: str
    simulator: str
    hdl_clock: bool
    frames: int
    # Speed only: stop after this many cycles (no frame completes, nothing to compare). Icarus runs a few hundred
    # cycles per second on this design, so a whole tinydet frame (~125k cycles to the first output) takes minutes.
    max_cycles: int = 0


ROWS = (Row("Verilator, harness clock (qdet sim default)", "verilator", True, 8),
        Row("Verilator, cocotb clock", "verilator", False, 2),
        Row("Icarus, cocotb clock (speed only: first 20k cycles)", "icarus", False, 1, max_cycles=20_000))


def run(build: Path, backpressure: float, rows: tuple[Row, ...] = ROWS) -> dict[str, Any]:
    """Simulate ``build`` once per row; every row must be bit-exact."""
    from sim.network import SimConfig, simulate
    from sim.tools import available

    out = []
    for row in rows:
        if not available(row.simulator):
            print(f"{row.name}: {row.simulator} not installed, skipped")
            continue
        tick = time.perf_counter()
        r = simulate(build, SimConfig(images=row.frames, simulator=row.simulator, hdl_clock=row.hdl_clock,
                                      backpressure=backpressure, max_cycles=row.max_cycles, diagnose=False))
        cut = row.max_cycles and r.status == "cycle limit"
        if r.mismatches or not (r.status == "done" or cut):
            raise SystemExit(f"{row.name}: {r.mismatches} mismatches, status {r.status}: {r.message}")
        out.append({"name": row.name, "simulator": row.simulator, "hdl_clock": row.hdl_clock, "frames": r.frames,
                    "sim_cycles": r.sim_cycles, "sim_wall_s": r.sim_wall_s, "sim_cycles_per_s": r.sim_cycles_per_s,
                    "compile_s": r.compile_s, "cycles_per_frame": r.cycles_per_frame, "mismatches": r.mismatches,
                    "bit_exact_frames": 0 if cut else r.frames,
                    "total_s": time.perf_counter() - tick})
        print(f"{row.name}: {r.sim_cycles_per_s:,.0f} cycles/s", flush=True)
    from flows.build import BuildLayout

    est = BuildLayout(build).read_estimates()
    return {"build": str(build), "board": est.get("board"), "estimate_cycles_per_frame": est["cycles_per_frame"],
            "backpressure": backpressure, "rows": out, "machine": f"{platform.machine()}, {_cores()} cores",
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}


def _cores() -> int:
    import os

    return len(os.sched_getaffinity(0))


def to_markdown(record: dict[str, Any]) -> str:
    """The results table."""
    lines = ["# Whole-network simulation speed (tinydet, cocotb)", "",
             f"Measured {record['date']} on {record['machine']}; build `{record['build']}`, estimate "
             f"{record['estimate_cycles_per_frame']:,} cycles/frame, random backpressure {record['backpressure']:g} "
             "on input and output. Every row that completes frames is bit-exact against the build's golden outputs.", "",
             "| set-up | frames compared (bit-exact) | simulated cycles | wall (s) | cycles/s | vs first row "
             "| compile (s) | cycles/frame |", "|---|---|---|---|---|---|---|---|"]
    base = record["rows"][0]["sim_cycles_per_s"] if record["rows"] else 1.0
    for r in record["rows"]:
        lines.append(f"| {r['name']} | {r['bit_exact_frames']} | {r['sim_cycles']:,} | {r['sim_wall_s']:.1f} | "
                     f"{r['sim_cycles_per_s']:,.0f} | {r['sim_cycles_per_s'] / base:.2f}x | {r['compile_s']:.0f} | "
                     f"{r['cycles_per_frame'] or 0:,.0f} |")
    return "\n".join(lines) + "\n"


def plot(record: dict[str, Any], path: Path) -> None:
    """Bar chart of simulated cycles per second (log scale)."""
    with png_figure(path, 1, (7, 3)) as (fig, ax):
        names = [r["name"] for r in record["rows"]]
        ax.barh(names, [r["sim_cycles_per_s"] for r in record["rows"]])
        ax.set_xscale("log")
        ax.set_xlabel("simulated cycles per second (log)")
        ax.invert_yaxis()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("build", type=Path, help="a tinydet build directory (qdet build)")
    parser.add_argument("--backpressure", type=float, default=0.2)
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args()
    record = run(args.build, args.backpressure)
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "sim_speed.json").write_text(json.dumps(record, indent=2) + "\n")
    (args.results / "sim_speed.md").write_text(to_markdown(record))
    plot(record, args.results / "sim_speed.png")
    print(to_markdown(record))


if __name__ == "__main__":
    main()
