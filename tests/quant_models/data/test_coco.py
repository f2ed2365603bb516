"""COCO loader: good input with hand-known boxes, each kind of malformed input, and skip_bad."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from quant_models.data import DatasetError, load_coco

from .helpers import assert_names_entry, write_image


def _doc() -> dict[str, Any]:
    return {
        "images": [
            {"id": 10, "file_name": "b.png", "width": 30, "height": 30},
            {"id": 11, "file_name": "a.png", "width": 20, "height": 10},
            {"id": 12, "file_name": "c.png"},
        ],
        "annotations": [
            {"id": 1, "image_id": 10, "category_id": 3, "bbox": [2, 3, 4, 5], "iscrowd": 0},
            {"id": 2, "image_id": 11, "category_id": 1, "bbox": [0, 0, 20, 10], "iscrowd": 0},
            {"id": 3, "image_id": 11, "category_id": 3, "bbox": [15, 5, 5.5, 5], "iscrowd": 0},  # 0.5 px over
            {"id": 4, "image_id": 10, "category_id": 1, "bbox": [0, 0, 30, 30], "iscrowd": 1},  # crowd: ignored
        ],
        "categories": [{"id": 3, "name": "dog"}, {"id": 1, "name": "cat"}],
    }


def _setup(tmp_path: Path, doc: dict[str, Any] | str) -> tuple[Path, Path]:
    images = tmp_path / "images"
    write_image(images / "a.png", 20, 10)
    write_image(images / "b.png", 30, 30)
    write_image(images / "c.png", 8, 8)
    ann = tmp_path / "instances.json"
    ann.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return ann, images


def test_good_input(tmp_path: Path) -> None:
    ann, images = _setup(tmp_path, _doc())
    ds = load_coco(ann, images)
    assert ds.class_names == ("cat", "dog")  # ordered by category id: 1, 3
    assert [s.image_path.name for s in ds.samples] == ["a.png", "b.png", "c.png"]
    a, b, c = ds.samples
    assert (a.width, a.height, c.width, c.height) == (20, 10, 8, 8)
    np.testing.assert_allclose(a.boxes, [[0, 0, 20, 10], [15, 5, 20, 10]])  # second clipped from x2=20.5
    assert a.labels.tolist() == [0, 1]
    np.testing.assert_allclose(b.boxes, [[2, 3, 6, 8]])
    assert b.labels.tolist() == [1]
    assert c.boxes.shape == (0, 4) and c.labels.shape == (0,)
    assert b.boxes.dtype == np.float32 and b.labels.dtype == np.int64
    assert ds.skipped == 0


def _mutate(kind: str) -> tuple[dict[str, Any] | str, list[str]]:
    """A broken document and the fragments its error message must contain."""
    doc = _doc()
    if kind == "unparseable":
        return '{"images": [', ["not valid JSON"]
    if kind == "outside":
        doc["annotations"][0]["bbox"] = [25, 3, 10, 5]
        return doc, ["annotation id=1", "outside the 30x30 image"]
    if kind == "non_positive":
        doc["annotations"][1]["bbox"] = [1, 1, 0, 3]
        return doc, ["annotation id=2", "non-positive"]
    if kind == "unknown_class":
        doc["annotations"][1]["category_id"] = 9
        return doc, ["annotation id=2", "category_id 9"]
    if kind == "missing_image":
        doc["images"][2]["file_name"] = "gone.png"
        return doc, ["images[2]", "gone.png", "does not exist"]
    if kind == "size_mismatch":
        doc["images"][0]["width"] = 31
        return doc, ["images[0]", "b.png", "31x30", "30x30"]
    if kind == "bad_bbox_field":
        doc["annotations"][0]["bbox"] = [1, 2, 3]
        return doc, ["annotation id=1", "'bbox'"]
    if kind == "unknown_image":
        doc["annotations"][0]["image_id"] = 99
        return doc, ["annotation id=1", "image_id 99"]
    raise AssertionError(kind)


KINDS = ["unparseable", "outside", "non_positive", "unknown_class", "missing_image", "size_mismatch",
         "bad_bbox_field", "unknown_image"]


@pytest.mark.parametrize("kind", KINDS)
def test_malformed_input_raises_naming_file_and_entry(tmp_path: Path, kind: str) -> None:
    doc, fragments = _mutate(kind)
    ann, images = _setup(tmp_path, doc)
    with pytest.raises(DatasetError) as err:
        load_coco(ann, images)
    assert_names_entry(str(err.value), ann, fragments, skip_hint=kind != "unparseable")


def test_skip_bad_counts_and_warns(tmp_path: Path) -> None:
    doc = _doc()
    doc["annotations"][0]["bbox"] = [25, 3, 10, 5]  # bad box on b.png
    doc["annotations"][1]["category_id"] = 9  # bad class on a.png
    doc["images"][2]["file_name"] = "gone.png"  # missing image
    ann, images = _setup(tmp_path, doc)
    with pytest.warns(UserWarning, match="skipped 3 bad entries"):
        ds = load_coco(ann, images, skip_bad=True)
    assert ds.skipped == 3
    assert [s.image_path.name for s in ds.samples] == ["a.png", "b.png"]
    np.testing.assert_allclose(ds.samples[0].boxes, [[15, 5, 20, 10]])
    assert ds.samples[1].boxes.shape == (0, 4)


def test_unparseable_is_not_skippable(tmp_path: Path) -> None:
    ann, images = _setup(tmp_path, "[1, 2")
    with pytest.raises(DatasetError, match="not valid JSON"):
        load_coco(ann, images, skip_bad=True)
