"""The accelerator API: frames in, the accelerator's integer outputs back, on any platform, with FINN's names.

FINN's generated PYNQ driver (``FINNExampleOverlay``) is what people's scripts call, so the names are its own
where it has them: ``batch_size``, ``idt`` / ``odt``, ``ishape_normal`` / ``ishape_folded`` / ``ishape_packed``
(and ``o...``), ``fold_input`` / ``pack_input`` / ``unpack_output`` / ``unfold_output``, ``execute`` and
``throughput_test`` with its result keys. The platform underneath (:mod:`.device`) only moves bytes.

>>> # acc = open_accelerator("cpp-sim", DriverSpec.load("driver.json"), library="libqdet_top.so")
>>> # heads = acc.execute(frames)            # (N, H, W, C) integers in -> one (N, h, w, c) array per output
>>> # acc.throughput_test()["throughput[images/s]"]
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from .device import AcceleratorError, Device, RunStats, open_device
from .spec import DriverSpec, datatype_bits
from .stream import frame_lanes, pack_bytes, unpack_bytes


class Accelerator:
    """An accelerator described by a :class:`DriverSpec` on one platform :class:`Device`."""

    def __init__(self, spec: DriverSpec, device: Device, batch_size: int = 1):
        self.spec = spec
        self.device = device
        self.batch_size = batch_size
        self.last_run: RunStats | None = None

    # -- FINN's names -------------------------------------------------------------------------------------------
    @property
    def batch_size(self) -> int:
        """Frames per DMA transfer (``execute`` splits larger inputs into batches of this size)."""
        return self._batch_size

    @batch_size.setter
    def batch_size(self, value: int) -> None:
        if int(value) < 1:
            raise AcceleratorError(f"batch_size must be >= 1, got {value}")
        self._batch_size = int(value)

    @property
    def num_inputs(self) -> int:
        return len(self.spec.inputs)

    @property
    def num_outputs(self) -> int:
        return len(self.spec.outputs)

    @property
    def fclk_mhz(self) -> float:
        return self.device.fclk_mhz

    def idt(self, ind: int = 0) -> str:
        """The input's FINN DataType name."""
        return self.spec.inputs[ind].datatype

    def odt(self, ind: int = 0) -> str:
        """Output ``ind``'s FINN DataType name."""
        return self.spec.outputs[ind].datatype

    def ishape_normal(self, ind: int = 0) -> tuple[int, ...]:
        return self.spec.inputs[ind].normal(self.batch_size)

    def oshape_normal(self, ind: int = 0) -> tuple[int, ...]:
        return self.spec.outputs[ind].normal(self.batch_size)

    def ishape_folded(self, ind: int = 0) -> tuple[int, ...]:
        return self.spec.inputs[ind].folded(self.batch_size)

    def oshape_folded(self, ind: int = 0) -> tuple[int, ...]:
        return self.spec.outputs[ind].folded(self.batch_size)

    def ishape_packed(self, ind: int = 0) -> tuple[int, ...]:
        return self.spec.inputs[ind].packed(self.batch_size)

    def oshape_packed(self, ind: int = 0) -> tuple[int, ...]:
        return self.spec.outputs[ind].packed(self.batch_size)

    def fold_input(self, ibuf_normal: np.ndarray, ind: int = 0) -> np.ndarray:
        """Normal (N, H, W, C) -> folded (N, H, W, C // elems, elems)."""
        port = self.spec.inputs[ind]
        x = np.asarray(ibuf_normal)
        if tuple(x.shape[1:]) != tuple(port.shape[1:]):
            raise AcceleratorError(f"input {port.name} takes frames of shape {tuple(port.shape[1:])} (H, W, C), "
                                   f"got {tuple(x.shape[1:])}")
        return x.reshape(port.folded(len(x)))

    def pack_input(self, ibuf_folded: np.ndarray, ind: int = 0) -> np.ndarray:
        """Folded -> packed bytes (N, ..., beat bytes): what the input DMA moves."""
        port = self.spec.inputs[ind]
        lanes = frame_lanes(np.asarray(ibuf_folded).astype(np.int64), port.elems)
        return pack_bytes(lanes, port.bits, port.width).reshape(port.packed(len(ibuf_folded)))

    def unpack_output(self, obuf_packed: np.ndarray, ind: int = 0) -> np.ndarray:
        """Packed bytes -> folded integers (int64)."""
        port = self.spec.outputs[ind]
        n = len(obuf_packed)
        vals = unpack_bytes(np.asarray(obuf_packed).reshape(-1, port.beat_bytes), port.elems, port.bits, port.signed)
        return vals.reshape(port.folded(n))

    def unfold_output(self, obuf_folded: np.ndarray, ind: int = 0) -> np.ndarray:
        """Folded -> normal (N, H, W, C)."""
        return np.asarray(obuf_folded).reshape(self.spec.outputs[ind].normal(len(obuf_folded)))

    def execute(self, input_npy: np.ndarray) -> np.ndarray | list[np.ndarray]:
        """Run normal-shaped integer frames (N, H, W, C) through the accelerator in batches of ``batch_size``;
        returns the output in normal shape (a list, one per port, for several outputs), int64."""
        x = np.asarray(input_npy)
        if x.ndim == len(self.spec.inputs[0].shape) - 1:
            x = x[None]
        self._check_range(x)
        parts: list[list[np.ndarray]] = [[np.zeros(p.normal(0), np.int64)] for p in self.spec.outputs]
        for start in range(0, len(x), self.batch_size):
            outs = self.execute_packed(self.pack_input(self.fold_input(x[start:start + self.batch_size])))
            for p, packed in enumerate(outs):
                parts[p].append(self.unfold_output(self.unpack_output(packed, p), p))
        result = [np.concatenate(p) for p in parts]
        return result[0] if len(result) == 1 else result

    def execute_packed(self, packed: np.ndarray) -> list[np.ndarray]:
        """One DMA transfer: packed input bytes of n frames -> packed bytes per output port (FINN's
        ``execute_on_buffers``, with the buffers as arrays). ``last_run`` says how long it took."""
        packed = np.asarray(packed, np.uint8)
        port = self.spec.inputs[0]
        n = len(packed)
        if packed.size != n * port.frame_bytes:
            # FINN's packed shape rounds a beat up to whole bytes of its data; qdet's ports are padded to the port
            # width, so FINN-packed bytes of a padded port are too few and would be read past their end.
            raise AcceleratorError(f"input {port.name} takes {port.frame_bytes} bytes per frame ({port.beats_per_frame} "
                                   f"beats of {port.beat_bytes} bytes, shape {port.packed(n)} for {n} frames), got "
                                   f"{packed.size} bytes in shape {packed.shape}: pack with pack_input")
        inp = np.ascontiguousarray(packed.reshape(-1, port.beat_bytes))
        outs = [np.zeros((n * p.beats_per_frame, p.beat_bytes), np.uint8) for p in self.spec.outputs]
        self.last_run = self.device.transfer(n, inp, outs)
        return [o.reshape(p.packed(n)) for o, p in zip(outs, self.spec.outputs)]

    def throughput_test(self) -> dict[str, Any]:
        """FINN's throughput test: one batch of ``batch_size`` random frames, timed per stage, with FINN's keys (and
        ``cycles`` / ``throughput_cycles[images/s]`` where the platform counts clock cycles)."""
        port = self.spec.inputs[0]
        lo, hi = _datatype_range(port.datatype)
        rng = np.random.default_rng(0)
        normal = rng.integers(lo, hi + 1, size=self.ishape_normal(), dtype=np.int64)
        res: dict[str, Any] = {}
        t0 = time.perf_counter()
        folded = self.fold_input(normal)
        t1 = time.perf_counter()
        packed = self.pack_input(folded)
        t2 = time.perf_counter()
        outs = self.execute_packed(packed)
        run = self.last_run
        t3 = time.perf_counter()
        unpacked = [self.unpack_output(o, p) for p, o in enumerate(outs)]
        t4 = time.perf_counter()
        for p, u in enumerate(unpacked):
            self.unfold_output(u, p)
        t5 = time.perf_counter()
        runtime = run.wall_s if run is not None else t3 - t2
        res["runtime[ms]"] = runtime * 1e3
        res["throughput[images/s]"] = self.batch_size / runtime if runtime > 0 else float("inf")
        in_bytes = self.batch_size * port.frame_bytes
        out_bytes = self.batch_size * sum(p.frame_bytes for p in self.spec.outputs)
        res["DRAM_in_bandwidth[MB/s]"] = in_bytes * 1e-6 / runtime if runtime > 0 else float("inf")
        res["DRAM_out_bandwidth[MB/s]"] = out_bytes * 1e-6 / runtime if runtime > 0 else float("inf")
        res["fclk[mhz]"] = self.fclk_mhz
        res["batch_size"] = self.batch_size
        res["fold_input[ms]"] = (t1 - t0) * 1e3
        res["pack_input[ms]"] = (t2 - t1) * 1e3
        # The platforms copy in and out inside one transfer; FINN times them apart, qdet reports the transfer.
        res["copy_input_data_to_device[ms]"] = 0.0
        res["copy_output_data_from_device[ms]"] = 0.0
        res["unpack_output[ms]"] = (t4 - t3) * 1e3
        res["unfold_output[ms]"] = (t5 - t4) * 1e3
        if run is not None and run.cycles:
            res["cycles"] = run.cycles
            res["throughput_cycles[images/s]"] = self.batch_size * self.fclk_mhz * 1e6 / run.cycles
        if run is not None and run.power_w is not None:
            res["power[W]"] = run.power_w
        return res

    def close(self) -> None:
        self.device.close()

    def __enter__(self) -> Accelerator:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _check_range(self, x: np.ndarray) -> None:
        """Integers outside the input's DataType would wrap silently in the packing: refuse them."""
        port = self.spec.inputs[0]
        lo, hi = _datatype_range(port.datatype)
        if x.size and (x.min() < lo or x.max() > hi or not np.all(np.equal(np.mod(x, 1), 0))):
            raise AcceleratorError(f"input {port.name} carries {port.datatype} integers in [{lo}, {hi}]; got values "
                                   f"in [{x.min()}, {x.max()}]: quantize on the host first (io_spec's input ops)")


def _datatype_range(name: str) -> tuple[int, int]:
    """The integer range of a FINN DataType name (INTn, UINTn, BINARY, TERNARY). BIPOLAR (-1 stored as bit 0) is not
    two's complement: qdet's streams never carry it (a StreamPort of it cannot be made)."""
    if name.upper() == "TERNARY":
        return -1, 1
    bits, signed = datatype_bits(name)
    return (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)


def open_accelerator(platform: str, spec: DriverSpec, batch_size: int = 1, **options: Any) -> Accelerator:
    """The accelerator ``spec`` on ``platform`` (cpp-sim, rtl-sim, pynq, xrt; see :mod:`.device`)."""
    return Accelerator(spec, open_device(platform, spec, **options), batch_size)
