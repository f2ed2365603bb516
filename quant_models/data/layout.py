"""Detect which on-disk layout (COCO, YOLO, VOC) a data set root uses and load one split of it."""

from __future__ import annotations

from pathlib import Path

from quant_models.data.coco import load_coco
from quant_models.data.types import DatasetError, DetectionSet
from quant_models.data.voc import load_voc
from quant_models.data.yolo import load_yolo, read_class_names


def coco_paths(root: Path, split: str) -> tuple[Path, Path]:
    """The annotation file and image folder of a COCO split as :func:`generate_synthetic` writes it."""
    return root / "annotations" / f"instances_{split}.json", root / "images" / split


def detect_layout(root: Path, split: str) -> str | None:
    """Return ``"coco"``, ``"yolo"`` or ``"voc"`` for the first layout whose files for ``split`` exist, else None."""
    root = Path(root)
    ann, images = coco_paths(root, split)
    if ann.is_file() and images.is_dir():
        return "coco"
    if (root / split / "images").is_dir() and (root / split / "labels").is_dir() and (root / "classes.txt").is_file():
        return "yolo"
    if (root / "Annotations").is_dir() and (root / "ImageSets" / "Main" / f"{split}.txt").is_file():
        return "voc"
    return None


def load_dataset(root: Path, split: str, skip_bad: bool = False) -> DetectionSet:
    """Load ``split`` of the data set under ``root``, auto-detecting its layout.

    Looked for, in this order:

    * COCO: ``root/annotations/instances_<split>.json`` and ``root/images/<split>/``
    * YOLO: ``root/<split>/images/``, ``root/<split>/labels/`` and ``root/classes.txt``
    * VOC: ``root/Annotations/``, ``root/JPEGImages/`` and ``root/ImageSets/Main/<split>.txt``

    Raises :class:`DatasetError` naming ``root`` and these layouts if none matches.
    """
    root = Path(root)
    layout = detect_layout(root, split)
    if layout == "coco":
        ann, images = coco_paths(root, split)
        return load_coco(ann, images, skip_bad=skip_bad)
    if layout == "yolo":
        return load_yolo(root / split, read_class_names(root / "classes.txt"), skip_bad=skip_bad)
    if layout == "voc":
        return load_voc(root, split, skip_bad=skip_bad)
    raise DatasetError(
        f"{root}: no detection data set found for split {split!r}. Looked for "
        f"COCO (annotations/instances_{split}.json with images/{split}/), "
        f"YOLO ({split}/images/ and {split}/labels/ with classes.txt), "
        f"VOC (Annotations/, JPEGImages/ and ImageSets/Main/{split}.txt). "
        "Check the path and split name, or convert the data to one of these layouts."
    )
