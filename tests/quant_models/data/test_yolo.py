"""YOLO loader: good input with hand-known boxes, each kind of malformed input, and skip_bad."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from quant_models.data import DatasetError, load_yolo

from .helpers import assert_names_entry, write_image

CLASSES = ("a", "b", "c")
GOOD_X = "1 0.5 0.5 0.5 0.5\n\n0 0.25 0.5 0.5 1.0\n"


def _setup(tmp_path: Path, x_label: str = GOOD_X) -> Path:
    write_image(tmp_path / "images" / "x.png", 40, 20)
    write_image(tmp_path / "images" / "w.jpg", 16, 16)  # no label file: a background image
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "x.txt").write_text(x_label)
    return tmp_path


def test_good_input(tmp_path: Path) -> None:
    ds = load_yolo(_setup(tmp_path), CLASSES)
    assert ds.class_names == CLASSES
    assert [s.image_path.name for s in ds.samples] == ["w.jpg", "x.png"]
    w, x = ds.samples
    assert w.boxes.shape == (0, 4)
    # 40x20 image: cx=0.5, w=0.5 -> x 10..30; cy=0.5, h=0.5 -> y 5..15. Then cx=.25, w=.5 -> x 0..20, y 0..20.
    np.testing.assert_allclose(x.boxes, [[10, 5, 30, 15], [0, 0, 20, 20]])
    assert x.labels.tolist() == [1, 0]
    assert (x.width, x.height) == (40, 20)


CASES = {
    "unparseable": ("1 0.5 0.5 0.5 0.5\n1 0.5 0.5\n", ["line 2", "expected 5 fields"]),
    "unparseable_number": ("1 0.5 zero 0.5 0.5\n", ["line 1", "cannot parse"]),
    "outside": ("1 0.5 0.5 0.5 0.5\n\n0 1.5 0.5 0.2 0.2\n", ["line 3", "outside the 40x20 image"]),
    "non_positive": ("0 0.5 0.5 0 0.1\n", ["line 1", "must be positive"]),
    "unknown_class": ("3 0.5 0.5 0.1 0.1\n", ["line 1", "class index 3"]),
}


@pytest.mark.parametrize("kind", sorted(CASES))
def test_malformed_line_raises_naming_file_and_line(tmp_path: Path, kind: str) -> None:
    text, fragments = CASES[kind]
    root = _setup(tmp_path, text)
    with pytest.raises(DatasetError) as err:
        load_yolo(root, CLASSES)
    assert_names_entry(str(err.value), root / "labels" / "x.txt", fragments)


def test_label_without_image_is_missing_image(tmp_path: Path) -> None:
    root = _setup(tmp_path)
    (root / "labels" / "z.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    with pytest.raises(DatasetError, match=r"z\.txt: label file has no image"):
        load_yolo(root, CLASSES)


def test_unreadable_image(tmp_path: Path) -> None:
    root = _setup(tmp_path)
    (root / "images" / "v.png").write_bytes(b"not a png")
    with pytest.raises(DatasetError, match=r"v\.png.*cannot be read"):
        load_yolo(root, CLASSES)


def test_skip_bad_counts_and_warns(tmp_path: Path) -> None:
    root = _setup(tmp_path, "1 0.5 0.5 0.5 0.5\n7 0.5 0.5 0.1 0.1\n0 0.5 0.5 -1 0.1\nbad\n")
    (root / "labels" / "z.txt").write_text("")
    with pytest.warns(UserWarning, match="skipped 4 bad entries"):
        ds = load_yolo(root, CLASSES, skip_bad=True)
    assert ds.skipped == 4
    np.testing.assert_allclose(ds.samples[1].boxes, [[10, 5, 30, 15]])


def test_missing_directories(tmp_path: Path) -> None:
    write_image(tmp_path / "images" / "x.png", 4, 4)
    with pytest.raises(DatasetError, match="labels"):
        load_yolo(tmp_path, CLASSES)
