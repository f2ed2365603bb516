"""Turn a :class:`DetectionSet` into fixed-size tensors (resized uint8 images, padded normalised boxes)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import warnings
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from quant_models.data.types import DetectionSet

_CACHE_VERSION = 1  # bump when the tensor layout or resizing changes, so old caches are not reused


@dataclass(frozen=True)
class DetectionTensors:
    """A whole split as tensors.

    ``images``: uint8 ``(N, 3, H, W)`` RGB; ``boxes``: float32 ``(N, M, 4)`` xyxy normalised to [0, 1] by the
    original image size; ``labels``: int64 ``(N, M)``, -1 marks padding (whose boxes are zero).
    """

    images: torch.Tensor
    boxes: torch.Tensor
    labels: torch.Tensor
    class_names: tuple[str, ...]

    def __len__(self) -> int:
        return int(self.images.shape[0])


def _cache_key(ds: DetectionSet, size: tuple[int, int], max_objects: int) -> str:
    """Hash of everything the tensors depend on: files (path, byte size, mtime), annotations and settings."""
    h = hashlib.sha256()
    h.update(repr((_CACHE_VERSION, tuple(size), max_objects, ds.class_names)).encode())
    for s in ds.samples:
        st = s.image_path.stat()
        h.update(repr((str(s.image_path), st.st_size, st.st_mtime_ns, s.width, s.height)).encode())
        h.update(np.ascontiguousarray(s.boxes, dtype=np.float32).tobytes())
        h.update(np.ascontiguousarray(s.labels, dtype=np.int64).tobytes())
    return h.hexdigest()[:24]


def _load_image(path: Path, size: tuple[int, int]) -> np.ndarray:
    height, width = size
    with Image.open(path) as im:
        rgb = im.convert("RGB")
        if rgb.size != (width, height):
            rgb = rgb.resize((width, height), Image.Resampling.BILINEAR)
        return np.asarray(rgb, dtype=np.uint8).transpose(2, 0, 1)


def _build(ds: DetectionSet, size: tuple[int, int], max_objects: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = len(ds.samples)
    images = np.zeros((n, 3, size[0], size[1]), dtype=np.uint8)
    boxes = np.zeros((n, max_objects, 4), dtype=np.float32)
    labels = np.full((n, max_objects), -1, dtype=np.int64)
    dropped = 0
    for i, s in enumerate(ds.samples):
        images[i] = _load_image(s.image_path, size)
        keep = np.arange(len(s.labels))
        if len(keep) > max_objects:
            # Keep the largest objects; a stable sort makes the choice deterministic among equal areas.
            area = (s.boxes[:, 2] - s.boxes[:, 0]) * (s.boxes[:, 3] - s.boxes[:, 1])
            keep = np.sort(np.argsort(-area, kind="stable")[:max_objects])
            dropped += len(s.labels) - max_objects
        scale = np.array([s.width, s.height, s.width, s.height], dtype=np.float32)
        boxes[i, : len(keep)] = np.clip(s.boxes[keep] / scale, 0.0, 1.0)
        labels[i, : len(keep)] = s.labels[keep]
    if dropped:
        warnings.warn(
            f"to_tensors: dropped {dropped} objects (the smallest) from images with more than "
            f"max_objects={max_objects}; raise max_objects to keep them.",
            stacklevel=3,
        )
    return images, boxes, labels


def to_tensors(
    ds: DetectionSet, size: tuple[int, int], max_objects: int | None = None, cache_dir: Path | None = None
) -> DetectionTensors:
    """Resize every image to ``size = (H, W)`` (PIL bilinear, RGB) and pad the objects to ``max_objects``.

    ``max_objects`` defaults to the largest object count in the set (at least 1); images with more objects keep
    their largest ones, with a warning. Boxes are normalised by the original image size, so resizing does not
    change them. With ``cache_dir``, the arrays are stored in an ``.npz`` keyed by a hash of the file list,
    annotations and settings, and a later call with the same inputs loads that instead of decoding images.
    """
    if max_objects is None:
        max_objects = max([len(s.labels) for s in ds.samples] + [1])
    if max_objects < 1:
        raise ValueError(f"max_objects must be >= 1, got {max_objects}")
    cache_file = None
    if cache_dir is not None:
        cache_file = Path(cache_dir) / f"tensors-{_cache_key(ds, size, max_objects)}.npz"
        cached = _read_cache(cache_file, (len(ds.samples), 3, *size), max_objects) if cache_file.is_file() else None
        if cached is not None:
            images, boxes, labels = cached
            return DetectionTensors(
                images=torch.from_numpy(images),
                boxes=torch.from_numpy(boxes),
                labels=torch.from_numpy(labels),
                class_names=ds.class_names,
            )
    images, boxes, labels = _build(ds, size, max_objects)
    if cache_file is not None:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_file.with_suffix(f".tmp{os.getpid()}.npz")
        np.savez(tmp, images=images, boxes=boxes, labels=labels)
        os.replace(tmp, cache_file)  # atomic, so a concurrent reader never sees a half-written cache
    return DetectionTensors(
        images=torch.from_numpy(images),
        boxes=torch.from_numpy(boxes),
        labels=torch.from_numpy(labels),
        class_names=ds.class_names,
    )


def _read_cache(
    path: Path, image_shape: tuple[int, ...], max_objects: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The cached arrays, or None (with a warning, the file deleted) when the cache cannot be used.

    A cache is only a copy of what the data set gives, so a truncated or foreign file (a killed writer on an old
    version, a full disk, a stray copy) is treated as stale and rebuilt rather than failing the command."""
    n = image_shape[0]
    expected = {"images": (image_shape, np.uint8), "boxes": ((n, max_objects, 4), np.float32),
                "labels": ((n, max_objects), np.int64)}
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {name: z[name] for name in expected}
        problem = next((f"{name} has shape {arrays[name].shape} and dtype {arrays[name].dtype}, expected "
                        f"{shape} {np.dtype(dtype)}" for name, (shape, dtype) in expected.items()
                        if arrays[name].shape != shape or arrays[name].dtype != dtype), None)
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as exc:  # what np.load raises on junk
        problem = f"{type(exc).__name__}: {exc}"
    if problem is None:
        return arrays["images"], arrays["boxes"], arrays["labels"]
    warnings.warn(f"to_tensors: the tensor cache {path} is unreadable ({problem}); deleting it and rebuilding "
                  "it from the data set", stacklevel=3)
    with contextlib.suppress(OSError):  # the rebuilt cache replaces it anyway; deleting is only tidiness
        path.unlink(missing_ok=True)
    return None


def iterate_batches(
    t: DetectionTensors, batch_size: int, shuffle: bool, generator: torch.Generator | None = None,
    drop_last: bool = False,
) -> Iterator[torch.Tensor]:
    """Yield int64 index tensors covering ``t`` in batches; index ``t.images[idx]`` etc. with them.

    With ``shuffle``, the order is a permutation drawn from ``generator`` (a CPU generator), so a seeded generator
    gives a reproducible order.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    n = len(t)
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        yield order[start : start + batch_size]
