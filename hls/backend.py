"""The hardware backends behind one small interface: ``generate`` a plan of files, ``simulate``, hand-off ``scripts``.

A backend turns a build's hardware graph (the ``stream_links`` checkpoint: the folded graph with its width
converters and FIFOs, shared by every backend) into a self-contained folder of the build, simulates that folder
against the build's golden frames, and writes the vendor tool scripts that take it to a bitstream:

========  ======================================  ==============================  ================================
backend   generate (folder)                        simulate                        scripts
========  ======================================  ==============================  ================================
``rtl``   SystemVerilog top + kernels (BUILD/rtl)  Verilator/Icarus (sim.network)  Vivado project (boards.vivado)
``cpp``   HLS C++ top + kernels (BUILD/cpp)        g++ C simulation (sim.csim)     Vitis HLS + Vivado (boards.vitis)
========  ======================================  ==============================  ================================

The simulators live on the ``sim`` floor and the vendor scripts on the ``boards`` floor, above this one, so the
registry names them by dotted path and imports them only when called: ``hls`` itself never imports them.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import shutil
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"


class BackendError(ValueError):
    """An unknown backend name."""


@dataclass(frozen=True)
class Plan:
    """What a backend writes for one build: its folder's files by name (text), the manifest among them.

    The same build gives the same plan, byte for byte (no absolute paths, no time stamps)."""

    backend: str
    files: Mapping[str, str]

    @property
    def manifest(self) -> dict[str, Any]:
        return json.loads(self.files[MANIFEST])

    def write(self, out: Path) -> Path:
        """Replace the folder ``out`` with the plan's files; returns ``out``."""
        out = Path(out)
        if out.exists():
            shutil.rmtree(out)
        out.mkdir(parents=True)
        for name, text in self.files.items():
            path = out / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        return out


def with_manifest(backend: str, files: dict[str, str], manifest: dict[str, Any]) -> Plan:
    """A plan of ``files`` plus ``manifest.json``: ``manifest`` with every file's sha256 under ``files``."""
    manifest = dict(manifest, files={name: hashlib.sha256(text.encode()).hexdigest()
                                     for name, text in sorted(files.items())})
    return Plan(backend, {**files, MANIFEST: json.dumps(manifest, indent=2, sort_keys=True) + "\n"})


def with_dependencies(roots: Iterable[str], available: set[str], deps: Callable[[str], Iterable[str]]) -> list[str]:
    """``roots`` and every name they depend on (``deps(name)``, kept when ``available``), sorted: the kernel
    sources a generated folder needs (an RTL module's instantiations, a C++ header's includes)."""
    todo, seen = sorted(roots), set()
    while todo:
        k = todo.pop()
        if k in seen:
            continue
        seen.add(k)
        todo += [d for d in deps(k) if d in available and d not in seen]
    return sorted(seen)


def _resolve(path: str) -> Callable[..., Any]:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


@dataclass(frozen=True)
class Backend:
    """One backend: its name, what it generates, and its three entry points as ``module:function`` paths.

    ``plan(build, **options) -> Plan``; ``simulate(build, **options) -> result`` (a result with ``frames``,
    ``mismatches``, ``status`` and ``message``); ``scripts(build, **options) -> hand-off plan``."""

    name: str
    what: str
    plan_path: str
    simulate_path: str
    scripts_path: str

    def plan(self, build, **options) -> Plan:
        """The backend's folder for ``build``, as a plan (nothing written)."""
        return _resolve(self.plan_path)(build, **options)

    def generate(self, build, **options) -> Path:
        """Write the backend's folder of ``build`` (``build.backend_dir(name)``); returns it."""
        return self.plan(build, **options).write(build.backend_dir(self.name))

    def simulate(self, build, **options):
        """Simulate the build's golden frames through the generated folder (generating it when absent/stale)."""
        return _resolve(self.simulate_path)(build, **options)

    def scripts(self, build, **options):
        """The vendor-tool hand-off of the generated folder (written; returns its plan, which says what to run)."""
        return _resolve(self.scripts_path)(build, **options)


BACKENDS: dict[str, Backend] = {
    "rtl": Backend("rtl", "streaming SystemVerilog", "hls.gen.generate:plan_backend", "sim.network:simulate_backend",
                   "boards.vivado:handoff"),
    "cpp": Backend("cpp", "streaming dataflow HLS C++ for Vitis", "hls.cpp.generate:plan_cpp",
                   "sim.csim:simulate", "boards.vitis:handoff"),
}


def get_backend(name: str) -> Backend:
    """The backend called ``name``; BackendError listing the known ones otherwise."""
    try:
        return BACKENDS[name]
    except KeyError:
        raise BackendError(f"--backend {name!r} is not one of {', '.join(BACKENDS)}") from None
