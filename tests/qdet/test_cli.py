import pytest
from typer.testing import CliRunner

from qdet.cli import app

runner = CliRunner()
COMMANDS = [[], ["data"], ["data", "synth"], ["data", "check"], ["train"], ["eval"], ["export"], ["demo"], ["boards"], ["build"], ["report"], ["sim"], ["synth"], ["bitstream"]]


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
    (["build", "missing.onnx", "--out", "b", "--max-fps"], "qdet export"),
    (["build", "missing.onnx", "--out", "b", "--max-fps", "--board", "zedboard"], "Known boards"),
    (["build", "missing.onnx", "--out", "b"], "exactly one of --target-fps"),
    (["report", "nowhere"], "run qdet build"),
])
def test_bad_input_exits_non_zero_with_a_message(args, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, args)
    assert result.exit_code != 0
    assert message in result.output


def test_boards_lists_the_catalogue():
    result = runner.invoke(app, ["boards", "--json"])
    assert result.exit_code == 0, result.output
    import json

    listed = {b["name"]: b for b in json.loads(result.output)}
    assert {"pynq-z1", "pynq-z2", "ultra96-v2", "kv260", "zcu104", "u250"} <= set(listed)
    assert listed["pynq-z2"]["device"]["lut"] == 53_200


def test_build_compiles_an_exported_model(tiny_onnx, trained_run, tmp_path):
    out = tmp_path / "b"
    result = runner.invoke(app, ["build", str(tiny_onnx), "--out", str(out), "--board", "ultra96-v2", "--verify", "2",
                                 "--checkpoint", str(trained_run.best), "--target-fps", "500"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())  # rich wraps long lines
    assert "built" in text and "ultra96-v2 at 200 MHz" in text and "qdet vs FINN" in text
    assert (out / "steps" / "07_report.onnx").is_file() and (out / "golden" / "outputs.npy").is_file()
    result = runner.invoke(app, ["report", str(out)])
    assert result.exit_code == 0 and "qdet vs FINN" in result.output
