"""Render detections on a grid of images to a PNG, for eyeballing what a (quantised) detector does.

matplotlib is imported inside :func:`draw_detections` and drives an explicit Agg canvas, so importing this
module is free and the process-wide pyplot backend is never touched (safe on headless machines and in tests).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["draw_detections", "image_to_hwc_uint8"]


def _to_numpy(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def _field(item: Any, key: str) -> np.ndarray:
    value = item[key] if isinstance(item, Mapping) else getattr(item, key)
    return _to_numpy(value)


def image_to_hwc_uint8(image: Any) -> np.ndarray:
    """Convert one image to ``(H, W, 3)`` uint8 for display.

    Accepts HWC numpy arrays or CHW torch tensors (also HW / single-channel). uint8 data is used as is;
    floating-point data is taken to be in ``[0, 1]`` and clipped to it (a normalised tensor will look washed
    out, not crash).
    """
    is_tensor = hasattr(image, "detach")
    array = _to_numpy(image)
    if array.ndim == 2:
        array = array[:, :, None]
    elif array.ndim != 3:
        raise ValueError(f"image must be 2-D or 3-D, got shape {array.shape}")
    elif is_tensor:
        array = np.transpose(array, (1, 2, 0))  # torch images are CHW
    if array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    elif array.shape[2] == 4:
        array = array[:, :, :3]  # drop alpha
    elif array.shape[2] != 3:
        raise ValueError(f"image must have 1, 3 or 4 channels, got shape {array.shape}")
    if array.dtype == np.uint8:
        return np.ascontiguousarray(array)
    if np.issubdtype(array.dtype, np.floating):
        return (np.clip(array, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    return np.clip(array, 0, 255).astype(np.uint8)


def draw_detections(
    images: Sequence[Any],
    predictions: Sequence[Any],
    class_names: Sequence[str],
    path: Path,
    targets: Sequence[Any] | None = None,
    max_images: int = 8,
    score_threshold: float = 0.3,
) -> Path:
    """Write a PNG grid of images with predicted (and optionally ground-truth) boxes.

    Args:
        images: per-image HWC uint8 numpy arrays or CHW tensors (see :func:`image_to_hwc_uint8`).
        predictions: per-image mappings/objects with ``boxes`` ``(K, 4)`` xyxy pixels, ``scores``, ``labels``.
        class_names: names for the labels; each class gets a fixed colour.
        path: output PNG file; parent folders are created.
        targets: optional per-image ``boxes`` / ``labels``; drawn dashed in the class colour.
        max_images: only the first this many images are drawn.
        score_threshold: predictions scoring below this are not drawn.

    Returns:
        ``path``.
    """
    # Imported here so importing quant_models.draw does not pull in matplotlib; an explicit Agg canvas
    # renders without selecting a global backend.
    from matplotlib import colormaps
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    if len(predictions) < min(len(images), max_images):
        raise ValueError(f"{len(images)} images but only {len(predictions)} prediction entries")
    if targets is not None and len(targets) < min(len(images), max_images):
        raise ValueError(f"{len(images)} images but only {len(targets)} target entries")
    if max_images < 1:
        raise ValueError(f"max_images must be >= 1, got {max_images}")
    count = min(len(images), max_images)
    if count == 0:
        raise ValueError("no images to draw")

    cmap = colormaps["tab20" if len(class_names) > 10 else "tab10"]
    colors = [cmap(i % cmap.N) for i in range(max(len(class_names), 1))]

    def name_of(label: int) -> str:
        return class_names[label] if 0 <= label < len(class_names) else str(label)

    cols = min(4, count)
    rows = math.ceil(count / cols)
    fig = Figure(figsize=(4 * cols, 4 * rows), dpi=100)
    FigureCanvasAgg(fig)  # attaches itself to fig; savefig below then renders through Agg
    for slot in range(rows * cols):
        ax = fig.add_subplot(rows, cols, slot + 1)
        ax.set_axis_off()
        if slot >= count:
            continue
        image = image_to_hwc_uint8(images[slot])
        ax.imshow(image)
        # Boxes may reach past the image; keep the view on the image so every tile has the same framing.
        ax.set_xlim(0, image.shape[1])
        ax.set_ylim(image.shape[0], 0)

        if targets is not None:
            gt_boxes = _field(targets[slot], "boxes").reshape(-1, 4)
            gt_labels = _field(targets[slot], "labels").reshape(-1).astype(int)
            for (x1, y1, x2, y2), label in zip(gt_boxes, gt_labels, strict=True):
                ax.add_patch(
                    Rectangle(
                        (x1, y1), x2 - x1, y2 - y1, fill=False, linestyle="--", linewidth=1.0,
                        edgecolor=colors[label % len(colors)],
                    )
                )

        pred = predictions[slot]
        boxes = _field(pred, "boxes").reshape(-1, 4)
        scores = _field(pred, "scores").reshape(-1)
        labels = _field(pred, "labels").reshape(-1).astype(int)
        shown = 0
        for (x1, y1, x2, y2), score, label in zip(boxes, scores, labels, strict=True):
            if score < score_threshold:
                continue
            shown += 1
            color = colors[label % len(colors)]
            ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, linewidth=1.5, edgecolor=color))
            ax.text(
                x1, y1, f"{name_of(label)} {score:.2f}", fontsize=7, color="white", va="bottom",
                bbox={"facecolor": color, "alpha": 0.8, "pad": 1, "linewidth": 0}, clip_on=True,
            )
        ax.set_title(f"#{slot}: {shown} det" + (f", {len(gt_boxes)} gt" if targets is not None else ""), fontsize=8)

    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path
