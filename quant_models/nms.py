"""Box IoU and exact greedy non-maximum suppression in plain torch (torchvision does not import here).

All boxes are ``(x1, y1, x2, y2)`` in the same units. Every function works on whatever device its inputs live
on (CPU or CUDA) and returns tensors on that device.

The suppression itself is vectorised: the pairwise IoU matrix is computed once and greedy NMS is solved as a
fixed point of a triangular boolean system (see ``_greedy_keep``), so there is no Python loop over boxes, only
over "rounds", and the result is bit-for-bit the classic greedy result. Memory is O(N^2) in the number of
boxes, which is why callers should top-k / score-filter candidates first (``multiclass_nms`` does).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

__all__ = ["NmsResult", "batched_nms", "box_iou", "multiclass_nms", "nms"]


def _check_boxes(boxes: torch.Tensor, name: str) -> None:
    if not isinstance(boxes, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(boxes).__name__}")
    if boxes.dim() != 2 or boxes.shape[1] != 4:
        raise ValueError(f"{name} must have shape (N, 4), got {tuple(boxes.shape)}")


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pairwise intersection-over-union of two sets of xyxy boxes.

    Args:
        a: ``(N, 4)`` boxes.
        b: ``(M, 4)`` boxes, same device as ``a``.

    Returns:
        ``(N, M)`` float tensor; entry ``[i, j]`` is IoU(a[i], b[j]). A pair whose union has zero area
        (two degenerate boxes) gets IoU 0 rather than NaN, so such boxes never suppress anything.
    """
    _check_boxes(a, "a")
    _check_boxes(b, "b")
    # Integer boxes would make the division below integer-valued; IoU is always a real number.
    dtype = torch.promote_types(torch.promote_types(a.dtype, b.dtype), torch.float32)
    a = a.to(dtype)
    b = b.to(dtype)
    area_a = (a[:, 2] - a[:, 0]).clamp(min=0) * (a[:, 3] - a[:, 1]).clamp(min=0)
    area_b = (b[:, 2] - b[:, 0]).clamp(min=0) * (b[:, 3] - b[:, 1]).clamp(min=0)
    top_left = torch.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = (bottom_right - top_left).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    union = area_a[:, None] + area_b[None, :] - inter
    return torch.where(union > 0, inter / union.clamp(min=torch.finfo(dtype).tiny), torch.zeros_like(inter))


def _check_nms_inputs(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> None:
    _check_boxes(boxes, "boxes")
    if not isinstance(scores, torch.Tensor) or scores.dim() != 1 or scores.shape[0] != boxes.shape[0]:
        shape = tuple(scores.shape) if isinstance(scores, torch.Tensor) else type(scores).__name__
        raise ValueError(f"scores must be a 1-D tensor with one entry per box ({boxes.shape[0]}), got {shape}")
    if scores.device != boxes.device:
        raise ValueError(f"boxes are on {boxes.device} but scores are on {scores.device}")
    if not 0.0 <= float(iou_threshold) <= 1.0:
        raise ValueError(f"iou_threshold must be in [0, 1], got {iou_threshold}")


def _greedy_keep(
    boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float, labels: torch.Tensor | None
) -> torch.Tensor:
    """Exact greedy NMS; returns kept indices into the inputs, by descending score (ties: lower index first).

    In score order, greedy NMS keeps box j iff no *kept* box i < j overlaps it above the threshold:
    ``keep[j] = not any(keep[i] and over[i, j] for i < j)``. Because ``over`` is strictly upper triangular this
    system has exactly one solution, and iterating it from "keep everything" fixes one more leading entry per
    round at the very least (entry 0 is right after round 1, entry j once all i < j are right), so it converges
    to the greedy answer in at most N rounds. In practice the number of rounds is the length of the longest
    suppression chain (A kills B, so C which B would have killed survives ...), usually a handful.
    """
    n = boxes.shape[0]
    if n == 0:
        return torch.empty(0, dtype=torch.long, device=boxes.device)
    # stable=True is what makes equal scores resolve to the lower original index first.
    order = torch.sort(scores, descending=True, stable=True).indices
    sorted_boxes = boxes[order]
    over = box_iou(sorted_boxes, sorted_boxes) > iou_threshold
    if labels is not None:
        sorted_labels = labels[order]
        # Class-equality mask instead of the coordinate-offset trick: exact for any coordinates
        # (offsets break with negative boxes and lose float precision on large ones).
        over &= sorted_labels[:, None] == sorted_labels[None, :]
    # Only a higher-ranked box may suppress a lower-ranked one (this also drops the diagonal).
    over = torch.triu(over, diagonal=1)

    keep = torch.ones(n, dtype=torch.bool, device=boxes.device)
    for _ in range(n):
        new_keep = ~(keep[:, None] & over).any(dim=0)
        if torch.equal(new_keep, keep):
            break
        keep = new_keep
    return order[keep]


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Classic greedy non-maximum suppression.

    A box is discarded when a higher-scoring box that was itself kept overlaps it with IoU strictly greater
    than ``iou_threshold`` (the torchvision convention).

    Args:
        boxes: ``(N, 4)`` xyxy boxes.
        scores: ``(N,)`` scores, same device.
        iou_threshold: IoU above which the lower-scoring box is suppressed, in ``[0, 1]``.

    Returns:
        int64 ``(K,)`` indices of kept boxes into ``boxes``, sorted by descending score; equal scores keep
        the lower index first. Empty input gives an empty tensor.
    """
    _check_nms_inputs(boxes, scores, iou_threshold)
    return _greedy_keep(boxes, scores, iou_threshold, labels=None)


def batched_nms(
    boxes: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor, iou_threshold: float
) -> torch.Tensor:
    """Class-aware greedy NMS: boxes with different labels never suppress each other.

    Args:
        boxes: ``(N, 4)`` xyxy boxes.
        scores: ``(N,)`` scores.
        labels: ``(N,)`` integer class labels.
        iou_threshold: as for :func:`nms`.

    Returns:
        int64 indices of kept boxes into ``boxes``, sorted by descending score over all classes (ties: lower
        index first). Identical to running :func:`nms` per class and merging by score.
    """
    _check_nms_inputs(boxes, scores, iou_threshold)
    if not isinstance(labels, torch.Tensor) or labels.dim() != 1 or labels.shape[0] != boxes.shape[0]:
        raise ValueError(f"labels must be a 1-D tensor with one entry per box ({boxes.shape[0]})")
    if labels.device != boxes.device:
        raise ValueError(f"boxes are on {boxes.device} but labels are on {labels.device}")
    return _greedy_keep(boxes, scores, iou_threshold, labels=labels)


@dataclass(frozen=True)
class NmsResult:
    """Detections that survived :func:`multiclass_nms`, by descending score."""

    boxes: torch.Tensor = field(repr=False)  # (K, 4) xyxy
    scores: torch.Tensor = field(repr=False)  # (K,)
    labels: torch.Tensor = field(repr=False)  # (K,) int64

    def __len__(self) -> int:
        return int(self.scores.shape[0])


def multiclass_nms(
    boxes: torch.Tensor,
    class_scores: torch.Tensor,
    iou_threshold: float = 0.5,
    score_threshold: float = 0.05,
    max_candidates: int = 1000,
    max_detections: int = 100,
) -> NmsResult:
    """Turn per-class scores for one image into final detections.

    Every (box, class) pair whose score is at least ``score_threshold`` is a candidate (so one box can be
    reported for several classes, as COCO evaluation expects); the best ``max_candidates`` candidates go
    through :func:`batched_nms` and the best ``max_detections`` survivors are returned.

    Args:
        boxes: ``(N, 4)`` xyxy boxes shared by all classes.
        class_scores: ``(N, C)`` per-class scores (already sigmoid/softmax-ed).
        iou_threshold: as for :func:`nms`.
        score_threshold: candidates scoring below this are dropped before NMS.
        max_candidates: cap on candidates entering NMS; bounds the O(N^2) IoU matrix.
        max_detections: cap on detections returned.

    Returns:
        An :class:`NmsResult` on the inputs' device.
    """
    _check_boxes(boxes, "boxes")
    if class_scores.dim() != 2 or class_scores.shape[0] != boxes.shape[0]:
        raise ValueError(
            f"class_scores must have shape (N, C) with N={boxes.shape[0]}, got {tuple(class_scores.shape)}"
        )
    if max_candidates < 0 or max_detections < 0:
        raise ValueError("max_candidates and max_detections must be >= 0")
    box_idx, cls_idx = torch.nonzero(class_scores >= score_threshold, as_tuple=True)
    cand_scores = class_scores[box_idx, cls_idx]
    if cand_scores.numel() > max_candidates:
        top = torch.sort(cand_scores, descending=True, stable=True).indices[:max_candidates]
        box_idx, cls_idx, cand_scores = box_idx[top], cls_idx[top], cand_scores[top]
    cand_boxes = boxes[box_idx]
    keep = batched_nms(cand_boxes, cand_scores, cls_idx, iou_threshold)[:max_detections]
    return NmsResult(boxes=cand_boxes[keep], scores=cand_scores[keep], labels=cls_idx[keep].to(torch.long))
