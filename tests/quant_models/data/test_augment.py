"""augment_batch: hand-computed box transforms, box/pixel agreement, dropping, value range, determinism."""

from __future__ import annotations

import pytest
import torch

from quant_models.data import AugmentConfig, augment_batch

NO_COLOUR = dict(brightness=0.0, contrast=0.0, saturation=0.0, channel_gain=0.0)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_hflip_alone_mirrors_box_and_image() -> None:
    cfg = AugmentConfig(hflip_p=1.0, scale_range=(1.0, 1.0), translate=0.0, **NO_COLOUR)
    images = torch.randint(0, 256, (2, 3, 10, 20), dtype=torch.uint8, generator=_gen(9))
    boxes = torch.tensor([[[0.1, 0.2, 0.4, 0.6]], [[0.0, 0.0, 0.5, 1.0]]])
    labels = torch.tensor([[3], [1]])
    out, b, lab = augment_batch(images, boxes, labels, cfg, _gen(0))
    # x -> 1 - x, swapping the two x coordinates.
    assert b[0, 0].tolist() == pytest.approx([0.6, 0.2, 0.9, 0.6])
    assert b[1, 0].tolist() == pytest.approx([0.5, 0.0, 1.0, 1.0])
    assert lab.tolist() == [[3], [1]]
    assert torch.equal(out, images.flip(-1).float())


def test_scale_with_flip_and_dropping() -> None:
    cfg = AugmentConfig(hflip_p=1.0, scale_range=(2.0, 2.0), translate=0.0, min_box_fraction=0.3, **NO_COLOUR)
    boxes = torch.tensor([[[0.3, 0.3, 0.5, 0.5], [0.6, 0.4, 0.8, 0.6], [0.7, 0.1, 0.9, 0.3], [0, 0, 0, 0]]])
    labels = torch.tensor([[0, 1, 2, -1]])
    _, b, lab = augment_batch(torch.zeros(1, 3, 10, 10), boxes, labels, cfg, _gen(0))
    # x' = 2 * ((1 - x) - 0.5) + 0.5, y' = 2 * (y - 0.5) + 0.5.
    # Box 0: x 0.5..0.7 -> 0.9..0.5, y 0.3..0.5 -> 0.1..0.5.
    assert b[0, 0].tolist() == pytest.approx([0.5, 0.1, 0.9, 0.5])
    # Box 1: flipped x 0.2..0.4 -> -0.1..0.3, clipped to 0..0.3 (3/4 visible); y 0.4..0.6 -> 0.3..0.7.
    assert b[0, 1].tolist() == pytest.approx([0.0, 0.3, 0.3, 0.7])
    # Box 2: flipped x 0.1..0.3 -> -0.3..0.1, y 0.1..0.3 -> -0.3..0.1: 1/16 visible -> dropped.
    assert lab.tolist() == [[0, 1, -1, -1]]
    assert b[0, 2].abs().sum().item() == 0 and b[0, 3].abs().sum().item() == 0


def test_tiny_visible_part_is_dropped() -> None:
    cfg = AugmentConfig(hflip_p=0.0, scale_range=(1.0, 1.0), translate=0.0, min_box_fraction=0.0, **NO_COLOUR)
    # 20 px wide image: a box 1 px wide (0.05) is under the 2 px minimum.
    boxes = torch.tensor([[[0.5, 0.1, 0.55, 0.9], [0.5, 0.1, 0.6, 0.9]]])
    _, b, lab = augment_batch(torch.zeros(1, 3, 20, 20), boxes, torch.tensor([[0, 1]]), cfg, _gen(0))
    assert lab.tolist() == [[-1, 1]]
    assert b[0, 1].tolist() == pytest.approx([0.5, 0.1, 0.6, 0.9])


def _rect_batch(n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    images = torch.zeros(n, 3, 48, 64, dtype=torch.uint8)
    images[:, :, 12:30, 20:44] = torch.tensor([200, 150, 100], dtype=torch.uint8)[:, None, None]
    boxes = torch.tensor([20 / 64, 12 / 48, 44 / 64, 30 / 48]).repeat(n, 1, 1)
    return images, boxes, torch.zeros(n, 1, dtype=torch.int64)


def test_box_follows_pixels() -> None:
    images, boxes, labels = _rect_batch(16)
    out, b, lab = augment_batch(images, boxes, labels, AugmentConfig(translate=0.3), _gen(1))
    kept = 0
    for i in range(16):
        grey = out[i].mean(0)
        mask = grey > (grey.max() + grey.min()) / 2
        if lab[i, 0] < 0:
            continue
        kept += 1
        rows, cols = torch.nonzero(mask, as_tuple=True)
        px = [cols.min().item(), rows.min().item(), cols.max().item() + 1, rows.max().item() + 1]
        expected = (b[i, 0] * torch.tensor([64, 48, 64, 48])).tolist()
        assert px == pytest.approx(expected, abs=1.5)
    assert kept >= 10  # most survive; the comparison really ran


def test_output_range_dtype_and_input_types() -> None:
    images, boxes, labels = _rect_batch(4)
    images[:, 1] = 255
    out_u8, b1, l1 = augment_batch(images, boxes, labels, AugmentConfig(brightness=0.5), _gen(2))
    out_f, b2, l2 = augment_batch(images.float(), boxes, labels, AugmentConfig(brightness=0.5), _gen(2))
    assert out_u8.dtype == torch.float32
    assert torch.equal(out_u8, out_u8.round())
    assert out_u8.min() >= 0 and out_u8.max() <= 255 and out_u8.max() == 255  # saturated values clamp
    assert torch.equal(out_u8, out_f) and torch.equal(b1, b2) and torch.equal(l1, l2)
    assert ((b1 >= 0) & (b1 <= 1)).all()


def test_deterministic_with_same_seed() -> None:
    images, boxes, labels = _rect_batch(6)
    a = augment_batch(images, boxes, labels, AugmentConfig(), _gen(5))
    b = augment_batch(images, boxes, labels, AugmentConfig(), _gen(5))
    c = augment_batch(images, boxes, labels, AugmentConfig(), _gen(6))
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not torch.equal(a[0], c[0])


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_box_transform() -> None:
    cfg = AugmentConfig(hflip_p=1.0, scale_range=(2.0, 2.0), translate=0.0, **NO_COLOUR)
    images, boxes, labels = _rect_batch(2)
    gen = torch.Generator(device="cuda").manual_seed(0)
    out, b, lab = augment_batch(images.cuda(), boxes.cuda(), labels.cuda(), cfg, gen)
    ref = augment_batch(images, boxes, labels, cfg, _gen(0))
    assert out.is_cuda and torch.allclose(b.cpu(), ref[1]) and torch.equal(lab.cpu(), ref[2])
    assert (out.cpu() - ref[0]).abs().max() <= 1
