"""Weight and threshold memories in the layouts of hls/rtl/README.md: as lane arrays (the C++ backend's constant
arrays) and as memory files (the RTL's).

Every file is plain ``$readmemh`` text: one word per line, lowercase hex, fixed width, element 0 in the LSBs,
two's complement for negative values, packed by :mod:`boards.runtime.stream` (the one home of beat packing).
"""

from __future__ import annotations

import numpy as np

from boards.runtime.stream import pack_words


def weight_lanes(weights: np.ndarray, pe: int, simd: int) -> np.ndarray:
    """MVAU weights as (NF*SF, PE*SIMD) lanes: line nf*SF + sf, lane p*SIMD + s = W[sf*SIMD + s][nf*PE + p]."""
    mw, mh = weights.shape
    sf, nf = mw // simd, mh // pe
    # W[sf*SIMD + s][nf*PE + p] -> [nf, sf, p, s]
    w = np.asarray(weights, np.int64).reshape(sf, simd, nf, pe).transpose(2, 0, 3, 1)
    return w.reshape(nf * sf, pe * simd)


def weight_lines(weights: np.ndarray, pe: int, simd: int, w_bits: int) -> list[str]:
    """MVAU ``W_FILE``: NF*SF words, word nf*SF + sf, lane (p, s) = W[sf*SIMD + s][nf*PE + p]."""
    return pack_words(weight_lanes(weights, pe, simd), w_bits)


def packed_weight_lines(weights: np.ndarray, pe: int, simd: int, in_bits: int, w_bits: int, lanes: int,
                        narrow: bool) -> list[str]:
    """A DSP-packed MVAU's ``W_FILE`` (hls/rtl/README.md, "DSP-packed MAC lanes"): NF*SF words, word nf*SF + sf,
    lane (g, s) of :func:`hls.gen.dsp.packed_width` bits = sum_j W[sf*SIMD + s][nf*PE + g*lanes + j] * 2^(j*S)."""
    from hls.gen.dsp import packed_weight_lanes, packed_width

    packed = packed_weight_lanes(weight_lanes(weights, pe, simd), pe, simd, in_bits, w_bits, lanes)
    return pack_words(packed, packed_width(lanes, in_bits, w_bits, narrow))


def threshold_lanes(thresholds: np.ndarray, pe: int) -> np.ndarray:
    """Thresholds as (C/PE, PE*STEPS) lanes: line f, lane p*STEPS + k = T[f*PE + p][k]."""
    c, steps = thresholds.shape
    return np.asarray(thresholds, np.int64).reshape(c // pe, pe * steps)


def threshold_lines(thresholds: np.ndarray, pe: int, t_bits: int) -> list[str]:
    """MVAU/thresholding ``T_FILE``: C/PE words, word f, lane (p, k) = T[f*PE + p][k] in ``t_bits`` bits."""
    return pack_words(threshold_lanes(thresholds, pe), t_bits)


def vvau_weight_lanes(weights: np.ndarray, pe: int, simd: int) -> np.ndarray:
    """VVAU weights as (NF*SF, PE*SIMD) lanes: line nf*SF + sf, lane p*SIMD + s = W[nf*PE + p][sf*SIMD + s].

    ``weights`` is (C, K): FINN's param0 (C, 1, K_H, K_W) reshaped, column k = ky*K_W + kx."""
    c, k = weights.shape
    nf, sf = c // pe, k // simd
    # W[nf*PE + p][sf*SIMD + s] -> [nf, sf, p, s]
    w = np.asarray(weights, np.int64).reshape(nf, pe, sf, simd).transpose(0, 2, 1, 3)
    return w.reshape(nf * sf, pe * simd)


def vvau_weight_lines(weights: np.ndarray, pe: int, simd: int, w_bits: int) -> list[str]:
    """VVAU ``W_FILE``: NF*SF words, word nf*SF + sf, lane (p, s) = W[nf*PE + p][sf*SIMD + s]."""
    return pack_words(vvau_weight_lanes(weights, pe, simd), w_bits)


def mem_text(lines: list[str]) -> str:
    """A memory file's text: one word per line, trailing newline."""
    return "".join(f"{line}\n" for line in lines)
