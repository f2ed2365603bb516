import math

import pytest
import torch

from quant_models.decode import DecodeConfig, decode, decode_boxes, split_head

BIG = 12.0  # sigmoid(12) = 0.999994: a confident logit


def _empty_head(anchors: int, classes: int, h: int, w: int) -> torch.Tensor:
    out = torch.full((1, anchors, 5 + classes, h, w), -BIG)  # every objectness and class: ~0
    out[:, :, :4] = 0.0
    return out


def test_decode_boxes_hand_case():
    # tx = ty = tw = th = 0: centre = cell + 0.5, size = anchor. Cell (row 1, col 0) of a 2x2 grid.
    raw = torch.zeros(1, 1, 2, 2, 4)
    box = decode_boxes(raw, torch.tensor([[0.5, 0.25]]))[0, 0, 1, 0]
    assert box.tolist() == [0.0, 0.625, 0.5, 0.875]  # cx 0.25, cy 0.75, w 0.5, h 0.25


def test_decode_single_object_in_pixels():
    anchors = ((0.25, 0.25), (0.5, 0.5))
    out = _empty_head(2, 3, 4, 4)
    # anchor 1, row 2, col 1, class 2; tw = th = 0 -> size = anchor = 0.5 of a 64x128 (HxW) image
    out[0, 1, 4, 2, 1] = BIG
    out[0, 1, 5 + 2, 2, 1] = BIG
    dets = decode(out.view(1, -1, 4, 4), anchors, num_classes=3, image_size=(64, 128),
                  cfg=DecodeConfig(score_threshold=0.5))
    assert len(dets) == 1 and len(dets[0].scores) == 1
    # cx = 1.5 / 4 = 0.375 -> 48 px; cy = 2.5 / 4 = 0.625 -> 40 px; w = 0.5 * 128 = 64; h = 0.5 * 64 = 32
    assert torch.allclose(dets[0].boxes[0], torch.tensor([16.0, 24.0, 80.0, 56.0]))
    assert dets[0].labels.tolist() == [2]
    assert dets[0].scores[0] > 0.99


def test_duplicates_are_merged_and_other_classes_kept():
    anchors = ((0.5, 0.5),)
    out = _empty_head(1, 2, 2, 2)
    # Two neighbouring cells predict nearly the same box of class 0 (IoU > 0.6); a third cell class 1 at the
    # same place must survive class-aware NMS.
    out[0, 0, 4, 0, 0] = BIG
    out[0, 0, 5, 0, 0] = BIG
    out[0, 0, 0, 0, 0] = 3.0  # shift right: sigmoid(3)*2-0.5 = 1.40 -> cx = 0.70
    out[0, 0, 4, 0, 1] = BIG - 1
    out[0, 0, 5, 0, 1] = BIG
    out[0, 0, 0, 0, 1] = -0.1  # sigmoid(-0.1)*2-0.5 = 0.45 -> cx = 0.725: boxes [0.45, 0.95], [0.475, 0.975]
    # overlap in x: 0.475 / 0.525 = 0.90 (same rows), well above the 0.6 NMS threshold
    out[0, 0, 6, 0, 1] = BIG  # the same cell also says class 1
    dets = decode(out.view(1, -1, 2, 2), anchors, 2, (100, 100), DecodeConfig(score_threshold=0.5))[0]
    assert sorted(dets.labels.tolist()) == [0, 1]


def test_max_detections_and_score_threshold():
    out = torch.zeros(1, 1 * (5 + 1), 8, 8)  # every cell: obj 0.5, class 0.5 -> score 0.25
    dets = decode(out, ((0.01, 0.01),), 1, (64, 64), DecodeConfig(score_threshold=0.2, max_detections=10))[0]
    assert len(dets.scores) == 10  # 64 tiny non-overlapping boxes, capped at 10
    none = decode(out, ((0.01, 0.01),), 1, (64, 64), DecodeConfig(score_threshold=0.3))[0]
    assert len(none.scores) == 0
    assert math.isclose(float(dets.scores[0]), 0.25, rel_tol=1e-6)


def test_split_head_checks_channels():
    with pytest.raises(ValueError, match="3 anchors x"):
        split_head(torch.zeros(1, 20, 4, 4), 3, 2)


def test_two_scales_are_decoded_on_their_own_grids_and_merged_before_nms():
    from quant_models.decode import decode_heads

    # A 64x64 image: output 0 at stride 16 (4x4 grid, large anchors), output 1 at stride 8 (8x8, small anchors).
    coarse_anchors, fine_anchors = ((0.5, 0.5), (0.25, 0.25)), ((0.125, 0.125), (0.0625, 0.0625))
    coarse, fine = _empty_head(2, 2, 4, 4), _empty_head(2, 2, 8, 8)
    # Coarse: anchor 0, row 1, col 2, class 1, t = 0 -> centre (2.5/4, 1.5/4) * 64 = (40, 24), size 0.5 * 64 = 32.
    coarse[0, 0, 4, 1, 2] = BIG
    coarse[0, 0, 5 + 1, 1, 2] = BIG
    # Fine: anchor 1, row 6, col 3, class 0 -> centre (3.5/8, 6.5/8) * 64 = (28, 52), size 0.0625 * 64 = 4.
    fine[0, 1, 4, 6, 3] = BIG
    fine[0, 1, 5, 6, 3] = BIG
    # Fine, anchor 0, also sees the coarse object (class 1), less sure: offsets 2*sigmoid(ln 3)-0.5 = 1 put its
    # centre at (4 + 1, 2 + 1) / 8 = (0.625, 0.375), the same as the coarse box's, and tw = th = BIG scale its
    # 0.125 anchor by (2 * sigmoid(12))^2 = 3.99995 to 31.9996 px: IoU 0.99998 with the coarse box.
    ln3 = math.log(3)
    fine[0, 0, 0, 2, 4] = fine[0, 0, 1, 2, 4] = ln3
    fine[0, 0, 2, 2, 4] = fine[0, 0, 3, 2, 4] = BIG
    fine[0, 0, 4, 2, 4] = BIG - 3
    fine[0, 0, 5 + 1, 2, 4] = BIG
    dets = decode_heads((coarse.view(1, -1, 4, 4), fine.view(1, -1, 8, 8)), (coarse_anchors, fine_anchors), 2,
                        (64, 64), DecodeConfig(score_threshold=0.5))[0]
    # The duplicate is suppressed by the coarse box across scales; the two real objects remain.
    assert len(dets.labels) == 2 and sorted(dets.labels.tolist()) == [0, 1]
    by_label = {int(label): box for label, box in zip(dets.labels, dets.boxes)}
    assert torch.allclose(by_label[1], torch.tensor([24.0, 8.0, 56.0, 40.0]), atol=1e-3)
    assert torch.allclose(by_label[0], torch.tensor([26.0, 50.0, 30.0, 54.0]), atol=1e-3)
    # Each map alone: the fine one reports the duplicate too, since nothing from the coarse map suppresses it.
    alone = decode(fine.view(1, -1, 8, 8), fine_anchors, 2, (64, 64), DecodeConfig(score_threshold=0.5))[0]
    assert sorted(alone.labels.tolist()) == [0, 1]
    dup = alone.boxes[alone.labels == 1][0]
    assert torch.allclose(dup, torch.tensor([24.0, 8.0, 56.0, 40.0]), atol=1e-3)
    with pytest.raises(ValueError, match="2 head maps but 1 anchor sets"):
        decode_heads((coarse.view(1, -1, 4, 4), fine.view(1, -1, 8, 8)), (coarse_anchors,), 2, (64, 64))


def test_one_output_decodes_as_before():
    from quant_models.decode import decode_heads

    torch.manual_seed(0)
    out = torch.randn(2, 3 * 7, 4, 4) * 3
    anchors = ((0.1, 0.1), (0.2, 0.3), (0.5, 0.4))
    for a, b in zip(decode(out, anchors, 2, (32, 32)), decode_heads((out,), (anchors,), 2, (32, 32))):
        assert torch.equal(a.boxes, b.boxes) and torch.equal(a.scores, b.scores) and torch.equal(a.labels, b.labels)
