"""Tests for quant_models.metrics. Expected values follow COCO's rules, worked out by hand in the comments:

* detections of a class are sorted by score; each matches the best still-unmatched GT with IoU >= threshold;
* precision/recall are accumulated down that list, precision is made non-increasing from the right;
* AP = mean over the 101 recall thresholds r = 0.00, 0.01, ..., 1.00 of the precision at the first list
  position whose recall is >= r (0 where recall never reaches r);
* mAP@0.5:0.95 averages that over IoU thresholds 0.50, 0.55, ..., 0.95 (10 values).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from quant_models.metrics import MapResult, detection_map

NAMES = ["cat", "dog"]


def pred(boxes: list[list[float]], scores: list[float], labels: list[int]) -> dict[str, np.ndarray]:
    return {
        "boxes": np.asarray(boxes, dtype=np.float32).reshape(-1, 4),
        "scores": np.asarray(scores, dtype=np.float32),
        "labels": np.asarray(labels, dtype=np.int64),
    }


def gt(boxes: list[list[float]], labels: list[int]) -> dict[str, np.ndarray]:
    return {"boxes": np.asarray(boxes, dtype=np.float32).reshape(-1, 4), "labels": np.asarray(labels, dtype=np.int64)}


def test_perfect_predictions_score_one() -> None:
    targets = [
        gt([[10, 10, 50, 60], [100, 100, 180, 150]], [0, 1]),
        gt([[0, 0, 30, 30]], [1]),
    ]
    # Predictions identical to the ground truth: every detection is a TP at every IoU threshold, precision 1
    # at every recall -> AP 1 for each class at each threshold.
    predictions = [
        pred([[10, 10, 50, 60], [100, 100, 180, 150]], [0.9, 0.8], [0, 1]),
        pred([[0, 0, 30, 30]], [0.7], [1]),
    ]
    result = detection_map(predictions, targets, NAMES)
    assert isinstance(result, MapResult)
    assert result.map50 == pytest.approx(1.0)
    assert result.map50_95 == pytest.approx(1.0)
    assert result.per_class_ap50 == pytest.approx({"cat": 1.0, "dog": 1.0})
    assert result.per_class_ap50_95 == pytest.approx({"cat": 1.0, "dog": 1.0})
    assert result.num_images == 2
    assert result.num_predictions == 3


def test_no_predictions_score_zero_and_class_without_gt_is_nan() -> None:
    targets = [gt([[10, 10, 50, 60]], [0]), gt([], [])]
    predictions = [pred([], [], []), pred([], [], [])]
    result = detection_map(predictions, targets, NAMES)
    # "cat" has one GT and nothing finds it: recall never exceeds 0, precision 0 at all 101 thresholds.
    assert result.map50 == 0.0
    assert result.map50_95 == 0.0
    assert result.per_class_ap50["cat"] == 0.0
    # "dog" has no ground truth anywhere: its AP is undefined -> NaN, and the key is still present.
    assert math.isnan(result.per_class_ap50["dog"])
    assert math.isnan(result.per_class_ap50_95["dog"])
    assert result.num_predictions == 0


def test_handcrafted_precision_recall_curve() -> None:
    # One class, three disjoint GT boxes. Detections by score:
    #   0.9 exactly on GT a   -> TP   cum TP 1, FP 0: recall 1/3, precision 1
    #   0.6 on empty space    -> FP   cum TP 1, FP 1: recall 1/3, precision 1/2
    #   0.3 exactly on GT b   -> TP   cum TP 2, FP 1: recall 2/3, precision 2/3
    #   GT c is never found.
    # Precision made non-increasing from the right: [1, 2/3, 2/3].
    # Recall thresholds (3 GT keeps every recall off the 0.01 grid, so no boundary ambiguity):
    #   r = 0.00 .. 0.33 (34 values): first recall >= r is position 0 -> 1
    #   r = 0.34 .. 0.66 (33 values): position 2 -> 2/3
    #   r = 0.67 .. 1.00 (34 values): recall never gets there -> 0
    # AP = (34 * 1 + 33 * 2/3 + 34 * 0) / 101 = (34 + 22) / 101 = 56/101 = 0.5544...
    # All TPs have IoU 1, so they are TPs at every IoU threshold: AP@0.5:0.95 is the same value.
    targets = [gt([[0, 0, 10, 10], [20, 20, 30, 30], [40, 40, 50, 50]], [0, 0, 0])]
    predictions = [pred([[0, 0, 10, 10], [60, 60, 70, 70], [20, 20, 30, 30]], [0.9, 0.6, 0.3], [0, 0, 0])]
    result = detection_map(predictions, targets, ["thing"])
    assert result.map50 == pytest.approx(56 / 101)
    assert result.map50_95 == pytest.approx(56 / 101)
    assert result.per_class_ap50["thing"] == pytest.approx(56 / 101)


def test_iou_062_counts_at_three_of_ten_thresholds() -> None:
    # GT [0,0,100,100] (area 10000); prediction [0,0,100,62] lies inside it: IoU = 6200/10000 = 0.62.
    # It is a TP at IoU thresholds 0.50, 0.55, 0.60 (AP 1 each: the only detection, the only GT) and a FP at
    # 0.65 .. 0.95 (AP 0). So cat: AP50 = 1, AP50:95 = 3/10.
    # dog gets a perfect prediction: AP 1 everywhere.
    # mAP@0.5 = (1 + 1)/2 = 1;  mAP@0.5:0.95 = (0.3 + 1)/2 = 0.65.
    targets = [gt([[0, 0, 100, 100], [200, 200, 240, 240]], [0, 1])]
    predictions = [pred([[0, 0, 100, 62], [200, 200, 240, 240]], [0.9, 0.9], [0, 1])]
    result = detection_map(predictions, targets, NAMES)
    assert result.per_class_ap50["cat"] == pytest.approx(1.0)
    assert result.per_class_ap50_95["cat"] == pytest.approx(0.3)
    assert result.per_class_ap50_95["dog"] == pytest.approx(1.0)
    assert result.map50 == pytest.approx(1.0)
    assert result.map50_95 == pytest.approx(0.65)


def test_right_box_wrong_class_is_not_a_true_positive() -> None:
    # The box is exact but labelled dog while the GT is cat: cat has one GT and no detection -> AP 0;
    # dog has no GT -> NaN and is left out of the mean, so mAP = cat's 0.
    targets = [gt([[10, 10, 40, 40]], [0])]
    predictions = [pred([[10, 10, 40, 40]], [0.99], [1])]
    result = detection_map(predictions, targets, NAMES)
    assert result.map50 == 0.0
    assert result.map50_95 == 0.0
    assert result.per_class_ap50["cat"] == 0.0
    assert math.isnan(result.per_class_ap50["dog"])


def test_false_positive_on_empty_image_counts() -> None:
    # Image 0: one GT, found exactly at score 0.5. Image 1: no GT, a detection at score 0.9.
    # Sorted: FP (0.9) then TP (0.5): recall [0, 1], precision [0, 1/2] -> non-increasing [1/2, 1/2].
    # r = 0 -> position 0 -> 1/2; r = 0.01 .. 1.00 -> position 1 -> 1/2. AP = 1/2 (IoU 1: also for 0.5:0.95).
    # This only works if the empty image is registered with the evaluator.
    targets = [gt([[0, 0, 20, 20]], [0]), gt([], [])]
    predictions = [pred([[0, 0, 20, 20]], [0.5], [0]), pred([[5, 5, 15, 15]], [0.9], [0])]
    result = detection_map(predictions, targets, NAMES)
    assert result.map50 == pytest.approx(0.5)
    assert result.map50_95 == pytest.approx(0.5)
    assert result.num_images == 2


def test_max_detections_keeps_only_top_scores() -> None:
    # FP at 0.9 and TP at 0.5 in the same image. Default cap (100): AP = 1/2 as in the test above.
    # With max_detections=1 only the FP is considered: recall stays 0 -> AP 0.
    targets = [gt([[0, 0, 20, 20]], [0])]
    predictions = [pred([[50, 50, 60, 60], [0, 0, 20, 20]], [0.9, 0.5], [0, 0])]
    assert detection_map(predictions, targets, NAMES).map50 == pytest.approx(0.5)
    assert detection_map(predictions, targets, NAMES, max_detections=1).map50 == 0.0


def test_no_ground_truth_at_all_gives_nan() -> None:
    result = detection_map([pred([[0, 0, 5, 5]], [0.9], [0])], [gt([], [])], NAMES)
    assert math.isnan(result.map50)
    assert math.isnan(result.map50_95)


@dataclass(frozen=True)
class _Det:
    boxes: torch.Tensor
    scores: torch.Tensor
    labels: torch.Tensor


def test_accepts_torch_tensors_and_objects() -> None:
    # Same as the perfect case but as attribute-style objects holding tensors: expected AP 1.
    targets = [_Det(torch.tensor([[1.0, 2.0, 11.0, 12.0]]), torch.zeros(0), torch.tensor([1]))]
    predictions = [{"boxes": torch.tensor([[1.0, 2.0, 11.0, 12.0]]), "scores": torch.tensor([0.4]),
                    "labels": torch.tensor([1])}]
    result = detection_map(predictions, targets, NAMES)
    assert result.map50 == pytest.approx(1.0)
    assert result.per_class_ap50["dog"] == pytest.approx(1.0)


def test_evaluation_is_quiet(capsys: pytest.CaptureFixture[str]) -> None:
    detection_map([pred([[0, 0, 5, 5]], [0.9], [0])], [gt([[0, 0, 5, 5]], [0])], NAMES)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == ""


def test_input_validation() -> None:
    with pytest.raises(ValueError):
        detection_map([pred([], [], [])], [], NAMES)  # length mismatch
    with pytest.raises(ValueError):
        detection_map([pred([], [], [])], [gt([[0, 0, 1, 1]], [2])], NAMES)  # label 2 with 2 classes
    with pytest.raises(ValueError):
        detection_map([pred([[0, 0, 1, 1]], [0.5, 0.6], [0])], [gt([], [])], NAMES)  # 1 box, 2 scores
    with pytest.raises(ValueError):
        detection_map([pred([], [], [])], [gt([], [])], ["a", "a"])  # duplicate class names


def test_markdown_table() -> None:
    result = MapResult(
        map50=0.5, map50_95=0.25, per_class_ap50={"cat": 0.5, "dog": float("nan")},
        per_class_ap50_95={"cat": 0.25, "dog": float("nan")}, num_images=1, num_predictions=1,
    )
    lines = result.to_markdown(digits=2).splitlines()
    assert lines[0] == "| class | AP@0.5 | AP@0.5:0.95 |"
    assert lines[2] == "| cat | 0.50 | 0.25 |"
    assert lines[3] == "| dog | n/a | n/a |"
    assert lines[4] == "| **mAP** | 0.50 | 0.25 |"
    assert result.to_rich_table().row_count == 3  # two classes + the mAP row
