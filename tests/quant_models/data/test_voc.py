"""VOC loader: good input with hand-known boxes, each kind of malformed input, and skip_bad."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from quant_models.data import DatasetError, load_voc

from .helpers import assert_names_entry, write_image


def _xml(filename: str, objects: list[tuple[str, int, int, int, int]], size: tuple[int, int] | None = (20, 10)) -> str:
    objs = "".join(
        f"<object><name>{n}</name><difficult>0</difficult><bndbox><xmin>{a}</xmin><ymin>{b}</ymin>"
        f"<xmax>{c}</xmax><ymax>{d}</ymax></bndbox></object>"
        for n, a, b, c, d in objects
    )
    sz = "" if size is None else f"<size><width>{size[0]}</width><height>{size[1]}</height><depth>3</depth></size>"
    return f"<annotation><filename>{filename}</filename>{sz}{objs}</annotation>"


def _setup(tmp_path: Path, first: str | None = None) -> Path:
    """Two images: 0002 (20x10, a dog and a cat) and 0001 (16x16, one cat, no <size>)."""
    write_image(tmp_path / "JPEGImages" / "0001.jpg", 16, 16)
    write_image(tmp_path / "JPEGImages" / "0002.jpg", 20, 10)
    ann = tmp_path / "Annotations"
    ann.mkdir()
    (ann / "0002.xml").write_text(first or _xml("0002.jpg", [("dog", 1, 1, 10, 5), ("cat", 3, 4, 8, 9)]))
    (ann / "0001.xml").write_text(_xml("0001.jpg", [("cat", 1, 1, 16, 16)], size=None))
    (ann / "0003.xml").write_text(_xml("0003.jpg", [("bird", 1, 1, 2, 2)]))  # not in the split
    (tmp_path / "ImageSets" / "Main").mkdir(parents=True)
    (tmp_path / "ImageSets" / "Main" / "train.txt").write_text("0002\n0001\n")
    return tmp_path


def test_good_input(tmp_path: Path) -> None:
    ds = load_voc(_setup(tmp_path), "train")
    # Classes come from all annotation files (so splits agree), sorted.
    assert ds.class_names == ("bird", "cat", "dog")
    assert [s.image_path.name for s in ds.samples] == ["0001.jpg", "0002.jpg"]
    one, two = ds.samples
    # 1-based inclusive VOC pixels: xmin..xmax -> [xmin - 1, xmax).
    np.testing.assert_allclose(one.boxes, [[0, 0, 16, 16]])
    np.testing.assert_allclose(two.boxes, [[0, 0, 10, 5], [2, 3, 8, 9]])
    assert two.labels.tolist() == [2, 1] and one.labels.tolist() == [1]
    assert ds.skipped == 0


def test_given_class_list(tmp_path: Path) -> None:
    ds = load_voc(_setup(tmp_path), "train", class_names=["dog", "cat"])
    assert ds.class_names == ("dog", "cat")
    assert ds.samples[1].labels.tolist() == [0, 1]


CASES = {
    "unparseable": ("<annotation><object>", ["0002.xml", "not well-formed XML"]),
    "outside": (_xml("0002.jpg", [("dog", 1, 1, 10, 5), ("cat", 3, 4, 30, 9)]), ["0002.xml", "object 1", "outside"]),
    "non_positive": (_xml("0002.jpg", [("dog", 5, 1, 3, 5)]), ["0002.xml", "object 0", "non-positive"]),
    "missing_image": (_xml("nope.jpg", [("dog", 1, 1, 10, 5)]), ["0002.xml", "nope.jpg", "does not exist"]),
    "size_mismatch": (_xml("0002.jpg", [("dog", 1, 1, 10, 5)], size=(21, 10)), ["0002.xml", "21x10"]),
    "bad_number": (_xml("0002.jpg", [("dog", 1, 1, 10, 5)]).replace("<xmax>10", "<xmax>ten"), ["object 0", "numeric"]),
}


@pytest.mark.parametrize("kind", sorted(CASES))
def test_malformed_input_raises_naming_file_and_entry(tmp_path: Path, kind: str) -> None:
    text, fragments = CASES[kind]
    root = _setup(tmp_path, text)
    with pytest.raises(DatasetError) as err:
        load_voc(root, "train")
    assert_names_entry(str(err.value), root / "Annotations" / "0002.xml", fragments)


def test_unknown_class_with_given_list(tmp_path: Path) -> None:
    root = _setup(tmp_path)
    with pytest.raises(DatasetError) as err:
        load_voc(root, "train", class_names=["dog"])
    assert "0002.xml: object 1 ('cat')" in str(err.value) and "not in the class list" in str(err.value)


def test_missing_annotation_file(tmp_path: Path) -> None:
    root = _setup(tmp_path)
    (root / "ImageSets" / "Main" / "train.txt").write_text("0002\n0009\n")
    with pytest.raises(DatasetError, match=r"0009\.xml.*does not exist"):
        load_voc(root, "train")


def test_skip_bad_counts_and_warns(tmp_path: Path) -> None:
    root = _setup(tmp_path, _xml("0002.jpg", [("dog", 1, 1, 10, 5), ("cat", 3, 4, 30, 9), ("dog", 5, 1, 3, 5)]))
    (root / "ImageSets" / "Main" / "train.txt").write_text("0002\n0001\n0009\n")
    with pytest.warns(UserWarning, match="skipped 3 bad entries"):
        ds = load_voc(root, "train", skip_bad=True)
    assert ds.skipped == 3
    np.testing.assert_allclose(ds.samples[1].boxes, [[0, 0, 10, 5]])


def test_missing_split_file(tmp_path: Path) -> None:
    root = _setup(tmp_path)
    with pytest.raises(DatasetError, match=r"val\.txt"):
        load_voc(root, "val")
