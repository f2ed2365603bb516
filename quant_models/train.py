"""Training: quantization-aware (or float) training of a detector, with optional distillation from a teacher.

Design notes:
- The whole split lives on the training device as uint8 tensors and is augmented there in batches, so a GPU is
  not starved by a Python data loader and two CPU cores are not spent decoding PNGs every epoch.
- Every epoch draws its shuffling and augmentation from a generator seeded by (seed, epoch), so a resumed run
  continues exactly where a straight run would have been.
- Checkpoints (``last.pt`` every epoch, ``best.pt`` on the best val mAP@0.5) are written atomically.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from quant_models.anchors import kmeans_anchors
from quant_models.checkpoint import load_model, read_checkpoint, save_checkpoint
from quant_models.data import AugmentConfig, DetectionTensors, augment_batch, load_dataset, to_tensors
from quant_models.evaluate import evaluate_tensors
from quant_models.loss import LossWeights, detection_loss, distillation_loss
from quant_models.models import Detector, DetectorConfig, build_model, default_config
from quant_models.plots import plot_training_curves


class TrainError(ValueError):
    """A training run that cannot start as asked; the message says what to change."""


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on (stored in its checkpoints)."""

    data: Path
    out: Path
    model: str = "tinydet"
    bits: str | None = "w4a4"
    epochs: int = 10
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 5e-4
    warmup_epochs: float = 1.0
    seed: int = 0
    device: str = "cpu"
    width: float = 1.0
    depth: int | None = None
    auto_anchors: bool = True
    teacher: Path | None = None
    kd_weight: float = 1.0
    init: Path | None = None
    resume: bool = False
    eval_every: int = 1  # validate every N epochs (and always after the last one)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    loss: LossWeights = field(default_factory=LossWeights)
    progress: bool = True

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise TrainError(f"epochs and batch size must be >= 1 (got {self.epochs}, {self.batch_size})")
        if self.eval_every < 1:
            raise TrainError(f"eval_every must be >= 1, got {self.eval_every}")
        if self.lr <= 0:
            raise TrainError(f"learning rate must be > 0, got {self.lr}")


@dataclass
class TrainResult:
    """Paths and final figures of a finished run."""

    out: Path
    best: Path
    last: Path
    metrics: dict[str, Any]


def _epoch_generator(seed: int, epoch: int, device: str) -> torch.Generator:
    gen = torch.Generator(device=device)
    gen.manual_seed(seed * 1_000_003 + epoch)
    return gen


def _lr_factor(step: int, total: int, warmup: int) -> float:
    """Linear warm-up, then cosine decay to 5% of the peak learning rate."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def _model_config(cfg: TrainConfig, train: DetectionTensors, base: DetectorConfig | None) -> DetectorConfig:
    names = train.class_names
    if base is not None:  # teacher / float init fix the head layout (anchors, classes)
        if base.num_classes != len(names):
            raise TrainError(f"the teacher/init checkpoint predicts {base.num_classes} classes, the data set has "
                             f"{len(names)}: use a checkpoint trained on the same classes")
        return default_config(cfg.model, len(names), cfg.bits, cfg.width, cfg.depth, names, base.anchors)
    model_cfg = default_config(cfg.model, len(names), cfg.bits, cfg.width, cfg.depth, names)
    if cfg.auto_anchors:
        keep = train.labels >= 0
        wh = (train.boxes[..., 2:] - train.boxes[..., :2])[keep].numpy()
        model_cfg = model_cfg.with_(anchors=kmeans_anchors(wh, model_cfg.num_anchors))
    return model_cfg


def _load_init(model: Detector, path: Path) -> None:
    """Load float (or other-precision) weights into ``model`` for QAT; only quantizer state may be missing."""
    state = read_checkpoint(path)["model"]
    result = model.load_state_dict(state, strict=False)
    missing = [k for k in result.missing_keys if "quant" not in k]
    if missing or result.unexpected_keys:
        raise TrainError(f"{path} does not fit a {model.cfg.arch} (width {model.cfg.width}, depth "
                         f"{model.cfg.depth}): missing {missing[:5]}, unexpected {result.unexpected_keys[:5]}")


def _history_record(epoch: int, losses: dict[str, float], n_batches: int, images: int, seconds: float,
                    lr: float, val: Any) -> dict[str, Any]:
    rec = {"epoch": epoch, "lr": lr, "images_per_s": images / max(seconds, 1e-9), "train_seconds": seconds}
    rec.update({f"loss_{k}" if k != "total" else "loss": v / n_batches for k, v in losses.items()})
    rec.update({"val_map50": None if val is None else val.map50,
                "val_map50_95": None if val is None else val.map50_95})
    return rec


def train(cfg: TrainConfig) -> TrainResult:
    """Run (or resume) a training run; returns where the checkpoints and metrics are."""
    out = Path(cfg.out)
    device = cfg.device
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise TrainError(f"--device {device} asked for, but torch sees no CUDA device; use --device cpu")
    data, size = Path(cfg.data), _input_size(cfg)
    train_set, val_set = (to_tensors(load_dataset(data, split), size, cache_dir=data / ".cache")
                          for split in ("train", "val"))
    if cfg.resume:
        ckpt = read_checkpoint(out / "last.pt")
        model_cfg = DetectorConfig.from_dict(ckpt["model_config"])
        start_epoch, history, best = ckpt["epoch"], ckpt["history"], ckpt["best_map50"]
    else:
        ckpt, start_epoch, history, best = None, 0, [], -1.0
        base = None
        for path in (cfg.teacher, cfg.init):
            if path is not None:
                base = DetectorConfig.from_dict(read_checkpoint(path)["model_config"])
        model_cfg = _model_config(cfg, train_set, base)
    torch.manual_seed(cfg.seed)
    model = build_model(model_cfg)
    # Weights go in before the optimizer is built: Brevitas' load_state_dict *replaces* the activation-scale
    # Parameter objects, so an optimizer made earlier would go on updating orphans and the scales would freeze.
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
    elif cfg.init is not None:
        _load_init(model, cfg.init)
    model.to(device)
    teacher = _load_teacher(cfg, model_cfg, device)
    steps_per_epoch = math.ceil(len(train_set.images) / cfg.batch_size)
    total_steps = cfg.epochs * steps_per_epoch
    warmup = max(1, int(cfg.warmup_epochs * steps_per_epoch))
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: _lr_factor(s, total_steps, warmup))
    if ckpt is not None:
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
    anchors = torch.tensor(model_cfg.anchors, dtype=torch.float32, device=device)
    images_dev = train_set.images.to(device)
    boxes_dev, labels_dev = train_set.boxes.to(device), train_set.labels.to(device)
    out.mkdir(parents=True, exist_ok=True)
    for epoch in range(start_epoch, cfg.epochs):
        model.train()
        gen = _epoch_generator(cfg.seed, epoch, device)
        order = torch.randperm(len(images_dev), generator=gen, device=device)
        sums = {"total": 0.0, "box": 0.0, "obj": 0.0, "cls": 0.0, "kd": 0.0}
        _sync(device)
        tick = time.perf_counter()
        batches = range(0, len(order), cfg.batch_size)
        bar = tqdm(batches, desc=f"epoch {epoch + 1}/{cfg.epochs}", disable=not cfg.progress, leave=False)
        for start in bar:
            idx = order[start:start + cfg.batch_size]
            imgs, boxes, labels = augment_batch(images_dev[idx], boxes_dev[idx], labels_dev[idx], cfg.augment, gen)
            output = model(imgs)
            loss, parts = detection_loss(output, boxes, labels, anchors, model_cfg.num_classes, cfg.loss)
            if teacher is not None:
                with torch.no_grad():
                    t_out = teacher(imgs)
                kd = distillation_loss(output, t_out, model_cfg.num_anchors, model_cfg.num_classes)
                loss = loss + cfg.kd_weight * kd
                parts["kd"] = float(kd.detach())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
            optimizer.step()
            scheduler.step()
            sums["total"] += float(loss.detach())
            for k, v in parts.items():
                sums[k] += v
            bar.set_postfix(loss=f"{sums['total'] / (start // cfg.batch_size + 1):.4f}")
        _sync(device)
        seconds = time.perf_counter() - tick
        validate = (epoch + 1) % cfg.eval_every == 0 or epoch + 1 == cfg.epochs
        val = evaluate_tensors(model, val_set, device)[0] if validate else None
        rec = _history_record(epoch + 1, sums, len(batches), len(order), seconds, scheduler.get_last_lr()[0], val)
        history.append(rec)
        improved = val is not None and val.map50 > best
        best = val.map50 if improved else best
        payload = {"model_config": model_cfg.to_dict(), "model": model.state_dict(),
                   "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "epoch": epoch + 1,
                   "history": history, "best_map50": best, "train_config": _jsonable(cfg)}
        if improved:
            save_checkpoint(out / "best.pt", payload)
        save_checkpoint(out / "last.pt", payload)
        if cfg.progress:
            shown = "" if val is None else f"  val mAP@0.5 {val.map50:.3f}  mAP@0.5:0.95 {val.map50_95:.3f}"
            tqdm.write(f"epoch {epoch + 1}/{cfg.epochs}: loss {rec['loss']:.4f}{shown}  "
                       f"{rec['images_per_s']:.0f} img/s")
        _write_metrics(out, history, model_cfg, cfg)
    metrics = _write_metrics(out, history, model_cfg, cfg)
    return TrainResult(out=out, best=out / "best.pt", last=out / "last.pt", metrics=metrics)


def _input_size(cfg: TrainConfig) -> tuple[int, int]:
    return default_config(cfg.model, 1).input_size


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _load_teacher(cfg: TrainConfig, student: DetectorConfig, device: str) -> Detector | None:
    if cfg.teacher is None:
        return None
    teacher, _ = load_model(cfg.teacher)
    if teacher.cfg.anchors != student.anchors or teacher.cfg.num_classes != student.num_classes:
        raise TrainError(f"teacher {cfg.teacher} has another head layout (anchors/classes) than the student")
    probe = torch.zeros(1, 3, *student.input_size)
    if teacher(probe).shape != build_model(student)(probe).shape:
        raise TrainError(f"teacher {cfg.teacher} ({teacher.cfg.arch}) outputs another grid than the student")
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher.to(device).eval()


def _jsonable(cfg: TrainConfig) -> dict[str, Any]:
    return json.loads(json.dumps(asdict(cfg), default=str))


def _write_metrics(out: Path, history: list[dict[str, Any]], model_cfg: DetectorConfig,
                   cfg: TrainConfig) -> dict[str, Any]:
    evaluated = [r for r in history if r["val_map50"] is not None]
    best = max(evaluated, key=lambda r: r["val_map50"]) if evaluated else None
    last = history[-1] if history else {}
    metrics = {
        "model": model_cfg.to_dict(), "train_config": _jsonable(cfg), "epochs": history,
        "map50": last.get("val_map50"), "map50_95": last.get("val_map50_95"),
        "best_epoch": best["epoch"] if best else None, "best_map50": best["val_map50"] if best else None,
        "train_images_per_s": (sum(r["images_per_s"] for r in history) / len(history)) if history else None,
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    plot_training_curves(history, out / "curves.png", title=f"{model_cfg.arch} {model_cfg.bits or 'float'}")
    return metrics


__all__ = ["TrainConfig", "TrainError", "TrainResult", "train"]
