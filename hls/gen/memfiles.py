"""Weight and threshold memory files in the layouts of hls/rtl/README.md, and packing of stream beats.

Every file is plain ``$readmemh`` text: one word per line, lowercase hex, fixed width, element 0 in the LSBs,
two's complement for negative values. Packing is vectorised through numpy bit arrays so a whole frame of beats
(or a 576x64 weight matrix) packs in milliseconds.
"""

from __future__ import annotations

import numpy as np


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
    vals = (lanes & ((1 << bits) - 1)).astype(np.uint64)
    # Bit b of lane i -> word bit i*bits + b (LSB-first), then groups of 4 bits -> one hex digit each.
    bit_planes = ((vals[:, :, None] >> np.arange(bits, dtype=np.uint64)) & 1).astype(np.uint8).reshape(n, width)
    padded = np.zeros((n, digits * 4), np.uint8)
    padded[:, :width] = bit_planes
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


def weight_lines(weights: np.ndarray, pe: int, simd: int, w_bits: int) -> list[str]:
    """MVAU ``W_FILE``: NF*SF words, word nf*SF + sf, lane (p, s) = W[sf*SIMD + s][nf*PE + p]."""
    mw, mh = weights.shape
    sf, nf = mw // simd, mh // pe
    # W[sf*SIMD + s][nf*PE + p] -> [nf, sf, p, s]
    w = np.asarray(weights, np.int64).reshape(sf, simd, nf, pe).transpose(2, 0, 3, 1)
    return pack_words(w.reshape(nf * sf, pe * simd), w_bits)


def threshold_lines(thresholds: np.ndarray, pe: int, t_bits: int) -> list[str]:
    """MVAU/thresholding ``T_FILE``: C/PE words, word f, lane (p, k) = T[f*PE + p][k] in ``t_bits`` bits."""
    c, steps = thresholds.shape
    t = np.asarray(thresholds, np.int64).reshape(c // pe, pe * steps)
    return pack_words(t, t_bits)


def vvau_weight_lines(weights: np.ndarray, pe: int, simd: int, w_bits: int) -> list[str]:
    """VVAU ``W_FILE``: NF*SF words, word nf*SF + sf, lane (p, s) = W[nf*PE + p][sf*SIMD + s].

    ``weights`` is (C, K): FINN's param0 (C, 1, K_H, K_W) reshaped, column k = ky*K_W + kx."""
    c, k = weights.shape
    nf, sf = c // pe, k // simd
    # W[nf*PE + p][sf*SIMD + s] -> [nf, sf, p, s]
    w = np.asarray(weights, np.int64).reshape(nf, pe, sf, simd).transpose(0, 2, 1, 3)
    return pack_words(w.reshape(nf * sf, pe * simd), w_bits)


def mem_text(lines: list[str]) -> str:
    """A memory file's text: one word per line, trailing newline."""
    return "".join(f"{line}\n" for line in lines)
