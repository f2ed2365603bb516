"""load_dataset: auto-detection of COCO, YOLO and VOC layouts, and its error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from quant_models.data import DatasetError, load_dataset

from .helpers import write_image


def test_detects_coco(tmp_path: Path) -> None:
    write_image(tmp_path / "images" / "val" / "a.png", 8, 6)
    (tmp_path / "annotations").mkdir()
    doc = {
        "images": [{"id": 1, "file_name": "a.png", "width": 8, "height": 6}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 2, 2]}],
        "categories": [{"id": 1, "name": "thing"}],
    }
    (tmp_path / "annotations" / "instances_val.json").write_text(json.dumps(doc))
    ds = load_dataset(tmp_path, "val")
    assert ds.class_names == ("thing",) and ds.samples[0].boxes.tolist() == [[1, 1, 3, 3]]


def test_detects_yolo(tmp_path: Path) -> None:
    write_image(tmp_path / "train" / "images" / "a.png", 10, 10)
    (tmp_path / "train" / "labels").mkdir()
    (tmp_path / "train" / "labels" / "a.txt").write_text("1 0.5 0.5 0.2 0.4\n")
    (tmp_path / "classes.txt").write_text("p\nq\n")
    ds = load_dataset(tmp_path, "train")
    assert ds.class_names == ("p", "q")
    assert ds.samples[0].boxes[0].tolist() == pytest.approx([4, 3, 6, 7])


def test_detects_voc(tmp_path: Path) -> None:
    write_image(tmp_path / "JPEGImages" / "7.jpg", 10, 10)
    (tmp_path / "Annotations").mkdir()
    (tmp_path / "Annotations" / "7.xml").write_text(
        "<annotation><filename>7.jpg</filename><object><name>r</name>"
        "<bndbox><xmin>2</xmin><ymin>3</ymin><xmax>4</xmax><ymax>5</ymax></bndbox></object></annotation>"
    )
    (tmp_path / "ImageSets" / "Main").mkdir(parents=True)
    (tmp_path / "ImageSets" / "Main" / "test.txt").write_text("7\n")
    ds = load_dataset(tmp_path, "test")
    assert ds.class_names == ("r",) and ds.samples[0].boxes.tolist() == [[1, 2, 4, 5]]


def test_unknown_layout_error_names_directory_and_layouts(tmp_path: Path) -> None:
    (tmp_path / "stuff").mkdir()
    with pytest.raises(DatasetError) as err:
        load_dataset(tmp_path, "train")
    msg = str(err.value)
    assert str(tmp_path) in msg and "'train'" in msg
    for fragment in ("COCO", "annotations/instances_train.json", "YOLO", "classes.txt", "VOC",
                     "ImageSets/Main/train.txt"):
        assert fragment in msg
