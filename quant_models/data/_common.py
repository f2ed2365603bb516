"""Shared validation helpers for the detection loaders: box checks, image sizes and bad-entry bookkeeping."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from quant_models.data.types import DatasetError, Sample

# Annotation tools often round outward, so a box may poke up to a pixel past the border; such boxes are clipped.
# Anything further out is a genuine error (wrong image, wrong units), and is reported.
BORDER_TOLERANCE_PX = 1.0

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")

SKIP_HINT = "Fix or remove it, or rerun with --skip-bad to skip bad entries (they are counted and reported)."


class BadEntries:
    """Either raises on a bad entry or, with ``skip_bad``, counts it; :meth:`finish` warns about skipped ones."""

    def __init__(self, loader: str, skip_bad: bool) -> None:
        self.loader = loader
        self.skip_bad = skip_bad
        self.count = 0
        self.first: str | None = None

    def bad(self, message: str) -> None:
        """Report one bad entry: raise :class:`DatasetError` unless skipping, in which case count it."""
        if not self.skip_bad:
            raise DatasetError(f"{message} {SKIP_HINT}")
        self.count += 1
        if self.first is None:
            self.first = message

    def finish(self, where: Path) -> int:
        """Warn (never silently drop) when entries were skipped; return the count."""
        if self.count:
            noun = "entry" if self.count == 1 else "entries"
            warnings.warn(
                f"{self.loader}: skipped {self.count} bad {noun} under {where} (--skip-bad); first: {self.first}",
                stacklevel=3,
            )
        return self.count


def image_size(path: Path) -> tuple[int, int] | str:
    """Return ``(width, height)`` of an image without decoding its pixels, or a reason string if unreadable."""
    if not path.is_file():
        return f"image file {path} does not exist"
    try:
        with Image.open(path) as im:
            return int(im.size[0]), int(im.size[1])
    except (OSError, UnidentifiedImageError) as exc:
        return f"image file {path} cannot be read ({exc})"


def check_box(
    x1: float, y1: float, x2: float, y2: float, width: int, height: int
) -> tuple[float, float, float, float] | str:
    """Validate an absolute xyxy box against a ``width`` x ``height`` image.

    Returns the box clipped to the image, or a reason string. Boxes up to :data:`BORDER_TOLERANCE_PX` outside
    the border are clipped; boxes further out, degenerate or non-finite ones are rejected.
    """
    if not all(math.isfinite(v) for v in (x1, y1, x2, y2)):
        return f"box {_fmt(x1, y1, x2, y2)} has a non-finite coordinate"
    if x2 <= x1 or y2 <= y1:
        return f"box {_fmt(x1, y1, x2, y2)} has non-positive width or height"
    tol = BORDER_TOLERANCE_PX
    if x1 < -tol or y1 < -tol or x2 > width + tol or y2 > height + tol:
        return f"box {_fmt(x1, y1, x2, y2)} lies outside the {width}x{height} image"
    cx1, cy1 = max(x1, 0.0), max(y1, 0.0)
    cx2, cy2 = min(x2, float(width)), min(y2, float(height))
    if cx2 <= cx1 or cy2 <= cy1:
        # Entirely within the tolerance band past the border: nothing of it is inside the image.
        return f"box {_fmt(x1, y1, x2, y2)} lies outside the {width}x{height} image"
    return cx1, cy1, cx2, cy2


def _fmt(*values: float) -> str:
    return "(" + ", ".join(f"{v:g}" for v in values) + ") [x1, y1, x2, y2 in pixels]"


def make_sample(
    path: Path, width: int, height: int, boxes: list[tuple[float, float, float, float]], labels: list[int]
) -> Sample:
    """Build a :class:`Sample` with the canonical array dtypes and shapes (also for zero objects)."""
    return Sample(
        image_path=path,
        width=width,
        height=height,
        boxes=np.asarray(boxes, dtype=np.float32).reshape(-1, 4),
        labels=np.asarray(labels, dtype=np.int64).reshape(-1),
    )
