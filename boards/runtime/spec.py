"""What a driver knows of an accelerator (``driver.json``): its AXI-Stream ports, their FINN shapes, its clock.

A port's tensor streams NHWC, channel fastest, ``elems`` elements per beat (the fold). FINN's driver names three
forms of a batch of frames, kept here with its names: *normal* (``(N, H, W, C)``, the tensor), *folded*
(``(N, H, W, C // elems, elems)``) and *packed* (``(N, H, W, C // elems, width // 8)`` bytes, what the DMA moves;
:mod:`.stream` packs). The spec is written by ``qdet deploy`` / ``qdet run`` from the build's backend manifest and
``io_spec.json``, and read back on the board without qdet.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .device import AcceleratorError, PlatformUnavailable
from .io_spec import IOSpec

DRIVER_SPEC = "driver.json"


class SpecError(ValueError):
    """A driver spec that cannot describe the accelerator (missing fields, shapes that do not fold)."""


@dataclass(frozen=True)
class StreamPort:
    """One AXI-Stream port of the accelerator and the DMA channel that moves it."""

    name: str  # s_axis, m_axis, m1_axis, ...
    datatype: str  # FINN DataType of the elements, e.g. UINT8, INT16
    shape: tuple[int, ...]  # the normal shape of one frame, batch first (1, H, W, C)
    elems: int  # elements per beat
    bits: int  # bits per element
    width: int  # port width in bits (a multiple of 8; the bits above elems * bits are zero)
    signed: bool
    beats_per_frame: int
    dma: str  # the AXI DMA instance of the Zynq shell that moves this port (``dma``, ``dma1``, ...)

    def __post_init__(self) -> None:
        frame = 1
        for d in self.shape[1:]:
            frame *= d
        if self.shape[-1] % self.elems or frame != self.elems * self.beats_per_frame:
            raise SpecError(f"port {self.name}: a frame of shape {self.shape} does not fold into "
                            f"{self.beats_per_frame} beats of {self.elems} elements")
        bits, signed = datatype_bits(self.datatype)
        if (bits, signed) != (self.bits, self.signed):
            raise SpecError(f"port {self.name}: {self.datatype} is {bits}-bit {'signed' if signed else 'unsigned'}, "
                            f"the port says {self.bits}-bit {'signed' if self.signed else 'unsigned'}")
        if self.width % 8 or self.width < self.elems * self.bits:
            raise SpecError(f"port {self.name}: {self.width} bits cannot carry {self.elems} x {self.bits}-bit elements")

    @property
    def beat_bytes(self) -> int:
        """Bytes per beat in host memory."""
        return self.width // 8

    @property
    def frame_bytes(self) -> int:
        """Bytes per frame in host memory (what one DMA transfer per frame moves)."""
        return self.beats_per_frame * self.beat_bytes

    def normal(self, batch: int) -> tuple[int, ...]:
        """FINN's normal shape of ``batch`` frames."""
        return (batch, *self.shape[1:])

    def folded(self, batch: int) -> tuple[int, ...]:
        """FINN's folded shape: the channels split into (folds, elems)."""
        return (batch, *self.shape[1:-1], self.shape[-1] // self.elems, self.elems)

    def packed(self, batch: int) -> tuple[int, ...]:
        """FINN's packed shape: each fold as the beat's bytes."""
        return (batch, *self.shape[1:-1], self.shape[-1] // self.elems, self.beat_bytes)


@dataclass(frozen=True)
class DriverSpec:
    """The accelerator a driver talks to: one input port, one output port per head, and where it came from."""

    inputs: tuple[StreamPort, ...]
    outputs: tuple[StreamPort, ...]
    board: str
    clock_mhz: float
    top: str  # the accelerator's top module / HLS IP name
    source_sha256: str  # the hardware graph the backend generated from (the build's stream_links checkpoint)
    bitstream_sha256: str = ""  # of the .bit a deploy folder carries; checked before the board is programmed
    backend: str = ""  # rtl or cpp: which backend made the accelerator

    def to_json(self) -> str:
        """Stable JSON (sorted keys)."""
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    def save(self, path: Path) -> None:
        Path(path).write_text(self.to_json())

    @classmethod
    def load(cls, path: Path) -> DriverSpec:
        """Read ``driver.json``; SpecError naming the file when it is not one."""
        try:
            data = json.loads(Path(path).read_text())
        except FileNotFoundError:
            raise SpecError(f"{path} does not exist: a deploy folder has it next to run.py (`qdet deploy BUILD`)") \
                from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise SpecError(f"{path} is not a qdet driver spec ({exc}): write it again with `qdet deploy`") from None
        try:
            if not isinstance(data, dict):
                raise TypeError(f"a JSON object expected, got {type(data).__name__}")
            ports = {k: tuple(StreamPort(**{**p, "shape": tuple(p["shape"])}) for p in data.pop(k))
                     for k in ("inputs", "outputs")}
            return cls(**ports, **data)
        except (KeyError, TypeError, AttributeError, SpecError) as exc:
            raise SpecError(f"{path} is not a qdet driver spec ({exc}): write it again with `qdet deploy`") from None

    @classmethod
    def from_build(cls, manifest: dict[str, Any], spec: IOSpec, backend: str,
                   bitstream: Path | None = None) -> DriverSpec:
        """The spec of a backend's generated accelerator: ports from its ``manifest.json``, shapes and datatypes from
        the build's ``io_spec.json``."""
        ports = manifest["ports"]
        outs = [f"m{k}_axis" if k else "m_axis" for k in range(len(spec.outputs))]
        missing = [n for n in ("s_axis", *outs) if n not in ports]
        if missing:
            raise SpecError(f"the {backend} manifest has no port {', '.join(missing)} for the io_spec's "
                            f"{len(spec.outputs)} output(s): generate the backend again (`qdet sim BUILD`)")

        def port(name: str, io, dma: str) -> StreamPort:
            p = ports[name]
            return StreamPort(name=name, datatype=io.datatype, shape=tuple(io.shape), elems=p["elems"],
                              bits=p["bits"], width=p["width"], signed=bool(p.get("signed", False)),
                              beats_per_frame=p["beats_per_frame"], dma=dma)

        return cls(inputs=(port("s_axis", spec.input, "dma"),),
                   outputs=tuple(port(n, io, f"dma{k}" if k else "dma") for k, (n, io) in
                                 enumerate(zip(outs, spec.outputs))),
                   board=str(manifest.get("board", "")), clock_mhz=float(manifest.get("clock_mhz", 0.0)),
                   top=str(manifest.get("top", "qdet_top")), source_sha256=str(manifest.get("source_sha256", "")),
                   bitstream_sha256=sha256_of(bitstream) if bitstream is not None else "", backend=backend)


def datatype_bits(name: str) -> tuple[int, bool]:
    """(bits, signed) of a FINN integer DataType name (INTn, UINTn, BINARY, TERNARY); SpecError otherwise."""
    name = name.upper()
    fixed = {"BINARY": (1, False), "TERNARY": (2, True)}
    if name in fixed:
        return fixed[name]
    for prefix, signed in (("UINT", False), ("INT", True)):
        if name.startswith(prefix) and name[len(prefix):].isdigit():
            return int(name[len(prefix):]), signed
    raise SpecError(f"DataType {name} is not an integer type a stream carries in two's complement")


def sha256_of(path: Path) -> str:
    """The SHA-256 of a file (a bitstream), read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def check_bitstream(path: Path | str, spec: Any, what: str) -> Path:
    """``path`` as a Path once it exists and, where ``spec.bitstream_sha256`` is set, is the build's own file."""
    path = Path(path)
    if not path.is_file():
        raise PlatformUnavailable(f"the {what} {path} does not exist: a deploy folder carries it next to driver.json "
                                  "(`qdet deploy BUILD`)")
    want = getattr(spec, "bitstream_sha256", "")
    if want:
        got = sha256_of(path)
        if got != want:
            raise AcceleratorError(f"{path} does not match the build this driver was made for (sha256 {got}, "
                                   f"driver.json says {want}): copy the bitstream of that build or run `qdet deploy` "
                                   "again")
    return path
