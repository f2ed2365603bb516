"""The one in-memory form every detection loader produces.

Boxes are kept in absolute pixel coordinates ``(x1, y1, x2, y2)`` of the original image, as float32, and labels
as int64 indices into ``DetectionSet.class_names``. Loaders validate on the way in, so everything downstream can
trust these invariants: ``0 <= x1 < x2 <= width`` and ``0 <= y1 < y2 <= height``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


class DatasetError(ValueError):
    """Malformed detection data; the message names the file and the entry, and what to do."""


@dataclass(frozen=True)
class Sample:
    """One image and its objects."""

    image_path: Path
    width: int
    height: int
    boxes: np.ndarray = field(repr=False)  # (N, 4) float32, xyxy in pixels
    labels: np.ndarray = field(repr=False)  # (N,) int64


@dataclass(frozen=True)
class DetectionSet:
    """A split of a detection data set: class names plus samples, in a stable order."""

    class_names: tuple[str, ...]
    samples: tuple[Sample, ...]
    root: Path
    skipped: int = 0  # entries dropped by a loader's skip_bad option (always reported, never silent)

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)
