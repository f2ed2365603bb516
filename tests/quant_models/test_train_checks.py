"""Training refuses what it cannot do as asked, before loading any data; never replaces a run silently; reports
progress as plain lines off a terminal and as a bar on one."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from quant_models import train as train_module
from quant_models.checkpoint import CheckpointError, read_checkpoint
from quant_models.data import DatasetError
from quant_models.paths import OutputPathError
from quant_models.quantizers import BitSpecError
from quant_models.train import TrainConfig, TrainError, train

pytestmark = pytest.mark.slow


def _cfg(data: Path, out: Path, **changes) -> TrainConfig:
    """The tiniest run: one epoch of a quarter-width tinydet (seconds on a CPU)."""
    return TrainConfig(**{"data": data, "out": out, "epochs": 1, "batch_size": 16, "width": 0.25,
                          "progress": False, **changes})


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def no_data(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if training gets as far as loading the data set."""
    def fail(*args, **kwargs):
        raise AssertionError("the data set was loaded before the options were checked")

    monkeypatch.setattr(train_module, "load_dataset", fail)


@pytest.fixture(scope="module")
def finished_run(synth_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("finished") / "run"
    train(_cfg(synth_data, out))
    return out


def test_an_existing_run_is_refused_without_resume_or_overwrite(synth_data, finished_run, no_data):
    before = {p.name: _sha(p) for p in finished_run.iterdir()}
    with pytest.raises(TrainError) as err:
        train(_cfg(synth_data, finished_run))
    message = str(err.value)
    for fragment in (str(finished_run), "a finished run of 1 epoch", "--resume", "--overwrite"):
        assert fragment in message, (fragment, message)
    assert {p.name: _sha(p) for p in finished_run.iterdir()} == before


def test_option_errors_come_before_the_data(synth_data, tmp_path, no_data):
    afile = tmp_path / "afile"
    afile.write_text("keep me")
    with pytest.raises(OutputPathError, match="is a file, not a directory"):
        train(_cfg(synth_data, afile))
    with pytest.raises(OutputPathError, match="afile is a file, so the run directory cannot be created"):
        train(_cfg(synth_data, afile / "run"))
    assert afile.read_text() == "keep me"
    with pytest.raises(TrainError, match=r"--resume: .*nothing has no last\.pt to continue from"):
        train(_cfg(synth_data, tmp_path / "nothing", resume=True))
    with pytest.raises(TrainError, match="--resume and --overwrite both given"):
        _cfg(synth_data, tmp_path / "x", resume=True, overwrite=True)
    with pytest.raises(TrainError, match=r"--device 'tpu' is not a device name; use cpu, cuda or cuda:N"):
        train(_cfg(synth_data, tmp_path / "x", device="tpu"))
    with pytest.raises(TrainError,
                       match="--model yolo: unknown architecture; known: mobiledet, tinydet, tinyyolo, ultranet"):
        train(_cfg(synth_data, tmp_path / "x", model="yolo"))
    with pytest.raises(TrainError, match="--width .* must be > 0, got 0"):
        train(_cfg(synth_data, tmp_path / "x", width=0.0))
    with pytest.raises(BitSpecError) as err:
        train(_cfg(synth_data, tmp_path / "x", bits="w4a4,l99=w4a4"))
    for fragment in ("l99=w4a4", "tinydet", "6 conv layers", "l0..l5"):
        assert fragment in str(err.value), (fragment, str(err.value))
    with pytest.raises(CheckpointError, match="--teacher .*no_such.pt: checkpoint does not exist"):
        train(_cfg(synth_data, tmp_path / "x", teacher=tmp_path / "no_such.pt"))
    assert not (tmp_path / "x").exists() and not (tmp_path / "nothing").exists()  # failed checks leave no trace


def test_overwrite_replaces_the_run_and_never_keeps_a_stale_best(synth_data, finished_run, tmp_path,
                                                                monkeypatch, capsys):
    out = tmp_path / "run"
    shutil.copytree(finished_run, out)
    old_best = _sha(out / "best.pt")
    # A failure while loading the data (after the option checks) must leave the old run as it was.
    with pytest.raises(DatasetError, match="no detection data set"):
        train(_cfg(tmp_path / "no_data_here", out, overwrite=True))
    assert _sha(out / "best.pt") == old_best
    # Interrupted in its first batch, i.e. before it wrote any checkpoint of its own.
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(train_module, "augment_batch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train(_cfg(synth_data, out, overwrite=True, seed=1))
    assert sorted(p.name for p in out.iterdir()) == []  # no stale best.pt, last.pt, metrics or curves
    monkeypatch.undo()
    result = train(_cfg(synth_data, out, overwrite=True, seed=1))
    assert read_checkpoint(result.best)["train_config"]["seed"] == 1
    assert read_checkpoint(result.last)["epoch"] == 1
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""  # progress=False: silent


def test_plain_progress_lines_off_a_terminal(synth_data, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(train_module, "PROGRESS_LINE_SECONDS", 0.0)  # a line after every batch but the last
    # Under pytest, stderr is not a terminal: the automatic choice must be plain lines.
    train(_cfg(synth_data, tmp_path / "run", progress=True))
    captured = capsys.readouterr()
    assert "\r" not in captured.out + captured.err and captured.err == ""
    lines = captured.out.splitlines()
    # 64 training images in batches of 16: batches 1..3 get a line, then the epoch line.
    assert [line.split(",")[0] for line in lines[:3]] == [f"epoch 1/1: batch {i}/4" for i in (1, 2, 3)]
    assert lines[3].startswith("epoch 1/1: loss ") and "val mAP@0.5" in lines[3] and len(lines) == 4


def test_a_bar_when_asked(tmp_path, capsys):
    report = train_module._Progress(_cfg(tmp_path, tmp_path, progress=True, progress_bar=True))
    for step, _ in enumerate(report.batches(range(0, 64, 16), epoch=0)):
        report.batch(0, step, 4, loss=0.5)
    report.line("epoch 1/1: loss 0.5000")
    captured = capsys.readouterr()
    assert "\r" in captured.err and "epoch 1/1" in captured.err and "loss=0.5000" in captured.err
    assert captured.out == "epoch 1/1: loss 0.5000\n"
