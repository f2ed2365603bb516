"""Folding benchmark: qdet's folder against FINN's SetFolding and UltraNet's published folding.

UltraNet W4A4 (as published, 160x320) for Ultra96-V2 at 200 MHz, and tinydet W4A4 for Pynq-Z2 at 100 MHz, each
exported by ``qdet export`` and built with ``--max-fps``. Rows per model: qdet, FINN's SetFolding for qdet's cycles
per frame, qdet folded for FINN's cycles (same throughput, so LUTs compare like for like), and for UltraNet its
published per-layer SIMD x PE (3x16, 16x8, 16x8, 16x4, 8x2 x5: ~460.8k cycles per frame), with the other layers
folded by qdet to keep up with it. All figures are the folder's estimates (FINN's cycles; LUTs by qdet's
yosys-calibrated models of its MAC lanes and stream kernels, FINN's elsewhere), not synthesis.
Writes ``bench/results/folding.{json,md,png}``.

    python -m bench.folding
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from bench.accuracy import RESULTS
from flows.config import FlowConfig
from flows.estimates import estimate
from flows.folding import RESOURCES, attrs_of, enumerate_groups, fold_fixed, with_attrs
from flows.runner import run_flow
from flows.steps import DEFAULT_STEPS
from quant_models.plots import png_figure

# UltraNet's published folding, per conv in order: (SIMD, PE) (shared/references.md).
ULTRANET_SIMD_PE = ((3, 16), (16, 8), (16, 8), (16, 4), (8, 2), (8, 2), (8, 2), (8, 2), (8, 2))
KEYS = ("fps", "cycles_per_frame", "latency_us", *RESOURCES, "fits")


@dataclass(frozen=True)
class Case:
    """One model, board and clock."""

    model: str
    board: str
    clock_mhz: float
    num_classes: int


CASES = (Case("ultranet", "ultra96-v2", 200.0, 1), Case("tinydet", "pynq-z2", 100.0, 4))


def export_model(case: Case, work: Path) -> tuple[Path, Path]:
    """A W4A4 model of ``case`` with BatchNorm statistics from a few random batches, exported by qdet export.

    Folding and estimates depend on shapes and bit widths, not on trained weight values."""
    from quant_models.checkpoint import save_checkpoint
    from quant_models.export import export_checkpoint
    from quant_models.models import build_model, default_config

    torch.manual_seed(0)
    model = build_model(default_config(case.model, case.num_classes, bits="w4a4")).train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randint(0, 256, (4, 3, *model.cfg.input_size)).float())
    ckpt, onnx_path = work / f"{case.model}.pt", work / f"{case.model}.onnx"
    save_checkpoint(ckpt, {"model_config": model.cfg.to_dict(), "model": model.eval().state_dict()})
    export_checkpoint(ckpt, onnx_path, samples=1)
    return ckpt, onnx_path


def published_folding(model) -> dict[str, dict[str, int]]:
    """UltraNet's published SIMD x PE per MVAU, keyed by the folded graph's node names (``qdet build --folding``)."""
    mvaus = [n.name for n in model.graph.node if n.op_type.startswith("MVAU")]
    return {name: {"SIMD": simd, "PE": pe} for name, (simd, pe) in zip(mvaus, ULTRANET_SIMD_PE)}


def published_row(model, case: Case, cfg: FlowConfig) -> dict[str, Any]:
    """UltraNet's published MVAU folding; every other layer folded by qdet to keep up with it."""
    groups = enumerate_groups(model, cfg.target.part)
    options = fold_fixed(groups, published_folding(model), cfg.target.budget)
    est = estimate(with_attrs(model, attrs_of(options)), cfg.target, cfg.clock)
    return {k: est[k] for k in KEYS}


def run_case(case: Case, work: Path) -> dict[str, Any]:
    """Build ``case`` with --max-fps and collect the rows."""
    from qonnx.core.modelwrapper import ModelWrapper

    work.mkdir(parents=True, exist_ok=True)
    tick = time.perf_counter()
    ckpt, onnx_path = export_model(case, work)
    cfg = FlowConfig(out=work / "build", board=case.board, clock_mhz=case.clock_mhz, verify_images=2,
                     checkpoint=ckpt)
    run_flow(onnx_path, cfg, DEFAULT_STEPS)
    est = cfg.layout.read_estimates()
    rows = [{"name": "qdet --max-fps", **{k: est[k] for k in KEYS}},
            {"name": "FINN SetFolding (qdet's cycles as target)", **est["finn_setfolding"]}]
    if "qdet_at_finn_fps" in est:
        rows.append({"name": "qdet at FINN's cycles", **est["qdet_at_finn_fps"]})
    if case.model == "ultranet":
        folded = ModelWrapper(str(cfg.layout.step_checkpoint("fold")))
        rows.append({"name": "UltraNet published folding", **published_row(folded, case, cfg)})
    for row in rows:
        row.setdefault("latency_us", None)
    return {"model": case.model, "board": case.board, "clock_mhz": case.clock_mhz, "budget": est["budget"],
            "bottleneck": est["bottleneck"], "comparison": est["comparison"], "rows": rows,
            "seconds": time.perf_counter() - tick}


def to_markdown(record: dict[str, Any]) -> str:
    """The results as Markdown tables, one per case."""
    lines = ["# Folding: qdet vs FINN SetFolding vs UltraNet's published folding", "",
             f"Measured {record['date']} on {record['device']}; the folder's estimates (FINN's cycles; LUTs by qdet's "
             "yosys-calibrated models of its MAC lanes and stream kernels, flows/mac_costs.py and "
             "flows/stream_costs.py, FINN's elsewhere; BRAM18, URAM, DSP), not synthesis: bench.hardware has "
             "yosys.", ""]
    for case in record["cases"]:
        lines += [f"## {case['model']} W4A4 on {case['board']} at {case['clock_mhz']:g} MHz "
                  f"({case['seconds']:.0f} s)", "",
                  "| folding | cycles/frame | FPS | LUT | BRAM18 | URAM | DSP | fits budget |",
                  "|---|---|---|---|---|---|---|---|"]
        for r in case["rows"]:
            lines.append(f"| {r['name']} | {r['cycles_per_frame']:,} | {r['fps']:.1f} | {r['lut']:,.0f} | "
                         f"{r['bram18']:g} | {r['uram']:g} | {r['dsp']:g} | {'yes' if r['fits'] else 'NO'} |")
        b = case["budget"]
        lines += [f"| budget | | | {b['lut']:,.0f} | {b['bram18']:g} | {b['uram']:g} | {b['dsp']:g} | |", "",
                  f"qdet vs FINN: {case['comparison']['verdict']}.", ""]
        published = next((r for r in case["rows"] if r["name"].startswith("UltraNet")), None)
        if published:
            ours = case["rows"][0]
            lines += [f"qdet --max-fps vs UltraNet's published folding: "
                      f"{published['cycles_per_frame'] / ours['cycles_per_frame']:.2f}x the throughput "
                      f"({ours['lut'] / published['lut']:.2f}x the LUTs).", ""]
    return "\n".join(lines)


def plot(record: dict[str, Any], path: Path) -> None:
    """FPS against LUTs for every row, one panel per case."""
    with png_figure(path, len(record["cases"]), (6 * len(record["cases"]), 4)) as (fig, axes):
        for ax, case in zip(axes, record["cases"]):
            for r in case["rows"]:
                ax.scatter(r["lut"], r["fps"], s=40)
                ax.annotate(r["name"], (r["lut"], r["fps"]), textcoords="offset points", xytext=(4, 4), fontsize=7)
            ax.axvline(case["budget"]["lut"], color="black", linestyle="--", linewidth=1)
            ax.set_xlabel("LUT (FINN estimate; dashed: budget)")
            ax.set_ylabel("FPS")
            ax.set_title(f"{case['model']} on {case['board']} at {case['clock_mhz']:g} MHz")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("bench/work/folding"))
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args()
    import platform

    cases = [run_case(case, args.work / case.model) for case in CASES]
    record = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
              "device": f"{platform.processor() or 'cpu'} (CPU; no FPGA tools)", "cases": cases}
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "folding.json").write_text(json.dumps(record, indent=2) + "\n")
    (args.results / "folding.md").write_text(to_markdown(record))
    plot(record, args.results / "folding.png")
    print(to_markdown(record))


if __name__ == "__main__":
    main()
