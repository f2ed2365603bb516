"""Fake ``pynq`` and ``pyxrt`` modules for the runtime's pynq and xrt platforms (neither installs here: pynq pins
numpy<2, pyxrt comes only with XRT).

Behind the fakes' DMAs sits a fake accelerator, :func:`accelerate`: output port p's frame is the input frame's bytes
(repeated to the output's frame size) plus p + 1, mod 256, so a test checks the bytes that come back. Memory is
modelled with a host view and a separate device copy: the DMAs see only what was flushed/synced to the device, and
the host sees what they wrote only after an invalidate/sync, so a driver that skips one gets stale bytes. A channel or
kernel named in ``stall`` never completes, as a stalled accelerator's would.
"""

from __future__ import annotations

import enum
import time
import types
from typing import Any

import numpy as np

from boards.runtime.spec import DriverSpec, StreamPort


def make_spec(bitstream_sha256: str = "") -> DriverSpec:
    """A two-head accelerator: UINT8 (1, 2, 2, 4) in, 4 per beat; the same shape out of m_axis (dma), an INT8
    (1, 1, 1, 8) out of m1_axis (dma1), one 8-byte beat per frame."""
    inp = StreamPort(name="s_axis", datatype="UINT8", shape=(1, 2, 2, 4), elems=4, bits=8, width=32, signed=False,
                     beats_per_frame=4, dma="dma")
    out0 = StreamPort(name="m_axis", datatype="UINT8", shape=(1, 2, 2, 4), elems=4, bits=8, width=32, signed=False,
                      beats_per_frame=4, dma="dma")
    out1 = StreamPort(name="m1_axis", datatype="INT8", shape=(1, 1, 1, 8), elems=8, bits=8, width=64, signed=True,
                      beats_per_frame=1, dma="dma1")
    return DriverSpec(inputs=(inp,), outputs=(out0, out1), board="zcu104", clock_mhz=200.0, top="qdet_top",
                      source_sha256="0" * 64, bitstream_sha256=bitstream_sha256, backend="cpp")


def accelerate(spec: DriverSpec, data: np.ndarray) -> list[np.ndarray]:
    """The fake accelerator: input bytes (all frames) -> each output port's bytes (all frames)."""
    frame = spec.inputs[0].frame_bytes
    x = np.asarray(data, np.uint8).reshape(-1, frame).astype(np.int64)
    return [((x[:, np.arange(p.frame_bytes) % frame] + k + 1) % 256).astype(np.uint8).reshape(-1)
            for k, p in enumerate(spec.outputs)]


def frames(n: int) -> np.ndarray:
    """``n`` random UINT8 frames of make_spec's input shape (seeded by ``n``)."""
    return np.random.default_rng(n).integers(0, 256, size=(n, 2, 2, 4))


def expected(x: np.ndarray) -> list[np.ndarray]:
    """What the fake accelerator's heads are, as integers: m_axis is x + 1, m1_axis the first 8 bytes + 2 as INT8."""
    flat = x.reshape(len(x), -1)
    head1 = ((flat[:, :8] + 2) % 256).astype(np.uint8).view(np.int8).astype(np.int64)
    return [(x + 1) % 256, head1.reshape(len(x), 1, 1, 8)]


# -- pynq ---------------------------------------------------------------------------------------------------------
class FakeBuffer(np.ndarray):
    """pynq.allocate's PynqBuffer: the array is the CPU's (cached) view, ``ddr`` what DDR holds."""

    def __array_finalize__(self, obj: Any) -> None:
        self.ddr = getattr(obj, "ddr", None)
        self.freed = getattr(obj, "freed", False)

    def flush(self) -> None:
        self.ddr[:] = np.asarray(self).reshape(-1).view(np.uint8)

    def invalidate(self) -> None:
        np.asarray(self).reshape(-1).view(np.uint8)[:] = self.ddr

    def freebuffer(self) -> None:
        self.freed = True


class FakeChannel:
    """A simple-mode AXI DMA channel: ``transfer`` starts it, ``idle`` says done (a few polls after it is, to exercise
    the driver's polling); ``wait`` on a busy channel fails the test (pynq's would spin forever). An S2MM channel
    takes the next TLAST-delimited packet of its port's ``stream``, as much as its buffer holds, as the real one does."""

    def __init__(self, board: FakePynq, label: str, output: bool):
        self.board, self.label, self.output = board, label, output
        self.buffer: FakeBuffer | None = None
        self.done = False
        self.polls = 0
        self.transferred = 0
        self.error = False
        self.stream: list[np.ndarray] = []  # S2MM: frames the accelerator sent that no transfer has taken yet

    @property
    def idle(self) -> bool:
        self.polls += 1
        slow = self.output and time.perf_counter() - self.started_at < self.board.frame_delay_s
        return self.done and self.polls > 2 and not slow

    def transfer(self, buffer: FakeBuffer) -> None:
        if self.buffer is not None and not self.done:
            raise RuntimeError("DMA channel not idle")
        self.buffer, self.done, self.polls = buffer, False, 0
        self.started_at = time.perf_counter()
        self.board.calls.append(self.label)
        self.board.started(self)

    def wait(self) -> None:
        assert self.done, f"{self.label}.wait() on a busy channel: pynq's wait() would never return"
        if self.output:
            self.buffer.invalidate()


class FakePynq:
    """A Zynq board with the spec's DMAs: ``module`` is what ``import pynq`` gives. ``overlay_error`` makes Overlay
    raise it; ``missing`` DMAs are absent from the overlay; ``stall`` channels never complete (a stalled input sends
    nothing on); ``short`` maps an output channel to the bytes of each of its frames (TLAST early); ``rails`` is
    get_rails()'s dict (None: no get_rails at all)."""

    def __init__(self, spec: DriverSpec, *, overlay_error: Exception | None = None, missing: tuple[str, ...] = (),
                 stall: tuple[str, ...] = (), short: dict[str, int] | None = None, frame_delay_s: float = 0.0,
                 rails: dict[str, Any] | None = None):
        self.spec, self.stall, self.short = spec, set(stall), dict(short or {})
        self.frame_delay_s = frame_delay_s  # each output frame takes this long after its receive is started
        self.calls: list[str] = []
        self.allocated: list[FakeBuffer] = []
        self.downloads: list[bool] = []
        board = self

        class Clocks:
            fclk0_mhz = 100.0

        class Overlay:
            def __init__(self, bitfile: str, download: bool = True):
                if overlay_error is not None:
                    raise overlay_error
                board.downloads.append(download)
                self.ip_dict = {name: {"type": "xilinx.com:ip:axi_dma:7.1"} for name in board.dmas
                                if name not in missing}
                self.ip_dict["qdet"] = {"type": "xilinx.com:hls:qdet_top:1.0"}
                for name, dma in board.dmas.items():
                    if name not in missing:
                        setattr(self, name, dma)

            def __getattr__(self, name: str) -> Any:
                raise AttributeError(f"Could not find IP or hierarchy {name} in overlay")

        def allocate(shape: tuple[int, ...], dtype: Any = np.uint8) -> FakeBuffer:
            buf = np.zeros(shape, dtype).view(FakeBuffer)
            buf.ddr = np.zeros(buf.nbytes, np.uint8)
            board.allocated.append(buf)
            return buf

        # the DMAs: dma has both channels (input and m_axis); dma1.. are S2MM only
        self.send = FakeChannel(self, f"{spec.inputs[0].dma}.sendchannel", False)
        self.recv = [FakeChannel(self, f"{p.dma}.recvchannel", True) for p in spec.outputs]
        self.dmas: dict[str, Any] = {}
        for port, ch in zip(spec.outputs, self.recv):
            self.dmas[port.dma] = types.SimpleNamespace(sendchannel=None, recvchannel=ch)
        self.dmas[spec.inputs[0].dma].sendchannel = self.send

        self.Clocks = Clocks
        self.module = types.ModuleType("pynq")
        self.module.Overlay = Overlay
        self.module.allocate = allocate
        self.module.ps = types.SimpleNamespace(Clocks=Clocks)
        if rails is not None:
            self.module.get_rails = lambda: rails

    def started(self, ch: FakeChannel) -> None:
        """A channel was started: an input batch goes through the accelerator (which ignores input TLAST) onto each
        output's stream, one packet per frame; then every armed S2MM channel takes what is there for it."""
        if ch is self.send and ch.label not in self.stall:
            for out, data, port in zip(self.recv, accelerate(self.spec, ch.buffer.ddr), self.spec.outputs):
                n = self.short.get(out.label, port.frame_bytes)
                out.stream += [frame[:n] for frame in data.reshape(-1, port.frame_bytes)]
            ch.done = True
        for out in self.recv:
            if out.buffer is None or out.done or not out.stream or out.label in self.stall:
                continue
            packet = out.stream[0]
            take = packet[:out.buffer.ddr.size]
            out.buffer.ddr[:take.size] = take
            out.stream[0] = packet[take.size:]
            if not out.stream[0].size:
                out.stream.pop(0)
            out.transferred, out.done = take.size, True


class FakeSensor:
    def __init__(self, value: float):
        self.value = value


def rail(power: float | None) -> types.SimpleNamespace:
    """A pynq Rail with a power sensor reading ``power`` W (None: a rail without a power sensor)."""
    return types.SimpleNamespace(power=FakeSensor(power) if power is not None else None, voltage=None, current=None)


# -- pyxrt --------------------------------------------------------------------------------------------------------
class ert_cmd_state(enum.Enum):  # noqa: N801 (pyxrt's spelling)
    ERT_CMD_STATE_NEW = 1
    ERT_CMD_STATE_RUNNING = 3
    ERT_CMD_STATE_COMPLETED = 4
    ERT_CMD_STATE_ERROR = 5


class FakeXrt:
    """An Alveo card with DMA kernels ``kernels`` (default idma0 and one odma per output): ``module`` is what
    ``import pyxrt`` gives. ``no_device`` makes pyxrt.device raise; ``stall`` kernels never complete."""

    def __init__(self, spec: DriverSpec, *, kernels: tuple[str, ...] | None = None, no_device: bool = False,
                 stall: tuple[str, ...] = ()):
        self.spec, self.stall = spec, set(stall)
        self.names = kernels or ("idma0", *(f"odma{k}" for k in range(len(spec.outputs))))
        self.calls: list[str] = []
        self.pending: dict[str, tuple[Any, Any]] = {}  # kernel -> (bo, run) of the batch being started
        board = self

        class Bo:
            normal = 0

            def __init__(self, device: Any, size: int, flags: int, group: int):
                self.host, self.dev = np.zeros(size, np.uint8), np.zeros(size, np.uint8)

            def write(self, data: Any, offset: int) -> None:
                raw = np.frombuffer(data, np.uint8)
                self.host[offset:offset + raw.size] = raw

            def read(self, size: int, offset: int) -> np.ndarray:
                return self.host[offset:offset + size].view(np.int8).copy()  # pyxrt returns char (int8) arrays

            def sync(self, direction: str, size: int, offset: int) -> None:
                src, dst = (self.host, self.dev) if direction == "to_device" else (self.dev, self.host)
                dst[offset:offset + size] = src[offset:offset + size]

        class Run:
            def __init__(self, name: str):
                self.name, self.done = name, False

            def wait(self, timeout_ms: int) -> ert_cmd_state:
                assert timeout_ms > 0, "run.wait(0) waits forever"
                if not self.done:
                    time.sleep(timeout_ms / 1e3)
                    return ert_cmd_state.ERT_CMD_STATE_RUNNING
                return ert_cmd_state.ERT_CMD_STATE_COMPLETED

        class Kernel:
            shared = "shared"

            def __init__(self, device: Any, uuid: Any, name: str, mode: Any = None):
                if name not in board.names:
                    raise RuntimeError(f"No compute units matching '{name}'")
                self.name = name

            def group_id(self, arg: int) -> int:
                return 0

            def __call__(self, bo: Any, frames: int) -> Run:
                run = Run(self.name)
                board.calls.append(self.name)
                board.pending[self.name] = (bo, run)
                board.kick()
                return run

        class Xclbin:
            def __init__(self, path: str):
                self.path = path

            def get_kernels(self) -> list[Any]:
                return [types.SimpleNamespace(get_name=lambda n=n: n) for n in board.names]

        class Device:
            def __init__(self, index: int):
                if no_device:
                    raise RuntimeError(f"Could not open device with index '{index}'")

            def load_xclbin(self, xclbin: Xclbin) -> str:
                return "uuid"

        self.module = types.ModuleType("pyxrt")
        self.module.device, self.module.xclbin, self.module.kernel, self.module.bo = Device, Xclbin, Kernel, Bo
        self.module.ert_cmd_state = ert_cmd_state
        self.module.xclBOSyncDirection = types.SimpleNamespace(XCL_BO_SYNC_BO_TO_DEVICE="to_device",
                                                               XCL_BO_SYNC_BO_FROM_DEVICE="from_device")

    def kick(self) -> None:
        """Run the accelerator once idma0 and every odma have been started for this batch."""
        if set(self.pending) != {"idma0", *(f"odma{k}" for k in range(len(self.spec.outputs)))}:
            return
        ibo = self.pending["idma0"][0]
        for k, data in enumerate(accelerate(self.spec, ibo.dev)):
            self.pending[f"odma{k}"][0].dev[:] = data
        for name, (_, run) in self.pending.items():
            run.done = name not in self.stall
        self.pending = {}


def isolated_script(module: str, body: str) -> str:
    """A ``python -I -c`` script that imports ``boards/runtime/<module>.py`` as ``qdet_runtime.<module>`` (as on a
    board; the runtime folder is argv[1]) where torch and PIL cannot be imported, binds it to ``mod``, runs ``body``
    and can print ``leaked``: the project packages (or torch/PIL) that got imported."""
    return f"""
import importlib.machinery, importlib.util, sys
sys.modules["torch"] = None
sys.modules["PIL"] = None
pkg = importlib.util.module_from_spec(importlib.machinery.ModuleSpec("qdet_runtime", None, is_package=True))
pkg.__path__ = [sys.argv[1]]
sys.modules["qdet_runtime"] = pkg
spec = importlib.util.spec_from_file_location("qdet_runtime.{module}", sys.argv[1] + "/{module}.py")
mod = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = mod
spec.loader.exec_module(mod)
{body}
"""


LEAKED = """leaked = sorted({m.split(".")[0] for m, v in sys.modules.items() if v is not None}
                & {"torch", "PIL", "quant_models", "qdet", "boards", "hls", "flows", "sim"})"""
