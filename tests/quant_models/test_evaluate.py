import json

import pytest
import torch

from quant_models.checkpoint import CheckpointError
from quant_models.data import load_dataset, to_tensors
from quant_models.evaluate import evaluate_checkpoint, targets_of
from quant_models.metrics import detection_map

pytestmark = pytest.mark.slow


def test_eval_writes_report_and_picture(trained_run, synth_data, tmp_path):
    rep = evaluate_checkpoint(trained_run.best, synth_data, "val", out=tmp_path)
    data = json.loads((tmp_path / "eval.json").read_text())
    assert data["result"]["map50"] == rep.result.map50
    assert set(rep.result.per_class_ap50) == {"circle", "square", "triangle", "cross"}
    assert (tmp_path / "predictions.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_ground_truth_as_predictions_scores_one(synth_data):
    t = to_tensors(load_dataset(synth_data, "val"), (128, 128))
    targets = targets_of(t)
    preds = [{"boxes": g["boxes"], "scores": torch.ones(len(g["labels"])), "labels": g["labels"]} for g in targets]
    result = detection_map(preds, targets, t.class_names)
    assert result.map50 == pytest.approx(1.0) and result.map50_95 == pytest.approx(1.0)


def test_missing_and_foreign_checkpoints(synth_data, tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        evaluate_checkpoint(tmp_path / "nope.pt", synth_data)
    junk = tmp_path / "junk.pt"
    torch.save({"weights": 1}, junk)
    with pytest.raises(CheckpointError, match="not a qdet checkpoint"):
        evaluate_checkpoint(junk, synth_data)
