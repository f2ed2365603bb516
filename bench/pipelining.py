"""Pipelining benchmark: the MAC kernels' adder trees registered every L levels, side by side with L = 0 (today).

tinydet W4A4 (Pynq-Z2, 100 MHz) and UltraNet W4A4 (Ultra96-V2, 200 MHz), each built once with ``--max-fps``, then
generated with ``--tree-levels`` L for each L asked, synthesized with yosys (LUT / FF / DSP and each layer's longest
combinational path in cells, ``ltp``) and simulated (golden frames back to back, random backpressure, bit-exact
required; cycles per frame against FINN's estimate). The path length is what a stage has to close timing with; the
cycles must not change. Writes ``bench/results/pipelining.{json,md}``.

    python -m bench.pipelining [--levels 0 1 2] [--ultranet-levels 0 2] [--frames 2] [--work DIR]

Weights are random (BatchNorm statistics from random images, then verified against the exact QONNX execution of
the export): path depth and resources depend on shapes and bit widths, not on weight values.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench.accuracy import RESULTS, _machine

NETS = (("tinydet", "pynq-z2", None), ("ultranet", "ultra96-v2", 200.0))


def export_random(arch: str, out: Path, seed: int = 0) -> Path:
    """The zoo detector ``arch`` (W4A4, random init from ``seed``), BatchNorm calibrated on random images in train
    mode, exported as ``qdet export`` exports a checkpoint."""
    import torch

    from quant_models.export import export_model, sample_images
    from quant_models.models.zoo import build_model, default_config

    torch.manual_seed(seed)
    model = build_model(default_config(arch, num_classes=3, bits="w4a4"))
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None  # a cumulative average of the calibration batches
    model.train()
    with torch.no_grad():
        for k in range(3):
            model(sample_images(model, 4, seed + k).float())
    export_model(model.eval(), out)
    return out


def build(arch: str, board: str, clock: float | None, work: Path) -> Path:
    """``qdet build MODEL --board B --max-fps --verify 2`` on the random export; returns the build folder."""
    from flows.config import FlowConfig
    from flows.runner import run_flow
    from flows.steps import DEFAULT_STEPS

    onnx = export_random(arch, work / f"{arch}.onnx")
    cfg = FlowConfig(out=work / f"{arch}_build", board=board, clock_mhz=clock, target_fps=None, verify_images=2,
                     overwrite=True)
    run_flow(onnx, cfg, DEFAULT_STEPS)
    return cfg.layout.root


def measure(build_dir: Path, levels: int, frames: int, backpressure: float) -> dict[str, Any]:
    """Generate with ``tree_levels`` = ``levels``, synthesize, simulate; the row of one (build, L)."""
    from flows.build import BuildLayout
    from hls.gen import GenConfig, generate_rtl
    from hls.synth import synth_build
    from sim.network import SimConfig, simulate

    layout = BuildLayout(build_dir)
    generate_rtl(layout, GenConfig(tree_levels=levels))
    tick = time.perf_counter()
    util = synth_build(layout)
    synth_s = time.perf_counter() - tick
    tick = time.perf_counter()
    sim = simulate(layout, SimConfig(images=frames, backpressure=backpressure, seed=1))
    sim_s = time.perf_counter() - tick
    mac = [r for r in util["layers"] if r["module"] in ("qdet_mvau", "qdet_vvau")]
    return {"tree_levels": levels, "lut": util["total"]["lut"], "ff": util["total"]["ff"],
            "bram18": util["total"]["bram18"], "dsp": util["total"]["dsp"],
            "longest_path": util["longest_path"],
            "longest_mac_path": max((r["longest_path"] or 0) for r in mac) if mac else None,
            "longest_other_path": max(((r["longest_path"] or 0) for r in util["layers"] if r not in mac), default=None),
            "mac_paths": {r["name"]: r["longest_path"] for r in mac},
            "sim_status": sim.status, "frames": sim.frames, "mismatches": sim.mismatches,
            "cycles_per_frame": sim.cycles_per_frame, "estimate_cycles_per_frame": sim.estimate_cycles_per_frame,
            "ratio_to_estimate": sim.ratio_to_estimate, "latency_cycles": sim.latency_cycles,
            "synth_s": round(synth_s, 1), "sim_s": round(sim_s, 1)}


def to_markdown(record: dict[str, Any]) -> str:
    lines = ["# MAC pipelining: adder trees registered every L levels (`--tree-levels L`) vs today's L = 0", "",
             f"Measured {record['date']} on {record['machine']}. Builds: W4A4, random weights (see "
             "`bench/pipelining.py`), `--max-fps`; yosys synth_xilinx (no Vivado: no timing closure is claimed); "
             f"Verilator simulation of {record['frames']} frames at random backpressure {record['backpressure']:g}, "
             "bit-exact against the verified golden outputs.", "",
             "Longest path: mapped cells (LUTs, carry blocks, DSPs) on the longest combinational path within one "
             "module (yosys `ltp`, cut at flip-flops, block RAMs and submodules).", "",
             "| build | L | LUT | FF | DSP | longest path, MAC layers | longest path, other layers | sim cycles/frame "
             "| sim/est | latency (cycles) | mismatches |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for net in record["nets"]:
        base = net["rows"][0] if net["rows"] else None
        for r in net["rows"]:
            rel = ""
            if base is not None and r is not base and base["lut"]:
                rel = f" ({r['lut'] / base['lut']:.3f}x)"
            lines.append(f"| {net['title']} | {r['tree_levels']} | {r['lut']:,}{rel} | {r['ff']:,} | {r['dsp']} | "
                         f"{r['longest_mac_path']} | {r['longest_other_path']} | {r['cycles_per_frame']:,.0f} | "
                         f"{r['ratio_to_estimate']:.3f} | {r['latency_cycles']:,} | {r['mismatches']} |")
        if net.get("error"):
            lines.append(f"| {net['title']} | | build failed: {net['error']} | | | | | | | | |")
    lines += ["", "Per MAC layer (longest path in cells at each L):", ""]
    for net in record["nets"]:
        if not net["rows"]:
            continue
        names = list(net["rows"][0]["mac_paths"])
        lines += [f"**{net['title']}**", "", "| layer | " + " | ".join(f"L={r['tree_levels']}" for r in net["rows"])
                  + " |", "|---|" + "---|" * len(net["rows"])]
        for name in names:
            lines.append(f"| {name} | " + " | ".join(str(r["mac_paths"].get(name)) for r in net["rows"]) + " |")
        lines.append("")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--levels", type=int, nargs="+", default=[0, 1, 2], help="tinydet's tree levels")
    parser.add_argument("--ultranet-levels", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--frames", type=int, default=2)
    parser.add_argument("--backpressure", type=float, default=0.2)
    parser.add_argument("--work", type=Path, default=Path("bench/work/pipelining"))
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    record: dict[str, Any] = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                              "machine": _machine(), "frames": args.frames, "backpressure": args.backpressure,
                              "nets": []}
    for arch, board, clock in NETS:
        levels = args.levels if arch == "tinydet" else args.ultranet_levels
        net: dict[str, Any] = {"arch": arch, "board": board, "title": f"{arch} W4A4, {board}", "rows": []}
        record["nets"].append(net)
        print(f"{arch}: build for {board}", flush=True)
        try:
            build_dir = build(arch, board, clock, args.work)
        except Exception as exc:  # noqa: BLE001 (recorded in the report)
            net["error"] = f"{type(exc).__name__}: {exc}"
            print(f"{arch}: build failed: {net['error']}", flush=True)
            continue
        for level in levels:
            print(f"{arch}: tree levels {level}: generate, synthesize, simulate", flush=True)
            row = measure(build_dir, level, args.frames, args.backpressure)
            print(f"{arch}: L={level}: {row['lut']:,} LUT, {row['ff']:,} FF, MAC path {row['longest_mac_path']}, "
                  f"{row['cycles_per_frame']:,.0f} cycles/frame, {row['mismatches']} mismatches", flush=True)
            net["rows"].append(row)
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "pipelining.json").write_text(json.dumps(record, indent=2) + "\n")
    (args.results / "pipelining.md").write_text(to_markdown(record))
    print(f"wrote {args.results / 'pipelining.md'}", flush=True)


if __name__ == "__main__":
    main()
