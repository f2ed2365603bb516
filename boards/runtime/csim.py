"""The ``cpp-sim`` platform: the HLS C++ backend's C simulation as a shared library, a board that runs on any PC.

``libqdet_top*.so`` (built by ``qdet sim --backend cpp`` / ``qdet deploy``) exports ``qdet_csim_run(frames, in,
outs, err, err_len)``: the same bytes a DMA would move in, the same bytes out, every kernel a process on bounded
streams, so a deadlock is reported (with the stream that caused it) instead of hanging. Only ctypes and numpy.
"""

from __future__ import annotations

import ctypes
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .device import AcceleratorError, PlatformUnavailable, RunStats

ERR_BYTES = 1 << 16


class CsimLibrary:
    """The library's entry points (hls/cpp/templates/qdet_csim_api.cpp.j2)."""

    def __init__(self, path: Path):
        path = Path(path)
        if not path.is_file():
            raise PlatformUnavailable(f"the C-simulation library {path} does not exist: `qdet sim BUILD --backend cpp` "
                                      "builds it (a deploy folder carries it as libqdet_top.so)")
        try:
            self.dll = ctypes.CDLL(str(path.resolve()))
        except OSError as exc:
            raise PlatformUnavailable(f"cannot load the C-simulation library {path} ({exc}): it is built for x86-64 "
                                      "Linux; rebuild it here with `qdet deploy BUILD`") from None
        self.path = path
        self.dll.qdet_csim_run.restype = ctypes.c_int
        self.dll.qdet_csim_run.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p),
                                           ctypes.c_char_p, ctypes.c_int]
        self.dll.qdet_csim_stats.argtypes = [ctypes.c_char_p, ctypes.c_int]
        self.dll.qdet_csim_trace.argtypes = [ctypes.c_char_p]

    def run(self, frames: int, inp: np.ndarray, outs: Sequence[np.ndarray]) -> tuple[int, str, float]:
        """(frames completed, error text, wall seconds): ``inp`` and every ``outs[p]`` contiguous uint8 buffers."""
        inp = np.ascontiguousarray(inp, np.uint8)
        for o in outs:
            if not (o.flags["C_CONTIGUOUS"] and o.dtype == np.uint8):
                raise AcceleratorError("output buffers must be contiguous uint8 arrays")
        ptrs = (ctypes.c_void_p * len(outs))(*[o.ctypes.data for o in outs])
        err = ctypes.create_string_buffer(ERR_BYTES)
        start = time.perf_counter()
        done = self.dll.qdet_csim_run(int(frames), inp.ctypes.data, ptrs, err, ERR_BYTES)
        return done, err.value.decode(errors="replace"), time.perf_counter() - start

    def stats(self) -> dict[str, tuple[int, ...]]:
        """Per stream name: (depth, capacity, max occupancy, beats); clears the library's counts."""
        buf = ctypes.create_string_buffer(ERR_BYTES * 16)
        self.dll.qdet_csim_stats(buf, len(buf))
        rows = (line.split() for line in buf.value.decode().splitlines() if line.strip())
        return {r[0]: tuple(int(v) for v in r[1:]) for r in rows}

    def trace(self, path: Path | None) -> None:
        """Trace every stream's beats to ``path`` (None: stop tracing)."""
        if self.dll.qdet_csim_trace(str(path).encode() if path else None) != 0:
            raise AcceleratorError(f"cannot write the trace {path}")


class CsimDevice:
    """:class:`~.device.Device` over a :class:`CsimLibrary`; ``fclk_mhz`` is the build's clock (for reports only:
    a C simulation has no cycles)."""

    name = "cpp-sim"

    def __init__(self, spec: Any, library: Path | str, **_options: Any):
        self.lib = CsimLibrary(Path(library))
        self.fclk_mhz = float(spec.clock_mhz)

    def transfer(self, frames: int, inp: np.ndarray, outs: Sequence[np.ndarray]) -> RunStats:
        done, err, wall = self.lib.run(frames, inp, outs)
        if err or done != frames:
            raise AcceleratorError(f"the C simulation finished {done} of {frames} frames: {err or 'no error text'}")
        return RunStats(wall_s=wall)

    def close(self) -> None:
        """Nothing to release: the library stays loaded for the process (ctypes cannot unload it safely)."""
