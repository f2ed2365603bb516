"""Case building shared by the MAC kernel benches (sim/tb/mvau.py, sim/tb/vvau.py): random data with corner values,
ACC_BITS/OUT_BITS as FINN's accumulator minimisation chooses them, thresholds with ties, the common HDL parameters,
the T_FILE layout (the same for ``qdet_mvau`` and ``qdet_vvau``) and the plan entry of one case.

Each bench keeps what is its own: the matrix or window shapes, the weight and input stream orders, FINN's golden
model, and its cycle bound."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from boards.runtime.stream import pack
from sim.tb.streams import StreamInstance, cycled, write_hex

# Largest accumulator magnitude allowed in random cases: FINN executes MVAU/VVAU in float32, exact below 2^24.
FLOAT_EXACT = 1 << 23
# Every weight memory style (qdet_rom branch): the cases take them in turn.
RAM_STYLES = ("auto", "block", "distributed", "ultra")
# Adder-tree levels per pipeline stage (qdet_dot's TREE_LEVELS; 0: combinational), taken in turn, in an order
# coprime with RAM_STYLES' so that every pairing occurs.
TREE_LEVELS = (0, 1, 2)


class MacParamsMixin:
    """What the MVAU's and VVAU's parameter dataclasses share (fields in_bits, in_signed, w_bits, acc_bits, steps,
    out_bits, out_signed, act_bias, mac_style, ram_style, tree_levels)."""

    def in_dtype(self) -> str:
        return f"{'INT' if self.in_signed else 'UINT'}{self.in_bits}"

    def in_range(self) -> tuple[int, int]:
        """Smallest and largest input element."""
        if self.in_signed:
            return -(1 << (self.in_bits - 1)), (1 << (self.in_bits - 1)) - 1
        return 0, (1 << self.in_bits) - 1

    def mac_hdl(self, w_file: Path, t_file: Path | None) -> dict[str, int | str]:
        """The HDL parameters after the shape ones (file paths absolute, so the simulator's working dir is
        irrelevant)."""
        return {"IN_BITS": self.in_bits, "IN_SIGNED": int(self.in_signed), "W_BITS": self.w_bits,
                "ACC_BITS": self.acc_bits, "STEPS": self.steps, "OUT_BITS": self.out_bits,
                "OUT_SIGNED": int(self.out_signed), "ACT_BIAS": self.act_bias, "W_FILE": str(w_file.resolve()),
                "T_FILE": str(t_file.resolve()) if t_file is not None else "", "MAC_STYLE": self.mac_style,
                "RAM_STYLE": self.ram_style, "TREE_LEVELS": self.tree_levels}

    def act_label(self) -> str:
        act = "noact" if self.steps == 0 else f"T{self.steps}->{'INT' if self.out_signed else 'UINT'}{self.out_bits}"
        if self.act_bias:
            act += f"{self.act_bias:+d}"
        return act


def signed_bits(lo: int, hi: int) -> int:
    """Fewest two's complement bits holding every integer in [lo, hi] (at least 2).

    >>> signed_bits(-8, 7), signed_bits(0, 8), signed_bits(-9, 0)
    (4, 5, 5)
    """
    n = 2
    while lo < -(1 << (n - 1)) or hi > (1 << (n - 1)) - 1:
        n += 1
    return n


def extremes_uniform(rng: random.Random, lo: int, hi: int, shape: tuple[int, ...]) -> np.ndarray:
    """Uniform integers in [lo, hi], a tenth each forced to lo and hi (the corner products) and a twentieth to 0
    when the range holds it (zero products: the sign corner of DSP-packed lanes)."""
    out = np.empty(int(np.prod(shape)), dtype=np.int64)
    for i in range(out.size):
        r = rng.random()
        out[i] = lo if r < 0.1 else hi if r < 0.2 else 0 if r < 0.25 and lo <= 0 <= hi else rng.randint(lo, hi)
    return out.reshape(shape)


def divisor(rng: random.Random, n: int, kind: str) -> int:
    """A divisor of ``n``: 1 (``"1"``), ``n`` (``"full"``) or one in between when there is one (``"mid"``)."""
    divs = [d for d in range(1, n + 1) if n % d == 0]
    if kind == "1":
        return 1
    if kind == "full":
        return n
    mid = [d for d in divs if 1 < d < n]
    return rng.choice(mid) if mid else rng.choice(divs)


def cycled_types(rng: random.Random, n: int, w_bits: Sequence[int]) -> tuple[list, list, list, list]:
    """The cycled choices both benches draw first: (IN_BITS, signed) over 1..8 bits of both signs, W_BITS over
    ``w_bits``, STEPS 0/1/3/7/15 and both MAC styles, ``n`` each (every value appears once n allows)."""
    in_types = cycled(rng, [(b, s) for s in (False, True) for b in range(1, 9)], n)
    return (in_types, cycled(rng, list(w_bits), n), cycled(rng, [0, 1, 3, 7, 15], n),
            cycled(rng, ["lut", "dsp"], n))


def tie_thresholds(rng: random.Random, acc: np.ndarray, lo: np.ndarray, hi: np.ndarray, steps: int) -> np.ndarray:
    """Ascending thresholds [channels, steps] for accumulators ``acc`` [samples, channels]: about a third equal to
    accumulator values the inputs really produce (ties exercise ``acc >= t``), the rest spread over the channel's
    reachable range [lo, hi] and just beyond it."""
    channels = acc.shape[1]
    t = np.empty((channels, steps), dtype=np.int64)
    for c in range(channels):
        for k in range(steps):
            if rng.random() < 0.35:
                t[c, k] = int(acc[rng.randrange(acc.shape[0]), c])
            else:
                t[c, k] = rng.randint(int(lo[c]) - 2, int(hi[c]) + 2)
    return np.sort(t, axis=1)


def act_widths(lo: np.ndarray, hi: np.ndarray, t: np.ndarray | None, steps: int, out_signed: bool,
               acc_margin: int = 0, min_acc_bits: int = 0) -> dict[str, int | bool]:
    """ACC_BITS (the fewest bits holding every reachable accumulator value in [lo, hi] and every threshold, as FINN's
    accumulator minimisation does, plus ``acc_margin``, at least ``min_acc_bits``), OUT_BITS, ACT_BIAS and
    OUT_SIGNED (a signed activation is biased to start at its minimum; no activation outputs the accumulator)."""
    tlo = min(int(lo.min()), int(t.min()) if t is not None else 0)
    thi = max(int(hi.max()), int(t.max()) if t is not None else 0)
    if max(-tlo, thi) >= FLOAT_EXACT:
        raise ValueError("accumulator range too wide for an exact float32 golden model")
    acc_bits = max(min_acc_bits, signed_bits(tlo, thi) + acc_margin)
    if steps:
        out_bits = max(1, steps.bit_length())
        act_bias = -(1 << (out_bits - 1)) if out_signed else 0
    else:
        out_bits, act_bias, out_signed = acc_bits, 0, True
    return dict(acc_bits=acc_bits, out_bits=out_bits, act_bias=act_bias, out_signed=out_signed)


def pipeline_extra_latency(n: int, tree_levels: int, packed: bool = False) -> int:
    """Cycles a pipelined MAC (qdet_mac with TREE_LEVELS = L > 0) adds to the MVAU/VVAU latency
    (hls/rtl/README.md): qdet_dot registers the products, then every L adder levels of the clog2(n)-deep tree, and
    qdet_mt registers the comparison counts. A DSP-packed MVAU (``packed``) always registers its products: one
    more cycle when L = 0.

    >>> pipeline_extra_latency(8, 0), pipeline_extra_latency(8, 1), pipeline_extra_latency(8, 2)
    (0, 4, 3)
    >>> pipeline_extra_latency(1, 1), pipeline_extra_latency(8, 0, True), pipeline_extra_latency(8, 1, True)
    (2, 1, 4)
    """
    if tree_levels == 0:
        return int(packed)
    depth = (n - 1).bit_length()
    return max(1, -(-depth // tree_levels)) + 1


def with_styles_in_turn(cases: list) -> list:
    """Every weight memory style and adder-tree pipelining in turn (same data: the style changes only the vendor
    attribute of the ROM, the pipelining only the latency)."""
    return [replace(c, params=replace(c.params, ram_style=RAM_STYLES[i % len(RAM_STYLES)],
                                      tree_levels=TREE_LEVELS[i % len(TREE_LEVELS)]))
            for i, c in enumerate(cases)]


def threshold_words(params, thresholds: np.ndarray) -> list[int]:
    """T_FILE words: line nf, lane (p, k) at bit offset (p*STEPS + k)*ACC_BITS holds T[nf*PE + p][k]."""
    p, t = params, thresholds
    return [pack([t[nf * p.pe + q, k] for q in range(p.pe) for k in range(p.steps)], p.acc_bits)
            for nf in range(p.nf)]


def mac_instance(case, stem: Path, weight_words: Sequence[int], words_in: Sequence[int], words_out: Sequence[int],
                 in_width: int, max_cycles: int | None, word_bits: int | None = None) -> StreamInstance:
    """The plan entry of one MVAU/VVAU case: its W_FILE (``stem``_w.hex) and T_FILE (``stem``_t.hex, with an
    activation) written, the beats in and out, and ``max_cycles`` kept only for a run without idle or stall."""
    p = case.params
    w_file = write_hex(stem.with_name(stem.name + "_w.hex"), weight_words, word_bits or p.pe * p.simd * p.w_bits)
    t_file = write_hex(stem.with_name(stem.name + "_t.hex"), threshold_words(p, case.thresholds),
                       p.pe * p.steps * p.acc_bits) if p.steps else None
    free = case.idle == 0 and case.stall == 0
    return StreamInstance(label=p.label(), params=p.hdl(w_file, t_file), in_width=in_width,
                          out_width=p.pe * p.out_bits, words_in=tuple(words_in), words_out=tuple(words_out),
                          out_elems=p.pe, out_bits=p.out_bits, out_signed=p.out_signed, idle=case.idle,
                          stall=case.stall, seed=case.seed, max_cycles=max_cycles if free else None)
