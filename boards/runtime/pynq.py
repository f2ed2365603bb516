"""The ``pynq`` platform: a Zynq board's AXI DMAs (the block design of ``boards/templates/zynq_project.tcl.j2``)
driven through pynq, on the board's own Python (a PYNQ image).

The input port streams through ``dma``'s MM2S channel (``sendchannel``), one transfer per batch (the accelerator
ignores input TLAST); output port 0 through ``dma``'s S2MM channel (``recvchannel``), output k > 0 through the
S2MM-only ``dma{k}`` (each port's ``.dma`` in ``driver.json``). The accelerator ends every output frame with TLAST,
and a simple-mode S2MM transfer ends at TLAST, so each output frame is its own transfer into its own buffer, re-armed
as the previous one completes (a single batch-sized transfer would stop after the first frame).

Completion is found by polling each channel's ``idle`` bit against a deadline, never by blocking in pynq's
``wait()``, which spins forever when an accelerator stalls or sends fewer bytes than asked for (the classic hang of
FINN drivers on the output DMA, FINN issue #659): a stall raises :class:`~.device.DmaTimeout` naming the channel.

Tested in qdet against a fake pynq (tests/boards/runtime/fakes.py), not yet on a board. ``pynq`` is imported only
when a device is opened, so this module imports anywhere.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .device import AcceleratorError, DmaTimeout, PlatformUnavailable, RunStats
from .spec import check_bitstream

# Which rail stands for "board power", best first (a case-insensitive substring of the rail's name): a rail named as
# a total, then the board's input rails (12 V on ZCU10x-class boards, 5 V on Ultra96/PYNQ-class ones), which see the
# PS, the PL, DDR and the rest; VCCINT (the fabric and core supply) only where no input rail is instrumented.
POWER_RAILS = ("power", "12V", "5V", "VCCINT", "INT")
POWER_PERIOD_S = 0.05  # during a long transfer, one power sample per this many seconds
POLL_SPIN_S = 0.01  # poll flat out while a channel completed within this long; else sleep POLL_SLEEP_S per poll
POLL_SLEEP_S = 1e-4


@dataclass
class _Channel:
    """One DMA channel of one port: the buffers it moves in turn (pynq PynqBuffers: one for the input's whole batch,
    one per frame for an output), the one being moved, and its words for errors."""

    label: str  # e.g. dma1.recvchannel
    port: Any  # the StreamPort
    channel: Any  # pynq's _SDMAChannel
    output: bool
    buffers: list[Any] = field(default_factory=list)
    armed: int = 0

    def timeout_message(self, frames: int, timeout_s: float) -> str:
        size = f"{self.port.frame_bytes} bytes per frame x {frames} frames"
        what = (f"output DMA {self.label} (port {self.port.name}) moved nothing for {timeout_s} s, frame "
                f"{self.armed} of {frames}: the accelerator produced fewer bytes than {size} or stalled" if self.output
                else f"input DMA {self.label} (port {self.port.name}) moved nothing for {timeout_s} s: the "
                f"accelerator did not accept all input ({size}): it stalled, or takes smaller frames")
        return (f"the {what}; check the bitstream matches driver.json (the same build) and that the same frames run "
                "in --platform csim; open the platform again (it reprograms the board) before the next batch")


class PynqDevice:
    """:class:`~.device.Device` over a pynq Overlay of ``bitfile`` (its ``.hwh`` next to it).

    ``timeout_s`` bounds the time without progress (no frame moved on any channel), so a large batch is not a
    timeout as long as frames keep coming; ``download=False`` uses the bitstream already on the PL; ``power=False``
    skips the rail readings. ``fclk_mhz`` is the PL clock 0 (set to the build's clock where pynq can set it).
    """

    name = "pynq"

    def __init__(self, spec: Any, bitfile: Path | str, *, timeout_s: float = 10.0, download: bool = True,
                 power: bool = True, **_options: Any):
        # The files first (a bitstream of another build is the more basic mistake, and is seen without pynq).
        self.spec = spec
        self.timeout_s = float(timeout_s)
        self.bitfile = check_bitstream(bitfile, spec, "bitstream")
        hwh = self.bitfile.with_suffix(".hwh")
        if not hwh.is_file():
            raise PlatformUnavailable(f"{hwh} does not exist: pynq reads the block design (its DMAs, clocks) from the "
                                      "hardware handoff next to the bitstream, with the same base name; copy the "
                                      f"build's {hwh.name} with {self.bitfile.name}")
        try:
            import pynq
        except ImportError as exc:
            raise PlatformUnavailable(f"pynq is not installed ({exc}): the pynq platform runs on a Zynq board's own "
                                      "Python (a PYNQ image); on a PC use `--platform csim`") from None
        if not hasattr(pynq, "Overlay"):  # e.g. run from inside qdet_runtime/, where this file is `pynq`
            raise PlatformUnavailable(f"the pynq imported from {getattr(pynq, '__file__', '?')} is not PYNQ: run from "
                                      "the deploy folder, not from inside its runtime package")
        self.pynq = pynq
        try:
            self.overlay = pynq.Overlay(str(self.bitfile), download=download)
        except Exception as exc:  # pynq.Device.active_device: "No devices found" off a board, or an unreadable .hwh
            raise PlatformUnavailable(f"pynq cannot load the overlay {self.bitfile} ({type(exc).__name__}: {exc}): no "
                                      "Zynq board here (pynq finds none), or the board cannot take this bitstream; "
                                      "on a PC use `--platform csim`") from None
        self.fclk_mhz = self._set_clock(float(spec.clock_mhz))
        inp = spec.inputs[0]
        self.inputs = [_Channel(f"{inp.dma}.sendchannel", inp, self._channel(inp, "sendchannel"), False)]
        self.outputs = [_Channel(f"{p.dma}.recvchannel", p, self._channel(p, "recvchannel"), True)
                        for p in spec.outputs]
        self._frames = 0
        self._stuck = ""  # the channel of a transfer that failed: its DMAs may still write into their buffers
        self._sensor = self._power_sensor() if power else None

    def _channel(self, port: Any, which: str) -> Any:
        try:
            dma = getattr(self.overlay, port.dma)
        except Exception as exc:  # pynq: AttributeError "Could not find IP or hierarchy ..."
            keys = ", ".join(sorted(getattr(self.overlay, "ip_dict", {}) or {})) or "none"
            raise AcceleratorError(f"the overlay {self.bitfile} has no DMA {port.dma!r} for port {port.name} ({exc}); "
                                   f"its IP: {keys}: the bitstream is not the block design driver.json describes "
                                   "(run `qdet deploy` again)") from None
        channel = getattr(dma, which, None)
        if channel is None:
            mode = "MM2S" if which == "sendchannel" else "S2MM"
            raise AcceleratorError(f"the DMA {port.dma} has no {which} ({mode}) for port {port.name}: the bitstream "
                                   "is not the block design driver.json describes")
        return channel

    def _set_clock(self, mhz: float) -> float:
        """Set PL clock 0 to the build's clock (FINN's driver does; pynq sets it from the .hwh when it downloads, so
        this matters with ``download=False``) and report what the PS reads back; failures are not fatal."""
        clocks = getattr(self.pynq, "Clocks", None) or getattr(getattr(self.pynq, "ps", None), "Clocks", None)
        if clocks is None or mhz <= 0:
            return mhz
        try:
            clocks.fclk0_mhz = mhz
            actual = float(clocks.fclk0_mhz)
            return actual if actual > 0 else mhz
        except Exception:
            return mhz

    def _power_sensor(self) -> Any:
        """The power sensor of the rail :data:`POWER_RAILS` prefers, or None (no rails, or no power API)."""
        try:
            rails = dict(self.pynq.get_rails())
        except Exception:
            return None
        powered = [(str(n), r.power) for n, r in rails.items() if getattr(r, "power", None) is not None]
        for want in POWER_RAILS:
            for name, sensor in powered:
                if want.lower() in name.lower():
                    return sensor
        return powered[0][1] if powered else None

    def _sample(self, samples: list[float]) -> None:
        """Append one power reading (W) to ``samples``, if there is a sensor."""
        try:
            if self._sensor is not None:
                samples.append(float(self._sensor.value))
        except Exception:  # a sensor that fails once is not trusted again
            self._sensor = None

    def _allocate(self, frames: int) -> None:
        """The input's batch buffer and each output's frame buffers; kept while the batch size stays the same."""
        if frames == self._frames:
            return
        self._free()
        for ch in (*self.inputs, *self.outputs):
            beats = ch.port.beats_per_frame * (1 if ch.output else frames)
            try:
                ch.buffers = [self.pynq.allocate(shape=(beats, ch.port.beat_bytes), dtype=np.uint8)
                              for _ in range(frames if ch.output else 1)]
            except Exception as exc:
                raise AcceleratorError(f"cannot allocate {frames * ch.port.frame_bytes} bytes of contiguous memory "
                                       f"for port {ch.port.name} ({exc}): use a smaller batch_size") from None
        self._frames = frames

    def transfer(self, frames: int, inp: np.ndarray, outs: Sequence[np.ndarray]) -> RunStats:
        if self._stuck:
            raise AcceleratorError(f"a previous transfer failed on {self._stuck} and its DMA may still be running: "
                                   "open the platform again (it reprograms the board) before the next batch")
        self._allocate(frames)
        ibuf = self.inputs[0].buffers[0]
        if tuple(inp.shape) != tuple(ibuf.shape):
            raise AcceleratorError(f"input of shape {tuple(inp.shape)} for {frames} frames; expected {ibuf.shape}")
        ibuf[...] = inp
        ibuf.flush()  # the DMA reads DDR, not the CPU's caches
        channels = [*self.outputs, *self.inputs]  # S2MM armed before MM2S, so no output beat waits on the PS
        samples: list[float] = []
        self._sample(samples)
        start = time.perf_counter()
        for ch in channels:
            self._arm(ch, 0)
        self._run(channels, frames, start, samples)
        wall = time.perf_counter() - start
        self._sample(samples)
        for ch, out in zip(self.outputs, outs):
            beats = ch.port.beats_per_frame
            for k, buf in enumerate(ch.buffers):
                buf.invalidate()  # drop stale cache lines over what the DMA wrote
                out[k * beats:(k + 1) * beats] = buf
        return RunStats(wall_s=wall, power_w=sum(samples) / len(samples) if samples else None)

    def _arm(self, ch: _Channel, k: int) -> None:
        """Start ``ch`` on its buffer ``k``."""
        try:
            ch.channel.transfer(ch.buffers[k])
        except Exception as exc:  # e.g. ValueError: more bytes than the DMA's length register holds
            self._stuck = ch.label
            raise AcceleratorError(f"cannot start {ch.label} (port {ch.port.name}, {ch.buffers[k].nbytes} bytes): "
                                   f"{exc}; a smaller batch_size moves fewer bytes") from None
        ch.armed = k

    def _run(self, channels: list[_Channel], frames: int, start: float, samples: list[float]) -> None:
        """Poll until every channel has moved all its buffers, re-arming each output for its next frame;
        DmaTimeout after ``timeout_s`` without progress, AcceleratorError on a DMA error or a short frame."""
        pending = list(channels)
        progress, next_sample = start, start + POWER_PERIOD_S
        while pending:
            for ch in list(pending):
                if getattr(ch.channel, "error", False):
                    self._stuck = ch.label
                    raise AcceleratorError(f"{ch.label} (port {ch.port.name}) reports a DMA error (internal, slave or "
                                           "decode error: a bad length or address): open the platform again")
                if not ch.channel.idle:
                    continue
                progress = time.perf_counter()
                if ch.output:
                    self._check_frame(ch, frames)
                if ch.armed + 1 < len(ch.buffers):
                    self._arm(ch, ch.armed + 1)
                else:
                    pending.remove(ch)
            now = time.perf_counter()
            if pending and now > progress + self.timeout_s:  # no frame moved for timeout_s
                # An input not taken in explains outputs not coming out, so it is named first; the rest are listed.
                first = next((c for c in pending if not c.output), pending[0])
                rest = [c.label + (f" at frame {c.armed}" if c.output else "") for c in pending if c is not first]
                self._stuck = first.label
                raise DmaTimeout(first.timeout_message(frames, self.timeout_s) +
                                 (f" (also pending: {', '.join(rest)})" if rest else ""))
            if now > next_sample:
                self._sample(samples)
                next_sample = now + POWER_PERIOD_S
            if now - progress > POLL_SPIN_S:  # nothing moved for a while: stop burning the core the PS shares
                time.sleep(POLL_SLEEP_S)

    def _check_frame(self, ch: _Channel, frames: int) -> None:
        """An S2MM channel also goes idle on an early TLAST, leaving stale bytes: pynq's ``wait()`` (immediate on an
        idle channel) reads back how many bytes it wrote, ``transferred``, where this pynq has it."""
        try:
            ch.channel.wait()
        except Exception as exc:
            self._stuck = ch.label  # the other channels are still armed
            raise AcceleratorError(f"{ch.label} (port {ch.port.name}): {exc}") from None
        got, want = getattr(ch.channel, "transferred", None), ch.port.frame_bytes
        if isinstance(got, (int, np.integer)) and got != want:
            self._stuck = ch.label
            raise AcceleratorError(f"{ch.label} (port {ch.port.name}) received {got} bytes for frame {ch.armed} of "
                                   f"{frames}, expected {want}: the accelerator ended the frame (TLAST) early, so the "
                                   "bitstream is not the build driver.json describes")

    def _free(self) -> None:
        for ch in (*self.inputs, *self.outputs):
            for buf in ch.buffers:
                buf.freebuffer()
            ch.buffers = []
        self._frames = 0

    def close(self) -> None:
        """Free the DMA buffers; after a failed transfer they are left allocated: its DMA may still write into them."""
        if not self._stuck:
            self._free()
