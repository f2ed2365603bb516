"""COCO-format detection loader (``instances_*.json`` plus an image folder)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from quant_models.data._common import BadEntries, check_box, image_size, make_sample
from quant_models.data.types import DatasetError, DetectionSet


def _is_number(value: Any) -> bool:
    # bool is an int subclass, but a True/False coordinate is certainly a mistake.
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _read_categories(path: Path, raw: list[Any]) -> tuple[tuple[str, ...], dict[int, int]]:
    """Map category ids (any ints) to contiguous label indices, ordered by id."""
    names: dict[int, str] = {}
    for k, cat in enumerate(raw):
        if not isinstance(cat, dict) or not isinstance(cat.get("id"), int) or not isinstance(cat.get("name"), str):
            raise DatasetError(f"{path}: categories[{k}] needs an integer 'id' and a string 'name'; fix the file.")
        if cat["id"] in names:
            raise DatasetError(f"{path}: categories[{k}] repeats category id {cat['id']}; fix the file.")
        names[cat["id"]] = cat["name"]
    if not names:
        raise DatasetError(f"{path}: 'categories' is empty; a detection set needs at least one class.")
    ids = sorted(names)
    return tuple(names[i] for i in ids), {cid: label for label, cid in enumerate(ids)}


def load_coco(annotation_json: Path, image_dir: Path, skip_bad: bool = False) -> DetectionSet:
    """Load a COCO detection split.

    Class indices follow the category ids in ascending order. ``iscrowd=1`` annotations are crowd regions,
    not objects, and are left out (as COCO training usually does). Images without annotations are kept as
    background samples. Samples are sorted by ``file_name``.

    Raises :class:`DatasetError` naming the file and entry for malformed input; with ``skip_bad=True``, bad
    images and annotations are skipped, counted in ``DetectionSet.skipped`` and reported with a warning.
    """
    annotation_json, image_dir = Path(annotation_json), Path(image_dir)
    try:
        doc = json.loads(annotation_json.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DatasetError(f"{annotation_json}: annotation file does not exist; check the path.") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatasetError(f"{annotation_json}: not valid JSON ({exc}); fix or regenerate the file.") from None
    keys = ("images", "annotations", "categories")
    if not isinstance(doc, dict) or not all(isinstance(doc.get(k), list) for k in keys):
        raise DatasetError(
            f"{annotation_json}: expected a JSON object with lists 'images', 'annotations' and 'categories'; "
            "fix or regenerate the file."
        )
    class_names, cat_to_label = _read_categories(annotation_json, doc["categories"])
    issues = BadEntries("load_coco", skip_bad)

    images: dict[int, tuple[str, int, int]] = {}  # id -> (file_name, width, height)
    for k, img in enumerate(doc["images"]):
        where = f"{annotation_json}: images[{k}]"
        if not isinstance(img, dict) or not isinstance(img.get("id"), int) or not isinstance(img.get("file_name"), str):
            issues.bad(f"{where} needs an integer 'id' and a string 'file_name'.")
            continue
        where += f" (id={img['id']}, file_name={img['file_name']!r})"
        if img["id"] in images:
            issues.bad(f"{where} repeats an image id.")
            continue
        size = image_size(image_dir / img["file_name"])
        if isinstance(size, str):
            issues.bad(f"{where}: {size}.")
            continue
        declared = (img.get("width"), img.get("height"))
        if declared != (None, None) and declared != size:
            issues.bad(f"{where} declares size {declared[0]}x{declared[1]} but the image is {size[0]}x{size[1]}.")
            continue
        images[img["id"]] = (img["file_name"], size[0], size[1])

    listed_ids = {i.get("id") for i in doc["images"] if isinstance(i, dict) and isinstance(i.get("id"), int)}
    objects: dict[int, tuple[list[tuple[float, float, float, float]], list[int]]] = {i: ([], []) for i in images}
    for k, ann in enumerate(doc["annotations"]):
        where = f"{annotation_json}: annotations[{k}]"
        if not isinstance(ann, dict):
            issues.bad(f"{where} is not a JSON object.")
            continue
        where = f"{annotation_json}: annotation id={ann.get('id')} (annotations[{k}])"
        if ann.get("iscrowd", 0):
            continue
        bbox = ann.get("bbox")
        if not isinstance(ann.get("image_id"), int) or not isinstance(ann.get("category_id"), int):
            issues.bad(f"{where} needs integer 'image_id' and 'category_id'.")
            continue
        if not isinstance(bbox, list) or len(bbox) != 4 or not all(_is_number(v) for v in bbox):
            issues.bad(f"{where}: 'bbox' must be a list of 4 numbers [x, y, width, height], got {bbox!r}.")
            continue
        if ann["category_id"] not in cat_to_label:
            issues.bad(f"{where}: category_id {ann['category_id']} is not among the categories {sorted(cat_to_label)}.")
            continue
        if ann["image_id"] not in images:
            # Either the image entry itself was bad (already reported) or it never existed.
            if ann["image_id"] not in listed_ids:
                issues.bad(f"{where}: image_id {ann['image_id']} is not among the images.")
            continue
        _, width, height = images[ann["image_id"]]
        x, y, w, h = (float(v) for v in bbox)
        box = check_box(x, y, x + w, y + h, width, height)
        if isinstance(box, str):
            issues.bad(f"{where}: {box}.")
            continue
        objects[ann["image_id"]][0].append(box)
        objects[ann["image_id"]][1].append(cat_to_label[ann["category_id"]])

    order = sorted(images, key=lambda i: (images[i][0], i))
    samples = tuple(
        make_sample(image_dir / images[i][0], images[i][1], images[i][2], objects[i][0], objects[i][1]) for i in order
    )
    skipped = issues.finish(annotation_json)
    return DetectionSet(class_names=class_names, samples=samples, root=image_dir, skipped=skipped)
