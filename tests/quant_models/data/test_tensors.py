"""to_tensors and iterate_batches: shapes, normalisation, padding, truncation and the cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from quant_models.data import DetectionSet, Sample, iterate_batches, to_tensors
from quant_models.data import tensors as tensors_mod

from .helpers import write_image


def _set(tmp_path: Path) -> DetectionSet:
    a = write_image(tmp_path / "a.png", 20, 10, colour=(10, 20, 30))
    b = write_image(tmp_path / "b.png", 8, 8, colour=(200, 100, 0))
    samples = (
        Sample(a, 20, 10, np.array([[2, 3, 6, 8], [0, 0, 20, 10]], np.float32), np.array([1, 0], np.int64)),
        Sample(b, 8, 8, np.zeros((0, 4), np.float32), np.zeros((0,), np.int64)),
    )
    return DetectionSet(class_names=("u", "v"), samples=samples, root=tmp_path)


def test_shapes_normalisation_and_padding(tmp_path: Path) -> None:
    t = to_tensors(_set(tmp_path), size=(6, 12))
    assert t.images.dtype == torch.uint8 and t.images.shape == (2, 3, 6, 12)
    assert t.boxes.dtype == torch.float32 and t.boxes.shape == (2, 2, 4)
    assert t.labels.dtype == torch.int64 and t.labels.shape == (2, 2)
    # (2, 3, 6, 8) in a 20x10 image -> (0.1, 0.3, 0.3, 0.8), whatever the resize.
    assert t.boxes[0, 0].tolist() == pytest.approx([0.1, 0.3, 0.3, 0.8])
    assert t.boxes[0, 1].tolist() == pytest.approx([0.0, 0.0, 1.0, 1.0])
    assert t.labels.tolist() == [[1, 0], [-1, -1]]
    assert t.boxes[1].abs().sum().item() == 0
    # Solid-colour images stay that colour under bilinear resizing, channels in RGB order.
    assert t.images[0, :, 3, 5].tolist() == [10, 20, 30]
    assert t.images[1, :, 0, 0].tolist() == [200, 100, 0]
    assert t.class_names == ("u", "v") and len(t) == 2


def test_max_objects_keeps_largest_with_warning(tmp_path: Path) -> None:
    with pytest.warns(UserWarning, match="dropped 1 objects"):
        t = to_tensors(_set(tmp_path), size=(4, 4), max_objects=1)
    assert t.labels.tolist() == [[0], [-1]]  # the full-image box (label 0) is the larger one
    assert t.boxes[0, 0].tolist() == pytest.approx([0, 0, 1, 1])


def test_cache_is_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ds = _set(tmp_path)
    first = to_tensors(ds, size=(6, 12), cache_dir=tmp_path / "cache")
    assert len(list((tmp_path / "cache").glob("tensors-*.npz"))) == 1

    def fail(*args: object) -> None:
        raise AssertionError("cache miss: images were decoded again")

    monkeypatch.setattr(tensors_mod, "_build", fail)
    second = to_tensors(ds, size=(6, 12), cache_dir=tmp_path / "cache")
    assert torch.equal(first.images, second.images) and torch.equal(first.boxes, second.boxes)
    assert torch.equal(first.labels, second.labels)
    with pytest.raises(AssertionError, match="cache miss"):  # another size is another key
        to_tensors(ds, size=(6, 6), cache_dir=tmp_path / "cache")


def _corrupt_truncated(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:100])  # a writer killed half-way, or a full disk


def _corrupt_garbage(path: Path) -> None:
    path.write_bytes(b"this is not an npz archive\n" * 10)


def _corrupt_wrong_arrays(path: Path) -> None:
    np.savez(path, images=np.zeros((1, 3, 2, 2), np.uint8))  # a readable archive of the wrong arrays


@pytest.mark.parametrize("corrupt", [_corrupt_truncated, _corrupt_garbage, _corrupt_wrong_arrays])
def test_unreadable_cache_is_rebuilt_with_a_warning(tmp_path: Path, corrupt) -> None:
    ds = _set(tmp_path)
    fresh = to_tensors(ds, size=(6, 12))  # no cache involved: what the data set gives
    to_tensors(ds, size=(6, 12), cache_dir=tmp_path / "cache")
    (cache,) = (tmp_path / "cache").glob("tensors-*.npz")
    corrupt(cache)
    with pytest.warns(UserWarning, match=r"tensor cache .*tensors-.*\.npz is unreadable.*rebuilding"):
        rebuilt = to_tensors(ds, size=(6, 12), cache_dir=tmp_path / "cache")
    assert torch.equal(rebuilt.images, fresh.images) and torch.equal(rebuilt.boxes, fresh.boxes)
    assert torch.equal(rebuilt.labels, fresh.labels)
    # The bad file was replaced by a good one: the next call reads it back without a warning.
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [cache.name]
    with np.load(cache) as z:
        assert z["images"].shape == (2, 3, 6, 12) and z["labels"].tolist() == [[1, 0], [-1, -1]]


def test_iterate_batches(tmp_path: Path) -> None:
    t = tensors_mod.DetectionTensors(
        images=torch.zeros(5, 3, 2, 2, dtype=torch.uint8),
        boxes=torch.zeros(5, 1, 4),
        labels=torch.zeros(5, 1, dtype=torch.int64),
        class_names=("x",),
    )
    plain = list(iterate_batches(t, 2, shuffle=False))
    assert [b.tolist() for b in plain] == [[0, 1], [2, 3], [4]]
    assert [len(b) for b in iterate_batches(t, 2, shuffle=False, drop_last=True)] == [2, 2]
    s1 = torch.cat(list(iterate_batches(t, 2, shuffle=True, generator=torch.Generator().manual_seed(3))))
    s2 = torch.cat(list(iterate_batches(t, 2, shuffle=True, generator=torch.Generator().manual_seed(3))))
    assert s1.tolist() == s2.tolist() and sorted(s1.tolist()) == [0, 1, 2, 3, 4]
