"""Stream packing, in one place: elements <-> AXI-Stream beats, for the generators, the simulators and the host.

A beat of N elements of B bits holds element i in bits ``[i*B +: B]`` (element 0 in the LSBs), two's complement
when signed; a tensor streams NHWC, channel fastest. Three forms of a beat are used:

- an ``int`` (the cocotb drivers and kernel benches: :func:`pack`, :func:`unpack`),
- a fixed-width lowercase hex word (``$readmemh`` memory files, harness buffers, traces: :func:`pack_words`,
  :func:`unpack_words`),
- little-endian bytes, ``width // 8`` per beat, as an AXI DMA moves them between host memory and the accelerator's
  ports (the C simulation's buffers and the host driver: :func:`pack_bytes`, :func:`unpack_bytes`).

All three agree bit for bit; the numpy forms are vectorised, so a frame of beats or a weight matrix packs in
milliseconds.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


def pack(values: Iterable[int], bits: int) -> int:
    """Pack elements into one beat, element 0 in the LSBs; negative values in two's complement.

    >>> hex(pack([1, 2, 15], 4))
    '0xf21'
    >>> hex(pack([-1, 1], 4))
    '0x1f'
    """
    mask = (1 << bits) - 1
    word = 0
    for i, v in enumerate(values):
        word |= (int(v) & mask) << (i * bits)
    return word


def unpack(word: int, n: int, bits: int, signed: bool = False) -> list[int]:
    """The ``n`` elements of a beat, element 0 from the LSBs.

    >>> unpack(0x1f, 2, 4, signed=True)
    [-1, 1]
    """
    mask = (1 << bits) - 1
    out = []
    for i in range(n):
        v = (word >> (i * bits)) & mask
        if signed and v >> (bits - 1):
            v -= 1 << bits
        out.append(v)
    return out


def _bit_planes(lanes: np.ndarray, bits: int) -> np.ndarray:
    """(n, L) lane values -> (n, L*bits) bits, LSB first: bit b of lane i at column i*bits + b."""
    n, count = lanes.shape
    vals = (np.asarray(lanes, np.int64) & ((1 << bits) - 1)).astype(np.uint64)
    return ((vals[:, :, None] >> np.arange(bits, dtype=np.uint64)) & 1).astype(np.uint8).reshape(n, count * bits)


def pack_words(lanes: np.ndarray, bits: int) -> list[str]:
    """Rows of lane values (n, L) -> n hex words; lane i in bits [i*bits +: bits] (two's complement if < 0)."""
    lanes = np.asarray(lanes, dtype=np.int64)
    if lanes.ndim != 2:
        raise ValueError(f"expected (words, lanes), got shape {lanes.shape}")
    n, count = lanes.shape
    width = count * bits
    digits = max(1, -(-width // 4))
    if n == 0:
        return []
    padded = np.zeros((n, digits * 4), np.uint8)
    padded[:, :width] = _bit_planes(lanes, bits)
    nibbles = padded.reshape(n, digits, 4) @ np.array([1, 2, 4, 8], np.uint8)
    chars = np.frombuffer(b"0123456789abcdef", np.uint8)[nibbles[:, ::-1]]
    return [row.tobytes().decode() for row in chars]


def unpack_words(words: list[str], count: int, bits: int, signed: bool) -> np.ndarray:
    """Hex words -> (n, count) int64 lanes; inverse of :func:`pack_words` (bits above count*bits ignored)."""
    out = np.zeros((len(words), count), np.int64)
    mask = (1 << bits) - 1
    for r, word in enumerate(words):
        v = int(word, 16)
        for i in range(count):
            out[r, i] = (v >> (i * bits)) & mask
    if signed:
        out = np.where(out >= (1 << (bits - 1)), out - (1 << bits), out)
    return out


def pack_bytes(lanes: np.ndarray, bits: int, width: int) -> np.ndarray:
    """Rows of lane values (n, L) -> (n, width // 8) uint8, each beat little-endian in ``width`` bits (a multiple
    of 8 holding L*bits; the bits above are zero): what a DMA writes to a port of that width."""
    lanes = np.asarray(lanes, dtype=np.int64)
    n, count = lanes.shape
    if width % 8 or width < count * bits:
        raise ValueError(f"a {width}-bit port cannot carry {count} x {bits}-bit elements in whole bytes")
    planes = np.zeros((n, width), np.uint8)
    planes[:, :count * bits] = _bit_planes(lanes, bits)
    return np.packbits(planes, axis=1, bitorder="little")


def unpack_bytes(data: np.ndarray, count: int, bits: int, signed: bool) -> np.ndarray:
    """(n, width // 8) uint8 beats -> (n, count) int64 lanes; inverse of :func:`pack_bytes`."""
    data = np.asarray(data, np.uint8)
    planes = np.unpackbits(data, axis=1, bitorder="little")[:, :count * bits].astype(np.int64)
    vals = (planes.reshape(len(data), count, bits) << np.arange(bits, dtype=np.int64)).sum(axis=2)
    if signed:
        vals = np.where(vals >= (1 << (bits - 1)), vals - (1 << bits), vals)
    return vals


def frame_lanes(frames: np.ndarray, elems: int) -> np.ndarray:
    """Frames of any shape (frames, ...) -> (frames * beats, elems) lanes in stream order (C order per frame)."""
    flat = np.asarray(frames).reshape(len(frames), -1)
    if flat.shape[1] % elems:
        raise ValueError(f"a frame of {flat.shape[1]} elements is not a whole number of {elems}-element beats")
    return flat.reshape(-1, elems).astype(np.int64)
