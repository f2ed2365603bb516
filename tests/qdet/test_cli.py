"""The qdet command through its real entry point: help, version, the error path, and the output (plain text,
tables that fit, third-party chatter kept off the console)."""

import json

import pytest

from flows.build import BuildLayout
from qdet.cli import app
from tests.qdet.cli_helpers import run_qdet

COMMANDS = [[], ["data"], ["data", "synth"], ["data", "check"], ["train"], ["eval"], ["export"], ["demo"], ["boards"],
            ["build"], ["report"], ["sim"], ["synth"], ["bitstream"], ["run"], ["deploy"],
            ["prune"], ["lowrank"], ["search"], ["search-best"]]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "qdet")
def test_help(command, capsys):
    result = run_qdet(capsys, *command, "--help")
    assert result.code == 0, result.text
    assert "Usage:" in result.out


def test_every_registered_command_has_a_help_test():
    names = {c.name or c.callback.__name__ for c in app.registered_commands} | {g.name for g in app.registered_groups}
    assert names <= {c[0] for c in COMMANDS if c}


def test_help_describes_the_demo_as_it_is(capsys):
    top = run_qdet(capsys, "--help").text
    assert "sim (RTL)" in top and "bitstream" in top
    demo = run_qdet(capsys, "demo", "--help").text
    assert "FINN build" in demo and "RTL simulation" in demo


def test_version(capsys):
    from importlib.metadata import version

    result = run_qdet(capsys, "--version")
    assert result.code == 0 and result.out.strip() == f"qdet {version('qdet')}"


def test_bare_command_prints_help_without_an_error_line(capsys):
    result = run_qdet(capsys)
    assert "Usage:" in result.out and not result.error_lines()


def test_unexpected_exceptions_are_one_line_unless_debug(capsys, monkeypatch):
    import boards.catalogue

    monkeypatch.setattr(boards.catalogue, "BOARDS", None)  # `qdet boards` now hits a TypeError: a bug, not bad input
    result = run_qdet(capsys, "boards")
    assert result.code == 1
    assert "unexpected" in result.error_lines()[0] and "--debug" in result.error_lines()[0]
    assert "Traceback" not in result.err
    with pytest.raises(AttributeError):
        from qdet.cli import main

        main(["--debug", "boards"])


def test_user_error_registry_names_real_exception_classes():
    import importlib

    from qdet.errors import USER_ERRORS

    for qualified in USER_ERRORS:
        module, name = qualified.rsplit(".", 1)
        cls = getattr(importlib.import_module(module), name)
        assert issubclass(cls, Exception) and f"{cls.__module__}.{cls.__qualname__}" == qualified


def test_synth_then_check(tmp_path, capsys):
    out = tmp_path / "d"
    result = run_qdet(capsys, "data", "synth", "--out", out, "--images", "6", "--size", "64x64")
    assert result.code == 0, result.text
    result = run_qdet(capsys, "data", "check", out, "--split", "train")
    assert result.code == 0 and "circle" in result.out


def test_boards_lists_the_catalogue(capsys):
    result = run_qdet(capsys, "boards", "--json")
    assert result.code == 0, result.text
    listed = {b["name"]: b for b in json.loads(result.out)}
    assert {"pynq-z1", "pynq-z2", "ultra96-v2", "kv260", "zcu104", "u250"} <= set(listed)
    assert listed["pynq-z2"]["device"]["lut"] == 53_200


def test_boards_table_is_not_cut_off_a_terminal(capsys):
    result = run_qdet(capsys, "boards")
    assert result.code == 0
    assert "…" not in result.out
    for name in ("pynq-z1", "pynq-z2", "ultra96-v2", "xczu3eg-sbva484-1-i", "1,728,000"):
        assert name in result.out, name


def test_build_compiles_an_exported_model(tiny_onnx, trained_run, tmp_path, capsys):
    out = tmp_path / "b"
    result = run_qdet(capsys, "build", tiny_onnx, "--out", out, "--board", "ultra96-v2", "--verify", "2",
                      "--checkpoint", trained_run.best, "--target-fps", "500")
    assert result.code == 0, result.text
    assert "built" in result.text and "ultra96-v2 at 200 MHz" in result.text and "qdet vs FINN" in result.text
    assert "upper bound" in result.text  # the estimated latency is labelled as what it is
    layout = BuildLayout(out)
    assert layout.find_checkpoint("report") is not None and layout.golden_outputs.is_file()
    assert layout.target()[0].name == "ultra96-v2" and layout.target()[1] == 200.0
    result = run_qdet(capsys, "report", out)
    assert result.code == 0 and "qdet vs FINN" in result.text
    # A second build into the same folder is refused, then replaces it with --overwrite.
    again = run_qdet(capsys, "build", tiny_onnx, "--out", out, "--max-fps", "--verify", "0")
    assert again.code == 2 and "--overwrite" in again.error_lines()[0]
    again = run_qdet(capsys, "build", tiny_onnx, "--out", out, "--max-fps", "--verify", "0", "--overwrite")
    assert again.code == 0, again.text
    assert not layout.golden_outputs.exists()  # the replaced build's golden frames did not survive


def test_export_prints_its_result_without_third_party_noise(trained_run, tmp_path, capsys):
    out = tmp_path / "m[1].onnx"
    result = run_qdet(capsys, "export", trained_run.best, "--out", out, "--samples", "1")
    assert result.code == 0, result.text
    lines = [line for line in result.out.splitlines() if line.strip()]
    assert any(line.startswith("exported") for line in lines) and str(out) in result.text  # brackets kept
    # Only qdet's own lines: the progress line (off a terminal), the result, and the pointer to the log.
    assert all(line.startswith(("exporting and checking", "exported", "third-party messages:")) for line in lines)
    assert "Warning" not in result.out + result.err
    report = json.loads(out.with_suffix(".json").read_text())
    assert f"checked on 1 images: {report['accumulator_mismatches']} head accumulators differ" in result.text
