"""Deterministic synthetic detection data set, written in COCO or YOLO layout.

Image ``i`` is drawn from its own RNG seeded with ``(seed, i)``, so an image does not depend on how many others
are generated or on the train/val split, and the same arguments always give byte-identical files. The last
``round(images * val_fraction)`` indices form the val split.

Layouts (``NNNNNN`` is the zero-padded global image index):

* COCO: ``out/images/{train,val}/NNNNNN.png`` and ``out/annotations/instances_{train,val}.json``
* YOLO: ``out/{train,val}/images/NNNNNN.png``, ``out/{train,val}/labels/NNNNNN.txt`` and ``out/classes.txt``
"""

from __future__ import annotations

import json
import multiprocessing
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

from quant_models.data.synth_render import CLASS_NAMES, SceneConfig, SceneObject, render_scene
from quant_models.data.types import DatasetError

SPLITS = ("train", "val")
_DECIMALS = 4  # box coordinates are written rounded; the written values are the ground truth


@dataclass(frozen=True)
class SynthSummary:
    """What :func:`generate_synthetic` wrote."""

    root: Path
    fmt: str
    class_names: tuple[str, ...]
    num_train: int
    num_val: int
    num_objects: int
    objects_per_class: tuple[int, ...]
    train_images: Path  # image folder of each split
    val_images: Path
    train_labels: Path  # COCO: the instances json; YOLO: the labels folder
    val_labels: Path


def _split_paths(out: Path, fmt: str, split: str) -> tuple[Path, Path]:
    if fmt == "coco":
        return out / "images" / split, out / "annotations" / f"instances_{split}.json"
    return out / split / "images", out / split / "labels"


def generate_synthetic(
    out: Path,
    images: int,
    seed: int,
    size: tuple[int, int] = (128, 128),
    fmt: Literal["coco", "yolo"] = "coco",
    val_fraction: float = 0.2,
    scene: SceneConfig | None = None,
    overwrite: bool = False,
    workers: int = 1,
) -> SynthSummary:
    """Generate ``images`` synthetic scenes of ``size = (H, W)`` under ``out`` in ``fmt`` layout.

    Classes are :data:`CLASS_NAMES` (``circle, square, triangle, cross``; COCO category ids 1..4). Each image has
    ``scene.min_objects..max_objects`` objects whose larger box side is 6-40 % of the shorter image side.
    Refuses to write into a non-empty ``out`` unless ``overwrite`` (which removes only this generator's outputs).
    ``workers > 1`` renders in that many processes; the files are the same bytes either way, since every image
    has its own RNG.
    """
    out = Path(out)
    if fmt not in ("coco", "yolo"):
        raise DatasetError(f"--format must be 'coco' or 'yolo', got {fmt!r}")
    if images < 1:
        raise DatasetError(f"--images must be >= 1, got {images}")
    if not 0.0 <= val_fraction < 1.0:
        raise DatasetError(f"--val-fraction must be in [0, 1), got {val_fraction}")
    if workers < 1:
        raise DatasetError(f"--workers must be >= 1 (rendering processes), got {workers}")
    height, width = size
    cfg = scene or SceneConfig()
    if min(height, width) * cfg.min_size_fraction < 2:
        raise DatasetError(f"--size {height}x{width} is too small: the smallest objects would be under 2 pixels")
    if not 1 <= cfg.min_objects <= cfg.max_objects < 100:
        raise DatasetError("scene object counts must satisfy 1 <= min_objects <= max_objects < 100")
    _prepare(out, overwrite)

    num_val = int(round(images * val_fraction))
    num_train = images - num_val
    per_class = [0] * len(CLASS_NAMES)
    for split, indices in (("train", range(num_train)), ("val", range(num_train, images))):
        image_dir, labels = _split_paths(out, fmt, split)
        image_dir.mkdir(parents=True, exist_ok=True)
        jobs = [(seed, i, height, width, cfg, image_dir) for i in indices]
        if workers > 1 and len(jobs) > 1:
            with multiprocessing.get_context("spawn").Pool(workers) as pool:
                records = pool.map(_render_one, jobs, chunksize=16)
        else:
            records = [_render_one(job) for job in jobs]
        for _, _, objects in records:
            for obj in objects:
                per_class[obj.label] += 1
        if fmt == "coco":
            _write_coco(labels, records, height, width)
        else:
            _write_yolo(labels, records, height, width)
    if fmt == "yolo":
        _write_text(out / "classes.txt", "".join(f"{n}\n" for n in CLASS_NAMES))

    train_images, train_labels = _split_paths(out, fmt, "train")
    val_images, val_labels = _split_paths(out, fmt, "val")
    return SynthSummary(
        root=out,
        fmt=fmt,
        class_names=CLASS_NAMES,
        num_train=num_train,
        num_val=num_val,
        num_objects=sum(per_class),
        objects_per_class=tuple(per_class),
        train_images=train_images,
        val_images=val_images,
        train_labels=train_labels,
        val_labels=val_labels,
    )


def _render_one(job: tuple[int, int, int, int, SceneConfig, Path]) -> tuple[int, str, list[SceneObject]]:
    """Render and write image ``i`` (a top-level function so worker processes can run it)."""
    seed, i, height, width, cfg, image_dir = job
    pixels, objects = render_scene(np.random.default_rng([seed, i]), height, width, cfg)
    name = f"{i:06d}.png"
    Image.fromarray(pixels, "RGB").save(image_dir / name, format="PNG")
    return i, name, objects


def _prepare(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise DatasetError(f"--out {out} exists and is not a directory; choose another output path.")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise DatasetError(f"{out} is not empty; remove it, choose another --out, or rerun with --overwrite.")
        # Remove only what this generator writes, so stale images from a larger earlier run cannot linger.
        for name in ("images", "annotations", "train", "val"):
            if (out / name).is_dir():
                shutil.rmtree(out / name)
        (out / "classes.txt").unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)


def _rounded(box: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    x1, y1, x2, y2 = (round(v, _DECIMALS) for v in box)
    return x1, y1, x2, y2


def _write_coco(path: Path, records: list[tuple[int, str, list[SceneObject]]], height: int, width: int) -> None:
    """COCO instances json; image ids are global index + 1 and annotation ids are unique across splits."""
    images, annotations = [], []
    for i, name, objects in records:
        images.append({"id": i + 1, "file_name": name, "width": width, "height": height})
        for k, obj in enumerate(objects):
            x1, y1, x2, y2 = _rounded(obj.box)
            w, h = round(x2 - x1, _DECIMALS), round(y2 - y1, _DECIMALS)
            annotations.append(
                {
                    # Room for up to 100 objects per image keeps ids unique without a counter across splits.
                    "id": i * 100 + k + 1,
                    "image_id": i + 1,
                    "category_id": obj.label + 1,
                    "bbox": [x1, y1, w, h],
                    "area": round(w * h, _DECIMALS),  # box area: there are no masks
                    "iscrowd": 0,
                }
            )
    categories = [{"id": k + 1, "name": n, "supercategory": "shape"} for k, n in enumerate(CLASS_NAMES)]
    doc = {"images": images, "annotations": annotations, "categories": categories}
    _write_text(path, json.dumps(doc, indent=1, sort_keys=True) + "\n")


def _write_yolo(label_dir: Path, records: list[tuple[int, str, list[SceneObject]]], height: int, width: int) -> None:
    label_dir.mkdir(parents=True, exist_ok=True)
    for _, name, objects in records:
        lines = []
        for obj in objects:
            x1, y1, x2, y2 = obj.box
            cx, cy = (x1 + x2) / 2 / width, (y1 + y2) / 2 / height
            w, h = (x2 - x1) / width, (y2 - y1) / height
            lines.append(f"{obj.label} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}\n")
        _write_text(label_dir / (Path(name).stem + ".txt"), "".join(lines))
