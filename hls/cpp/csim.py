"""Compiling qdet's HLS C++ with g++ for C simulation: include paths, flags, and clear errors.

The arbitrary-precision types are Xilinx's Apache-2.0 ``ap_int.h``/``ap_fixed.h``, used where the hls4ml wheel
installs them (never copied into qdet); ``hls_stream.h`` and ``ap_axi_sdata.h`` are qdet's own
(``hls/cpp/include``), and the kernels are ``hls/cpp/kernels/qdet_*.hpp``. The ap_types folder is passed with
``-isystem`` so that ``-Wall -Wextra -Werror`` judges qdet's code, not Xilinx's headers.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

CPP = Path(__file__).resolve().parent
INCLUDE = CPP / "include"
KERNELS = CPP / "kernels"
CXX = "g++"
# Warnings are errors: the generated C++ and the kernels compile clean, so a new warning is a regression.
CXXFLAGS = ("-std=c++14", "-O2", "-Wall", "-Wextra", "-Werror")


class CsimError(RuntimeError):
    """C simulation cannot be built or run; the message says what to do."""


def ap_types_dir() -> Path:
    """The installed ap_types headers (hls4ml's wheel, ``templates/vivado/ap_types``), found without importing
    hls4ml."""
    spec = importlib.util.find_spec("hls4ml")
    hint = "install them with `pip install --no-deps hls4ml==1.3.0` (qdet's Makefile does)"
    if spec is None or not spec.submodule_search_locations:
        raise CsimError(f"the ap_int.h/ap_fixed.h headers are not installed: {hint}")
    for root in spec.submodule_search_locations:
        path = Path(root) / "templates" / "vivado" / "ap_types"
        if (path / "ap_int.h").is_file():
            return path
    raise CsimError(f"hls4ml is installed but has no templates/vivado/ap_types/ap_int.h: {hint}")


def compiler() -> str:
    """The C++ compiler's path; CsimError when g++ is not on PATH."""
    found = shutil.which(CXX)
    if found is None:
        raise CsimError(f"{CXX} is not on PATH: install it (Debian: apt install g++) to C-simulate")
    return found


def include_flags(extra: Sequence[Path] = (), qdet_headers: bool = True) -> list[str]:
    """``-I`` for ``extra`` folders and qdet's headers (unless ``qdet_headers`` is False: a generated folder that
    carries its own copies), ``-isystem`` for the ap_types."""
    flags = [f"-I{p}" for p in extra]
    if qdet_headers:
        flags += [f"-I{INCLUDE}", f"-I{KERNELS}"]
    return flags + ["-isystem", str(ap_types_dir())]


def compile_cpp(sources: Sequence[Path], out: Path, *, shared: bool = False, include: Sequence[Path] = (),
                qdet_headers: bool = True, flags: Sequence[str] = (), log: Path | None = None,
                timeout_s: float = 900) -> Path:
    """Compile ``sources`` into ``out`` (an executable, or a shared library with ``shared``); CsimError with the
    compiler's first errors when it fails. ``log`` keeps the whole compiler output."""
    cmd = [compiler(), *CXXFLAGS, *flags, *include_flags(include, qdet_headers)]
    if shared:
        cmd += ["-shared", "-fPIC"]
    cmd += [str(s) for s in sources] + ["-o", str(out)]
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise CsimError(f"{CXX} took over {timeout_s:.0f} s compiling {', '.join(s.name for s in sources)}") from None
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(" ".join(cmd) + "\n" + proc.stdout + proc.stderr)
    if proc.returncode != 0:
        lines = [l for l in proc.stderr.splitlines() if "error" in l or "warning" in l][:8]
        raise CsimError(f"{CXX} failed on {', '.join(s.name for s in sources)}:\n" + "\n".join(lines or
                        proc.stderr.splitlines()[-8:]) + (f"\n(whole output: {log})" if log else ""))
    return out
