"""The end-to-end demo: synthetic data -> W4A4 tinydet training -> eval -> QONNX export -> FINN build -> RTL
simulation -> summary."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table


@dataclass(frozen=True)
class DemoConfig:
    """The embedded default job; sized to finish in a few minutes on two CPU cores."""

    out: Path
    images: int = 1200
    epochs: int = 15
    bits: str = "w4a4"
    batch_size: int = 32
    lr: float = 5e-3
    seed: int = 0
    device: str = "cpu"
    board: str = "pynq-z2"
    verify_images: int = 16
    sim_images: int = 8  # val images streamed through the generated RTL (0: skip the simulation)
    backpressure: float = 0.1


def run_demo(cfg: DemoConfig, console: Console) -> dict[str, str | float]:
    """Run the demo and print a summary; returns the summary figures."""
    from quant_models.checkpoint import load_model
    from quant_models.complexity import model_complexity
    from quant_models.data import generate_synthetic
    from quant_models.evaluate import evaluate_checkpoint
    from quant_models.export import export_checkpoint
    from quant_models.train import TrainConfig, train
    from flows.config import FlowConfig
    from flows.runner import run_flow
    from flows.steps import DEFAULT_STEPS

    tick = time.perf_counter()
    data, run, onnx_path = cfg.out / "data", cfg.out / "run", cfg.out / "tinydet_w4a4.onnx"
    console.rule("1/6 synthetic data")
    if (data / "annotations" / "instances_val.json").is_file():
        console.print(f"reusing {data}")
    else:
        s = generate_synthetic(data, cfg.images, cfg.seed, (128, 128), "coco", 0.2, overwrite=True, workers=2)
        console.print(f"{s.num_train} train / {s.num_val} val images, {s.num_objects} objects in {data}")
    console.rule(f"2/6 training tinydet {cfg.bits} for {cfg.epochs} epochs")
    result = train(TrainConfig(data=data, out=run, bits=cfg.bits, epochs=cfg.epochs, batch_size=cfg.batch_size,
                               lr=cfg.lr, seed=cfg.seed, device=cfg.device, eval_every=5))
    console.rule("3/6 evaluation")
    rep = evaluate_checkpoint(result.last, data, "val", out=run, device=cfg.device)
    console.print(rep.result.to_rich_table(title="per-class AP (val)"))
    console.rule("4/6 QONNX export and check")
    exp = export_checkpoint(result.last, onnx_path, samples=4, seed=cfg.seed)
    console.rule(f"5/6 FINN build for {cfg.board} (max FPS in the board budget) and golden-model check")
    build = cfg.out / "build"
    flow = FlowConfig(out=build, board=cfg.board, verify_images=cfg.verify_images, verify_data=data,
                      checkpoint=result.last, seed=cfg.seed)
    with console.status("building ...") as status:
        run_flow(onnx_path, flow, DEFAULT_STEPS,
                 progress=lambda name, i, n: status.update(f"step {i + 1}/{n}: {name}"))
    est = json.loads((build / "report" / "estimates.json").read_text())
    sim_row = _simulate(build, cfg, console)
    model, _ = load_model(result.last)
    cost = model_complexity(model)
    seconds = time.perf_counter() - tick
    table = Table(title=f"qdet demo finished in {seconds / 60:.1f} min")
    table.add_column("what")
    table.add_column("value")
    rows = [
        ("val mAP@0.5 / mAP@0.5:0.95", f"{rep.result.map50:.3f} / {rep.result.map50_95:.3f}"),
        ("model", f"tinydet {model.cfg.bits}, {cost.params:,} weights, "
                  f"{cost.weight_memory_bits / 8 / 1024:.1f} KiB, {cost.macs / 1e6:.0f} MMAC/frame"),
        ("training speed", f"{result.metrics['train_images_per_s']:.0f} images/s on {cfg.device}"),
        ("export check", f"{exp.samples} images, head accumulators identical, nodes: "
                         + ", ".join(f"{k} x{v}" for k, v in exp.node_types.items())),
        ("data", str(data)),
        ("checkpoints, metrics, curves", f"{run}/last.pt, best.pt, metrics.json, curves.png"),
        ("evaluation", f"{rep.report}, {rep.picture}"),
        ("QONNX model", f"{onnx_path} (+ {onnx_path.with_suffix('.json').name})"),
        ("hardware estimate", f"{cfg.board} at {est['clock_mhz']:g} MHz: {est['fps']:.0f} FPS, {est['lut']:,.0f} LUT, "
                              f"{est['bram18']:g} BRAM18, {est['dsp']:g} DSP (FINN's models); "
                              f"vs FINN SetFolding: {est['comparison']['verdict']}"),
        ("golden model", f"{cfg.verify_images} val images, integer outputs identical to Brevitas"),
        ("RTL simulation", sim_row),
        ("build", f"{build} (steps/, io_spec.json, golden/, report/summary.md)"),
    ]
    for what, value in rows:
        table.add_row(what, value)
    console.print(table)
    return {"map50": rep.result.map50, "map50_95": rep.result.map50_95, "seconds": seconds, "onnx": str(onnx_path),
            "fps": est["fps"]}


def _simulate(build: Path, cfg: DemoConfig, console: Console) -> str:
    """Stage 6: generate the RTL and stream ``cfg.sim_images`` golden frames through it (Verilator + cocotb)."""
    from sim.network import SimConfig, simulate
    from sim.tools import available

    console.rule(f"6/6 RTL generation and cocotb simulation of {cfg.sim_images} val images")
    if cfg.sim_images == 0:
        return "skipped (sim_images = 0)"
    if not available("verilator"):
        console.print("[yellow]Verilator is not installed: RTL simulation skipped[/]")
        return "skipped: Verilator not installed (make setup installs it)"
    images = min(cfg.sim_images, cfg.verify_images)  # distinct golden frames only
    with console.status("compiling and simulating the stitched RTL ..."):
        r = simulate(build, SimConfig(images=images, backpressure=cfg.backpressure, seed=cfg.seed))
    verdict = "bit-exact" if r.mismatches == 0 and r.status == "done" else f"{r.mismatches} MISMATCHES ({r.status})"
    return (f"{r.frames} frames {verdict} with {cfg.backpressure:g} random backpressure; "
            f"{r.cycles_per_frame:,.0f} cycles/frame ({r.ratio_to_estimate:.3f}x the estimate), "
            f"{r.fps:,.0f} FPS at {r.clock_mhz:g} MHz, {r.sim_cycles_per_s / 1e3:.0f}k simulated cycles/s "
            f"({build / 'sim' / 'result.json'})")
