"""Tests for quant_models.draw."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from quant_models.draw import draw_detections, image_to_hwc_uint8

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
NAMES = ["cat", "dog"]


def _image() -> np.ndarray:
    return np.full((64, 96, 3), 90, dtype=np.uint8)


def _pred(score: float) -> dict[str, np.ndarray]:
    return {
        "boxes": np.array([[10.0, 10.0, 60.0, 50.0]], dtype=np.float32),
        "scores": np.array([score], dtype=np.float32),
        "labels": np.array([1]),
    }


def _empty() -> dict[str, np.ndarray]:
    return {"boxes": np.zeros((0, 4), np.float32), "scores": np.zeros(0, np.float32), "labels": np.zeros(0, int)}


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"))


def test_writes_valid_png_of_expected_size(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "grid.png"  # parent does not exist yet
    out = draw_detections([_image()] * 5, [_pred(0.9)] * 5, NAMES, path, targets=[_empty()] * 5)
    assert out == path
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert len(data) > 1000  # a real rendered figure, not an empty stub
    with Image.open(path) as img:
        # 5 images -> 4 columns x 2 rows of 4x4-inch tiles at 100 dpi = 1600 x 800 pixels.
        assert img.size == (1600, 800)


def test_max_images_limits_grid(tmp_path: Path) -> None:
    path = tmp_path / "grid.png"
    draw_detections([_image()] * 5, [_pred(0.9)] * 5, NAMES, path, max_images=2)
    with Image.open(path) as img:
        assert img.size == (800, 400)  # 2 columns x 1 row of 400-pixel tiles


def test_box_changes_the_drawing_and_threshold_hides_it(tmp_path: Path) -> None:
    none = tmp_path / "none.png"
    with_box = tmp_path / "box.png"
    low = tmp_path / "low.png"
    draw_detections([_image()], [_empty()], NAMES, none)
    draw_detections([_image()], [_pred(0.9)], NAMES, with_box)
    draw_detections([_image()], [_pred(0.1)], NAMES, low, score_threshold=0.3)
    assert not np.array_equal(_pixels(none), _pixels(with_box))
    # A box below score_threshold is not drawn at all: identical to drawing nothing.
    assert np.array_equal(_pixels(none), _pixels(low))


def test_ground_truth_is_drawn(tmp_path: Path) -> None:
    plain = tmp_path / "plain.png"
    with_gt = tmp_path / "gt.png"
    target = {"boxes": np.array([[5.0, 5.0, 40.0, 30.0]]), "labels": np.array([0])}
    draw_detections([_image()], [_empty()], NAMES, plain, targets=[_empty()])
    draw_detections([_image()], [_empty()], NAMES, with_gt, targets=[target])
    assert not np.array_equal(_pixels(plain), _pixels(with_gt))


def test_chw_tensor_images(tmp_path: Path) -> None:
    path = tmp_path / "t.png"
    image = torch.full((3, 64, 96), 0.5)
    preds = [{"boxes": torch.tensor([[1.0, 2.0, 30.0, 40.0]]), "scores": torch.tensor([0.8]),
              "labels": torch.tensor([0])}]
    draw_detections([image], preds, NAMES, path)
    assert path.read_bytes()[:8] == PNG_SIGNATURE


def test_image_to_hwc_uint8() -> None:
    # Float CHW tensor at 0.5 -> HWC, 0.5 * 255 = 127.5 rounds to 128.
    out = image_to_hwc_uint8(torch.full((3, 4, 5), 0.5))
    assert out.shape == (4, 5, 3) and out.dtype == np.uint8
    assert np.all(out == 128)
    # Out-of-range floats are clipped: 2.0 -> 255, -1.0 -> 0.
    out = image_to_hwc_uint8(torch.tensor([[[2.0, -1.0]]]))  # (1, 1, 2) single channel
    assert out.shape == (1, 2, 3)
    assert out[0, :, 0].tolist() == [255, 0]
    # Grayscale uint8 HW numpy is replicated to three channels unchanged.
    gray = np.array([[7, 9]], dtype=np.uint8)
    assert image_to_hwc_uint8(gray).tolist() == [[[7, 7, 7], [9, 9, 9]]]


def test_rejects_too_few_predictions(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        draw_detections([_image()] * 2, [_pred(0.9)], NAMES, tmp_path / "x.png")
