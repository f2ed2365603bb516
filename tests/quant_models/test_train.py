import json
from pathlib import Path

import pytest
import torch

from quant_models import train as train_module
from quant_models.checkpoint import load_model, read_checkpoint
from quant_models.data import load_dataset, to_tensors
from quant_models.loss import detection_loss
from quant_models.models import DetectorConfig, build_model
from quant_models.train import TrainConfig, TrainError, train

pytestmark = pytest.mark.slow


def _fixed_batch_loss(model, data: Path) -> float:
    """Loss on the first 16 training images, without augmentation (BatchNorm on batch statistics)."""
    t = to_tensors(load_dataset(data, "train"), model.cfg.input_size)
    model.train()
    with torch.no_grad():
        out = model(t.images[:16].float())
        anchors = torch.tensor(model.cfg.anchors)
        return float(detection_loss(out, t.boxes[:16], t.labels[:16], anchors, model.cfg.num_classes)[0])


def test_training_writes_the_run_and_lowers_the_loss(synth_data, tmp_path):
    cfg = TrainConfig(data=synth_data, out=tmp_path / "run", bits="w4a4", epochs=6, batch_size=8, width=0.5,
                      lr=5e-3, progress=False)
    result = train(cfg)
    for name in ("last.pt", "best.pt", "metrics.json", "curves.png"):
        assert (tmp_path / "run" / name).is_file(), name
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert [r["epoch"] for r in metrics["epochs"]] == [1, 2, 3, 4, 5, 6]
    assert metrics["map50"] == metrics["epochs"][-1]["val_map50"]
    assert 0.0 <= metrics["map50_95"] <= metrics["map50"] <= 1.0
    assert metrics["epochs"][-1]["loss"] < metrics["epochs"][0]["loss"]
    ckpt = read_checkpoint(result.last)
    assert ckpt["epoch"] == 6 and ckpt["model_config"]["bits"] == "w4a4"
    # The same images, without augmentation noise, scored by the starting weights and by the trained ones.
    torch.manual_seed(cfg.seed)
    untrained = build_model(DetectorConfig.from_dict(ckpt["model_config"]))
    trained, _ = load_model(result.last)
    before, after = _fixed_batch_loss(untrained, synth_data), _fixed_batch_loss(trained, synth_data)
    assert after < 0.97 * before, (before, after)  # measured: 0.390 -> 0.373 (broken updates: no change)


def test_resume_continues_exactly_where_an_interrupted_run_stopped(synth_data, tmp_path, monkeypatch):
    def cfg(out):
        return TrainConfig(data=synth_data, out=out, bits="w4a4", epochs=3, batch_size=16, width=0.5,
                           progress=False)

    straight = train(cfg(tmp_path / "straight"))

    # Interrupt the second run during epoch 2's validation, i.e. after epoch 1's checkpoint was written.
    real_eval = train_module.evaluate_tensors
    calls = {"n": 0}

    def interrupted(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real_eval(*args, **kwargs)

    monkeypatch.setattr(train_module, "evaluate_tensors", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train(cfg(tmp_path / "resumed"))
    assert read_checkpoint(tmp_path / "resumed" / "last.pt")["epoch"] == 1
    monkeypatch.setattr(train_module, "evaluate_tensors", real_eval)

    resumed = train(TrainConfig(**{**cfg(tmp_path / "resumed").__dict__, "resume": True}))
    a, b = read_checkpoint(straight.last), read_checkpoint(resumed.last)
    assert b["epoch"] == 3 and [r["epoch"] for r in b["history"]] == [1, 2, 3]
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key


def test_qat_from_a_float_checkpoint_and_distillation(synth_data, tmp_path):
    flt = train(TrainConfig(data=synth_data, out=tmp_path / "float", bits=None, epochs=1, batch_size=16,
                            width=0.5, progress=False))
    float_w = read_checkpoint(flt.last)["model"]["layers.0.conv.weight"]
    # QAT fine-tuning with the float weights as the starting point, distilled from the same float model.
    qat = train(TrainConfig(data=synth_data, out=tmp_path / "qat", bits="w4a4", epochs=1, batch_size=16, width=0.5,
                            init=flt.last, teacher=flt.last, lr=1e-6, progress=False))
    ckpt = read_checkpoint(qat.last)
    assert ckpt["model_config"]["anchors"] == read_checkpoint(flt.last)["model_config"]["anchors"]
    # A tiny learning rate: the weights are still the float ones, not a fresh initialisation.
    assert torch.allclose(ckpt["model"]["layers.0.conv.weight"], float_w, atol=1e-3)
    assert ckpt["history"][0]["loss_kd"] > 0


def test_bad_teacher_and_bad_config(synth_data, tmp_path):
    flt = train(TrainConfig(data=synth_data, out=tmp_path / "float", bits=None, epochs=1, batch_size=16,
                            width=0.5, progress=False))
    with pytest.raises(TrainError, match="another grid"):
        train(TrainConfig(data=synth_data, out=tmp_path / "u", model="ultranet", bits="w4a4", epochs=1,
                          teacher=flt.last, progress=False))
    with pytest.raises(TrainError, match="epochs"):
        TrainConfig(data=synth_data, out=tmp_path / "x", epochs=0)
    with pytest.raises(TrainError, match="has no last.pt to continue from"):
        train(TrainConfig(data=synth_data, out=tmp_path / "nothing", epochs=1, resume=True, progress=False))
