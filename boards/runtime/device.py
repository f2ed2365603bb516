"""The platforms an :class:`~.accelerator.Accelerator` runs on, behind one small protocol, and their registry.

A device moves packed frames: ``transfer(frames, inp, outs)`` takes ``frames`` frames of input bytes (one DMA
buffer, every frame's beats back to back) and fills one preallocated buffer per output port, then says how long
it took (and, where it can tell, how many clock cycles). The shells end every output frame with TLAST, so a
board's output DMA moves one frame per transfer while its input DMA takes the whole batch at once (pynq.py re-arms
the receive channels frame by frame). Everything above bytes (folding, packing, batching, the
FINN-compatible names) is the accelerator's, the same on every platform:

===========  ==============================================================  ===================================
platform     what runs                                                       where
===========  ==============================================================  ===================================
``cpp-sim``  the HLS C++ backend's C simulation, a shared library (ctypes)   any x86-64 PC (a "virtual board")
``rtl-sim``  the RTL backend under Verilator/cocotb, cycle-accurate          the qdet repository (sim.runtime)
``pynq``     a Zynq board: the bitstream's AXI DMAs through pynq             the board's own Python (PYNQ image)
``xrt``      an Alveo card through XRT's Python bindings (pyxrt)             a host with XRT and the card
===========  ==============================================================  ===================================

Platforms are named by dotted path and imported only when opened, so a board without the simulators, or a PC
without pynq, imports nothing it lacks; a platform whose package or hardware is missing raises
:class:`PlatformUnavailable` saying what is missing and where it must run.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np


class AcceleratorError(RuntimeError):
    """The accelerator could not run a batch; the message names the port, channel or file and what to do."""


class PlatformUnavailable(AcceleratorError):
    """A platform whose package, tool, library or hardware is not here."""


class DmaTimeout(AcceleratorError):
    """A DMA channel that did not complete within the driver's timeout (raised instead of hanging)."""


@dataclass(frozen=True)
class RunStats:
    """How one transfer went: wall-clock seconds, clock cycles where the platform counts them, board power."""

    wall_s: float
    cycles: int | None = None  # rtl-sim: cycles from the first input beat to the last output beat
    latency_cycles: int | None = None  # rtl-sim: the first frame's first input beat to its last output beat
    interval_cycles: float | None = None  # rtl-sim: steady-state cycles between frames (None for one frame)
    power_w: float | None = None  # pynq: the board's rails, averaged over the transfer, where it has sensors


class Device(Protocol):
    """One platform's data mover (see the module docstring)."""

    name: str
    fclk_mhz: float

    def transfer(self, frames: int, inp: np.ndarray, outs: Sequence[np.ndarray]) -> RunStats:
        """Move ``frames`` frames: ``inp`` is (frames * beats, bytes) uint8, ``outs[p]`` likewise for output p."""
        ...

    def close(self) -> None:
        """Release buffers, libraries, simulators."""
        ...


# Relative paths are this package's own modules (shipped in deploy folders); rtl-sim needs the qdet repository.
PLATFORMS: dict[str, str] = {
    "cpp-sim": ".csim:CsimDevice",
    "rtl-sim": "sim.runtime:RtlSimDevice",
    "pynq": ".pynq:PynqDevice",
    "xrt": ".xrt:XrtDevice",
}
ALIASES = {"csim": "cpp-sim", "rtlsim": "rtl-sim", "zynq": "pynq", "alveo": "xrt"}


def platform_name(name: str) -> str:
    """The registry's name for ``name`` (aliases resolved); AcceleratorError listing the known ones otherwise."""
    name = ALIASES.get(name, name)
    if name not in PLATFORMS:
        raise AcceleratorError(f"platform {name!r} is not one of {', '.join(PLATFORMS)}")
    return name


def open_device(name: str, spec: Any, **options: Any) -> Device:
    """Open platform ``name`` for the accelerator ``spec`` (a :class:`~.spec.DriverSpec`); ``options`` go to the
    platform (``library=`` for cpp-sim, ``bitfile=`` for pynq/xrt, ``build=`` for rtl-sim, ``timeout_s=`` ...)."""
    path = PLATFORMS[platform_name(name)]
    module, _, attr = path.partition(":")
    try:
        mod = importlib.import_module(module, package=__package__)
    except ImportError as exc:
        where = ("it runs only in the qdet repository, with its simulators installed" if not module.startswith(".")
                 else "this runtime package is incomplete: copy the whole qdet_runtime folder (`qdet deploy`)")
        raise PlatformUnavailable(f"platform {name!r} cannot load {module.lstrip('.')} ({exc}): {where}") from None
    return getattr(mod, attr)(spec, **options)
