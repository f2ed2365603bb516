"""Iterative compression runs: compress -> fine-tune with distillation from the uncompressed model -> repeat.

``qdet prune`` removes ``ratio`` of the channels in ``steps`` equal steps (each step's target is a share of the
*original* channels, so K steps of a 50% run end at the same plan as one); ``qdet lowrank`` factorizes once (or
in steps of growing compression). Every step is a training run of its own under ``OUT/step<k>/`` (its compressed
starting point in ``compressed.pt``), so a killed run resumes at the step it was in; ``OUT/best.pt`` is the last
step's best checkpoint, ``OUT/compress.json`` / ``compress.md`` what each step did.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from quant_models.checkpoint import load_model, save_checkpoint
from quant_models.complexity import model_complexity
from quant_models.compress.common import CompressError, recalibrate_bn
from quant_models.compress.lowrank import factorize_model
from quant_models.compress.prune import IMPORTANCES, check_ratio, prune_model, prune_to
from quant_models.compress.sensitivity import sensitivity_plan
from quant_models.data import load_dataset, to_tensors
from quant_models.decode import as_outputs
from quant_models.loss import detection_loss_heads
from quant_models.models import Model
from quant_models.models.config import CHANNEL_MULTIPLE
from quant_models.run_layout import RunLayout

CALIB_IMAGES = 64  # training images for BN statistics, the factors' quantizer ranges and the Taylor loss
MEASURED = ("sensitivity_plan",)  # what a step measures once: recorded, and reused by a resumed run


@dataclass(frozen=True)
class FineTune:
    """How each compression step is fine-tuned: QAT with distillation from the uncompressed checkpoint."""

    epochs: int = 2
    batch_size: int = 32
    lr: float = 1e-3
    kd_weight: float = 1.0
    device: str = "cpu"
    seed: int = 0
    progress: bool = True

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise CompressError(f"--epochs and --batch-size must be >= 1 (got {self.epochs}, {self.batch_size})")


@dataclass(frozen=True)
class PruneConfig:
    """``qdet prune``: ``ratio`` of every backbone layer's channels removed in ``steps`` steps.

    ``layer_costs`` (hardware-aware mode): each backbone layer's cost in the folder's estimate of the unpruned
    model's build (LUTs, :func:`hardware_ratios`); the costly layers are pruned harder, the cheap ones less, with
    the same share of channels removed in total. ``sensitivity``: each layer's share is found by measuring the
    loss (:func:`~quant_models.compress.sensitivity.sensitivity_plan`), per LUT removed when ``layer_costs`` are
    given too."""

    checkpoint: Path
    data: Path
    out: Path
    ratio: float = 0.5
    steps: int = 2
    importance: str = "magnitude"
    round_to: int = CHANNEL_MULTIPLE
    layer_costs: tuple[float, ...] = ()
    sensitivity: bool = False
    finetune: FineTune = field(default_factory=FineTune)
    overwrite: bool = False

    def __post_init__(self) -> None:
        check_ratio(self.ratio)
        if self.steps < 1:
            raise CompressError(f"--steps must be >= 1, got {self.steps}")
        if self.importance not in IMPORTANCES:
            raise CompressError(f"--importance {self.importance!r}: choose one of {', '.join(IMPORTANCES)}")
        if self.round_to < 1:
            raise CompressError(f"--round-to must be >= 1, got {self.round_to}")


@dataclass(frozen=True)
class LowRankConfig:
    """``qdet lowrank``: factorize the kxk convs (by ``energy``, ``macs`` or explicit ``ranks``), then fine-tune."""

    checkpoint: Path
    data: Path
    out: Path
    energy: float | None = None
    macs: float | None = None
    ranks: tuple[tuple[int, tuple[int, ...]], ...] = ()
    layers: tuple[int, ...] | None = None
    tucker: bool = False
    mid_bits: int | None = None
    finetune: FineTune = field(default_factory=FineTune)
    overwrite: bool = False

    def __post_init__(self) -> None:
        if sum(x is not None for x in (self.energy, self.macs, self.ranks or None)) != 1:
            raise CompressError("give exactly one of --energy, --macs and --rank")


def hardware_ratios(channels: list[int], costs: tuple[float, ...], ratio: float, cap: float = 0.9) -> dict[int, float]:
    """Per-layer pruning ratios proportional to each layer's share of the cost (``costs[i]`` for layer ``i``),
    capped at ``cap``, scaled so that ``ratio`` of all channels are removed, as in uniform pruning.

    >>> r = hardware_ratios([64, 64], (300.0, 100.0), 0.5); round(r[0], 3), round(r[1], 3)
    (0.75, 0.25)
    """
    if len(costs) != len(channels):
        raise CompressError(f"{len(costs)} layer costs for {len(channels)} backbone layers")
    mean = sum(costs) / len(costs)
    if mean <= 0:
        return {i: ratio for i in range(len(channels))}
    weights = [c / mean for c in costs]
    scale = ratio
    for _ in range(50):  # fixed point: the capped ratios remove ratio x all channels
        r = [min(cap, scale * w) for w in weights]
        removed = sum(ri * ch for ri, ch in zip(r, channels)) / sum(channels)
        if abs(removed - ratio) < 1e-9 or removed == 0:
            break
        scale *= ratio / removed
    return dict(enumerate(r))


def match_layer_costs(model: Model, rows: list[dict[str, Any]]) -> tuple[float, ...]:
    """Each backbone layer's LUT estimate from a build's weighted-layer rows (``flows.layer_costs``), matched by
    weight shape in graph order; :class:`CompressError` when the build is not of this model."""
    free = list(rows)
    costs = []
    for i, conv in enumerate(model.plan):
        key = ((conv.out_ch, conv.kernel ** 2, True) if conv.depthwise
               else (conv.out_ch, conv.in_ch // conv.groups * conv.kernel ** 2, False))
        row = next((r for r in free if (r["rows"], r["cols"], r["depthwise"]) == key), None)
        if row is None:
            raise CompressError(f"the build has no MVAU/VVAU of layer l{i}'s shape ({conv.in_ch}->{conv.out_ch}, "
                                f"{conv.kernel}x{conv.kernel}): it was not built from this checkpoint")
        free.remove(row)
        costs.append(row["lut"])
    return tuple(costs)


def prune(cfg: PruneConfig) -> Path:
    """Run an iterative pruning (see the module docstring); returns ``OUT/best.pt``."""
    original, _ = load_model(cfg.checkpoint)
    channels = [c.out_ch for c in original.plan]
    extra: dict[str, Any] = {"method": "prune"}
    finals: list[int] = []
    if not cfg.sensitivity:
        ratios = (hardware_ratios(channels, cfg.layer_costs, cfg.ratio) if cfg.layer_costs
                  else {i: cfg.ratio for i in range(len(channels))})
        finals = list(prune_model(original, cfg.ratio, round_to=cfg.round_to, layer_ratios=ratios).cfg.channels)
        extra["layer_ratios"] = ratios

    def step(model: Model, k: int, calib: torch.Tensor, loss_fn: Callable[[Model], torch.Tensor]) -> Model:
        if not finals:  # sensitivity: measured once, on the unpruned model, when a step first needs it
            # A resumed run takes the plan its first steps were pruned to from the record: measured again (on
            # another machine, another thread count) it could differ, and the later steps would aim elsewhere.
            finals.extend(extra.get("sensitivity_plan") or sensitivity_plan(
                original, cfg.ratio, calib=calib, loss_fn=loss_fn, round_to=cfg.round_to, importance=cfg.importance,
                layer_costs=cfg.layer_costs, report=print if cfg.finetune.progress else None))
            extra["sensitivity_plan"] = list(finals)
        # Step k's target is a share k / steps of the way to the final plan, in the original channels.
        target = [max(final, round((ch - (ch - final) * k / cfg.steps) / cfg.round_to) * cfg.round_to)
                  for ch, final in zip(channels, finals)]
        return prune_to(model, target, importance=cfg.importance, example=calib[:1], loss_fn=loss_fn)

    return _run(cfg, cfg.steps, step, extra)


def lowrank(cfg: LowRankConfig) -> Path:
    """Factorize, fine-tune with distillation; returns ``OUT/best.pt``."""
    def step(model: Model, _k: int, calib: torch.Tensor | None, _loss: Callable[[Model], torch.Tensor] | None) -> Model:
        return factorize_model(model, energy=cfg.energy, macs=cfg.macs, ranks=dict(cfg.ranks) or None,
                               layers=None if cfg.layers is None else list(cfg.layers), tucker=cfg.tucker,
                               bits=cfg.mid_bits, calib=calib)

    step(load_model(cfg.checkpoint)[0], 1, None, None)  # a rank the layer cannot take fails before any data is read

    return _run(cfg, 1, step, {"method": "lowrank"})


def _figures(model: Model) -> dict[str, Any]:
    cost = model_complexity(model)
    return {"channels": [c.out_ch for c in model.plan], "factors": [f.to_dict() for f in model.cfg.factors],
            "params": cost.params, "macs": cost.macs, "bops": cost.bops, "weight_bits": cost.weight_memory_bits}


def _run(cfg: PruneConfig | LowRankConfig, steps: int,
         compress: Callable[[Model, int, torch.Tensor, Callable[[Model], torch.Tensor]], Model],
         extra: dict[str, Any]) -> Path:
    from quant_models.train import TrainConfig, train

    original, ckpt = load_model(cfg.checkpoint)
    if not original.is_quantized:
        raise CompressError(f"{cfg.checkpoint} is a float model: compress a quantized (QAT) checkpoint, whose "
                            "bits the fine-tuning keeps")
    layout = RunLayout(Path(cfg.out)).check_writable("--out")
    settings = json.loads(json.dumps({k: v for k, v in asdict(cfg).items() if k != "overwrite"}, default=str))
    if layout.compress_record.is_file():
        earlier = json.loads(layout.compress_record.read_text())
        if earlier.get("config") != settings and not cfg.overwrite:
            raise CompressError(f"--out {layout.root} holds another compression run; pass --overwrite to replace it "
                                "or choose another --out")
        measured = earlier.get("measured", earlier)  # a killed run's record, or a finished one's
        for key in MEASURED if not cfg.overwrite else ():
            if key in measured:
                extra.setdefault(key, measured[key])  # in place: the step function reads this dict
    elif layout.root.is_dir() and any(layout.root.iterdir()) and not cfg.overwrite:
        raise CompressError(f"--out {layout.root} is not empty and holds no compression run; choose another --out "
                            "or pass --overwrite")
    if cfg.overwrite and layout.root.is_dir():
        shutil.rmtree(layout.root)
    calib, loss_fn = _calibration(cfg, original)
    record: dict[str, Any] = {"config": settings, "finished": True, "original": {**_figures(original),
                              "val_map50": _last_map(ckpt)}, "steps": []}
    layout.root.mkdir(parents=True, exist_ok=True)

    def mark_unfinished() -> None:  # OUT is this run's, so a killed run resumes here with what its steps measured
        layout.compress_record.write_text(json.dumps({"config": settings, "finished": False, "measured": extra},
                                                     indent=2) + "\n")

    if not layout.compress_record.is_file():
        mark_unfinished()
    current = Path(cfg.checkpoint)
    ft = cfg.finetune
    for k in range(1, steps + 1):
        run = layout.step_run(k)
        if not run.is_finished():
            if not layout.compressed(k).is_file():
                model, _ = load_model(current)
                model = recalibrate_bn(compress(model, k, calib, loss_fn), calib)
                save_checkpoint(layout.compressed(k), {"model_config": model.cfg.to_dict(), "model": model.state_dict(),
                                                       "epoch": 0, "history": [], "best_map50": -1.0,
                                                       "compressed_from": str(current)})
                mark_unfinished()
            train(TrainConfig(data=Path(cfg.data), out=run.root, model=original.cfg.arch, bits=original.cfg.bits,
                              epochs=ft.epochs, batch_size=ft.batch_size, lr=ft.lr, warmup_epochs=0.5,
                              seed=ft.seed + k, device=ft.device, init=layout.compressed(k),
                              teacher=Path(cfg.checkpoint), kd_weight=ft.kd_weight, resume=run.last.is_file(),
                              progress=ft.progress))
        best = run.best if run.best.is_file() else run.last
        model, step_ckpt = load_model(best)
        record["steps"].append({"step": k, **_figures(model), "val_map50": step_ckpt.get("best_map50"),
                                "checkpoint": str(best)})
        current = best
    shutil.copyfile(current, layout.best)
    shutil.copyfile(current, layout.last)
    record.update(extra)  # after the steps: what they measured (a sensitivity plan) too
    layout.compress_record.write_text(json.dumps(record, indent=2) + "\n")
    layout.compress_report.write_text(report_markdown(record))
    return layout.best


def _calibration(cfg: PruneConfig | LowRankConfig,
                 original: Model) -> tuple[torch.Tensor, Callable[[Model], torch.Tensor]]:
    """``CALIB_IMAGES`` training images (the fine-tuning seed picks them) and the detection loss on them, a function
    of the model (BN statistics, the factors' quantizer ranges, Taylor scores and sensitivity all use them)."""
    train_set = to_tensors(load_dataset(Path(cfg.data), "train"), original.cfg.input_size,
                           cache_dir=Path(cfg.data) / ".cache")
    gen = torch.Generator().manual_seed(cfg.finetune.seed)
    pick = torch.randperm(len(train_set.images), generator=gen)[:CALIB_IMAGES]
    calib = train_set.images[pick].float()
    anchors = [torch.tensor(a, dtype=torch.float32) for a in original.cfg.anchor_sets]

    def loss_fn(model: Model) -> torch.Tensor:
        out = as_outputs(model(calib))
        return detection_loss_heads(out, train_set.boxes[pick], train_set.labels[pick], anchors,
                                    original.cfg.num_classes)[0]

    return calib, loss_fn


def _last_map(ckpt: dict[str, Any]) -> float | None:
    done = [r["val_map50"] for r in ckpt.get("history", []) if r.get("val_map50") is not None]
    return done[-1] if done else None


def report_markdown(record: dict[str, Any]) -> str:
    """A compression run's steps as a Markdown table (channels, factors, params, MACs, val mAP@0.5)."""
    lines = [f"# {record['method']}: {record['config']['checkpoint']}", "",
             "| step | channels | factors | params | MACs | val mAP@0.5 |", "|---|---|---|---:|---:|---:|"]
    for name, row in [("original", record["original"])] + [(str(s["step"]), s) for s in record["steps"]]:
        factors = ", ".join(f"l{f['layer']}:{'x'.join(map(str, f['ranks']))}" for f in row["factors"]) or "-"
        m = row["val_map50"]
        lines.append(f"| {name} | {' '.join(map(str, row['channels']))} | {factors} | {row['params']:,} | "
                     f"{row['macs']:,} | {'-' if m is None else f'{m:.4f}'} |")
    return "\n".join(lines) + "\n"
