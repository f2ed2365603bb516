"""Tests for quant_models.nms: hand-checked IoU / NMS cases and a randomised check against plain-Python greedy NMS."""

from __future__ import annotations

import random

import pytest
import torch

from quant_models.nms import batched_nms, box_iou, multiclass_nms, nms

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def t(rows: list[list[float]], device: str = "cpu") -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float32, device=device).reshape(-1, 4)


# ---------------------------------------------------------------- box_iou


def test_box_iou_hand_values() -> None:
    a = t([[0, 0, 2, 2]])
    b = t([
        [1, 0, 3, 2],  # shifted 1 in x: inter 1x2=2, union 4+4-2=6 -> 2/6
        [1, 1, 3, 3],  # shifted 1 diagonally: inter 1x1=1, union 4+4-1=7 -> 1/7
        [0, 0, 2, 2],  # identical -> 1
        [2, 0, 4, 2],  # touching edge: inter 0 -> 0
        [5, 5, 6, 6],  # disjoint -> 0
        [0.5, 0.5, 1.5, 1.5],  # contained, area 1: inter 1, union 4 -> 1/4
    ])
    iou = box_iou(a, b)
    assert iou.shape == (1, 6)
    expected = torch.tensor([[2 / 6, 1 / 7, 1.0, 0.0, 0.0, 0.25]])
    torch.testing.assert_close(iou, expected)


def test_box_iou_shape_symmetry_and_degenerate() -> None:
    a = t([[0, 0, 2, 2], [1, 1, 1, 1]])  # second box has zero area
    b = t([[1, 0, 3, 2], [1, 1, 1, 1], [0, 0, 1, 1]])
    iou = box_iou(a, b)
    assert iou.shape == (2, 3)
    torch.testing.assert_close(iou, box_iou(b, a).T)
    # Two zero-area boxes: union 0 -> defined as 0, not NaN.
    assert iou[1, 1].item() == 0.0
    assert not torch.isnan(iou).any()
    # [0,0,2,2] vs [0,0,1,1]: inter 1, union 4 -> 1/4
    assert iou[0, 2].item() == pytest.approx(0.25)


def test_box_iou_integer_input_gives_float() -> None:
    iou = box_iou(torch.tensor([[0, 0, 2, 2]]), torch.tensor([[1, 0, 3, 2]]))
    assert iou.dtype == torch.float32
    assert iou.item() == pytest.approx(1 / 3)


def test_box_iou_rejects_bad_shape() -> None:
    with pytest.raises(ValueError):
        box_iou(torch.zeros(3), torch.zeros(1, 4))


# ---------------------------------------------------------------- nms


@pytest.mark.parametrize("device", DEVICES)
def test_two_boxes_above_and_below_threshold(device: str) -> None:
    boxes = t([[0, 0, 2, 2], [1, 0, 3, 2]], device)  # IoU 2/6 = 0.333
    scores = torch.tensor([0.6, 0.9], device=device)
    # 0.333 > 0.3: the lower-scoring box 0 is suppressed by box 1.
    assert nms(boxes, scores, 0.3).tolist() == [1]
    # 0.333 <= 0.5: both survive, highest score first.
    assert nms(boxes, scores, 0.5).tolist() == [1, 0]


def test_iou_equal_to_threshold_is_not_suppressed() -> None:
    # [0,0,2,2] vs [0,0,2,1]: inter 2, union 4 -> IoU exactly 0.5; suppression needs IoU > threshold.
    boxes = t([[0, 0, 2, 2], [0, 0, 2, 1]])
    scores = torch.tensor([0.9, 0.8])
    assert nms(boxes, scores, 0.5).tolist() == [0, 1]
    assert nms(boxes, scores, 0.49).tolist() == [0]


@pytest.mark.parametrize("device", DEVICES)
def test_chain_greedy_not_naive(device: str) -> None:
    # A-B and B-C overlap with IoU 1/3, A-C only touch (IoU 0). Greedy: A kept, B suppressed by A,
    # and C survives because its only overlapping box (B) was itself suppressed. Naive "suppress if any
    # higher-scoring box overlaps" would drop C too and return [0].
    boxes = t([[0, 0, 2, 2], [1, 0, 3, 2], [2, 0, 4, 2]], device)
    scores = torch.tensor([0.9, 0.8, 0.7], device=device)
    keep = nms(boxes, scores, 0.3)
    assert keep.tolist() == [0, 2]
    assert keep.device.type == device
    assert keep.dtype == torch.long


def test_long_chain_needs_many_rounds() -> None:
    # Seven 2-wide boxes, each shifted 1 right of the previous, scores falling left to right.
    # Neighbours overlap with IoU 1/3, others not at all. Greedy walks the chain: keep 0, drop 1,
    # keep 2 (1 is gone), drop 3, keep 4, drop 5, keep 6 -> every second box.
    boxes = t([[i, 0, i + 2, 2] for i in range(7)])
    scores = torch.linspace(1.0, 0.1, 7)
    assert nms(boxes, scores, 0.3).tolist() == [0, 2, 4, 6]


def test_output_sorted_by_descending_score() -> None:
    boxes = t([[0, 0, 1, 1], [10, 10, 11, 11], [20, 20, 21, 21]])  # pairwise disjoint
    scores = torch.tensor([0.1, 0.9, 0.5])
    assert nms(boxes, scores, 0.5).tolist() == [1, 2, 0]


def test_score_ties_resolved_by_lower_index() -> None:
    same = [[0, 0, 2, 2]] * 3
    # Identical boxes with equal scores: the lowest index wins.
    assert nms(t(same), torch.tensor([0.5, 0.5, 0.5]), 0.5).tolist() == [0]
    # Here index 1 has the strictly higher score, then the tie between 0 and 2 goes to 0.
    disjoint = t([[0, 0, 1, 1], [5, 5, 6, 6], [10, 10, 11, 11]])
    assert nms(disjoint, torch.tensor([0.5, 0.7, 0.5]), 0.5).tolist() == [1, 0, 2]


@pytest.mark.parametrize("device", DEVICES)
def test_empty_input(device: str) -> None:
    boxes = torch.zeros((0, 4), device=device)
    scores = torch.zeros((0,), device=device)
    keep = nms(boxes, scores, 0.5)
    assert keep.shape == (0,) and keep.dtype == torch.long and keep.device.type == device
    keep = batched_nms(boxes, scores, torch.zeros(0, dtype=torch.long, device=device), 0.5)
    assert keep.shape == (0,)


def test_input_validation() -> None:
    with pytest.raises(ValueError):
        nms(t([[0, 0, 1, 1]]), torch.tensor([0.5, 0.6]), 0.5)  # 1 box, 2 scores
    with pytest.raises(ValueError):
        nms(t([[0, 0, 1, 1]]), torch.tensor([0.5]), 1.5)  # threshold out of range
    with pytest.raises(ValueError):
        batched_nms(t([[0, 0, 1, 1]]), torch.tensor([0.5]), torch.tensor([0, 1]), 0.5)


# ---------------------------------------------------------------- batched_nms


@pytest.mark.parametrize("device", DEVICES)
def test_batched_nms_class_aware(device: str) -> None:
    boxes = t([[0, 0, 2, 2], [0, 0, 2, 2], [0, 0, 2, 2]], device)  # all identical, IoU 1
    scores = torch.tensor([0.9, 0.8, 0.7], device=device)
    labels = torch.tensor([0, 1, 0], device=device)
    # Box 2 shares class 0 with box 0 and is suppressed; box 1 is the only class-1 box and survives.
    assert batched_nms(boxes, scores, labels, 0.5).tolist() == [0, 1]
    # Class-agnostic NMS keeps only the best.
    assert nms(boxes, scores, 0.5).tolist() == [0]


def test_batched_nms_chain_across_classes() -> None:
    # The A-B-C chain again, but B has another class: it cannot suppress or be suppressed by A or C,
    # and A-C do not overlap, so all three survive.
    boxes = t([[0, 0, 2, 2], [1, 0, 3, 2], [2, 0, 4, 2]])
    scores = torch.tensor([0.9, 0.8, 0.7])
    assert batched_nms(boxes, scores, torch.tensor([0, 1, 0]), 0.3).tolist() == [0, 1, 2]


def test_batched_nms_negative_coordinates() -> None:
    # Coordinates below zero break the naive "offset by label * (max + 1)" trick; the class mask must not care.
    boxes = t([[-100, -100, -90, -90], [-100, -100, -90, -90], [-5, -5, 5, 5]])
    scores = torch.tensor([0.9, 0.8, 0.7])
    assert batched_nms(boxes, scores, torch.tensor([0, 1, 1]), 0.5).tolist() == [0, 1, 2]


# ---------------------------------------------------------------- randomised check against plain Python


def _py_iou(a: list[float], b: list[float]) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _py_greedy_nms(boxes: list[list[float]], scores: list[float], labels: list[int], thr: float) -> list[int]:
    # Python's sort is stable, so equal scores stay in index order.
    order = sorted(range(len(boxes)), key=lambda i: -scores[i])
    kept: list[int] = []
    for i in order:
        if all(labels[i] != labels[k] or _py_iou(boxes[i], boxes[k]) <= thr for k in kept):
            kept.append(i)
    return kept


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("seed", range(25))
def test_random_against_python_reference(seed: int, device: str) -> None:
    rng = random.Random(seed)
    n = rng.randint(0, 60)
    boxes = []
    for _ in range(n):
        x, y = rng.uniform(0, 50), rng.uniform(0, 50)
        boxes.append([x, y, x + rng.uniform(1, 25), y + rng.uniform(1, 25)])
    # Few distinct score values so ties happen often.
    scores = [rng.choice([0.1, 0.2, 0.3, 0.5, 0.8]) for _ in range(n)]
    labels = [rng.randint(0, 2) for _ in range(n)]
    thr = rng.choice([0.1, 0.3, 0.5, 0.7])

    bt = torch.tensor(boxes, dtype=torch.float64, device=device).reshape(-1, 4)
    st = torch.tensor(scores, dtype=torch.float64, device=device)
    lt = torch.tensor(labels, dtype=torch.long, device=device)
    assert nms(bt, st, thr).tolist() == _py_greedy_nms(boxes, scores, [0] * n, thr)
    assert batched_nms(bt, st, lt, thr).tolist() == _py_greedy_nms(boxes, scores, labels, thr)


# ---------------------------------------------------------------- multiclass_nms


def test_multiclass_nms() -> None:
    boxes = t([[0, 0, 2, 2], [0, 0, 2, 2], [10, 10, 12, 12]])
    class_scores = torch.tensor([
        [0.9, 0.2],
        [0.8, 0.6],
        [0.1, 0.25],  # below score_threshold in both classes
    ])
    out = multiclass_nms(boxes, class_scores, iou_threshold=0.5, score_threshold=0.3)
    # Candidates (box, class, score): (0,0,.9) (1,0,.8) (1,1,.6). In class 0 box 1 is identical to box 0
    # and suppressed; (1,1,.6) is alone in class 1.
    assert len(out) == 2
    torch.testing.assert_close(out.scores, torch.tensor([0.9, 0.6]))
    assert out.labels.tolist() == [0, 1]
    torch.testing.assert_close(out.boxes, t([[0, 0, 2, 2], [0, 0, 2, 2]]))
    capped = multiclass_nms(boxes, class_scores, iou_threshold=0.5, score_threshold=0.3, max_detections=1)
    assert capped.labels.tolist() == [0]
