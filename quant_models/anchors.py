"""Anchor shapes from the training boxes: k-means on (w, h) with 1 - IoU as the distance, as YOLOv2 does."""

from __future__ import annotations

import numpy as np


def wh_iou(wh: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """IoU of boxes and anchors sharing one corner, (N, 2) x (K, 2) -> (N, K).

    >>> wh_iou(np.array([[2.0, 2.0]]), np.array([[2.0, 2.0], [1.0, 1.0], [4.0, 1.0]])).round(3).tolist()
    [[1.0, 0.25, 0.333]]
    """
    inter = np.minimum(wh[:, None, 0], anchors[None, :, 0]) * np.minimum(wh[:, None, 1], anchors[None, :, 1])
    union = wh[:, 0:1] * wh[:, 1:2] + (anchors[:, 0] * anchors[:, 1])[None] - inter
    return inter / union


def kmeans_anchors(wh: np.ndarray, k: int, iterations: int = 100) -> tuple[tuple[float, float], ...]:
    """``k`` anchor shapes for box sizes ``wh`` (N, 2), sorted by area; deterministic (quantile initialisation).

    Falls back to repeating the boxes when there are fewer than ``k`` distinct ones.
    """
    wh = np.asarray(wh, dtype=np.float64)
    if len(wh) == 0:
        raise ValueError("no boxes to fit anchors to: the training set has no objects")
    order = np.argsort(wh.prod(1), kind="stable")
    anchors = wh[order[np.linspace(0, len(wh) - 1, k).round().astype(int)]].copy()
    for _ in range(iterations):
        nearest = wh_iou(wh, anchors).argmax(1)
        new = np.array([np.median(wh[nearest == j], 0) if np.any(nearest == j) else anchors[j] for j in range(k)])
        if np.allclose(new, anchors):
            break
        anchors = new
    anchors = anchors[np.argsort(anchors.prod(1), kind="stable")]
    return tuple((round(float(w), 4), round(float(h), 4)) for w, h in anchors)
