"""Evaluation: run a detector over a split, decode on the host, score with COCO mAP (faster-coco-eval)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from quant_models.checkpoint import load_model
from quant_models.data import DetectionTensors, load_dataset, to_tensors
from quant_models.decode import DecodeConfig, Detections, as_outputs, decode_heads
from quant_models.device import check_device
from quant_models.draw import draw_detections
from quant_models.metrics import MapResult, detection_map
from quant_models.models import Model
from quant_models.run_layout import RunLayout


@torch.no_grad()
def predict(model: Model, images: torch.Tensor, batch_size: int = 64, device: str = "cpu",
            decode_cfg: DecodeConfig = DecodeConfig()) -> list[Detections]:
    """Detections (in model-input pixels, on the CPU) for uint8 images (N, 3, H, W)."""
    return predict_with_heads(model, images, batch_size, device, decode_cfg)[0]


@torch.no_grad()
def predict_with_heads(model: Model, images: torch.Tensor, batch_size: int = 64, device: str = "cpu",
                       decode_cfg: DecodeConfig = DecodeConfig()
                       ) -> tuple[list[Detections], list[tuple[torch.Tensor, ...]]]:
    """:func:`predict`, and the model's raw head outputs of each batch (on the CPU), for callers that also look at
    the heads (``qdet run`` compares their integer accumulators with the accelerator's). The images are fed in the
    model's own float type (``qdet run`` evaluates a float64 copy, as the build's verification does)."""
    dtype = next(model.parameters()).dtype
    was_training = model.training
    model.eval()
    out: list[Detections] = []
    raw: list[tuple[torch.Tensor, ...]] = []
    for start in range(0, len(images), batch_size):
        batch = images[start:start + batch_size].to(device=device, dtype=dtype)
        heads = as_outputs(model(batch))
        dets = decode_heads(integer_heads(model, heads), model.cfg.anchor_sets, model.cfg.num_classes,
                            model.cfg.input_size, decode_cfg)
        out += [Detections(d.boxes.cpu(), d.scores.cpu(), d.labels.cpu()) for d in dets]
        raw.append(tuple(h.cpu() for h in heads))
    model.train(was_training)
    return out, raw


def integer_heads(model: Model, outputs: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    """The head maps as the quantized model defines them: its integer accumulators (Brevitas' own, recovered from
    the float head) times the head's scale, plus its bias, in float32, the order the accelerator's host applies.

    The float head equals this up to float rounding, but that rounding depends on the conv kernel (CPU or GPU,
    blocking, border cells): two cells with the same integers can differ by an ulp and swap places in the ranking.
    Computed from the integers, equal accumulators give equal scores on every device and on the board's host, so
    ``qdet eval`` and ``qdet run`` (on the accelerator's integers) rank, keep and score the same detections."""
    if not getattr(model, "is_quantized", False):  # a float model has no integers: its float head is the head
        return outputs
    heads = []
    for i, out in enumerate(outputs):
        scale, bias = model.head_scale_bias(i)
        shape = (1, -1, 1, 1)
        acc = model.head_accumulators(out, i)
        f32 = {"device": out.device, "dtype": torch.float32}  # a float64 model's heads too: the host's arithmetic
        heads.append(acc.to(**f32) * scale.to(**f32).view(shape) + bias.to(**f32).view(shape))
    return tuple(heads)


def targets_of(tensors: DetectionTensors) -> list[dict[str, torch.Tensor]]:
    """Ground truth in model-input pixels, one dict per image (padding removed)."""
    h, w = tensors.images.shape[-2:]
    scale = torch.tensor([w, h, w, h], dtype=torch.float32)
    result = []
    for boxes, labels in zip(tensors.boxes, tensors.labels):
        keep = labels >= 0
        result.append({"boxes": boxes[keep] * scale, "labels": labels[keep]})
    return result


def evaluate_tensors(model: Model, tensors: DetectionTensors, device: str = "cpu",
                     batch_size: int = 64) -> tuple[MapResult, list[Detections]]:
    """mAP of ``model`` on already-loaded tensors; also returns the predictions."""
    preds = predict(model, tensors.images, batch_size, device)
    return detection_map(preds, targets_of(tensors), tensors.class_names), preds


@dataclass(frozen=True)
class EvalReport:
    """What ``qdet eval`` reports and writes to ``eval.json``."""

    checkpoint: str
    split: str
    result: MapResult
    picture: str
    report: str


def evaluate_checkpoint(ckpt: Path, data: Path, split: str = "val", out: Path | None = None,
                        device: str = "cpu", num_pictures: int = 8) -> EvalReport:
    """Evaluate a checkpoint on ``data``/``split``; writes ``eval.json`` and ``predictions.png`` into ``out``
    (default: the checkpoint's folder).

    The device name, the checkpoint and the output folder are checked before the data are read
    (``DeviceError``, ``CheckpointError``, ``OutputPathError``)."""
    check_device(device)
    model, _ = load_model(ckpt)  # first: a missing checkpoint is the more basic mistake than its folder
    layout = RunLayout(Path(out) if out is not None else Path(ckpt).parent).check_eval_writable("--out")
    model.to(device)
    dataset = load_dataset(Path(data), split)
    names = tuple(model.cfg.class_names) or dataset.class_names
    if len(dataset.class_names) != model.cfg.num_classes:
        raise ValueError(f"{data} has {len(dataset.class_names)} classes ({', '.join(dataset.class_names)}) "
                         f"but {ckpt} was trained for {model.cfg.num_classes} ({', '.join(names)})")
    tensors = to_tensors(dataset, model.cfg.input_size)
    result, preds = evaluate_tensors(model, tensors, device)
    layout.root.mkdir(parents=True, exist_ok=True)
    picture = layout.predictions
    draw_detections(tensors.images[:num_pictures], preds[:num_pictures], names, picture,
                    targets=targets_of(tensors)[:num_pictures], max_images=num_pictures)
    report = layout.eval_report
    rep = EvalReport(str(ckpt), split, result, str(picture), str(report))
    report.write_text(json.dumps(asdict(rep), indent=2, sort_keys=True, default=float) + "\n")
    return rep
