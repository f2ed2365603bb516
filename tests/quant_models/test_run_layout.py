"""RunLayout (the paths and readers of a training run) and check_device (the --device names)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from quant_models.device import DeviceError, check_device
from quant_models.paths import OutputPathError
from quant_models.run_layout import RunLayout, RunLayoutError


def test_paths_of_a_run(tmp_path: Path) -> None:
    run = RunLayout(tmp_path / "r")
    assert run.last == tmp_path / "r" / "last.pt" and run.best == tmp_path / "r" / "best.pt"
    assert run.metrics == tmp_path / "r" / "metrics.json" and run.curves == tmp_path / "r" / "curves.png"
    assert run.eval_report == tmp_path / "r" / "eval.json"
    assert run.predictions == tmp_path / "r" / "predictions.png"
    assert run.log == tmp_path / "r" / "train.log"
    assert RunLayout(str(tmp_path)).root == tmp_path  # a string root becomes a Path


def test_readers(tmp_path: Path) -> None:
    run = RunLayout(tmp_path)
    assert not run.has_checkpoint() and not run.is_finished()
    with pytest.raises(RunLayoutError, match="metrics.json does not exist"):
        run.read_metrics()
    run.metrics.write_text("{not json")
    with pytest.raises(RunLayoutError, match="cannot be read"):
        run.read_metrics()
    run.metrics.write_text(json.dumps({"epochs": [{"epoch": 1}, {"epoch": 2}], "train_config": {"epochs": 3}}))
    run.best.write_bytes(b"x")
    assert run.has_checkpoint() and run.read_metrics()["train_config"] == {"epochs": 3}
    assert run.epochs_done() == (2, 3) and not run.is_finished()
    assert run.describe() == "an unfinished run (2 of 3 epochs)"
    run.last.write_bytes(b"x")
    run.metrics.write_text(json.dumps({"epochs": [{"epoch": 1}], "train_config": {"epochs": 1}}))
    assert run.is_finished() and run.describe() == "a finished run of 1 epoch"


def test_check_writable_refuses_files_and_folders_in_the_wrong_place(tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(OutputPathError, match="--out .*afile: is a file"):
        RunLayout(afile).check_writable()
    with pytest.raises(OutputPathError, match="afile is a file, so the run directory cannot be created"):
        RunLayout(afile / "run").check_writable()
    (tmp_path / "run" / "best.pt").mkdir(parents=True)
    with pytest.raises(OutputPathError, match="best.pt is a directory"):
        RunLayout(tmp_path / "run").check_writable()
    (tmp_path / "ev" / "eval.json").mkdir(parents=True)
    with pytest.raises(OutputPathError, match="eval.json is a directory"):
        RunLayout(tmp_path / "ev").check_eval_writable()
    assert not (tmp_path / "new").exists()
    RunLayout(tmp_path / "new").check_writable()
    assert not (tmp_path / "new").exists()  # checks create nothing


def test_remove_training_files_keeps_everything_else(tmp_path: Path) -> None:
    run = RunLayout(tmp_path)
    for path in (run.last, run.best, run.metrics, run.curves, run.log, run.eval_report, run.predictions):
        path.write_text("old")
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "float_warm_start").mkdir()
    run.remove_training_files()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["float_warm_start", "notes.txt"]


@pytest.mark.parametrize("name", ["tpu", "gpu", "cuda:x", "cuda:-1", "CUDA0", "cpu:0", ""])
def test_device_names_outside_the_accepted_forms(name: str) -> None:
    with pytest.raises(DeviceError) as err:
        check_device(name)
    message = str(err.value)
    assert f"--device {name!r}" in message and "cpu, cuda or cuda:N" in message, message


def test_device_names_and_the_cuda_count(monkeypatch: pytest.MonkeyPatch) -> None:
    assert check_device("cpu") == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(DeviceError, match="--device cuda asked for, but torch sees no CUDA device; use --device cpu"):
        check_device("cuda")
    # Two CUDA devices: cuda, cuda:0 and cuda:1 are usable, cuda:2 names the range.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert [check_device(n) for n in ("cuda", "cuda:0", "cuda:1")] == ["cuda", "cuda:0", "cuda:1"]
    with pytest.raises(DeviceError, match=r"--device cuda:2: this machine has 2 CUDA device\(s\), so N must be in "
                                          r"0\.\.1"):
        check_device("cuda:2")
