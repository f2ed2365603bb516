"""The CLI's compression commands, ``qdet prune`` and ``qdet lowrank`` (registered on the app by qdet/cli.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from qdet.console import done, say

CKPT_HELP = "A quantized checkpoint written by qdet train (RUN/best.pt); it is also the distillation teacher."
# The fine-tuning options both commands take.
Epochs = Annotated[int, typer.Option(help="Fine-tuning epochs (per step).")]
BatchSize = Annotated[int, typer.Option(help="Batch size.")]
Lr = Annotated[float, typer.Option(help="Peak fine-tuning learning rate.")]
KdWeight = Annotated[float, typer.Option(help="Weight of the distillation loss (teacher: CHECKPOINT).")]
Device = Annotated[str, typer.Option(help="cpu, cuda or cuda:N.")]
Seed = Annotated[int, typer.Option(help="Seed.")]
Overwrite = Annotated[bool, typer.Option(help="Replace another compression run in OUT.")]


def _finetune(epochs: int, batch_size: int, lr: float, kd_weight: float, device: str, seed: int):
    from quant_models.compress import FineTune

    return FineTune(epochs=epochs, batch_size=batch_size, lr=lr, kd_weight=kd_weight, device=device, seed=seed)


def _layer_costs(build: Path | None, checkpoint: Path) -> tuple[float, ...]:
    """Hardware-aware mode: each backbone layer's LUT estimate in the unpruned model's build."""
    if build is None:
        return ()
    from flows.build import BuildLayout
    from flows.layer_costs import weighted_layer_costs
    from quant_models.checkpoint import load_model
    from quant_models.compress.schedule import match_layer_costs

    model, _ = load_model(checkpoint)
    return match_layer_costs(model, weighted_layer_costs(BuildLayout(build)))


def _check_first(checkpoint: Path, data: Path, out: Path) -> None:
    """Paths, before any model or data is loaded."""
    from quant_models.checkpoint import read_checkpoint
    from quant_models.data import DatasetError, detect_layout
    from quant_models.run_layout import RunLayout

    read_checkpoint(checkpoint)
    if detect_layout(data, "train") is None:
        raise DatasetError(f"--data {data}: no data set with a train split there (COCO, YOLO or VOC layout); "
                           "`qdet data check` says what a layout needs")
    RunLayout(out).check_writable("--out")


def _finish(best: Path) -> None:
    from quant_models.run_layout import RunLayout

    layout = RunLayout(best.parent)
    say(layout.compress_report.read_text())
    done("done:", f"{best} (every step's run in {layout.root}/step*/; what each did in {layout.compress_record})")


def prune(
    checkpoint: Annotated[Path, typer.Argument(help=CKPT_HELP)],
    data: Annotated[Path, typer.Option(help="Data set the model was trained on (fine-tuning and calibration).")],
    out: Annotated[Path, typer.Option(help="Run directory: step<k>/ per step, best.pt, compress.json/.md.")],
    ratio: Annotated[float, typer.Option(help="Share of every backbone layer's channels to remove, in (0, 1).")] = 0.5,
    steps: Annotated[int, typer.Option(help="Prune -> fine-tune steps to get there.")] = 2,
    importance: Annotated[str, typer.Option(help="magnitude (L2 of the group's weights), bn (|gamma|) or taylor.")]
    = "magnitude",
    round_to: Annotated[int, typer.Option(help="Keep channel counts multiples of this (folding divisors).")] = 8,
    hardware: Annotated[Optional[Path], typer.Option(help="A build of CHECKPOINT (qdet build): prune the layers its "
                                                          "folding makes costly (LUTs) harder.")] = None,
    sensitivity: Annotated[bool, typer.Option(help="Measure each layer's share: remove channels where the loss on "
                                                   "calibration images rises least (per LUT, with --hardware).")]
    = False,
    epochs: Epochs = 2,
    batch_size: BatchSize = 32,
    lr: Lr = 1e-3,
    kd_weight: KdWeight = 1.0,
    device: Device = "cpu",
    seed: Seed = 0,
    overwrite: Overwrite = False,
) -> None:
    """Structured channel pruning with dependency tracking (Torch-Pruning), iteratively, each step fine-tuned with
    distillation from the unpruned model. The result is an ordinary checkpoint with its channel plan.

    Example: qdet prune runs/w4a4/best.pt --data data/synth --ratio 0.5 --steps 2 --out runs/w4a4-p50
    """
    from quant_models.compress import PruneConfig
    from quant_models.compress import prune as run_prune

    cfg = PruneConfig(checkpoint=checkpoint, data=data, out=out, ratio=ratio, steps=steps, importance=importance,
                      round_to=round_to, sensitivity=sensitivity,
                      finetune=_finetune(epochs, batch_size, lr, kd_weight, device, seed),
                      overwrite=overwrite)
    _check_first(checkpoint, data, out)
    costs = _layer_costs(hardware, checkpoint)
    if costs:
        from dataclasses import replace

        cfg = replace(cfg, layer_costs=costs)
    say(f"pruning {checkpoint} by {ratio:g} in {steps} step(s), each fine-tuned {epochs} epoch(s) ...")
    best = run_prune(cfg)
    _finish(best)


def _ranks(text: list[str]) -> tuple[tuple[int, tuple[int, ...]], ...]:
    from quant_models.compress import CompressError

    out = []
    for item in text:
        layer, _, ranks = item.partition("=")
        try:
            out.append((int(layer.lstrip("l")), tuple(int(r) for r in ranks.split("x"))))
        except ValueError:
            raise CompressError(f"--rank {item!r}: give l<layer>=<r> (SVD) or l<layer>=<r1>x<r2> (Tucker-2), "
                                "e.g. l3=16") from None
    return tuple(out)


def lowrank(
    checkpoint: Annotated[Path, typer.Argument(help=CKPT_HELP)],
    data: Annotated[Path, typer.Option(help="Data set the model was trained on (fine-tuning and calibration).")],
    out: Annotated[Path, typer.Option(help="Run directory: step1/, best.pt, compress.json/.md.")],
    energy: Annotated[Optional[float], typer.Option(help="Keep this share of each layer's squared singular "
                                                         "values, in (0, 1].")] = None,
    macs: Annotated[Optional[float], typer.Option(help="Factors may cost this share of a layer's MACs.")] = None,
    rank: Annotated[Optional[list[str]], typer.Option(help="Explicit ranks: l3=16 (SVD), l3=16x32 (Tucker-2); "
                                                           "repeat for several layers.")] = None,
    layers: Annotated[Optional[str], typer.Option(help="Only these backbone layers, e.g. 2,3,4 (default: every "
                                                       "full kxk conv that gets cheaper).")] = None,
    tucker: Annotated[bool, typer.Option(help="Tucker-2 (1x1, kxk, 1x1) instead of an SVD pair.")] = False,
    mid_bits: Annotated[Optional[int], typer.Option(help="Bits of the signed activations between factors "
                                                         "(default: the layer's activation bits).")] = None,
    epochs: Epochs = 2,
    batch_size: BatchSize = 32,
    lr: Lr = 1e-3,
    kd_weight: KdWeight = 1.0,
    device: Device = "cpu",
    seed: Seed = 0,
    overwrite: Overwrite = False,
) -> None:
    """Low-rank factorization of kxk convs (truncated SVD or Tucker-2), fine-tuned with distillation. The factors
    are quantized convs with signed activations between them; the model exports, builds and simulates as any.

    Example: qdet lowrank runs/w4a4/best.pt --data data/synth --energy 0.9 --out runs/w4a4-lr
    """
    from quant_models.compress import CompressError, LowRankConfig
    from quant_models.compress import lowrank as run_lowrank

    try:
        chosen = None if layers is None else tuple(int(x.strip().lstrip("l")) for x in layers.split(","))
    except ValueError:
        raise CompressError(f"--layers {layers!r}: give comma-separated layer indices, e.g. 2,3,4") from None
    cfg = LowRankConfig(checkpoint=checkpoint, data=data, out=out, energy=energy, macs=macs,
                        ranks=_ranks(rank or []), layers=chosen, tucker=tucker, mid_bits=mid_bits,
                        finetune=_finetune(epochs, batch_size, lr, kd_weight, device, seed), overwrite=overwrite)
    _check_first(checkpoint, data, out)
    say(f"factorizing {checkpoint}, then fine-tuning {epochs} epoch(s) ...")
    best = run_lowrank(cfg)
    _finish(best)


def register(app: typer.Typer) -> None:
    """Add ``prune`` and ``lowrank`` to the app."""
    app.command()(prune)
    app.command()(lowrank)
