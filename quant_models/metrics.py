"""COCO-style detection mAP via ``faster_coco_eval`` (the same matching and 101-point interpolation as pycocotools).

Predictions and targets are converted to in-memory COCO dictionaries; nothing touches the disk and nothing is
printed. Boxes are xyxy in pixels; COCO wants ``[x, y, w, h]``, and category ids are ``label + 1`` because
COCO tooling treats id 0 specially in places.

NaN policy: a class with no ground-truth box anywhere in the evaluated set has no defined AP, so its entries in
``per_class_ap50`` / ``per_class_ap50_95`` are ``float('nan')`` (keys are always exactly ``class_names``).
Predictions of such a class do not lower the overall mAP, which (as in COCO) is the mean over classes that do
have ground truth. If no class has any ground truth, ``map50`` and ``map50_95`` are NaN as well.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["MapResult", "detection_map"]


def _silent(*_args: object, **_kwargs: object) -> None:
    """Print function handed to faster_coco_eval so evaluation stays quiet."""


@dataclass(frozen=True)
class MapResult:
    """Mean average precision of a detector over a set of images (COCO definition, area 'all')."""

    map50: float
    map50_95: float
    per_class_ap50: dict[str, float] = field(repr=False)
    per_class_ap50_95: dict[str, float] = field(repr=False)
    num_images: int
    num_predictions: int

    def to_markdown(self, digits: int = 4) -> str:
        """Per-class AP as a GitHub-flavoured markdown table, with an overall ``mAP`` row last.

        Classes without ground truth show ``n/a`` (their AP is NaN, see the module docstring).
        """

        def fmt(value: float) -> str:
            return "n/a" if math.isnan(value) else f"{value:.{digits}f}"

        lines = ["| class | AP@0.5 | AP@0.5:0.95 |", "|---|---:|---:|"]
        for name, ap50 in self.per_class_ap50.items():
            cell = name.replace("|", r"\|")  # a bare '|' in a class name would split the cell
            lines.append(f"| {cell} | {fmt(ap50)} | {fmt(self.per_class_ap50_95[name])} |")
        lines.append(f"| **mAP** | {fmt(self.map50)} | {fmt(self.map50_95)} |")
        return "\n".join(lines)

    def to_rich_table(self, title: str | None = None) -> Any:
        """The same table as :meth:`to_markdown`, as a ``rich.table.Table`` for console output."""
        # Imported here so that computing metrics does not require rich.
        from rich.table import Table

        def fmt(value: float) -> str:
            return "n/a" if math.isnan(value) else f"{value:.4f}"

        table = Table(title=title or f"mAP over {self.num_images} images, {self.num_predictions} predictions")
        table.add_column("class")
        table.add_column("AP@0.5", justify="right")
        table.add_column("AP@0.5:0.95", justify="right")
        for name, ap50 in self.per_class_ap50.items():
            table.add_row(name, fmt(ap50), fmt(self.per_class_ap50_95[name]))
        table.add_row("mAP", fmt(self.map50), fmt(self.map50_95), style="bold")
        return table


def _get(item: Any, key: str) -> Any:
    """Field access that works for dicts and for dataclass-like objects alike."""
    if isinstance(item, Mapping):
        if key not in item:
            raise KeyError(f"detection entry has no '{key}' field (has {sorted(item)})")
        return item[key]
    if not hasattr(item, key):
        raise AttributeError(f"detection entry of type {type(item).__name__} has no '{key}' attribute")
    return getattr(item, key)


def _to_numpy(value: Any) -> np.ndarray:
    """torch tensor (any device) or array-like -> numpy, without importing torch."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def _boxes(item: Any, where: str) -> np.ndarray:
    boxes = _to_numpy(_get(item, "boxes")).astype(np.float64)
    if boxes.size == 0:
        # An empty tensor may arrive as shape (0,) rather than (0, 4).
        return np.zeros((0, 4), dtype=np.float64)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"{where}: boxes must have shape (N, 4), got {boxes.shape}")
    if not np.all(np.isfinite(boxes)):
        raise ValueError(f"{where}: boxes contain NaN or inf")
    return boxes


def _labels(item: Any, n: int, num_classes: int, where: str) -> np.ndarray:
    labels = _to_numpy(_get(item, "labels")).reshape(-1).astype(np.int64)
    if labels.shape[0] != n:
        raise ValueError(f"{where}: {n} boxes but {labels.shape[0]} labels")
    if n and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"{where}: labels must be in [0, {num_classes}), got range [{labels.min()}, {labels.max()}]")
    return labels


def _xywh(box: np.ndarray) -> list[float]:
    x1, y1, x2, y2 = (float(v) for v in box)
    return [x1, y1, x2 - x1, y2 - y1]


def detection_map(
    predictions: Sequence[Any],
    targets: Sequence[Any],
    class_names: Sequence[str],
    max_detections: int = 100,
) -> MapResult:
    """COCO mAP@0.5 and mAP@0.5:0.95 (area 'all') of per-image predictions against ground truth.

    Args:
        predictions: one entry per image, a mapping or object with ``boxes`` ``(K, 4)`` xyxy pixels,
            ``scores`` ``(K,)`` and ``labels`` ``(K,)`` (torch tensors on any device, or numpy arrays).
        targets: one entry per image, in the same order, with ``boxes`` ``(N, 4)`` and ``labels`` ``(N,)``.
        class_names: names for labels ``0 .. C-1``; keys of the per-class dictionaries.
        max_detections: per-image cap on scored detections, as COCO's ``maxDets`` (highest scores count).

    Returns:
        A :class:`MapResult`. Every image is evaluated, including those with no boxes at all, so false
        positives on empty images count. Classes without ground truth get NaN AP (see module docstring).
    """
    # Imported here: faster_coco_eval loads a C++ extension, and importing this module must stay cheap.
    from faster_coco_eval import COCO, COCOeval_faster

    if len(predictions) != len(targets):
        raise ValueError(f"{len(predictions)} prediction entries but {len(targets)} target entries")
    if not class_names:
        raise ValueError("class_names is empty")
    if len(set(class_names)) != len(class_names):
        raise ValueError(f"class_names must be unique (they key the per-class results), got {list(class_names)}")
    if max_detections < 1:
        raise ValueError(f"max_detections must be >= 1, got {max_detections}")
    num_classes = len(class_names)

    images: list[dict[str, Any]] = []
    gt_anns: list[dict[str, Any]] = []
    dt_anns: list[dict[str, Any]] = []
    for index, (pred, target) in enumerate(zip(predictions, targets, strict=True)):
        image_id = index + 1
        # COCO needs width/height only for masks; bbox evaluation ignores them, but the fields must exist.
        images.append({"id": image_id, "width": 1, "height": 1})

        where = f"targets[{index}]"
        gt_boxes = _boxes(target, where)
        gt_labels = _labels(target, gt_boxes.shape[0], num_classes, where)
        for box, label in zip(gt_boxes, gt_labels, strict=True):
            xywh = _xywh(box)
            gt_anns.append({
                # Annotation id 0 means "unmatched" inside the evaluator, so ids start at 1.
                "id": len(gt_anns) + 1,
                "image_id": image_id,
                "category_id": int(label) + 1,
                "bbox": xywh,
                "area": xywh[2] * xywh[3],
                "iscrowd": 0,
            })

        where = f"predictions[{index}]"
        dt_boxes = _boxes(pred, where)
        dt_labels = _labels(pred, dt_boxes.shape[0], num_classes, where)
        dt_scores = _to_numpy(_get(pred, "scores")).reshape(-1).astype(np.float64)
        if dt_scores.shape[0] != dt_boxes.shape[0]:
            raise ValueError(f"{where}: {dt_boxes.shape[0]} boxes but {dt_scores.shape[0]} scores")
        for box, label, score in zip(dt_boxes, dt_labels, dt_scores, strict=True):
            dt_anns.append({
                "image_id": image_id,
                "category_id": int(label) + 1,
                "bbox": _xywh(box),
                "score": float(score),
            })

    categories = [{"id": i + 1, "name": name} for i, name in enumerate(class_names)]
    coco_gt = COCO(print_function=_silent)
    coco_gt.dataset = {"images": images, "annotations": gt_anns, "categories": categories}
    coco_gt.createIndex()
    coco_dt = coco_gt.loadRes(dt_anns)

    evaluator = COCOeval_faster(coco_gt, coco_dt, iouType="bbox", print_function=_silent)
    # Every image and every class is evaluated, not only those that happen to appear in the ground truth.
    evaluator.params.imgIds = [img["id"] for img in images]
    evaluator.params.catIds = [cat["id"] for cat in categories]
    evaluator.params.maxDets = sorted({1, min(10, max_detections), max_detections})
    evaluator.evaluate()
    evaluator.accumulate()
    evaluator.summarize()

    # precision: [iou thresholds T, recall thresholds R, classes K, area ranges A, maxDets M]; -1 = undefined.
    precision = np.asarray(evaluator.eval["precision"])
    area_all = evaluator.params.areaRngLbl.index("all")
    iou50 = int(np.argmin(np.abs(np.asarray(evaluator.params.iouThrs) - 0.5)))

    def mean_defined(values: np.ndarray) -> float:
        defined = values[values > -1]
        return float(defined.mean()) if defined.size else float("nan")

    per_class_ap50: dict[str, float] = {}
    per_class_ap50_95: dict[str, float] = {}
    for k, name in enumerate(class_names):
        per_class_ap50[name] = mean_defined(precision[iou50, :, k, area_all, -1])
        per_class_ap50_95[name] = mean_defined(precision[:, :, k, area_all, -1])

    # COCO reports -1 when nothing is defined (no ground truth at all); NaN says that without posing as a score.
    stats = [float("nan") if s < 0 else float(s) for s in evaluator.stats[:2]]
    return MapResult(
        map50=stats[1],
        map50_95=stats[0],
        per_class_ap50=per_class_ap50,
        per_class_ap50_95=per_class_ap50_95,
        num_images=len(images),
        num_predictions=len(dt_anns),
    )
