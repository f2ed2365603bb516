"""cocotb bench for ``qdet_thresholding``: random legal parameter sets, FINN's ``Thresholding`` as the golden model.

Thresholds are drawn as FINN may hold them (real-valued, some outside the input range, some equal to input values)
and given to FINN unchanged; the T_FILE gets them rounded up and clipped to [min_in, max_in + 1] in IN_BITS+1 bits
(hls/rtl/README.md), so the run also checks that this storage rule loses nothing. The multi-instance driving is
:func:`sim.tb.streams.run_plan`."""

from __future__ import annotations

import math
import os
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cocotb
import numpy as np

from boards.runtime.stream import pack
from sim.tb.finn_node import execute_int, one_node_model
from sim.tb.streams import BACKPRESSURE, PLAN_ENV, StreamInstance, cycled, fold_words, run_plan, write_hex, write_plan


@dataclass(frozen=True)
class ThresholdingParams:
    """The HDL parameters of one ``qdet_thresholding`` instance, T_FILE aside."""

    c: int
    pe: int
    in_bits: int
    in_signed: bool
    steps: int
    out_bits: int
    out_signed: bool
    act_bias: int

    @property
    def cf(self) -> int:
        return self.c // self.pe

    def in_range(self) -> tuple[int, int]:
        """Smallest and largest input element."""
        if self.in_signed:
            return -(1 << (self.in_bits - 1)), (1 << (self.in_bits - 1)) - 1
        return 0, (1 << self.in_bits) - 1

    def hdl(self, t_file: Path) -> dict[str, int | str]:
        return {"C": self.c, "PE": self.pe, "IN_BITS": self.in_bits, "IN_SIGNED": int(self.in_signed),
                "STEPS": self.steps, "OUT_BITS": self.out_bits, "ACT_BIAS": self.act_bias,
                "T_FILE": str(t_file.resolve())}

    def label(self) -> str:
        ity = ("INT" if self.in_signed else "UINT") + str(self.in_bits)
        oty = ("INT" if self.out_signed else "UINT") + str(self.out_bits)
        bias = f"{self.act_bias:+d}" if self.act_bias else ""
        return f"C{self.c} PE{self.pe} {ity} T{self.steps}->{oty}{bias}"


@dataclass(frozen=True, eq=False)
class ThresholdingCase:
    """Parameters plus data: thresholds [C, STEPS] (float, as FINN holds them), inputs [V, C]."""

    params: ThresholdingParams
    thresholds: np.ndarray
    inputs: np.ndarray
    idle: float
    stall: float
    seed: int


def _out_type(steps: int, signed: bool) -> tuple[int, int]:
    """(OUT_BITS, ACT_BIAS) for outputs ACT_BIAS .. ACT_BIAS + steps; signed outputs centre the range on zero.

    >>> _out_type(15, False), _out_type(15, True), _out_type(1, True), _out_type(5, True)
    ((4, 0), (4, -8), (1, -1), (3, -3))
    """
    bias = -((steps + 1) // 2) if signed else 0
    lo, hi = bias, bias + steps
    bits = 1
    if signed:
        while lo < -(1 << (bits - 1)) or hi > (1 << (bits - 1)) - 1:
            bits += 1
    else:
        while hi > (1 << bits) - 1:
            bits += 1
    return bits, bias


def make_case(rng: random.Random, *, c: int, pe: int, in_bits: int, in_signed: bool, steps: int, out_signed: bool,
              pixels: int, idle: float, stall: float) -> ThresholdingCase:
    """Random inputs (a tenth each at the range ends) and thresholds: ties with input values, half-integers,
    values beyond the input range on both sides, and ordinary integers; ascending per channel."""
    xlo, xhi = (-(1 << (in_bits - 1)), (1 << (in_bits - 1)) - 1) if in_signed else (0, (1 << in_bits) - 1)
    x = np.empty((pixels, c), dtype=np.int64)
    for i in np.ndindex(x.shape):
        r = rng.random()
        x[i] = xlo if r < 0.1 else xhi if r < 0.2 else rng.randint(xlo, xhi)
    t = np.empty((c, steps), dtype=np.float64)
    for ch in range(c):
        for k in range(steps):
            r = rng.random()
            if r < 0.3:
                t[ch, k] = x[rng.randrange(pixels), ch]
            elif r < 0.5:
                t[ch, k] = rng.randint(xlo, xhi) + 0.5
            elif r < 0.6:
                t[ch, k] = xlo - rng.randint(1, 4)
            elif r < 0.7:
                t[ch, k] = xhi + rng.randint(1, 4)
            else:
                t[ch, k] = rng.randint(xlo, xhi + 1)
    t.sort(axis=1)
    out_bits, bias = _out_type(steps, out_signed)
    p = ThresholdingParams(c=c, pe=pe, in_bits=in_bits, in_signed=in_signed, steps=steps, out_bits=out_bits,
                           out_signed=out_signed, act_bias=bias)
    return ThresholdingCase(p, t, x, idle, stall, rng.getrandbits(32))


_C = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64)
_MAX_BEATS = 160  # input beats per random instance: bounds the simulated cycles


def sample_cases(seed: int, n: int = 24) -> list[ThresholdingCase]:
    """``n`` random legal cases: every (IN_BITS, signedness) pair of 1..8 bits (n >= 16), STEPS 1, 2^b-1 and odd
    counts between, signed (nonzero ACT_BIAS) and unsigned outputs, PE of 1, full and in between, all
    backpressure mixes; plus one wide case (C=3, UINT8 input, 255 steps to INT8)."""
    rng = random.Random(seed)
    in_types = cycled(rng, [(b, s) for s in (False, True) for b in range(1, 9)], n)
    steps = cycled(rng, [1, 3, 7, 15, 2, 5, 12], n)
    signed_out = cycled(rng, [False, True], n)
    folds = cycled(rng, ["1", "full", "mid"], n)
    pressure = cycled(rng, list(BACKPRESSURE), n)
    cases = []
    for i in range(n):
        c = rng.choice(_C)
        divs = [d for d in range(1, c + 1) if c % d == 0]
        mid = [d for d in divs if 1 < d < c] or divs
        pe = {"1": 1, "full": c, "mid": rng.choice(mid)}[folds[i]]
        ib, isg = in_types[i]
        cases.append(make_case(rng, c=c, pe=pe, in_bits=ib, in_signed=isg, steps=steps[i],
                               out_signed=signed_out[i], pixels=max(2, min(24, _MAX_BEATS // (c // pe))),
                               idle=pressure[i][0], stall=pressure[i][1]))
    cases.append(make_case(rng, c=3, pe=3, in_bits=8, in_signed=False, steps=255, out_signed=True, pixels=40,
                           idle=0.3, stall=0.5))
    return cases


def threshold_words(case: ThresholdingCase) -> list[int]:
    """T_FILE words: line cf, lane (p, k) holds ceil(T[cf*PE + p][k]) clipped to [min_in, max_in + 1], in
    IN_BITS+1 bits (for an integer x, x >= t exactly when x >= that value)."""
    p = case.params
    lo, hi = p.in_range()
    tq = [[min(max(math.ceil(v), lo), hi + 1) for v in row] for row in case.thresholds]
    return [pack([tq[cf * p.pe + q][k] for q in range(p.pe) for k in range(p.steps)], p.in_bits + 1)
            for cf in range(p.cf)]


def input_words(case: ThresholdingCase) -> list[int]:
    """The input stream: per pixel, CF beats of PE consecutive channels."""
    p = case.params
    return fold_words(case.inputs, p.pe, p.in_bits)


def output_words(params: ThresholdingParams, out: np.ndarray) -> list[int]:
    return fold_words(out, params.pe, params.out_bits)


def finn_reference(case: ThresholdingCase) -> np.ndarray:
    """Outputs [V, C] from FINN's python execution of a one-node ``Thresholding`` graph, raw thresholds."""
    p = case.params
    v = case.inputs.shape[0]
    idt = f"{'INT' if p.in_signed else 'UINT'}{p.in_bits}"
    odt = f"{'INT' if p.out_signed else 'UINT'}{p.out_bits}"
    model = one_node_model("Thresholding", [v, p.c], [v, p.c], idt,
                           initializers=[("thresh", case.thresholds, None)], NumChannels=p.c, PE=p.pe,
                           numSteps=p.steps, inputDataType=idt, weightDataType="FLOAT32", outputDataType=odt,
                           ActVal=p.act_bias, numInputVectors=[v])
    return execute_int(model, case.inputs).reshape(v, p.c)

def build_plan(cases: Sequence[ThresholdingCase], out_dir: Path) -> tuple[Path, Path]:
    """Write threshold files, wrapper and plan for ``cases`` (expected beats from :func:`finn_reference`)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    instances = []
    for i, case in enumerate(cases):
        p = case.params
        t_file = write_hex(out_dir / f"thr{i}_t.hex", threshold_words(case), p.pe * p.steps * (p.in_bits + 1))
        words_in = input_words(case)
        free = case.idle == 0 and case.stall == 0
        instances.append(StreamInstance(
            label=p.label(), params=p.hdl(t_file), in_width=p.pe * p.in_bits, out_width=p.pe * p.out_bits,
            words_in=tuple(words_in), words_out=tuple(output_words(p, finn_reference(case))), out_elems=p.pe,
            out_bits=p.out_bits, out_signed=p.out_signed, idle=case.idle, stall=case.stall, seed=case.seed,
            # one beat per cycle plus 2 of latency (threshold read, skid): exact, so one lost cycle fails
            max_cycles=len(words_in) + 2 if free else None))
    return write_plan("qdet_thresholding", instances, out_dir)


@cocotb.test()
async def thresholding_random(dut) -> None:
    """Every instance of the plan named by ``QDET_TB_PLAN``: all beats equal FINN's, none extra, rate kept."""
    await run_plan(dut, Path(os.environ[PLAN_ENV]))
