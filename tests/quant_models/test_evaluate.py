import json

import pytest
import torch

from quant_models import evaluate as evaluate_module
from quant_models.checkpoint import CheckpointError
from quant_models.data import load_dataset, to_tensors
from quant_models.device import DeviceError
from quant_models.evaluate import evaluate_checkpoint, targets_of
from quant_models.metrics import detection_map
from quant_models.paths import OutputPathError

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


def test_bad_out_and_device_are_refused_before_the_data(trained_run, synth_data, tmp_path, monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("the data set was loaded before the options were checked")

    monkeypatch.setattr(evaluate_module, "load_dataset", fail)
    afile = tmp_path / "afile"
    afile.write_text("keep me")
    with pytest.raises(OutputPathError, match="--out .*afile: is a file, not a directory"):
        evaluate_checkpoint(trained_run.best, synth_data, "val", out=afile)
    with pytest.raises(OutputPathError, match="afile is a file, so the evaluation output directory cannot be"):
        evaluate_checkpoint(trained_run.best, synth_data, "val", out=afile / "sub")
    assert afile.read_text() == "keep me"
    (tmp_path / "ev" / "predictions.png").mkdir(parents=True)
    with pytest.raises(OutputPathError, match="predictions.png is a directory"):
        evaluate_checkpoint(trained_run.best, synth_data, "val", out=tmp_path / "ev")
    with pytest.raises(DeviceError, match="--device 'tpu' is not a device name; use cpu, cuda or cuda:N"):
        evaluate_checkpoint(trained_run.best, synth_data, "val", out=tmp_path, device="tpu")
