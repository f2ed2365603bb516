"""Host-side decode: raw head maps -> boxes, scores, classes -> NMS.

The head emits, per grid cell and anchor, ``(tx, ty, tw, th, obj, cls_0..cls_{C-1})`` (channel-major, anchor by
anchor). The box parametrisation is YOLOv5's bounded one, which keeps gradients sane for quantized heads:

    cx = (2 * sigmoid(tx) - 0.5 + col) / grid_w          w = anchor_w * (2 * sigmoid(tw)) ** 2
    cy = (2 * sigmoid(ty) - 0.5 + row) / grid_h          h = anchor_h * (2 * sigmoid(th)) ** 2

Coordinates are fractions of the input image; ``score = sigmoid(obj) * sigmoid(cls)``. A multi-scale model
(tinyyolo) has one such map per output, each with its own grid and anchor set: :func:`decode_heads` decodes them
all and merges their boxes before one NMS.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from boards.runtime.decode import DecodeConfig  # one set of thresholds for the torch and the host decode
from quant_models.nms import batched_nms


@dataclass(frozen=True)
class Detections:
    """Detections of one image: xyxy boxes in pixels of the model input, scores and class labels."""

    boxes: torch.Tensor  # (K, 4)
    scores: torch.Tensor  # (K,)
    labels: torch.Tensor  # (K,) int64


def split_head(output: torch.Tensor, num_anchors: int, num_classes: int) -> torch.Tensor:
    """(B, A*(5+C), H, W) -> (B, A, H, W, 5+C)."""
    b, ch, h, w = output.shape
    if ch != num_anchors * (5 + num_classes):
        raise ValueError(f"head has {ch} channels, expected {num_anchors} anchors x (5 + {num_classes} classes)")
    return output.view(b, num_anchors, 5 + num_classes, h, w).permute(0, 1, 3, 4, 2)


def boxes_from_terms(terms: torch.Tensor, col: torch.Tensor, row: torch.Tensor, grid: tuple[int, int],
                     anchor_wh: torch.Tensor) -> torch.Tensor:
    """The box parametrisation itself: raw (..., 4) terms at cells (``col``, ``row``) of a ``grid`` = (H, W) with
    anchors ``anchor_wh`` (..., 2) -> normalised xyxy (..., 4). ``col``, ``row`` and ``anchor_wh`` broadcast."""
    gh, gw = grid
    xy = torch.sigmoid(terms[..., :2]) * 2 - 0.5
    cx = (xy[..., 0] + col) / gw
    cy = (xy[..., 1] + row) / gh
    wh = (torch.sigmoid(terms[..., 2:4]) * 2) ** 2 * anchor_wh
    return torch.stack([cx - wh[..., 0] / 2, cy - wh[..., 1] / 2, cx + wh[..., 0] / 2, cy + wh[..., 1] / 2], -1)


def decode_boxes(raw: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
    """Raw (B, A, H, W, >=4) box terms -> (B, A, H, W, 4) normalised xyxy boxes.

    >>> raw = torch.zeros(1, 1, 2, 2, 4)  # sigmoid(0) = 0.5: centred in the cell, exactly the anchor's size
    >>> decode_boxes(raw, torch.tensor([[0.5, 0.25]]))[0, 0, 1, 0].tolist()
    [0.0, 0.625, 0.5, 0.875]
    """
    _, _, h, w, _ = raw.shape
    rows = torch.arange(h, device=raw.device, dtype=raw.dtype).view(1, 1, h, 1)
    cols = torch.arange(w, device=raw.device, dtype=raw.dtype).view(1, 1, 1, w)
    return boxes_from_terms(raw, cols, rows, (h, w), anchors.to(raw).view(1, -1, 1, 1, 2))


Anchors = tuple[tuple[float, float], ...]


def as_outputs(output: torch.Tensor | Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
    """A model's output as a tuple of head maps: a single-output detector's tensor becomes a 1-tuple."""
    return (output,) if isinstance(output, torch.Tensor) else tuple(output)


def _head_candidates(output: torch.Tensor, anchors: Anchors, num_classes: int,
                     image_size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """One head map -> pixel xyxy boxes (B, A*H*W, 4) and class scores (B, A*H*W, C)."""
    pred = split_head(output.float(), len(anchors), num_classes)
    boxes = decode_boxes(pred, torch.tensor(anchors, dtype=torch.float32, device=output.device))
    h, w = image_size
    boxes = (boxes * torch.tensor([w, h, w, h], dtype=boxes.dtype, device=boxes.device)).clamp_min(0)
    boxes = torch.minimum(boxes, torch.tensor([w, h, w, h], dtype=boxes.dtype, device=boxes.device))
    scores = torch.sigmoid(pred[..., 4:5]) * torch.sigmoid(pred[..., 5:])  # (B, A, H, W, C)
    b = output.shape[0]
    return boxes.reshape(b, -1, 4), scores.reshape(b, -1, num_classes)


def decode(output: torch.Tensor, anchors: Anchors, num_classes: int,
           image_size: tuple[int, int], cfg: DecodeConfig = DecodeConfig()) -> list[Detections]:
    """Decode a batch of raw head maps into per-image detections in input-image pixels, after class-aware NMS.

    Every (cell, anchor, class) whose score passes the threshold is a candidate, so one box may carry several
    classes, as COCO-style evaluation expects.
    """
    return decode_heads((output,), (anchors,), num_classes, image_size, cfg)


def decode_heads(outputs: Sequence[torch.Tensor], anchor_sets: Sequence[Anchors], num_classes: int,
                 image_size: tuple[int, int], cfg: DecodeConfig = DecodeConfig()) -> list[Detections]:
    """:func:`decode` over several outputs: ``outputs[i]`` is decoded on its own grid with ``anchor_sets[i]``
    (a model config's ``anchor_sets``), and the boxes of all outputs compete in one class-aware NMS, so an object
    seen by two scales is reported once."""
    if len(outputs) != len(anchor_sets):
        raise ValueError(f"{len(outputs)} head maps but {len(anchor_sets)} anchor sets")
    parts = [_head_candidates(o, a, num_classes, image_size) for o, a in zip(outputs, anchor_sets)]
    boxes = torch.cat([p[0] for p in parts], 1)
    scores = torch.cat([p[1] for p in parts], 1)
    results = []
    for b in range(boxes.shape[0]):
        s = scores[b]
        bx = boxes[b]
        cand, cls = torch.nonzero(s > cfg.score_threshold, as_tuple=True)
        cand_scores = s[cand, cls]
        if cand_scores.numel() > cfg.pre_nms_top_k:
            # A stable sort, not topk: topk returns equal scores in no fixed order, and a quantized head makes
            # ties common, so the kept set would depend on the kernel (the on-board numpy decode keeps the lower
            # index first, as this does).
            top = torch.sort(cand_scores, descending=True, stable=True).indices[: cfg.pre_nms_top_k]
            cand, cls, cand_scores = cand[top], cls[top], cand_scores[top]
        keep = batched_nms(bx[cand], cand_scores, cls, cfg.iou_threshold)[: cfg.max_detections]
        results.append(Detections(bx[cand][keep], cand_scores[keep], cls[keep].long()))
    return results
