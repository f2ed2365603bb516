"""Training: quantization-aware (or float) training of a detector, with optional distillation from a teacher.

Design notes:
- The whole split lives on the training device as uint8 tensors and is augmented there in batches, so a GPU is
  not starved by a Python data loader and two CPU cores are not spent decoding PNGs every epoch.
- Every epoch draws its shuffling and augmentation from a generator seeded by (seed, epoch), so a resumed run
  continues exactly where a straight run would have been.
- Checkpoints (the last epoch's, and the best val mAP@0.5's) are written atomically; :class:`RunLayout` names
  every file of a run.
- Every option is checked before the data set is loaded or the model built, so a typo costs nothing, and an
  existing run is never replaced unless ``overwrite`` (``--overwrite``) asks for it.
- Progress is a tqdm bar only on a terminal; a log (``make demo > log``) gets plain lines instead of megabytes of
  carriage-return updates. Where library warnings go is the caller's choice (the CLI sends them to the run's
  log, ``RunLayout.log``, with ``quant_models.chatter``).
- Under torchrun (``TrainConfig.distributed``) the batch size stays the global batch and the run trains what one
  process would, up to float summation order; only rank 0 writes or prints (``quant_models.distributed``).
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from quant_models.anchors import kmeans_anchors
from quant_models.checkpoint import CheckpointError, load_model, read_checkpoint, save_checkpoint
from quant_models.data import AugmentConfig, DetectionTensors, augment_batch, load_dataset, to_tensors
from quant_models.decode import as_outputs
from quant_models.device import DeviceError, check_device
from quant_models.distributed import (DistConfig, check_batches, evaluate_sharded, forward_global, is_main,
                                      process_group, rank_device, synchronise_batchnorm, wrap)
from quant_models.evaluate import evaluate_tensors
from quant_models.loss import LossWeights, detection_loss_heads, distillation_loss_heads
from quant_models.models import ARCHITECTURES, DetectorConfig, Model, build_model, default_config, validate_bits
from quant_models.models.config import order_anchors, plan_stride
from quant_models.plots import plot_training_curves
from quant_models.run_layout import RunLayout

# Without a terminal, one plain progress line at most this often within an epoch (the per-epoch line always).
PROGRESS_LINE_SECONDS = 30.0


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
    input_size: tuple[int, int] | None = None  # (H, W) the images are resized to; None: the architecture's default
    auto_anchors: bool = True
    teacher: Path | None = None
    kd_weight: float = 1.0
    init: Path | None = None
    resume: bool = False
    overwrite: bool = False  # replace an existing run in ``out`` (its checkpoints are deleted first)
    eval_every: int = 1  # validate every N epochs (and always after the last one)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    loss: LossWeights = field(default_factory=LossWeights)
    progress: bool = True  # report progress at all (per-epoch lines, and a bar or periodic lines within one)
    progress_bar: bool | None = None  # None: a bar only when stderr is a terminal, plain lines otherwise
    # This process's place in a multi-process (DDP) run; None: a single process. ``batch_size`` stays the global
    # batch, so the run trains what one process with the same options would (see quant_models.distributed).
    distributed: DistConfig | None = None

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise TrainError(f"--epochs and --batch-size must be >= 1 (got {self.epochs}, {self.batch_size})")
        if self.eval_every < 1:
            raise TrainError(f"--eval-every must be >= 1, got {self.eval_every}")
        if self.lr <= 0:
            raise TrainError(f"--lr (learning rate) must be > 0, got {self.lr}")
        if self.kd_weight < 0:
            raise TrainError(f"--kd-weight must be >= 0 (the distillation loss's weight), got {self.kd_weight}")
        if self.resume and self.overwrite:
            raise TrainError(f"--resume and --overwrite both given for {self.out}: --resume continues the run, "
                             "--overwrite replaces it; choose one")


@dataclass
class TrainResult:
    """Paths and final figures of a finished run."""

    out: Path
    best: Path
    last: Path
    metrics: dict[str, Any]
    # The trained student after the last epoch (unwrapped from DDP; its BatchNorm layers are the synchronised kind
    # there). Every rank returns its own; rank 0's is the one the checkpoints hold.
    model: Model | None = field(default=None, repr=False)


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


def _compressed_init(cfg: TrainConfig, init: DetectorConfig) -> DetectorConfig:
    """The student of a run whose ``--init`` is a pruned or factorized checkpoint: that very plan (channels,
    factors, width, depth, input size), at this run's bits, so fine-tuning continues the compressed model."""
    if init.arch != cfg.model:
        raise TrainError(f"--init {cfg.init} is a compressed {init.arch}; give --model {init.arch} to fine-tune it")
    try:
        validate_bits(cfg.bits, init.arch, init.width, init.depth)
        return init.with_(bits=cfg.bits)
    except ValueError as exc:
        raise TrainError(f"--init {cfg.init}: {exc}") from exc


def _model_config(cfg: TrainConfig, train: DetectionTensors, base: DetectorConfig | None) -> DetectorConfig:
    names = train.class_names
    if base is not None and base.compressed:
        if base.num_classes != len(names):
            raise TrainError(f"the init checkpoint predicts {base.num_classes} classes, the data set has "
                             f"{len(names)}: use a checkpoint trained on the same classes")
        return base.with_(class_names=names)
    if base is not None:  # teacher / float init fix the head layout (anchors, classes)
        outputs = default_config(cfg.model, 1).head_strides
        if base.head_strides != outputs:
            raise TrainError(f"the teacher/init checkpoint is a {base.arch} with "
                             f"{_outputs(base.head_strides)}, a {cfg.model} has {_outputs(outputs)}: use a "
                             f"checkpoint of a model with the same outputs")
        if base.num_classes != len(names):
            raise TrainError(f"the teacher/init checkpoint predicts {base.num_classes} classes, the data set has "
                             f"{len(names)}: use a checkpoint trained on the same classes")
        return default_config(cfg.model, len(names), cfg.bits, cfg.width, cfg.depth, names, base.anchors,
                              cfg.input_size)
    model_cfg = default_config(cfg.model, len(names), cfg.bits, cfg.width, cfg.depth, names,
                               input_size=cfg.input_size)
    if cfg.auto_anchors:
        keep = train.labels >= 0
        wh = (train.boxes[..., 2:] - train.boxes[..., :2])[keep].numpy()
        # k-means sorts by area; a multi-scale model puts the small ones on its fine output, the large on its coarse.
        model_cfg = model_cfg.with_(anchors=order_anchors(kmeans_anchors(wh, model_cfg.num_anchors),
                                                          model_cfg.head_strides))
    return model_cfg


def _outputs(strides: tuple[int, ...]) -> str:
    return f"outputs at strides {', '.join(map(str, strides))}" if strides else "one output"


def _load_init(model: Model, path: Path) -> None:
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


def check_train_config(cfg: TrainConfig) -> RunLayout:
    """Every check that needs neither the data set nor a model, cheapest first; returns the run's layout.

    Device name, architecture and bit spec (layer overrides against the model's conv layers), the run directory
    (writable; an existing run needs ``--resume`` or ``--overwrite``), and that the teacher / init / resume
    checkpoints exist. Raises :class:`TrainError`, ``BitSpecError``, ``OutputPathError`` or
    ``CheckpointError``; touches nothing on disk."""
    try:
        check_device(cfg.device)
    except DeviceError as exc:
        raise TrainError(str(exc)) from exc
    rank_device(cfg.distributed, cfg.device)  # under DDP: plain cuda (one GPU per process) or cpu
    if cfg.model not in ARCHITECTURES:
        raise TrainError(f"--model {cfg.model}: unknown architecture; known: {', '.join(sorted(ARCHITECTURES))}")
    try:
        model_cfg = default_config(cfg.model, 1, None, cfg.width, cfg.depth, input_size=cfg.input_size)
    except ValueError as exc:  # width <= 0, depth < 0: the message names the flag
        raise TrainError(str(exc)) from exc
    stride = plan_stride(ARCHITECTURES[cfg.model](model_cfg))
    if any(side <= 0 or side % stride for side in model_cfg.input_size):
        raise TrainError(f"input size {model_cfg.input_size[0]}x{model_cfg.input_size[1]}: {cfg.model} needs both "
                         f"sides a multiple of its stride {stride}")
    validate_bits(cfg.bits, cfg.model, cfg.width, cfg.depth)
    layout = RunLayout(Path(cfg.out)).check_writable("--out")
    if cfg.resume and not layout.last.is_file():
        raise TrainError(f"--resume: {layout.root} has no {layout.last.name} to continue from; start the run "
                         "without --resume")
    if not cfg.resume and layout.has_checkpoint() and not cfg.overwrite:
        raise TrainError(f"--out {layout.root} already holds {layout.describe()}; pass --resume to continue it "
                         "or --overwrite to replace it (or choose another --out)")
    for path, option in ((cfg.teacher, "--teacher"), (cfg.init, "--init")):
        if path is not None and not Path(path).is_file():
            raise CheckpointError(f"{option} {path}: checkpoint does not exist; give a RUN/best.pt or RUN/last.pt "
                                  "written by `qdet train`")
    return layout


def train(cfg: TrainConfig) -> TrainResult:
    """Run (or resume) a training run; returns where the checkpoints and metrics are.

    All options are checked first (:func:`check_train_config`); with ``overwrite``, the earlier run's files are
    deleted only once the data is loaded and the model built, just before the first epoch.

    With ``cfg.distributed`` (one process of a torchrun launch) the process joins the group for the run (unless
    the caller already set one up); only rank 0 writes files and prints."""
    layout = check_train_config(cfg)
    device = rank_device(cfg.distributed, cfg.device)
    with process_group(cfg.distributed, device):
        return _train(cfg, layout, device)


def _train(cfg: TrainConfig, layout: RunLayout, device: str) -> TrainResult:
    ddp = cfg.distributed
    # Checkpoints are read before the data: a foreign or corrupt file fails in a second, not after the images.
    ckpt = read_checkpoint(layout.last) if cfg.resume else None
    base = None
    for path in (cfg.teacher, cfg.init) if ckpt is None else ():  # a resumed run has its own model config
        if path is not None:
            base = DetectorConfig.from_dict(read_checkpoint(path)["model_config"])
    if ckpt is None and cfg.init is not None and base is not None and base.compressed:
        base = _compressed_init(cfg, base)  # a pruned / factorized init brings its own plan
    # A resumed run keeps its own input size; a new one takes --input-size or the architecture's.
    size = (tuple(ckpt["model_config"]["input_size"]) if ckpt is not None
            else base.input_size if base is not None and base.compressed else _input_size(cfg))
    data = Path(cfg.data)
    train_set, val_set = (to_tensors(load_dataset(data, split), size, cache_dir=data / ".cache")
                          for split in ("train", "val"))
    if ckpt is not None:
        model_cfg = DetectorConfig.from_dict(ckpt["model_config"])
        start_epoch, history, best = ckpt["epoch"], ckpt["history"], ckpt["best_map50"]
    else:
        start_epoch, history, best = 0, [], -1.0
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
    teacher = _load_teacher(cfg, model_cfg, device)  # each rank holds its own frozen copy, never DDP-wrapped
    check_batches(len(train_set.images), cfg.batch_size, ddp)
    # Under DDP the optimizer still takes model.parameters(): DDP keeps the Parameter objects it wraps.
    net = model if ddp is None else wrap(synchronise_batchnorm(model, device), ddp, device)
    steps_per_epoch = math.ceil(len(train_set.images) / cfg.batch_size)
    total_steps = cfg.epochs * steps_per_epoch
    warmup = max(1, int(cfg.warmup_epochs * steps_per_epoch))
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: _lr_factor(s, total_steps, warmup))
    if ckpt is not None:
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
    anchor_sets = [torch.tensor(a, dtype=torch.float32, device=device) for a in model_cfg.anchor_sets]
    images_dev = train_set.images.to(device)
    boxes_dev, labels_dev = train_set.boxes.to(device), train_set.labels.to(device)
    main = is_main(ddp)
    if cfg.overwrite and main:
        layout.remove_training_files()  # everything was checked: the old run cannot leave a stale best.pt
    if main:
        layout.root.mkdir(parents=True, exist_ok=True)
    report = _Progress(cfg, main)
    for epoch in range(start_epoch, cfg.epochs):
        net.train()  # the DDP wrapper too, not only the module inside
        gen = _epoch_generator(cfg.seed, epoch, device)
        order = torch.randperm(len(images_dev), generator=gen, device=device)
        sums = {"total": 0.0, "box": 0.0, "obj": 0.0, "cls": 0.0, "kd": 0.0}
        _sync(device)
        tick = time.perf_counter()
        batches = range(0, len(order), cfg.batch_size)
        for step, start in enumerate(report.batches(batches, epoch)):
            idx = order[start:start + cfg.batch_size]
            imgs, boxes, labels = augment_batch(images_dev[idx], boxes_dev[idx], labels_dev[idx], cfg.augment, gen)
            output = forward_global(net, imgs, ddp)  # the global batch's head maps, also under DDP
            loss, parts = detection_loss_heads(output, boxes, labels, anchor_sets, model_cfg.num_classes, cfg.loss)
            if teacher is not None:
                with torch.no_grad():
                    t_out = forward_global(teacher, imgs, ddp)
                kd = distillation_loss_heads(output, t_out, model_cfg.anchors_per_head, model_cfg.num_classes)
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
            report.batch(epoch, step, len(batches), sums["total"] / (step + 1))
        _sync(device)
        seconds = time.perf_counter() - tick
        validate = (epoch + 1) % cfg.eval_every == 0 or epoch + 1 == cfg.epochs
        val = _validate(model, val_set, device, ddp) if validate else None
        rec = _history_record(epoch + 1, sums, len(batches), len(order), seconds, scheduler.get_last_lr()[0], val)
        history.append(rec)
        improved = val is not None and val.map50 > best
        best = val.map50 if improved else best
        if main:  # under DDP every rank holds the same model; rank 0 writes it
            payload = {"model_config": model_cfg.to_dict(), "model": model.state_dict(),
                       "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "epoch": epoch + 1,
                       "history": history, "best_map50": best, "train_config": _jsonable(cfg)}
            if improved:
                save_checkpoint(layout.best, payload)
            save_checkpoint(layout.last, payload)
        shown = "" if val is None else f"  val mAP@0.5 {val.map50:.3f}  mAP@0.5:0.95 {val.map50_95:.3f}"
        report.line(f"epoch {epoch + 1}/{cfg.epochs}: loss {rec['loss']:.4f}{shown}  {rec['images_per_s']:.0f} img/s")
        if main:
            _write_metrics(layout, history, model_cfg, cfg)
    metrics = _write_metrics(layout, history, model_cfg, cfg) if main else _metrics(history, model_cfg, cfg)
    return TrainResult(out=layout.root, best=layout.best, last=layout.last, metrics=metrics, model=model)


def _validate(model: Model, val_set: DetectionTensors, device: str, ddp: DistConfig | None) -> Any:
    """Val mAP of the whole split: here, or sharded over the ranks and scored once (the same figure)."""
    if ddp is None:
        return evaluate_tensors(model, val_set, device)[0]
    return evaluate_sharded(model, val_set, device, ddp)


class _Progress:
    """Progress of a run: a tqdm bar on a terminal, else a plain line every :data:`PROGRESS_LINE_SECONDS`."""

    def __init__(self, cfg: TrainConfig, main: bool = True) -> None:
        self.enabled = cfg.progress and main  # under DDP only rank 0 reports
        wanted = cfg.progress_bar
        self.bar = self.enabled and (sys.stderr.isatty() if wanted is None else wanted)
        self.epochs = cfg.epochs
        self.last_line = 0.0
        self._bar: Any = None

    def batches(self, batches: range, epoch: int) -> Iterator[int]:
        """Iterate ``batches``, with a bar when one is shown."""
        self.last_line = time.perf_counter()
        if not self.bar:
            return iter(batches)
        self._bar = tqdm(batches, desc=f"epoch {epoch + 1}/{self.epochs}", leave=False)
        return iter(self._bar)

    def batch(self, epoch: int, step: int, steps: int, loss: float) -> None:
        """After each batch: update the bar, or print a plain line when the last one is long enough ago."""
        if self._bar is not None:
            self._bar.set_postfix(loss=f"{loss:.4f}")
        elif self.enabled and step + 1 < steps and time.perf_counter() - self.last_line >= PROGRESS_LINE_SECONDS:
            self.line(f"epoch {epoch + 1}/{self.epochs}: batch {step + 1}/{steps}, loss {loss:.4f}")
            self.last_line = time.perf_counter()

    def line(self, text: str) -> None:
        """One progress line on stdout (through tqdm while a bar is shown, so the bar is not torn)."""
        if not self.enabled:
            return
        if self.bar:
            tqdm.write(text)
        else:
            print(text, flush=True)


def _input_size(cfg: TrainConfig) -> tuple[int, int]:
    return cfg.input_size or default_config(cfg.model, 1).input_size


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _load_teacher(cfg: TrainConfig, student: DetectorConfig, device: str) -> Model | None:
    if cfg.teacher is None:
        return None
    teacher, _ = load_model(cfg.teacher)
    if (teacher.cfg.anchors != student.anchors or teacher.cfg.num_classes != student.num_classes
            or teacher.cfg.head_strides != student.head_strides):
        raise TrainError(f"teacher {cfg.teacher} has another head layout (anchors/classes/outputs) than the student")
    probe = torch.zeros(1, 3, *student.input_size)
    shapes = [[o.shape for o in as_outputs(m(probe))] for m in (teacher, build_model(student))]
    if shapes[0] != shapes[1]:
        raise TrainError(f"teacher {cfg.teacher} ({teacher.cfg.arch}) outputs another grid than the student")
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher.to(device).eval()


def _jsonable(cfg: TrainConfig) -> dict[str, Any]:
    fields = asdict(cfg)
    if fields["distributed"] is None:  # a single-process run stores exactly what it stored before DDP existed
        del fields["distributed"]
    return json.loads(json.dumps(fields, default=str))


def _metrics(history: list[dict[str, Any]], model_cfg: DetectorConfig, cfg: TrainConfig) -> dict[str, Any]:
    evaluated = [r for r in history if r["val_map50"] is not None]
    best = max(evaluated, key=lambda r: r["val_map50"]) if evaluated else None
    last = history[-1] if history else {}
    metrics = {
        "model": model_cfg.to_dict(), "train_config": _jsonable(cfg), "epochs": history,
        "map50": last.get("val_map50"), "map50_95": last.get("val_map50_95"),
        "best_epoch": best["epoch"] if best else None, "best_map50": best["val_map50"] if best else None,
        "train_images_per_s": (sum(r["images_per_s"] for r in history) / len(history)) if history else None,
    }
    return metrics


def _write_metrics(layout: RunLayout, history: list[dict[str, Any]], model_cfg: DetectorConfig,
                   cfg: TrainConfig) -> dict[str, Any]:
    metrics = _metrics(history, model_cfg, cfg)
    layout.metrics.write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    plot_training_curves(history, layout.curves, title=f"{model_cfg.arch} {model_cfg.bits or 'float'}")
    return metrics


__all__ = ["PROGRESS_LINE_SECONDS", "TrainConfig", "TrainError", "TrainResult", "check_train_config", "train"]
