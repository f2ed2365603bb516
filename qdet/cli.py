"""The ``qdet`` console command: one entry point, a subcommand per stage of the flow.

Commands raise the stages' typed errors; :func:`main` prints them (qdet/errors.py). Every option is checked before
expensive work starts, and output paths are checked before anything is written.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from qdet.console import done, log_pointer, progress, row, say, show, table

app = typer.Typer(help="qdet: an open FPGA co-design flow for low-bit object detectors. Stages: data -> train -> "
                       "eval -> export (QONNX) -> build (FINN, folding, golden model) -> sim (RTL) -> synth (yosys) "
                       "-> bitstream (Vivado hand-off) -> run (the accelerator's detections and mAP) / deploy (a "
                       "folder for the board). `qdet demo` runs them all on a small synthetic job.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  rich_markup_mode=None)
data_app = typer.Typer(help="Data sets: generate a synthetic detection set, check a data set on disk.",
                       no_args_is_help=True, rich_markup_mode=None)
app.add_typer(data_app, name="data")


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        say(f"qdet {version('qdet')}")
        raise typer.Exit(0)


@app.callback()
def root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show the full traceback of an unexpected error.")] = False,
) -> None:
    """qdet: an open FPGA co-design flow for low-bit object detectors."""


def _size(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise typer.BadParameter(f"expected HxW such as 128x128, got {text!r}", param_hint="--size") from None
    if h < 16 or w < 16:
        raise typer.BadParameter(f"images must be at least 16x16, got {text!r}", param_hint="--size")
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
    from quant_models.paths import check_dir

    hw = _size(size)
    check_dir(out, "data set directory", "--out")
    with progress(f"rendering {images} images ..."):
        summary = generate_synthetic(out, images, seed, hw, fmt, val_fraction, overwrite=overwrite, workers=workers)
    done("wrote", f"{summary.num_train} train + {summary.num_val} val images, {summary.num_objects} objects "
                  f"({', '.join(summary.class_names)}) to {summary.root} [{summary.fmt}]")


@data_app.command("check")
def data_check(
    root: Annotated[Path, typer.Argument(help="Data set directory (COCO, YOLO or Pascal VOC layout).")],
    split: Annotated[str, typer.Option(help="Split to check.")] = "train",
    skip_bad: Annotated[bool, typer.Option(help="Skip malformed entries (counted) instead of failing.")] = False,
) -> None:
    """Load and validate a data set; print its classes and object counts.

    Example: qdet data check data/synth --split val
    """
    from quant_models.data import load_dataset

    ds = load_dataset(root, split, skip_bad=skip_bad)
    t = table(f"{root} [{split}]: {len(ds)} images, {ds.skipped} skipped entries", ["class", "objects"])
    counts = [0] * ds.num_classes
    for s in ds.samples:
        for label in s.labels.tolist():
            counts[label] += 1
    for name, n in zip(ds.class_names, counts):
        row(t, name, str(n))
    show(t)


@app.command()
def train(
    data: Annotated[Path, typer.Option(help="Data set directory with train and val splits.")],
    out: Annotated[Path, typer.Option(help="Run directory (last.pt, best.pt, metrics.json, curves.png).")],
    model: Annotated[str, typer.Option("--model", "--arch", help="Architecture: tinydet, ultranet, mobiledet or tinyyolo "
                                                                  "(two heads).")]
    = "tinydet",
    bits: Annotated[str, typer.Option(help="Bit spec: float, w4a4, w8a8, w4a4,first=8,last=8, ...")] = "w4a4",
    epochs: Annotated[int, typer.Option(help="Training epochs.")] = 10,
    batch_size: Annotated[int, typer.Option(help="Batch size: the global one under torchrun (split over its "
                                                 "processes).")] = 32,
    lr: Annotated[float, typer.Option(help="Peak learning rate (AdamW, warm-up then cosine).")] = 2e-3,
    seed: Annotated[int, typer.Option(help="Seed for weights, shuffling and augmentation.")] = 0,
    device: Annotated[str, typer.Option(help="cpu, cuda or cuda:N.")] = "cpu",
    width: Annotated[float, typer.Option(help="Width (channel) multiplier.")] = 1.0,
    depth: Annotated[Optional[int], typer.Option(help="Blocks at the final resolution (default per arch).")] = None,
    input_size: Annotated[Optional[str], typer.Option(help="Train at HxW (e.g. 64x64; default: the data set's "
                                                            "image size).")] = None,
    teacher: Annotated[Optional[Path], typer.Option(help="Float teacher checkpoint for distillation.")] = None,
    kd_weight: Annotated[float, typer.Option(help="Weight of the distillation loss.")] = 1.0,
    init: Annotated[Optional[Path], typer.Option(help="Start from this checkpoint's weights (QAT from float).")] = None,
    resume: Annotated[bool, typer.Option(help="Continue the run in OUT from its last.pt.")] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing run in OUT (its checkpoints are deleted).")]
    = False,
) -> None:
    """Train a (quantized) detector.

    Example: qdet train --model tinydet --bits w4a4 --data data/synth --epochs 10 --out runs/w4a4

    Several GPUs: torchrun --nproc-per-node N --no-python qdet train ... --device cuda (README, "Training on
    several GPUs").
    """
    import io
    import os

    from quant_models.chatter import chatter_into, chatter_to
    from quant_models.distributed import dist_from_env, is_main
    from quant_models.quantizers import parse_bits
    from quant_models.train import TrainConfig, check_train_config
    from quant_models.train import train as run_train

    from quant_models.train import TrainError

    spec = parse_bits(bits)
    size = None
    if input_size is not None:
        parts = input_size.lower().split("x")
        if len(parts) != 2 or not all(p.isdigit() and int(p) > 0 for p in parts):
            raise TrainError(f"--input-size {input_size!r}: give HxW in pixels, e.g. 64x64")
        size = (int(parts[0]), int(parts[1]))
    cfg = TrainConfig(data=data, out=out, model=model, bits=None if spec is None else str(spec), epochs=epochs,
                      batch_size=batch_size, lr=lr, seed=seed, device=device, width=width, depth=depth,
                      input_size=size, teacher=teacher, kd_weight=kd_weight, init=init, resume=resume,
                      overwrite=overwrite, distributed=dist_from_env(os.environ))  # set under torchrun
    layout = check_train_config(cfg)  # every option and path, before any data is loaded
    main = is_main(cfg.distributed)
    # The progress bar keeps stderr. Under torchrun rank 0 logs; the other ranks' (identical) chatter is dropped.
    with chatter_into(layout.log, streams=False) if main else chatter_to(io.StringIO(), streams=False):
        result = run_train(cfg)
    if not main:
        return
    m = result.metrics
    done("done:", f"val mAP@0.5 {m['map50']:.3f}, mAP@0.5:0.95 {m['map50_95']:.3f} (best mAP@0.5 "
                  f"{m['best_map50']:.3f} at epoch {m['best_epoch']}); {m['train_images_per_s']:.0f} train img/s; "
                  f"checkpoints in {result.out}")
    log_pointer(layout.log)


@app.command("eval")
def evaluate(
    ckpt: Annotated[Path, typer.Argument(help="Checkpoint (RUN/best.pt).")],
    data: Annotated[Path, typer.Option(help="Data set directory.")],
    split: Annotated[str, typer.Option(help="Split to evaluate.")] = "val",
    out: Annotated[Optional[Path], typer.Option(help="Where eval.json and predictions.png go (default: the "
                                                     "checkpoint's folder).")] = None,
    device: Annotated[str, typer.Option(help="cpu, cuda or cuda:N.")] = "cpu",
) -> None:
    """Evaluate a checkpoint: mAP@0.5, mAP@0.5:0.95, per-class AP and a picture of predictions.

    Example: qdet eval runs/w4a4/best.pt --data data/synth
    """
    from quant_models.evaluate import evaluate_checkpoint

    rep = evaluate_checkpoint(ckpt, data, split, out, device)
    r = rep.result
    t = table(f"{ckpt} on {data} [{split}]: mAP@0.5 {r.map50:.3f}, mAP@0.5:0.95 {r.map50_95:.3f}",
              ["class", "AP@0.5", "AP@0.5:0.95"])
    for name, ap in r.per_class_ap50.items():
        row(t, name, f"{ap:.3f}", f"{r.per_class_ap50_95[name]:.3f}")
    show(t)
    say(f"report {rep.report}, picture {rep.picture}")


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
    from quant_models.chatter import chatter_into
    from quant_models.export import ExportError, export_checkpoint, export_files
    from quant_models.paths import check_file

    if samples < 1:
        raise ExportError(f"--samples must be >= 1 (the export is checked on that many images), got {samples}")
    files = export_files(out)
    for path in (files.onnx, files.report, files.log):
        check_file(path, "export", "--out")
    with progress("exporting and checking ..."), chatter_into(files.log, mode="w"):
        rep = export_checkpoint(ckpt, out, samples=samples, seed=seed)
    nodes = ", ".join(f"{k} x{v}" for k, v in rep.node_types.items())
    outputs = ", ".join([str(rep.output_shape)] + [str(h.shape) for h in rep.more_heads])
    done("exported", f"{rep.onnx}: input {rep.input_shape} UINT8, output{'s' if rep.more_heads else ''} {outputs}; "
                     f"nodes {nodes}; "
                     f"checked on {rep.samples} images: {rep.accumulator_mismatches} head accumulators differ, "
                     f"max |float diff| {rep.max_abs_diff:.2e}")
    log_pointer(files.log)


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Directory for the demo's data, run, model and build.")] = Path("demo"),
    images: Annotated[int, typer.Option(help="Synthetic images (train + val).")] = 1200,
    epochs: Annotated[int, typer.Option(help="Training epochs.")] = 15,
    device: Annotated[str, typer.Option(help="cpu, cuda or cuda:N.")] = "cpu",
) -> None:
    """Run the whole flow on the embedded default: synthetic data, W4A4 tinydet training, evaluation, QONNX export,
    FINN build for pynq-z2 (max FPS, golden model checked against Brevitas) and a bit-exact RTL simulation.

    A second run in the same OUT reuses the data, resumes the training run and rebuilds.

    Example: qdet demo --out demo
    """
    from qdet.demo import DemoConfig, run_demo

    run_demo(DemoConfig(out=out, images=images, epochs=epochs, device=device))  # checks every argument first


@app.command()
def build(
    model: Annotated[Path, typer.Argument(help="QONNX model: written by qdet export, or a Brevitas model exported "
                                               "with brevitas.export.export_qonnx.")],
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
    overwrite: Annotated[bool, typer.Option(help="Replace a build already in OUT.")] = False,
    fifo_depth: Annotated[int, typer.Option(help="Depth of the FIFO in front of each layer before its consumer's "
                                                 "and the reconvergent paths' needs deepen it.")] = 32,
) -> None:
    """Compile an exported detector through QONNX/FINN to a folded, verified streaming dataflow graph.

    Steps: qonnx_to_finn, streamline, to_hw_layers, verify, specialize, fold, stream_links, report. Every step's
    model is saved
    in OUT/steps; estimates and reports go to OUT/report.

    Example: qdet build model.onnx --board pynq-z2 --max-fps --out build --checkpoint runs/w4a4/best.pt
    """
    from flows.config import FlowConfig, FlowError
    from flows.runner import run_flow
    from flows.steps import DEFAULT_STEPS

    if sum((target_fps is not None, max_fps, folding is not None)) != 1:
        raise FlowError("give exactly one of --target-fps N, --max-fps and --folding FILE")
    cfg = FlowConfig(out=out, board=board, clock_mhz=clock_mhz, target_fps=target_fps, verify_images=verify,
                     verify_data=verify_data, folding=folding, checkpoint=checkpoint, start=start, stop=stop,
                     overwrite=overwrite, fifo_depth=fifo_depth)
    with progress("building ...") as update:  # run_flow checks steps, paths and an existing build first
        run_flow(model, cfg, DEFAULT_STEPS, progress=lambda name, i, n: update(f"step {i + 1}/{n}: {name} ..."))
    layout = cfg.layout
    done("built", f"{model} for {cfg.board} at {cfg.clock:g} MHz in {out} (steps in {layout.steps_dir}, io_spec "
                  f"{layout.io_spec}; FINN's messages in {layout.log})")
    if layout.has_estimates():
        from qdet.hw_cli import print_report

        print_report(layout)


@app.command()
def report(build_dir: Annotated[Path, typer.Argument(help="A build directory written by qdet build.")]) -> None:
    """Print a build's estimate: FPS, cycles, latency, resources against the board budget, FINN's SetFolding; and,
    once qdet synth / qdet sim have run, synthesis and simulation next to it (also rewrites report/summary.md).

    Example: qdet report build/tinydet
    """
    from flows.build import BuildLayout
    from qdet.hw_cli import print_report

    layout = BuildLayout(build_dir)
    layout.check_existing()
    print_report(layout)


@app.command()
def boards(
    as_json: Annotated[bool, typer.Option("--json", help="Print the catalogue as JSON.")] = False,
) -> None:
    """List the supported boards: part, resources, default clock and the default utilisation budget.

    Example: qdet boards
    """
    import json

    from boards.catalogue import BOARDS
    from qdet.console import console

    if as_json:
        console.print_json(json.dumps([b.as_dict() for b in BOARDS.values()]))
        return
    t = table("boards (budget = FINN's default share: 70% LUT, 50% FF, 80% BRAM/URAM/DSP)",
              ["board", "part", "shell", "clock MHz", "LUT", "FF", "BRAM18", "URAM", "DSP"], left=3)
    for b in BOARDS.values():
        d = b.device
        row(t, b.name, b.part, b.shell.value, f"{b.clock_mhz:g}", f"{d.lut:,.0f}", f"{d.ff:,.0f}",
            f"{d.bram18:,.0f}", f"{d.uram:,.0f}", f"{d.dsp:,.0f}")
    show(t)


from qdet.hw_cli import register as _register_hw_commands  # noqa: E402  (qdet synth, qdet bitstream, qdet sim)

_register_hw_commands(app)


from qdet.board_cli import register as _register_board_commands  # noqa: E402  (qdet run, qdet deploy)

_register_board_commands(app)

from qdet.search_cli import register as _register_search_commands  # noqa: E402  (qdet search, qdet search-best)

_register_search_commands(app)

from qdet.compress_cli import register as _register_compress_commands  # noqa: E402  (qdet prune, qdet lowrank)

_register_compress_commands(app)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: runs a subcommand and turns every failure into one ``error:`` line and an exit code."""
    from qdet.console import error
    from qdet.errors import BUG, USAGE, is_user_error, message_of

    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    try:
        code = app(args=args, prog_name="qdet", standalone_mode=False)
    except typer.Exit as exc:
        code = exc.exit_code
    except typer.Abort:
        error("interrupted")
        code = 130
    except typer.TyperException as exc:  # usage errors (typer's click): unknown option, bad value, missing argument
        ctx = getattr(exc, "ctx", None)
        if type(exc).__name__ == "NoArgsIsHelpError":  # a bare `qdet` or `qdet data`: the help, not an error
            say(exc.format_message())
            sys.exit(USAGE)
        hint = f" (see {ctx.command_path} --help)" if ctx is not None else ""
        error((exc.format_message() if hasattr(exc, "format_message") else str(exc)) + hint)
        code = USAGE
    except KeyboardInterrupt:
        error("interrupted; finished steps are kept (a build resumes with --from, a run with --resume)")
        code = 130
    except Exception as exc:
        if debug:
            raise
        if is_user_error(exc):
            error(message_of(exc))
            code = USAGE
        else:
            error(f"unexpected {type(exc).__name__}: {message_of(exc)}. This is a bug in qdet; rerun with "
                  "`qdet --debug ...` for the traceback and report it")
            code = BUG
    sys.exit(code or 0)


if __name__ == "__main__":
    main()
