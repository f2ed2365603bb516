"""sim.cocotb_run: the results parser needs an executed test case to pass; log_file takes the simulator's chatter
off the console and a failure quotes its tail.

The parser is checked on hand-written results files; the log on Icarus with a one-line design (about a second)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.cocotb_run import LOG_TAIL_LINES, SimFailure, _failures, run_cocotb
from tests.tools import require_simulator

def _results(tmp_path: Path, cases: str) -> Path:
    path = tmp_path / "results.xml"
    path.write_text(f'<testsuites><testsuite name="all" package="all">{cases}</testsuite></testsuites>')
    return path


PASSED = '<testcase classname="m" name="ok" time="0.1"><properties /></testcase>'
SKIPPED = '<testcase classname="m" name="later" time="0"><skipped message="not yet" /><properties /></testcase>'


def test_an_executed_passing_case_passes(tmp_path):
    assert _failures(_results(tmp_path, PASSED + SKIPPED)) == []


def test_failures_and_errors_are_listed_by_name(tmp_path):
    cases = (PASSED + '<testcase name="bad"><failure message="beat 3 differs" /></testcase>'
             '<testcase name="worse"><error>Traceback\n  boom</error></testcase>')
    assert _failures(_results(tmp_path, cases)) == ["bad: beat 3 differs", "worse: Traceback\n  boom"]


@pytest.mark.parametrize("cases, count", [("", "0 test cases, 0 skipped"), (SKIPPED, "1 test cases, 1 skipped"),
                                          (SKIPPED * 2, "2 test cases, 2 skipped")])
def test_nothing_executed_is_a_failure(tmp_path, cases, count):
    with pytest.raises(SimFailure, match=f"no cocotb test was executed \\({count}\\)"):
        _failures(_results(tmp_path, cases))


def test_missing_or_truncated_results_are_failures(tmp_path):
    with pytest.raises(SimFailure, match="no results written"):
        _failures(tmp_path / "results.xml")
    (tmp_path / "results.xml").write_text("<testsuites><testsuite><testcase name=")
    with pytest.raises(SimFailure, match="unreadable results"):
        _failures(tmp_path / "results.xml")


TB = """\
import os

import cocotb


@cocotb.test()
async def echo(dut):
    dut._log.info("MARKER-FROM-THE-TESTBENCH")
    assert os.environ.get("QDET_T_FAIL") != "1", "asked to fail"
"""


def _run(tmp_path: Path, source: str, log: Path | None, fail: bool = False) -> Path:
    (tmp_path / "qdet_t_tb.py").write_text(TB)
    top = tmp_path / "top.sv"
    top.write_text(source)
    return run_cocotb(simulator="icarus", sources=[top], toplevel="top", test_module="qdet_t_tb",
                      build_dir=tmp_path / "build", test_env={"QDET_T_FAIL": str(int(fail))}, timeout_s=60,
                      log_file=log)


@pytest.fixture(autouse=True)
def _tb_importable(tmp_path, monkeypatch):
    """cocotb's runner gives the simulator this process's sys.path as PYTHONPATH: put the testbench on it."""
    monkeypatch.syspath_prepend(str(tmp_path))


GOOD = "module top(input logic a, output logic y); assign y = a; endmodule\n"


@pytest.mark.rtlsim
def test_log_file_takes_the_output_and_a_failure_quotes_its_tail(tmp_path, capfd):
    require_simulator("icarus")
    log = tmp_path / "logs" / "sim.log"
    _run(tmp_path, GOOD, log)
    assert "MARKER-FROM-THE-TESTBENCH" in log.read_text()
    assert "MARKER-FROM-THE-TESTBENCH" not in capfd.readouterr().out  # the simulation's stdout went to the log
    assert sorted(p.name for p in log.parent.iterdir()) == ["sim.log"]  # the runner's parts were folded in
    with pytest.raises(SimFailure, match="asked to fail") as failed:
        _run(tmp_path, GOOD, log, fail=True)
    tail = str(failed.value).split(f"lines of {log}:\n", 1)[1].splitlines()
    assert tail == log.read_text().splitlines()[-LOG_TAIL_LINES:]
    with pytest.raises(SimFailure, match="compile failed") as broken:
        _run(tmp_path, "module top(; endmodule\n", log)
    assert "syntax error" in str(broken.value)  # iverilog's own message, from the log's tail


@pytest.mark.rtlsim
def test_without_a_log_file_the_output_stays_on_the_console(tmp_path, capfd):
    require_simulator("icarus")
    _run(tmp_path, GOOD, None)
    assert "MARKER-FROM-THE-TESTBENCH" in capfd.readouterr().out
