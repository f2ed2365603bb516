"""Build and run a cocotb test module on Verilator or Icarus, and fail loudly when a cocotb test fails."""

from __future__ import annotations

import os
import threading
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from pathlib import Path

from sim.tools import require, tool_env

# Where `import sim.tb.<x>` resolves: the repository root (this file is sim/cocotb_run.py).
_ROOT = Path(__file__).resolve().parent.parent


class SimFailure(AssertionError):
    """A cocotb test failed (or the simulation did not produce results)."""


def _failures(results: Path) -> list[str]:
    """The failed cocotb tests in ``results`` ("name: message"); SimFailure when nothing was executed.

    A results file with no test case, or with every case skipped, means the test module ran nothing (a renamed
    test, a filter that matches nothing, a module that failed to register its tests): that is never a pass."""
    if not results.is_file():
        raise SimFailure(f"{results}: no results written; the simulator crashed or the test module did not load")
    try:
        cases = list(ET.parse(results).getroot().iter("testcase"))
    except ET.ParseError as exc:
        raise SimFailure(f"{results}: unreadable results ({exc}); the simulator probably died while writing them") \
            from exc
    executed = [case for case in cases if case.find("skipped") is None]
    if not executed:
        raise SimFailure(f"{results}: no cocotb test was executed ({len(cases)} test cases, "
                         f"{len(cases) - len(executed)} skipped)")
    failed = []
    for case in executed:
        for bad in list(case.findall("failure")) + list(case.findall("error")):
            failed.append(f"{case.get('name')}: {bad.get('message') or (bad.text or '').strip()[:500]}")
    return failed


LOG_TAIL_LINES = 15  # lines of the compile/run log quoted in a SimFailure


def _tail(log: Path | None) -> str:
    """The last LOG_TAIL_LINES lines of ``log`` for a failure message ('' without a log)."""
    if log is None or not log.is_file():
        return ""
    lines = log.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
    return f"\nlast {len(lines)} lines of {log}:\n" + "\n".join(lines)


def _append(log: Path | None, part: Path | None) -> None:
    """Move ``part`` onto the end of ``log`` (cocotb's runner truncates its log_file on every call)."""
    if log is not None and part is not None and part.is_file():
        with log.open("a") as out:
            out.write(part.read_text(errors="replace"))
        part.unlink()


def _kill_children(flag: list[bool]) -> None:
    import psutil

    flag.append(True)
    for child in psutil.Process().children(recursive=True):
        child.kill()


def run_cocotb(*, simulator: str, sources: Sequence[Path], toplevel: str, test_module: str, build_dir: Path,
               parameters: Mapping[str, int | str] | None = None, test_env: Mapping[str, str] | None = None,
               timeout_s: float | None = None, build_args: Sequence[str] = (), waves: bool = False,
               optimize: bool = False, log_file: Path | None = None) -> Path:
    """Compile ``sources`` with ``toplevel`` in ``build_dir`` and run the cocotb ``test_module`` there.

    Returns the results XML; raises :class:`SimFailure` listing failed cocotb tests, and ``ToolMissing`` when the
    simulator is not installed. ``timeout_s`` bounds the simulation run (not the compile): the simulator is
    killed and the failure says so, so a hung design cannot hang the test suite. Each build dir is one compiled
    model: use one per parameter set (Icarus does not notice parameter-only changes).

    ``optimize=False`` compiles a Verilator model as one C++ file at -O0: about 2/3 of the CPU time of the split,
    optimised build (measured 26 s vs 39 s on a kernel wrapper), right for short kernel tests; whole-network runs
    want ``optimize=True``.

    ``log_file``: the compiler's and the simulation's output go to this file (replaced on each call) instead of
    the console, and a SimFailure quotes its last lines."""
    from cocotb_tools.runner import get_runner

    require(simulator)
    build_dir = Path(build_dir).resolve()
    build_dir.mkdir(parents=True, exist_ok=True)
    log = None if log_file is None else Path(log_file).resolve()
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text("")
    # The runner opens its log_file with "w" for build and for test alike: each writes a part, appended to log.
    build_log, run_log = (None, None) if log is None else (log.with_name(log.name + ".build"),
                                                           log.with_name(log.name + ".run"))
    where = f"{test_module} on {simulator} ({toplevel})"
    env = tool_env(simulator)
    # Under pytest cocotb's runner judges the results itself and sys.exit()s on a failure, which would bypass the
    # checks below (failure names, the executed-case count, the log's tail): run it as it runs outside pytest.
    env.pop("PYTEST_CURRENT_TEST", None)
    # The runner spawns the compiler and simulator from this process's environment: swap it in for the call only.
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        runner = get_runner(simulator)
        args = list(build_args)
        if simulator == "verilator":
            # cocotb's runner marks every signal public (--public-flat-rw), which stops Verilator from optimising
            # (measured 15x slower on tinydet); testbenches here touch only top-level ports, kept visible by
            # --public-depth 1 (without it cocotb cannot even find the root handle).
            args = ["-Wno-fatal", "-O2", "--no-public-flat-rw", "--public-depth", "1", *args]
            if not optimize:
                args = ["--output-split", "0", "-CFLAGS", "-O0", *args]
        else:
            args = ["-g2012", *args] if "-g2012" not in args else args
        try:
            runner.build(sources=[str(s) for s in sources], hdl_toplevel=toplevel, build_dir=str(build_dir),
                         parameters=dict(parameters or {}), build_args=args, always=simulator == "icarus",
                         timescale=("1ns", "1ps"), waves=waves, log_file=build_log)
        except RuntimeError as exc:  # the runner raises when the compiler exits non-zero
            _append(log, build_log)
            raise SimFailure(f"{where}: compile failed ({exc}){_tail(log)}") from exc
        _append(log, build_log)
        pythonpath = os.pathsep.join(p for p in (str(_ROOT), env.get("PYTHONPATH", "")) if p)
        timed_out: list[bool] = []
        timer = threading.Timer(timeout_s, _kill_children, (timed_out,)) if timeout_s else None
        if timer is not None:
            timer.start()
        try:
            results = runner.test(hdl_toplevel=toplevel, test_module=test_module, build_dir=str(build_dir),
                                  test_dir=str(build_dir), extra_env={"PYTHONPATH": pythonpath, **dict(test_env or {})},
                                  waves=waves, log_file=run_log)
        except (Exception, SystemExit) as exc:  # a simulator exiting non-zero (killed included) raises or exits
            _append(log, run_log)
            if timed_out:
                raise SimFailure(f"{where}: killed after {timeout_s} s{_tail(log)}") from exc
            if log is not None:
                raise SimFailure(f"{where}: the simulator failed ({exc}){_tail(log)}") from exc
            raise
        finally:
            if timer is not None:
                timer.cancel()
        _append(log, run_log)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    if timed_out:
        raise SimFailure(f"{where}: killed after {timeout_s} s{_tail(log)}")
    try:
        failed = _failures(Path(results))
    except SimFailure as exc:
        raise SimFailure(f"{where}: {exc}{_tail(log)}") from None
    if failed:
        raise SimFailure(f"{where}: " + "; ".join(failed) + _tail(log))
    return Path(results)
