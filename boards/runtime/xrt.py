"""The ``xrt`` platform: an Alveo card through XRT's Python bindings (``pyxrt``), for an xclbin whose accelerator
is fed and drained by memory-mapped DMA kernels, one per port.

qdet's Alveo shell is not written yet: the kernel names below are the ones the Vitis linking step would give the
DMA kernels, as FINN's Alveo flow names them (``idma0`` for the input, ``odma0``, ``odma1``, ... for the outputs),
each called as ``kernel(buffer, frames)``. This module is tested against a fake pyxrt
(tests/boards/runtime/fakes.py) only, never on a card; treat it as the shape of the driver, not a proven one.

``pyxrt`` is imported only when a device is opened (it comes with XRT, not from PyPI), so this module imports
anywhere.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .device import AcceleratorError, DmaTimeout, PlatformUnavailable, RunStats
from .spec import check_bitstream

IDMA_KERNEL = "idma{}"  # input port k (qdet has one: idma0)
ODMA_KERNEL = "odma{}"  # output port k: odma0 drains m_axis, odma1 m1_axis, ...
BUFFER_ARG = 0  # the kernel argument that takes the buffer (its memory bank is that argument's group_id)
COMPLETED = "ERT_CMD_STATE_COMPLETED"
FAILED = ("ERT_CMD_STATE_ERROR", "ERT_CMD_STATE_ABORT", "ERT_CMD_STATE_NORESPONSE")


def _state_name(state: Any) -> str:
    """``ERT_CMD_STATE_...`` of a pyxrt ert_cmd_state (an enum whose str is ``ert_cmd_state.NAME``)."""
    return str(getattr(state, "name", state)).rsplit(".", 1)[-1]


class XrtDevice:
    """:class:`~.device.Device` over card ``device_index`` programmed with ``bitfile`` (the build's .xclbin).

    ``timeout_s`` bounds every transfer. ``fclk_mhz`` is the build's clock (the kernel clock Vitis was asked for).
    """

    name = "xrt"

    def __init__(self, spec: Any, bitfile: Path | str, *, device_index: int = 0, timeout_s: float = 10.0,
                 **_options: Any):
        try:
            import pyxrt
        except ImportError as exc:
            raise PlatformUnavailable(f"pyxrt is not importable ({exc}): pyxrt comes with XRT (source "
                                      "/opt/xilinx/xrt/setup.sh); it is not on PyPI; on a PC use --platform csim") \
                from None
        self.pyxrt = pyxrt
        self.spec = spec
        self.timeout_s = float(timeout_s)
        self.fclk_mhz = float(spec.clock_mhz)
        self.xclbin_path = check_bitstream(bitfile, spec, "xclbin")
        try:
            self.device = pyxrt.device(int(device_index))
        except Exception as exc:
            raise PlatformUnavailable(f"no Alveo card at index {device_index} ({exc}): `xbutil examine` lists the "
                                      "cards XRT sees; on a PC use --platform csim") from None
        try:
            self.xclbin = pyxrt.xclbin(str(self.xclbin_path))
            self.uuid = self.device.load_xclbin(self.xclbin)
        except Exception as exc:
            raise AcceleratorError(f"cannot program card {device_index} with {self.xclbin_path} ({exc}): is it built "
                                   "for this card's shell (`xbutil examine`)?") from None
        inp = spec.inputs[0]
        # (kernel name, port, kernel handle, output?) for the input and each output port
        self.ports = [(IDMA_KERNEL.format(0), inp, self._kernel(IDMA_KERNEL.format(0), inp), False)]
        self.ports += [(ODMA_KERNEL.format(k), p, self._kernel(ODMA_KERNEL.format(k), p), True)
                       for k, p in enumerate(spec.outputs)]
        self._frames = 0
        self._bos: list[Any] = []
        self._stuck = ""  # the kernel of a run that failed: it may still write into its buffer

    def _kernel(self, name: str, port: Any) -> Any:
        mode = getattr(self.pyxrt.kernel, "shared", None)
        try:
            return self.pyxrt.kernel(self.device, self.uuid, name, *([mode] if mode is not None else []))
        except Exception as exc:
            try:
                have = ", ".join(k.get_name() for k in self.xclbin.get_kernels()) or "none"
            except Exception:
                have = "unknown"
            raise AcceleratorError(f"the xclbin {self.xclbin_path} has no kernel {name!r} for port {port.name} "
                                   f"({exc}); its kernels: {have}: it is not the build driver.json describes") from None

    def _allocate(self, frames: int) -> None:
        """One device buffer per port, in the bank of its kernel's buffer argument; kept while the batch size stays."""
        if frames == self._frames:
            return
        self._bos = []
        for _, port, kernel, _ in self.ports:
            nbytes = frames * port.frame_bytes
            try:
                self._bos.append(self.pyxrt.bo(self.device, nbytes, self.pyxrt.bo.normal, kernel.group_id(BUFFER_ARG)))
            except Exception as exc:
                raise AcceleratorError(f"cannot allocate {nbytes} bytes of card memory for port {port.name} ({exc}): "
                                       "use a smaller batch_size") from None
        self._frames = frames

    def transfer(self, frames: int, inp: np.ndarray, outs: Sequence[np.ndarray]) -> RunStats:
        if self._stuck:
            raise AcceleratorError(f"a previous transfer failed on {self._stuck}: its kernels may still be running "
                                   "into their buffers; open the platform again (it reprograms the card)")
        self._allocate(frames)
        sync = self.pyxrt.xclBOSyncDirection
        ibo, obos = self._bos[0], self._bos[1:]
        data = np.ascontiguousarray(inp, np.uint8)
        if data.nbytes != frames * self.ports[0][1].frame_bytes:
            raise AcceleratorError(f"{data.nbytes} input bytes for {frames} frames of "
                                   f"{self.ports[0][1].frame_bytes} bytes")
        ibo.write(data, 0)
        ibo.sync(sync.XCL_BO_SYNC_BO_TO_DEVICE, data.nbytes, 0)
        start = time.perf_counter()
        # The output kernels first, so the accelerator's outputs are drained from the first beat.
        order = [*range(1, len(self.ports)), 0]
        runs = [(i, self.ports[i][2](self._bos[i], frames)) for i in order]
        deadline = start + self.timeout_s
        states: list[tuple[int, str]] = []
        for i, run in runs:
            # run.wait(0) waits forever: always ask for at least 1 ms.
            remaining_ms = max(1, int((deadline - time.perf_counter()) * 1e3))
            states.append((i, _state_name(run.wait(remaining_ms))))
        wall = time.perf_counter() - start
        # An input not taken in explains outputs not coming out: it is named first (the input port is index 0).
        bad = sorted(((i, s) for i, s in states if s != COMPLETED), key=lambda b: b[0] != 0)
        if bad:
            self._stuck = self.ports[bad[0][0]][0]
            raise self._failure(bad, frames)
        for obo, (_, port, _, _), out in zip(obos, self.ports[1:], outs):
            nbytes = frames * port.frame_bytes
            obo.sync(sync.XCL_BO_SYNC_BO_FROM_DEVICE, nbytes, 0)
            out[...] = np.frombuffer(obo.read(nbytes, 0), np.uint8).reshape(out.shape)
        return RunStats(wall_s=wall)

    def _failure(self, bad: list[tuple[int, str]], frames: int) -> AcceleratorError:
        """The error for the runs that did not complete, the first one named (the others listed)."""
        i, state = bad[0]
        name, port, _, output = self.ports[i]
        size = f"{port.frame_bytes} bytes per frame x {frames} frames"
        also = f" (also not completed: {', '.join(self.ports[j][0] for j, _ in bad[1:])})" if bad[1:] else ""
        if state in FAILED:
            return AcceleratorError(f"the kernel {name} (port {port.name}) ended in {state}{also}: `xbutil examine` "
                                    "shows the card's state; reset it before the next batch")
        what = (f"the accelerator produced fewer bytes than {size} or stalled" if output else
                f"the accelerator did not accept all input ({size})")
        return DmaTimeout(f"the {'output' if output else 'input'} DMA kernel {name} (port {port.name}) did not "
                          f"complete within {self.timeout_s} s (state {state}): {what}; check the xclbin matches "
                          f"driver.json and that the same frames run in --platform csim{also}")

    def close(self) -> None:
        """Drop the buffers and handles (pyxrt frees them when they are collected)."""
        self._bos = []
        self._frames = 0
