"""The end-to-end demo: synthetic data -> W4A4 tinydet training -> eval -> QONNX export -> FINN build -> RTL
simulation -> the val split on the accelerator (qdet run on the C simulation) -> summary.

Every argument is checked before the first image is rendered. A second run in the same folder reuses the data,
resumes the training run (a finished one trains no further) and rebuilds; third-party messages go to
``OUT/demo.log``, the console shows the stages and their results.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.text import Text


class DemoError(ValueError):
    """A demo argument that cannot work; the message names the option and the accepted range."""


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
    val_fraction: float = 0.2

    def min_images(self) -> int:
        """The smallest data set whose val split holds the golden model's verification images."""
        return max(10, -(-self.verify_images * 10 // int(round(self.val_fraction * 10))))


@dataclass(frozen=True)
class DemoPaths:
    """Where the demo keeps its stages' outputs (each stage's own layout owns what is inside)."""

    root: Path

    @property
    def data(self) -> Path:
        """The synthetic data set."""
        return self.root / "data"

    @property
    def run(self) -> Path:
        """The training run."""
        return self.root / "run"

    @property
    def onnx(self) -> Path:
        """The exported QONNX model."""
        return self.root / "tinydet_w4a4.onnx"

    @property
    def build(self) -> Path:
        """The FINN build (and its RTL, simulation)."""
        return self.root / "build"

    @property
    def log(self) -> Path:
        """Third-party messages of every stage."""
        return self.root / "demo.log"


def _train_config(cfg: DemoConfig, paths: DemoPaths):
    from quant_models.run_layout import RunLayout
    from quant_models.train import TrainConfig

    resume = RunLayout(paths.run).last.is_file()
    return TrainConfig(data=paths.data, out=paths.run, bits=cfg.bits, epochs=cfg.epochs, batch_size=cfg.batch_size,
                       lr=cfg.lr, seed=cfg.seed, device=cfg.device, eval_every=5, resume=resume)


def check_demo(cfg: DemoConfig) -> None:
    """Every check the demo can make before it renders an image: its own ranges, the training options, the
    output folders. Raises DemoError (or the stage's own typed error)."""
    from quant_models.paths import check_dir
    from quant_models.train import check_train_config

    if cfg.images < cfg.min_images():
        raise DemoError(f"--images must be >= {cfg.min_images()}: the val split ({cfg.val_fraction:.0%}) must hold the "
                        f"{cfg.verify_images} images the golden model is verified on; got {cfg.images}")
    if cfg.epochs < 1:
        raise DemoError(f"--epochs must be >= 1, got {cfg.epochs}")
    if cfg.sim_images < 0 or not 0.0 <= cfg.backpressure <= 1.0:
        raise DemoError("the simulated frames must be >= 0 and the backpressure a probability in [0, 1]")
    paths = DemoPaths(Path(cfg.out))
    check_dir(paths.root, "demo directory", "--out")
    check_dir(paths.data, "data set directory", "--out")
    check_train_config(_train_config(cfg, paths))
    from flows.build import BuildLayout

    BuildLayout(paths.build).check_writable()


def run_demo(cfg: DemoConfig, console: Console | None = None) -> dict[str, str | float]:
    """Run the demo and print a summary; returns the summary figures."""
    from flows.build import BuildLayout
    from flows.config import FlowConfig
    from flows.runner import run_flow
    from flows.steps import DEFAULT_STEPS
    from qdet.console import console as default_console
    from quant_models.chatter import chatter_to
    from quant_models.checkpoint import load_model
    from quant_models.complexity import model_complexity
    from quant_models.data import generate_synthetic
    from quant_models.data.layout import detect_layout
    from quant_models.evaluate import evaluate_checkpoint
    from quant_models.export import export_checkpoint
    from quant_models.train import train

    console = console or default_console
    check_demo(cfg)
    paths = DemoPaths(Path(cfg.out))
    paths.root.mkdir(parents=True, exist_ok=True)
    tick = time.perf_counter()

    def stage(title: str) -> None:
        console.rule(Text(title))

    def line(text: str) -> None:
        console.print(Text(text), soft_wrap=True)

    with open(paths.log, "a") as log:
        stage("1/7 synthetic data")
        if all(detect_layout(paths.data, split) for split in ("train", "val")):
            line(f"reusing {paths.data}")
        else:
            with chatter_to(log):
                s = generate_synthetic(paths.data, cfg.images, cfg.seed, (128, 128), "coco", cfg.val_fraction,
                                       overwrite=True, workers=2)
            line(f"{s.num_train} train / {s.num_val} val images, {s.num_objects} objects in {paths.data}")
        train_cfg = _train_config(cfg, paths)
        stage(f"2/7 training tinydet {cfg.bits} for {cfg.epochs} epochs" + (" (resumed)" if train_cfg.resume else ""))
        with chatter_to(log, streams=False):  # the progress lines go to the console
            result = train(train_cfg)
        stage("3/7 evaluation")
        with chatter_to(log):
            rep = evaluate_checkpoint(result.last, paths.data, "val", out=paths.run, device=cfg.device)
        console.print(rep.result.to_rich_table(title="per-class AP (val)"))
        stage("4/7 QONNX export and check")
        with chatter_to(log):
            exp = export_checkpoint(result.last, paths.onnx, samples=4, seed=cfg.seed)
        line(f"{paths.onnx}: checked on {exp.samples} images, {exp.accumulator_mismatches} head accumulators differ")
        stage(f"5/7 FINN build for {cfg.board} (max FPS in the board budget) and golden-model check")
        layout = BuildLayout(paths.build)
        flow = FlowConfig(out=paths.build, board=cfg.board, verify_images=cfg.verify_images, verify_data=paths.data,
                          checkpoint=result.last, seed=cfg.seed, overwrite=True)
        run_flow(paths.onnx, flow, DEFAULT_STEPS, progress=lambda name, i, n: line(f"step {i + 1}/{n}: {name}"))
        est = layout.read_estimates()
        verified = layout.read_optional(layout.verify_record) or {}
        sim_row = _simulate(layout, cfg, line, stage)
        run_row = _run_accelerator(layout, paths, line, stage, log)
    model, _ = load_model(result.last)
    cost = model_complexity(model)
    seconds = time.perf_counter() - tick
    from rich.table import Table

    table = Table(title=f"qdet demo finished in {seconds / 60:.1f} min")
    table.add_column("what")
    table.add_column("value", overflow="fold")
    rows = [
        ("val mAP@0.5 / mAP@0.5:0.95", f"{rep.result.map50:.3f} / {rep.result.map50_95:.3f}"),
        ("model", f"tinydet {model.cfg.bits}, {cost.params:,} weights, "
                  f"{cost.weight_memory_bits / 8 / 1024:.1f} KiB, {cost.macs / 1e6:.0f} MMAC/frame"),
        ("training speed", f"{result.metrics['train_images_per_s']:.0f} images/s on {cfg.device}"),
        ("export check", f"{exp.samples} images, {exp.accumulator_mismatches} head accumulators differ from torch; "
                         "nodes: " + ", ".join(f"{k} x{v}" for k, v in exp.node_types.items())),
        ("data", str(paths.data)),
        ("checkpoints, metrics, curves", f"{result.last}, {result.best}, {paths.run}"),
        ("evaluation", f"{rep.report}, {rep.picture}"),
        ("QONNX model", str(paths.onnx)),
        ("hardware estimate", f"{cfg.board} at {est['clock_mhz']:g} MHz: {est['fps']:.0f} FPS, {est['lut']:,.0f} LUT, "
                              f"{est['bram18']:g} BRAM18, {est['dsp']:g} DSP (FINN's models); "
                              f"vs FINN SetFolding: {est.get('comparison', {}).get('verdict', 'no comparison')}"),
        ("golden model", f"{verified.get('images', 0)} val images against {verified.get('reference', '-')}: "
                         f"{verified.get('mismatches', '-')} head accumulators differ"),
        ("RTL simulation", sim_row),
        ("accelerator run", run_row),
        ("build", f"{paths.build} (summary {layout.summary})"),
        ("third-party messages", str(paths.log)),
    ]
    for what, value in rows:
        table.add_row(Text(what), Text(value))
    console.print(table)
    return {"map50": rep.result.map50, "map50_95": rep.result.map50_95, "seconds": seconds, "onnx": str(paths.onnx),
            "fps": est["fps"]}


def _run_accelerator(layout, paths: DemoPaths, line, stage, log) -> str:
    """Stage 7: the val split through the accelerator's C simulation as a board (``qdet run --backend cpp-sim``):
    host decode and mAP on its outputs, beside the torch model's."""
    import shutil

    from hls.cpp.csim import CXX
    from qdet.run import RunConfig, run_build
    from quant_models.chatter import chatter_to

    stage("7/7 the val split on the accelerator (C simulation as a board), decoded on the host")
    if shutil.which(CXX) is None:
        line("no C++ compiler: the accelerator run is skipped (make setup installs g++)")
        return "skipped: no C++ compiler"
    with chatter_to(log):
        r = run_build(layout, RunConfig(data=paths.data, platform="cpp-sim"))
    text = (f"{r.images} val images: mAP@0.5 {r.map50:.3f} / mAP@0.5:0.95 {r.map50_95:.3f} on the accelerator's "
            f"outputs (torch {r.torch_map50:.3f} / {r.torch_map50_95:.3f}), {r.int_mismatches} integers differ, "
            f"detections identical: {r.detections_identical}; energy ~{r.energy['total_uj']:,.0f} uJ/frame "
            f"(estimate) ({layout.run_file('report.md')})")
    line(text)
    return text


def _simulate(layout, cfg: DemoConfig, line, stage) -> str:
    """Stage 6: generate the RTL and stream ``cfg.sim_images`` golden frames through it (Verilator + cocotb)."""
    from sim.network import SimConfig, simulate
    from sim.tools import available

    stage(f"6/7 RTL generation and cocotb simulation of {cfg.sim_images} val images")
    if cfg.sim_images == 0:
        return "skipped (sim_images = 0)"
    if not available("verilator"):
        line("Verilator is not installed: RTL simulation skipped (make setup installs it)")
        return "skipped: Verilator not installed (make setup installs it)"
    images = min(cfg.sim_images, cfg.verify_images)  # distinct golden frames only
    line(f"compiling and simulating the stitched RTL (simulator log {layout.sim_log}) ...")
    r = simulate(layout, SimConfig(images=images, backpressure=cfg.backpressure, seed=cfg.seed))
    verdict = "bit-exact" if r.mismatches == 0 and r.status == "done" else f"{r.mismatches} MISMATCHES ({r.status})"
    text = (f"{r.frames} frames {verdict} with {cfg.backpressure:g} random backpressure; "
            f"{r.cycles_per_frame:,.0f} cycles/frame ({r.ratio_to_estimate:.3f}x the estimate), "
            f"{r.fps:,.0f} FPS at {r.clock_mhz:g} MHz, {r.sim_cycles_per_s / 1e3:.0f}k simulated cycles/s "
            f"({layout.sim_result})")
    line(text)
    return text
