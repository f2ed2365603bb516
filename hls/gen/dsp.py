"""DSP-packed MAC lanes (``qdet_packdot``, hls/rtl/README.md "DSP-packed MAC lanes"): how many products of one
shared input share a DSP multiplier, and the packed weight words the kernel reads.

An MVAU's PE channels multiply the same input element, so one multiplier computes x * Wpk with
Wpk = sum_j w_j * 2^(j*S), S = in_bits + w_bits - 1: every lane's product stays below 2^S in magnitude and the
kernel recovers each exactly from the product and the operands' signs. The lanes per DSP follow from the
multiplier's wide port: 25 bits on a 7-series DSP48E1, 27 on an UltraScale+ DSP48E2 (the input goes on the 18-bit
port)."""

from __future__ import annotations

import numpy as np

# The multiplier's wide (weight) and narrow (input) operand widths, by yosys' synth_xilinx family.
DSP_PORTS = {"xc7": (25, 18), "xcup": (27, 18)}


def lane_spacing(in_bits: int, w_bits: int) -> int:
    """Bits between two packed lanes: every product of an ``in_bits`` input (signed or not) and a signed
    ``w_bits`` weight lies strictly inside (-2^S, 2^S) for S = in_bits + w_bits - 1.

    >>> lane_spacing(4, 4), lane_spacing(2, 2), lane_spacing(8, 8)
    (7, 3, 15)
    """
    return in_bits + w_bits - 1


def packed_width(lanes: int, in_bits: int, w_bits: int, narrow: bool = False) -> int:
    """Bits of one packed weight word: (lanes - 1) spacings plus the top weight, plus one unless the weights are
    ``narrow`` (none is -2^(w_bits-1): only such a top weight over a negative lower part needs that bit)."""
    return (lanes - 1) * lane_spacing(in_bits, w_bits) + w_bits + int(lanes > 1 and not narrow)


# yosys' synth_xilinx maps a multiplier to a DSP only when its product has at least this many bits (measured, yosys
# 0.70: a 4x4-bit product truncated to 8 bits went to LUTs): a narrower packed product is fabric logic after all.
MIN_DSP_PRODUCT_BITS = 9


def product_width(lanes: int, in_bits: int, w_bits: int, narrow: bool = False) -> int:
    """Bits of the whole packed product qdet_packdot keeps: the input widened by one (so an unsigned one multiplies
    as non-negative) times the packed weight word.

    >>> product_width(1, 2, 2), product_width(2, 2, 2, narrow=True), product_width(4, 4, 4, narrow=True)
    (5, 8, 30)
    """
    return in_bits + 1 + packed_width(lanes, in_bits, w_bits, narrow)


def is_narrow(weights: np.ndarray, w_bits: int) -> bool:
    """True when no weight is -2^(w_bits-1) (Brevitas' narrow-range weight quantizers never produce it)."""
    return bool((np.asarray(weights) != -(1 << (w_bits - 1))).all())


def dsp_lanes(in_bits: int, w_bits: int, pe: int, family: str, narrow: bool = False) -> int:
    """Most products per DSP multiplier for this layer on ``family`` (at least 1, at most ``pe``).

    >>> dsp_lanes(4, 4, 64, "xcup"), dsp_lanes(4, 4, 64, "xc7"), dsp_lanes(4, 4, 64, "xc7", narrow=True)
    (4, 3, 4)
    >>> dsp_lanes(8, 8, 64, "xcup"), dsp_lanes(4, 4, 2, "xcup"), dsp_lanes(2, 2, 64, "xcup", narrow=True)
    (2, 2, 9)
    """
    wide, _ = DSP_PORTS[family]
    lanes = 1
    while lanes < pe and packed_width(lanes + 1, in_bits, w_bits, narrow) <= wide:
        lanes += 1
    return lanes


def multipliers_per_product(in_bits: int, in_signed: bool, w_bits: int, lanes: int, family: str,
                            narrow: bool = False) -> int:
    """DSP slices one packed multiply takes: 1 while both operands fit the ports, more for wider ones."""
    wide, short = DSP_PORTS[family]
    x = in_bits + (0 if in_signed else 1)
    w = packed_width(lanes, in_bits, w_bits, narrow)
    return -(-x // short) * -(-w // wide) if x > short or w > wide else 1


def dsp_count(pe: int, simd: int, in_bits: int, in_signed: bool, w_bits: int, lanes: int, family: str,
              narrow: bool = False) -> int:
    """DSP slices of a packed MVAU: ceil(PE / lanes) groups times SIMD inputs."""
    return -(-pe // lanes) * simd * multipliers_per_product(in_bits, in_signed, w_bits, lanes, family, narrow)


def packed_weight_lanes(lanes2d: np.ndarray, pe: int, simd: int, in_bits: int, w_bits: int, lanes: int
                        ) -> np.ndarray:
    """Packed words per ROM line from the plain (lines, PE*SIMD) lanes (lane p*SIMD + s): (lines, G*SIMD) values,
    entry g*SIMD + s = sum_j w[(g*lanes + j)*SIMD + s] * 2^(j*S) (the last group's missing lanes are 0)."""
    s_bits = lane_spacing(in_bits, w_bits)
    groups = -(-pe // lanes)
    w = np.asarray(lanes2d, np.int64).reshape(-1, pe, simd)
    padded = np.zeros((w.shape[0], groups * lanes, simd), np.int64)
    padded[:, :pe] = w
    padded = padded.reshape(w.shape[0], groups, lanes, simd)
    scale = np.array([1 << (j * s_bits) for j in range(lanes)], np.int64).reshape(1, 1, lanes, 1)
    return (padded * scale).sum(axis=2).reshape(w.shape[0], groups * simd)
