"""``qdet prune`` and ``qdet lowrank`` on a trained model: iterative steps with distillation, resumable runs, and
checkpoints that carry their plan."""

from __future__ import annotations

import json

import pytest

from tests.qdet.cli_helpers import run_qdet

pytestmark = pytest.mark.slow


def test_prune_reaches_half_the_channels_in_two_distilled_steps_and_resumes(capsys, trained_run, synth_data,
                                                                            tmp_path):
    from quant_models.checkpoint import load_model, read_checkpoint

    out = tmp_path / "p50"
    args = ["prune", trained_run.best, "--data", synth_data, "--out", out, "--ratio", "0.5", "--steps", "2",
            "--epochs", "1", "--batch-size", "16", "--round-to", "4"]
    result = run_qdet(capsys, *args)
    assert result.code == 0, result.text
    original, _ = load_model(trained_run.best)
    before = [c.out_ch for c in original.plan]
    record = json.loads((out / "compress.json").read_text())
    first, second = (s["channels"] for s in record["steps"])
    assert second == [c // 2 for c in before]  # 50% of every layer's channels (multiples of 4 here)
    assert all(b >= f >= s for b, f, s in zip(before, first, second)) and first != second and first != before
    pruned, ckpt = load_model(out / "best.pt")
    assert [c.out_ch for c in pruned.plan] == second and list(pruned.cfg.channels) == second
    assert pruned.cfg.bits == original.cfg.bits
    step2 = read_checkpoint(out / "step2" / "last.pt")["train_config"]
    assert step2["teacher"] == str(trained_run.best) and step2["init"].endswith("compressed.pt")  # distilled
    assert list(read_checkpoint(out / "step2" / "compressed.pt")["model_config"]["channels"]) == second

    stamps = {p: p.stat().st_mtime_ns for p in out.glob("step*/*.pt")}
    again = run_qdet(capsys, *args)  # a finished (or killed) run picks up where it is: nothing is retrained
    assert again.code == 0, again.text
    assert {p: p.stat().st_mtime_ns for p in out.glob("step*/*.pt")} == stamps
    other = run_qdet(capsys, *[("0.25" if a == "0.5" else a) for a in args])
    assert other.code == 2 and "holds another compression run" in other.error_lines()[0]


def test_sensitivity_pruning_measures_a_plan_that_removes_half_and_fine_tunes_to_it(capsys, trained_run, synth_data,
                                                                                  tmp_path):
    from quant_models.checkpoint import load_model

    out = tmp_path / "sens"
    result = run_qdet(capsys, "prune", trained_run.best, "--data", synth_data, "--out", out, "--ratio", "0.5",
                      "--steps", "1", "--epochs", "1", "--batch-size", "16", "--round-to", "4", "--sensitivity")
    assert result.code == 0, result.text
    before = [c.out_ch for c in load_model(trained_run.best)[0].plan]
    record = json.loads((out / "compress.json").read_text())
    plan = record["sensitivity_plan"]
    assert sum(before) - sum(plan) >= sum(before) / 2 and all(c % 4 == 0 and c >= 4 for c in plan)
    assert record["steps"][0]["channels"] == plan
    assert [c.out_ch for c in load_model(out / "best.pt")[0].plan] == plan
    assert "sensitivity:" in result.text  # each round of the measurement is reported


def test_a_killed_sensitivity_run_resumes_on_the_plan_it_measured(capsys, trained_run, synth_data, tmp_path,
                                                                   monkeypatch):
    import quant_models.compress.schedule as schedule
    import quant_models.train as training
    from quant_models.checkpoint import load_model

    out = tmp_path / "sens"
    args = ["prune", trained_run.best, "--data", synth_data, "--out", out, "--ratio", "0.5", "--steps", "2",
            "--epochs", "1", "--batch-size", "16", "--round-to", "4", "--sensitivity"]
    real_train = training.train

    def killed_in_step2(cfg):
        if cfg.out.name == "step2":
            raise KeyboardInterrupt
        return real_train(cfg)

    monkeypatch.setattr(training, "train", killed_in_step2)
    killed = run_qdet(capsys, *args)
    assert killed.code == 130, killed.text
    assert not (out / "step2" / "last.pt").exists() and (out / "step2" / "compressed.pt").is_file()
    plan = [c.out_ch for c in load_model(out / "step2" / "compressed.pt")[0].plan]

    def measured_again(*_a, **_k):
        raise AssertionError("the resumed run measured the sensitivity plan again")

    monkeypatch.setattr(training, "train", real_train)
    monkeypatch.setattr(schedule, "sensitivity_plan", measured_again)
    resumed = run_qdet(capsys, *args)
    assert resumed.code == 0, resumed.text
    record = json.loads((out / "compress.json").read_text())
    assert record["finished"] and record["sensitivity_plan"] == plan == record["steps"][1]["channels"]
    again = run_qdet(capsys, *args)  # a finished run run again keeps its record whole
    assert again.code == 0 and json.loads((out / "compress.json").read_text())["sensitivity_plan"] == plan


def test_lowrank_factorizes_the_named_layers_and_fine_tunes(capsys, trained_run, synth_data, tmp_path):
    from quant_models.checkpoint import load_model
    from quant_models.models.detector import LowRankBlock

    out = tmp_path / "lr"
    result = run_qdet(capsys, "lowrank", trained_run.best, "--data", synth_data, "--out", out, "--rank", "l3=8",
                      "--rank", "l4=8x12", "--epochs", "1", "--batch-size", "16")
    assert result.code == 0, result.text
    model, _ = load_model(out / "best.pt")
    assert [(f.layer, f.ranks) for f in model.cfg.factors] == [(3, (8,)), (4, (8, 12))]
    assert isinstance(model.layers[3], LowRankBlock) and len(model.layers[4].convs) == 3
    record = json.loads((out / "compress.json").read_text())
    assert record["steps"][0]["macs"] < record["original"]["macs"]
    assert "| 1 |" in (out / "compress.md").read_text()
