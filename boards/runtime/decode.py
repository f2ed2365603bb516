"""Host-side decode in numpy: raw head maps -> boxes, scores, classes -> class-aware NMS.

A port of ``quant_models/decode.py`` and ``quant_models/nms.py`` for boards that have numpy but no torch (this
folder is copied verbatim to a board, so it imports nothing but the standard library and numpy). Same semantics:

    cx = (2 * sigmoid(tx) - 0.5 + col) / grid_w          w = anchor_w * (2 * sigmoid(tw)) ** 2
    cy = (2 * sigmoid(ty) - 0.5 + row) / grid_h          h = anchor_h * (2 * sigmoid(th)) ** 2

boxes in input-image pixels clamped to the image, ``score = sigmoid(obj) * sigmoid(cls)``, every (cell, anchor,
class) above ``score_threshold`` a candidate, the best ``pre_nms_top_k`` of them through exact greedy NMS (a box
goes when a kept, higher-ranked box of its class overlaps it with IoU > ``iou_threshold``; equal scores rank the
lower index first), the best ``max_detections`` survivors kept.

All arithmetic is float32 like torch's, and the ``pre_nms_top_k`` cut is a stable sort in both (equal scores: lower
candidate index first). Results agree with torch's up to float32 ``exp`` rounding (an ulp).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["DecodeConfig", "Detections", "batched_nms", "box_iou", "decode", "decode_heads", "nms"]


@dataclass(frozen=True)
class DecodeConfig:
    """Post-processing thresholds, the host's and the torch decode's (``quant_models.decode`` uses this class).
    Evaluation keeps low-score boxes (mAP needs the whole ranking)."""

    score_threshold: float = 0.001
    iou_threshold: float = 0.6
    max_detections: int = 100
    pre_nms_top_k: int = 1000


@dataclass(frozen=True)
class Detections:
    """Detections of one image, by descending score: xyxy boxes in pixels of the model input, scores, labels."""

    boxes: np.ndarray  # (K, 4) float32
    scores: np.ndarray  # (K,) float32
    labels: np.ndarray  # (K,) int64

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    def to_dict(self) -> dict[str, list[Any]]:
        """Plain Python lists (JSON-able), e.g. for a ``detections.json``."""
        return {"boxes": self.boxes.tolist(), "scores": self.scores.tolist(), "labels": self.labels.tolist()}


def _sigmoid(x: np.ndarray) -> np.ndarray:
    # float32 constants keep the whole expression in float32 (as torch computes it) on numpy 1.x and 2.x alike.
    return np.float32(1) / (np.float32(1) + np.exp(-x))


def _argsort_desc(values: np.ndarray) -> np.ndarray:
    """Indices by descending value, equal values lower index first (torch's ``sort(descending, stable=True)``).

    Sorting the reversed array ascending and reversing the result is stable-descending without negating, which
    would overflow unsigned or minimum-integer scores.
    """
    n = values.shape[0]
    return (n - 1 - np.argsort(values[::-1], kind="stable")[::-1]).astype(np.int64)


def _as_boxes(boxes: Any, name: str) -> np.ndarray:
    boxes = np.asarray(boxes)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"{name} must have shape (N, 4), got {tuple(boxes.shape)}")
    return boxes


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of ``(N, 4)`` and ``(M, 4)`` xyxy boxes -> ``(N, M)``; a zero-area union gives 0, not NaN.

    >>> box_iou(np.array([[0, 0, 2, 2]]), np.array([[1, 0, 3, 2], [5, 5, 5, 5]])).tolist()
    [[0.3333333432674408, 0.0]]
    """
    a, b = _as_boxes(a, "a"), _as_boxes(b, "b")
    # torch's promotion: at least float32, float64 stays float64, integer boxes become float32 (numpy alone
    # would make int64 + float32 float64, and the IoUs would then differ from torch's in the last bits).
    dtype = np.result_type(np.float32, *[x.dtype for x in (a, b) if np.issubdtype(x.dtype, np.floating)])
    a, b = a.astype(dtype, copy=False), b.astype(dtype, copy=False)
    zero = dtype.type(0)
    area_a = np.maximum(a[:, 2] - a[:, 0], zero) * np.maximum(a[:, 3] - a[:, 1], zero)
    area_b = np.maximum(b[:, 2] - b[:, 0], zero) * np.maximum(b[:, 3] - b[:, 1], zero)
    top_left = np.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = np.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = np.maximum(bottom_right - top_left, zero)
    inter = wh[..., 0] * wh[..., 1]
    union = area_a[:, None] + area_b[None, :] - inter
    with np.errstate(over="ignore", invalid="ignore"):  # the masked-out entries may overflow; never returned
        iou = inter / np.maximum(union, np.finfo(dtype).tiny)
    return np.where(union > zero, iou, zero).astype(dtype, copy=False)


def _greedy_keep(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float,
                 labels: np.ndarray | None) -> np.ndarray:
    """Exact greedy NMS: kept indices into the inputs by descending score (ties: lower index first)."""
    n = boxes.shape[0]
    if n == 0:
        return np.empty(0, dtype=np.int64)
    order = _argsort_desc(scores)
    sorted_boxes = boxes[order]
    iou = box_iou(sorted_boxes, sorted_boxes)
    # Compare in the IoU's own precision: torch casts the Python threshold to the tensor's dtype.
    over = iou > iou.dtype.type(iou_threshold)
    if labels is not None:
        sorted_labels = labels[order]
        over &= sorted_labels[:, None] == sorted_labels[None, :]
    over = np.triu(over, 1)  # only a higher-ranked box suppresses; this also drops the diagonal
    keep = np.ones(n, dtype=bool)
    for i in range(n):
        if keep[i]:
            # Row i only touches ranks below i, so every decision before i is already final: plain greedy.
            keep &= ~over[i]
    return order[keep]


def _check_nms_inputs(boxes: Any, scores: Any, iou_threshold: float) -> tuple[np.ndarray, np.ndarray]:
    boxes = _as_boxes(boxes, "boxes")
    scores = np.asarray(scores)
    if scores.ndim != 1 or scores.shape[0] != boxes.shape[0]:
        raise ValueError(f"scores must be a 1-D array with one entry per box ({boxes.shape[0]}), "
                         f"got {tuple(scores.shape)}")
    if not 0.0 <= float(iou_threshold) <= 1.0:
        raise ValueError(f"iou_threshold must be in [0, 1], got {iou_threshold}")
    return boxes, scores


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy NMS over all boxes regardless of class: int64 kept indices by descending score."""
    boxes, scores = _check_nms_inputs(boxes, scores, iou_threshold)
    return _greedy_keep(boxes, scores, iou_threshold, labels=None)


def batched_nms(boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Class-aware greedy NMS (boxes of different labels never suppress each other), as torch's
    ``quant_models.nms.batched_nms``: int64 kept indices by descending score over all classes, ties lower
    index first.

    >>> batched_nms(np.array([[0, 0, 2, 2], [0, 0, 2, 2.1], [0, 0, 2, 2]]), np.array([0.5, 0.9, 0.5]),
    ...             np.array([0, 0, 1]), 0.5).tolist()
    [1, 2]
    """
    boxes, scores = _check_nms_inputs(boxes, scores, iou_threshold)
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.shape[0] != boxes.shape[0]:
        raise ValueError(f"labels must be a 1-D array with one entry per box ({boxes.shape[0]})")
    return _greedy_keep(boxes, scores, iou_threshold, labels=labels)


def _head_candidates(output: np.ndarray, anchors: Sequence[tuple[float, float]], num_classes: int,
                     image_size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """One head map (B, A*(5+C), H, W) -> pixel xyxy boxes (B, A*H*W, 4) and class scores (B, A*H*W, C)."""
    if output.ndim != 4:
        raise ValueError(f"a head map must be (B, channels, H, W), got shape {tuple(output.shape)}")
    b, ch, gh, gw = output.shape
    na = len(anchors)
    if ch != na * (5 + num_classes):
        raise ValueError(f"head has {ch} channels, expected {na} anchors x (5 + {num_classes} classes)")
    # (B, A, 5+C, H, W) -> (B, A, H, W, 5+C): the flattened order (anchor, row, col) is torch's candidate order.
    pred = output.reshape(b, na, 5 + num_classes, gh, gw).transpose(0, 1, 3, 4, 2)
    col = np.arange(gw, dtype=np.float32).reshape(1, 1, 1, gw)
    row = np.arange(gh, dtype=np.float32).reshape(1, 1, gh, 1)
    anchor_wh = np.asarray(anchors, dtype=np.float32).reshape(1, na, 1, 1, 2)
    xy = _sigmoid(pred[..., :2]) * np.float32(2) - np.float32(0.5)
    cx = (xy[..., 0] + col) / np.float32(gw)
    cy = (xy[..., 1] + row) / np.float32(gh)
    wh = (_sigmoid(pred[..., 2:4]) * np.float32(2)) ** 2 * anchor_wh
    half_w, half_h = wh[..., 0] / np.float32(2), wh[..., 1] / np.float32(2)
    boxes = np.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], -1)
    h, w = image_size
    scale = np.array([w, h, w, h], dtype=np.float32)
    boxes = np.minimum(np.maximum(boxes * scale, np.float32(0)), scale)
    scores = _sigmoid(pred[..., 4:5]) * _sigmoid(pred[..., 5:])
    return boxes.reshape(b, -1, 4), scores.reshape(b, -1, num_classes)


def decode(output: np.ndarray, anchors: Sequence[tuple[float, float]], num_classes: int,
           image_size: tuple[int, int], cfg: DecodeConfig = DecodeConfig()) -> list[Detections]:
    """:func:`decode_heads` for a single-output detector."""
    return decode_heads((output,), (anchors,), num_classes, image_size, cfg)


def decode_heads(outputs: Sequence[np.ndarray], anchor_sets: Sequence[Sequence[tuple[float, float]]],
                 num_classes: int, image_size: tuple[int, int],
                 cfg: DecodeConfig = DecodeConfig()) -> list[Detections]:
    """Decode a batch of raw head maps into per-image detections in input-image pixels, after class-aware NMS.

    ``outputs[i]`` is a float (B, A*(5+C), H, W) map decoded on its own grid with ``anchor_sets[i]`` (fractions of
    the input), ``image_size`` is the model input (H, W); the boxes of all outputs compete in one NMS, so an
    object seen by two scales is reported once. Every (cell, anchor, class) scoring above the threshold is a
    candidate, so one box may carry several classes, as COCO-style evaluation expects.

    >>> dets = decode(np.zeros((1, 6, 2, 2), np.float32), [(0.5, 0.5)], 1, (64, 64))  # one box per cell
    >>> len(dets[0]), dets[0].boxes[0].tolist(), float(dets[0].scores[0])
    (4, [0.0, 0.0, 32.0, 32.0], 0.25)
    """
    if len(outputs) != len(anchor_sets):
        raise ValueError(f"{len(outputs)} head maps but {len(anchor_sets)} anchor sets")
    if not outputs:
        raise ValueError("no head maps to decode")
    parts = [_head_candidates(np.asarray(o, dtype=np.float32), a, num_classes, image_size)
             for o, a in zip(outputs, anchor_sets)]
    batches = sorted({p[0].shape[0] for p in parts})
    if len(batches) != 1:
        raise ValueError(f"head maps disagree on the batch size: {batches}")
    boxes = np.concatenate([p[0] for p in parts], 1)
    scores = np.concatenate([p[1] for p in parts], 1)
    threshold = np.float32(cfg.score_threshold)  # torch compares float32 scores with a float32 threshold
    results = []
    for b in range(boxes.shape[0]):
        s, bx = scores[b], boxes[b]
        cand, cls = np.nonzero(s > threshold)  # row-major: by cell index, then class, as torch.nonzero
        cand_scores = s[cand, cls]
        if cand_scores.shape[0] > cfg.pre_nms_top_k:
            top = _argsort_desc(cand_scores)[: cfg.pre_nms_top_k]
            cand, cls, cand_scores = cand[top], cls[top], cand_scores[top]
        cand_boxes = bx[cand]
        keep = batched_nms(cand_boxes, cand_scores, cls, cfg.iou_threshold)[: cfg.max_detections]
        results.append(Detections(cand_boxes[keep], cand_scores[keep], cls[keep].astype(np.int64)))
    return results
