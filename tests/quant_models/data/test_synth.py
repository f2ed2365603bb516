"""Synthetic generator: determinism, honoured ranges, tight boxes, and generate -> load round trips."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from quant_models.data import DatasetError, generate_synthetic, load_coco, load_dataset, load_yolo
from quant_models.data.synth_render import SceneConfig, _coverage, _place_objects


def _digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.mark.parametrize("fmt", ["coco", "yolo"])
def test_same_seed_gives_identical_bytes(tmp_path: Path, fmt: str) -> None:
    generate_synthetic(tmp_path / "a", 12, seed=7, size=(64, 80), fmt=fmt)
    generate_synthetic(tmp_path / "b", 12, seed=7, size=(64, 80), fmt=fmt)
    generate_synthetic(tmp_path / "c", 12, seed=8, size=(64, 80), fmt=fmt)
    a, b, c = _digest(tmp_path / "a"), _digest(tmp_path / "b"), _digest(tmp_path / "c")
    assert len(a) > 12 and a == b
    assert a.keys() == c.keys()
    # Every image differs under another seed.
    images = [k for k in a if k.endswith(".png")]
    assert len(images) == 12
    assert all(a[k] != c[k] for k in images)


def test_worker_processes_write_the_same_bytes(tmp_path: Path) -> None:
    generate_synthetic(tmp_path / "one", 10, seed=5, size=(48, 64), fmt="coco")
    generate_synthetic(tmp_path / "two", 10, seed=5, size=(48, 64), fmt="coco", workers=2)
    assert _digest(tmp_path / "one") == _digest(tmp_path / "two")


def test_layout_counts_and_split(tmp_path: Path) -> None:
    s = generate_synthetic(tmp_path / "coco", 10, seed=1, size=(48, 48), fmt="coco", val_fraction=0.3)
    assert (s.num_train, s.num_val) == (7, 3)
    assert sorted(p.name for p in (tmp_path / "coco/images/train").iterdir()) == [f"{i:06d}.png" for i in range(7)]
    val_names = sorted(p.name for p in (tmp_path / "coco/images/val").iterdir())
    assert val_names == ["000007.png", "000008.png", "000009.png"]
    assert (tmp_path / "coco/annotations/instances_val.json").is_file()
    y = generate_synthetic(tmp_path / "yolo", 10, seed=1, size=(48, 48), fmt="yolo", val_fraction=0.3)
    assert (tmp_path / "yolo/classes.txt").read_text() == "circle\nsquare\ntriangle\ncross\n"
    assert len(list((tmp_path / "yolo/val/labels").glob("*.txt"))) == 3
    assert y.objects_per_class == s.objects_per_class  # the same scenes, whatever the format


def test_refuses_non_empty_output_unless_overwrite(tmp_path: Path) -> None:
    generate_synthetic(tmp_path, 4, seed=0, size=(48, 48))
    with pytest.raises(DatasetError, match="--overwrite"):
        generate_synthetic(tmp_path, 4, seed=0, size=(48, 48))
    s = generate_synthetic(tmp_path, 2, seed=0, size=(48, 48), overwrite=True, val_fraction=0.5)
    assert s.num_train == 1 and len(list((tmp_path / "images/train").iterdir())) == 1


def test_ranges_are_honoured(tmp_path: Path) -> None:
    h, w = 100, 120
    s = generate_synthetic(tmp_path, 60, seed=3, size=(h, w), fmt="coco", val_fraction=0.0)
    doc = json.loads((tmp_path / "annotations/instances_train.json").read_text())
    assert [c["id"] for c in doc["categories"]] == [1, 2, 3, 4]
    per_image: dict[int, int] = {}
    extents = []
    for a in doc["annotations"]:
        per_image[a["image_id"]] = per_image.get(a["image_id"], 0) + 1
        x, y, bw, bh = a["bbox"]
        assert a["category_id"] in (1, 2, 3, 4) and a["iscrowd"] == 0
        assert x >= 0 and y >= 0 and x + bw <= w + 1e-3 and y + bh <= h + 1e-3
        extents.append(max(bw, bh))
    assert len(per_image) == 60  # every image has at least one object
    assert all(1 <= n <= 8 for n in per_image.values())
    assert max(per_image.values()) >= 6  # the upper part of the range is actually used
    # Larger box side between 6 % and 40 % of the shorter side (100 px): 6..40 px, up to rounding.
    assert min(extents) >= 6 - 1e-3 and max(extents) <= 40 + 1e-3
    assert min(extents) < 10  # small objects do occur
    assert all(n > 0 for n in s.objects_per_class)


def test_boxes_are_tight_around_drawn_pixels() -> None:
    rng = np.random.default_rng(5)
    cfg = SceneConfig()
    for _ in range(20):
        for obj, geom in _place_objects(rng, 96, 96, cfg):
            # The renderer's 4x4 supersampling: a pixel is drawn when any of its 16 sample points is inside.
            xs = (np.arange(96 * 4) + 0.5) / 4
            mask = _coverage(geom, xs, xs).reshape(96, 4, 96, 4).any(axis=(1, 3))
            rows, cols = np.nonzero(mask)
            x1, y1, x2, y2 = obj.box
            # Drawn pixels span the geometric box to within one pixel on each side.
            assert abs(cols.min() - x1) <= 1 and abs(cols.max() + 1 - x2) <= 1
            assert abs(rows.min() - y1) <= 1 and abs(rows.max() + 1 - y2) <= 1


def test_occlusion_is_limited() -> None:
    rng = np.random.default_rng(11)
    cfg = SceneConfig()
    for _ in range(30):
        boxes = [o.box for o, _ in _place_objects(rng, 64, 64, cfg)]
        for i, a in enumerate(boxes):
            for b in boxes[:i]:
                iw = min(a[2], b[2]) - max(a[0], b[0])
                ih = min(a[3], b[3]) - max(a[1], b[1])
                inter = max(iw, 0) * max(ih, 0)
                area_a = (a[2] - a[0]) * (a[3] - a[1])
                area_b = (b[2] - b[0]) * (b[3] - b[1])
                assert inter / (area_a + area_b - inter) <= 0.5 + 1e-9
                assert inter / area_b <= 0.5 + 1e-9  # the earlier (underneath) object stays half uncovered


def test_coco_round_trip(tmp_path: Path) -> None:
    generate_synthetic(tmp_path, 8, seed=2, size=(64, 64), fmt="coco", val_fraction=0.25)
    doc = json.loads((tmp_path / "annotations/instances_train.json").read_text())
    ds = load_coco(tmp_path / "annotations/instances_train.json", tmp_path / "images/train")
    assert ds.class_names == ("circle", "square", "triangle", "cross") and ds.skipped == 0
    assert [s.image_path.name for s in ds.samples] == [f"{i:06d}.png" for i in range(6)]
    for s in ds.samples:
        image_id = int(s.image_path.stem) + 1
        anns = [a for a in doc["annotations"] if a["image_id"] == image_id]
        expected = np.array([[x, y, x + bw, y + bh] for x, y, bw, bh in (a["bbox"] for a in anns)])
        np.testing.assert_allclose(s.boxes, expected, atol=1e-3)
        assert s.labels.tolist() == [a["category_id"] - 1 for a in anns]
        assert (s.width, s.height) == (64, 64)
    assert len(load_dataset(tmp_path, "val")) == 2


def test_yolo_round_trip(tmp_path: Path) -> None:
    generate_synthetic(tmp_path, 6, seed=4, size=(50, 80), fmt="yolo", val_fraction=0.5)
    ds = load_yolo(tmp_path / "val", ("circle", "square", "triangle", "cross"))
    assert [s.image_path.name for s in ds.samples] == ["000003.png", "000004.png", "000005.png"]
    for s in ds.samples:
        label_file = tmp_path / "val/labels" / f"{s.image_path.stem}.txt"
        rows = [line.split() for line in label_file.read_text().splitlines()]
        assert s.labels.tolist() == [int(r[0]) for r in rows]
        for box, r in zip(s.boxes, rows):
            cx, cy, bw, bh = (float(v) for v in r[1:])
            expected = [(cx - bw / 2) * 80, (cy - bh / 2) * 50, (cx + bw / 2) * 80, (cy + bh / 2) * 50]
            np.testing.assert_allclose(box, expected, atol=1e-3)
    assert load_dataset(tmp_path, "train").class_names[3] == "cross"


def test_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="--format must be 'coco' or 'yolo'"):
        generate_synthetic(tmp_path / "x", 2, seed=0, fmt="voc")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="--size 16x16 is too small"):
        generate_synthetic(tmp_path / "y", 2, seed=0, size=(16, 16))
    with pytest.raises(DatasetError):
        load_dataset(tmp_path / "nothing", "train")
