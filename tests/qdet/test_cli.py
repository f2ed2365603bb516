import pytest
from typer.testing import CliRunner

from qdet.cli import app

runner = CliRunner()
COMMANDS = [[], ["data"], ["data", "synth"], ["data", "check"], ["train"], ["eval"], ["export"], ["demo"]]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "qdet")
def test_help(command):
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


def test_every_registered_command_has_a_help_test():
    names = {c.name or c.callback.__name__ for c in app.registered_commands} | {g.name for g in app.registered_groups}
    assert names <= {c[0] for c in COMMANDS if c}


def test_synth_then_check(tmp_path):
    out = tmp_path / "d"
    result = runner.invoke(app, ["data", "synth", "--out", str(out), "--images", "6", "--size", "64x64"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["data", "check", str(out), "--split", "train"])
    assert result.exit_code == 0 and "circle" in result.output


@pytest.mark.parametrize("args, message", [
    (["train", "--data", "nowhere", "--out", "x", "--bits", "w9a4"], "bad bit width"),
    (["eval", "missing.pt", "--data", "nowhere"], "does not exist"),
    (["export", "missing.pt", "--out", "m.onnx"], "does not exist"),
    (["data", "check", "nowhere"], "nowhere"),
    (["data", "synth", "--out", "x", "--size", "big"], "HxW"),
])
def test_bad_input_exits_non_zero_with_a_message(args, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, args)
    assert result.exit_code != 0
    assert message in result.output
