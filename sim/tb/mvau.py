"""cocotb bench for ``qdet_mvau``: random legal parameter sets, FINN's MVAU as the golden model, random backpressure.

The pytest side (tests/sim/test_mvau.py) samples cases, writes the weight/threshold files and one multi-instance
wrapper, and computes the expected output beats with FINN's own python execution of a one-node ``MVAU`` graph; the
cocotb side (:func:`mvau_random`) only drives and checks beats, so the simulator process never imports FINN.

The multi-instance plumbing (:class:`StreamInstance`, :func:`write_plan`, :func:`run_plan`) is kernel-agnostic and
lives in :mod:`sim.tb.streams`."""

from __future__ import annotations

import os
import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import cocotb
import numpy as np

from sim.axis import pack
from sim.tb.finn_node import execute_int, one_node_model
from sim.tb.streams import (BACKPRESSURE, PLAN_ENV, StreamInstance, cycled, fold_words, run_plan, write_hex,
                            write_plan)

# Largest accumulator magnitude allowed in random cases: FINN executes the MVAU in float32, exact below 2^24.
_FLOAT_EXACT = 1 << 23


# ====================================================================== MVAU cases

@dataclass(frozen=True)
class MvauParams:
    """The HDL parameters of one ``qdet_mvau`` instance (hls/rtl/README.md), files aside."""

    mw: int
    mh: int
    pe: int
    simd: int
    in_bits: int
    in_signed: bool
    w_bits: int
    acc_bits: int
    steps: int
    out_bits: int
    out_signed: bool
    act_bias: int
    mac_style: str
    ram_style: str = "auto"  # the weight memory style (qdet_rom branch): every one is simulated

    @property
    def sf(self) -> int:
        return self.mw // self.simd

    @property
    def nf(self) -> int:
        return self.mh // self.pe

    def in_range(self) -> tuple[int, int]:
        """Smallest and largest input element."""
        if self.in_signed:
            return -(1 << (self.in_bits - 1)), (1 << (self.in_bits - 1)) - 1
        return 0, (1 << self.in_bits) - 1

    def hdl(self, w_file: Path, t_file: Path | None) -> dict[str, int | str]:
        """The parameter map for the wrapper (file paths absolute, so the simulator's working dir is irrelevant)."""
        return {"MW": self.mw, "MH": self.mh, "PE": self.pe, "SIMD": self.simd, "IN_BITS": self.in_bits,
                "IN_SIGNED": int(self.in_signed), "W_BITS": self.w_bits, "ACC_BITS": self.acc_bits,
                "STEPS": self.steps, "OUT_BITS": self.out_bits, "OUT_SIGNED": int(self.out_signed),
                "ACT_BIAS": self.act_bias, "W_FILE": str(w_file.resolve()),
                "T_FILE": str(t_file.resolve()) if t_file is not None else "", "MAC_STYLE": self.mac_style,
                "RAM_STYLE": self.ram_style}

    def label(self) -> str:
        ity = ("INT" if self.in_signed else "UINT") + str(self.in_bits)
        act = "noact" if self.steps == 0 else f"T{self.steps}->{'INT' if self.out_signed else 'UINT'}{self.out_bits}"
        if self.act_bias:
            act += f"{self.act_bias:+d}"
        return (f"MW{self.mw} MH{self.mh} PE{self.pe} SIMD{self.simd} {ity} W{self.w_bits} ACC{self.acc_bits} "
                f"{act} {self.mac_style}")


@dataclass(frozen=True, eq=False)
class MvauCase:
    """Parameters plus the data of one run: weights [MW, MH], thresholds [MH, STEPS] (or None), inputs [V, MW]."""

    params: MvauParams
    weights: np.ndarray
    thresholds: np.ndarray | None
    inputs: np.ndarray
    idle: float
    stall: float
    seed: int


def _signed_bits(lo: int, hi: int) -> int:
    """Fewest two's complement bits holding every integer in [lo, hi] (at least 2).

    >>> _signed_bits(-8, 7), _signed_bits(0, 8), _signed_bits(-9, 0)
    (4, 5, 5)
    """
    n = 2
    while lo < -(1 << (n - 1)) or hi > (1 << (n - 1)) - 1:
        n += 1
    return n


def _extremes_uniform(rng: random.Random, lo: int, hi: int, shape: tuple[int, ...]) -> np.ndarray:
    """Uniform integers in [lo, hi], a tenth each forced to lo and hi (the corner products)."""
    out = np.empty(int(np.prod(shape)), dtype=np.int64)
    for i in range(out.size):
        r = rng.random()
        out[i] = lo if r < 0.1 else hi if r < 0.2 else rng.randint(lo, hi)
    return out.reshape(shape)


def _thresholds(rng: random.Random, acc: np.ndarray, lo: np.ndarray, hi: np.ndarray, steps: int) -> np.ndarray:
    """Ascending thresholds per channel: about a third equal to accumulator values the inputs really produce (ties
    exercise ``acc >= t``), the rest spread over the channel's reachable range and just beyond it."""
    mh = acc.shape[1]
    t = np.empty((mh, steps), dtype=np.int64)
    for c in range(mh):
        for k in range(steps):
            if rng.random() < 0.35:
                t[c, k] = int(acc[rng.randrange(acc.shape[0]), c])
            else:
                t[c, k] = rng.randint(int(lo[c]) - 2, int(hi[c]) + 2)
    return np.sort(t, axis=1)


def make_case(rng: random.Random, *, mw: int, mh: int, pe: int, simd: int, in_bits: int, in_signed: bool,
              w_bits: int, steps: int, out_signed: bool, mac_style: str, vectors: int, idle: float, stall: float,
              min_acc_bits: int = 0, acc_margin: int = 0) -> MvauCase:
    """Random data for one parameter set; ACC_BITS is the fewest bits holding every reachable accumulator value and
    threshold (as FINN's accumulator minimisation does), plus ``acc_margin``, at least ``min_acc_bits``."""
    xlo, xhi = (-(1 << (in_bits - 1)), (1 << (in_bits - 1)) - 1) if in_signed else (0, (1 << in_bits) - 1)
    w = _extremes_uniform(rng, -(1 << (w_bits - 1)), (1 << (w_bits - 1)) - 1, (mw, mh))
    x = _extremes_uniform(rng, xlo, xhi, (vectors, mw))
    lo = np.minimum(w * xlo, w * xhi).sum(axis=0)
    hi = np.maximum(w * xlo, w * xhi).sum(axis=0)
    acc = x @ w  # only to place ties among the thresholds; the golden is FINN's execution
    t = _thresholds(rng, acc, lo, hi, steps) if steps else None
    tlo = min(int(lo.min()), int(t.min()) if t is not None else 0)
    thi = max(int(hi.max()), int(t.max()) if t is not None else 0)
    if max(-tlo, thi) >= _FLOAT_EXACT:
        raise ValueError("accumulator range too wide for an exact float32 golden model")
    acc_bits = max(min_acc_bits, _signed_bits(tlo, thi) + acc_margin)
    if steps:
        out_bits = max(1, steps.bit_length())
        act_bias = -(1 << (out_bits - 1)) if out_signed else 0
    else:
        out_bits, act_bias, out_signed = acc_bits, 0, True
    p = MvauParams(mw=mw, mh=mh, pe=pe, simd=simd, in_bits=in_bits, in_signed=in_signed, w_bits=w_bits,
                   acc_bits=acc_bits, steps=steps, out_bits=out_bits, out_signed=out_signed, act_bias=act_bias,
                   mac_style=mac_style)
    return MvauCase(p, w, t, x, idle, stall, rng.getrandbits(32))


def _divisor(rng: random.Random, n: int, kind: str) -> int:
    divs = [d for d in range(1, n + 1) if n % d == 0]
    if kind == "1":
        return 1
    if kind == "full":
        return n
    mid = [d for d in divs if 1 < d < n]
    return rng.choice(mid) if mid else rng.choice(divs)


# The real graphs' shapes (tinydet/UltraNet after SetFolding): first conv, a wide middle layer, the two heads.
REAL_SHAPES = (
    dict(mw=27, mh=16, pe=8, simd=9, in_bits=8, in_signed=False, w_bits=4, steps=15, out_signed=False,
         min_acc_bits=16, vectors=4),
    dict(mw=576, mh=64, pe=1, simd=96, in_bits=4, in_signed=False, w_bits=4, steps=15, out_signed=False,
         min_acc_bits=16, vectors=3),
    dict(mw=64, mh=27, pe=3, simd=2, in_bits=4, in_signed=False, w_bits=4, steps=0, out_signed=True,
         min_acc_bits=16, vectors=2),
    dict(mw=64, mh=36, pe=1, simd=2, in_bits=4, in_signed=False, w_bits=4, steps=0, out_signed=True,
         min_acc_bits=16, vectors=1),
)
_MW = (1, 2, 4, 6, 8, 9, 12, 16, 18, 24, 27, 32, 36)
_MH = (1, 2, 3, 4, 6, 8, 12, 16)
_MAX_CYCLES = 600  # vectors * NF * SF per random instance: bounds the simulated cycles
_MAX_MACS = 32  # PE * SIMD per random instance: bounds the compiled model (and so the compile time)


RAM_STYLES = ("auto", "block", "distributed", "ultra")


def sample_cases(seed: int, n: int = 24, real: bool = True) -> list[MvauCase]:
    """``n`` random legal cases plus (``real``) the real graphs' shapes with random data, all from ``seed``.

    Every (IN_BITS, signedness) pair of 1..8 bits, W_BITS 2..8, STEPS 0/1/3/7/15, both MAC styles, SIMD and PE of
    1, full and in between, and all backpressure mixes appear when ``n`` >= 16."""
    rng = random.Random(seed)
    in_types = cycled(rng, [(b, s) for s in (False, True) for b in range(1, 9)], n)
    w_bits = cycled(rng, list(range(2, 9)), n)
    steps = cycled(rng, [0, 1, 3, 7, 15], n)
    macs = cycled(rng, ["lut", "dsp"], n)
    folds = cycled(rng, [("1", "1"), ("full", "full"), ("1", "full"), ("full", "1"), ("mid", "mid")], n)
    signed_out = cycled(rng, [False, True], n)
    pressure = cycled(rng, list(BACKPRESSURE), n)
    cases = []
    for i in range(n):
        while True:
            mw, mh = rng.choice(_MW), rng.choice(_MH)
            simd, pe = _divisor(rng, mw, folds[i][0]), _divisor(rng, mh, folds[i][1])
            per_vector = (mw // simd) * (mh // pe)
            if per_vector * 2 <= _MAX_CYCLES and pe * simd <= _MAX_MACS:
                break
        ib, isg = in_types[i]
        cases.append(make_case(rng, mw=mw, mh=mh, pe=pe, simd=simd, in_bits=ib, in_signed=isg, w_bits=w_bits[i],
                               steps=steps[i], out_signed=signed_out[i] and steps[i] >= 3, mac_style=macs[i],
                               vectors=min(4, _MAX_CYCLES // per_vector), idle=pressure[i][0],
                               stall=pressure[i][1], acc_margin=rng.choice([0, 0, 1, 3])))
    if real:
        for j, shape in enumerate(REAL_SHAPES):
            idle, stall = BACKPRESSURE[j % len(BACKPRESSURE)]
            cases.append(make_case(rng, **shape, mac_style=("lut", "dsp")[j % 2], idle=idle, stall=stall))
    # Every weight memory style in turn (same data: the style changes only the vendor attribute of the ROM).
    return [replace(c, params=replace(c.params, ram_style=RAM_STYLES[i % len(RAM_STYLES)])) for i, c in enumerate(cases)]


# ====================================================================== memory files, streams, golden model

def weight_words(case: MvauCase) -> list[int]:
    """W_FILE words: line nf*SF + sf, lane (p, s) holds W[sf*SIMD + s][nf*PE + p]."""
    p, w = case.params, case.weights
    return [pack([w[sf * p.simd + s, nf * p.pe + q] for q in range(p.pe) for s in range(p.simd)], p.w_bits)
            for nf in range(p.nf) for sf in range(p.sf)]


def threshold_words(case: MvauCase) -> list[int]:
    """T_FILE words: line nf, lane (p, k) holds T[nf*PE + p][k] in ACC_BITS."""
    p, t = case.params, case.thresholds
    return [pack([t[nf * p.pe + q, k] for q in range(p.pe) for k in range(p.steps)], p.acc_bits)
            for nf in range(p.nf)]


def input_words(case: MvauCase) -> list[int]:
    """The input stream: per vector, SF beats of SIMD consecutive elements."""
    p = case.params
    return fold_words(case.inputs, p.simd, p.in_bits)


def output_words(params: MvauParams, out: np.ndarray) -> list[int]:
    """The output stream for outputs [V, MH]: per vector, NF beats of PE consecutive channels."""
    return fold_words(out, params.pe, params.out_bits)


def finn_reference(case: MvauCase) -> np.ndarray:
    """Outputs [V, MH] from FINN's python execution of a one-node ``MVAU`` graph (finn.custom_op.fpgadataflow)."""
    p = case.params
    v = case.inputs.shape[0]
    idt = f"{'INT' if p.in_signed else 'UINT'}{p.in_bits}"
    odt = f"{'INT' if p.out_signed else 'UINT'}{p.out_bits}"
    inits = [("weights", case.weights, f"INT{p.w_bits}")] + ([("thresh", case.thresholds, None)] if p.steps else [])
    model = one_node_model("MVAU", [v, p.mw], [v, p.mh], idt, initializers=inits, MW=p.mw, MH=p.mh, SIMD=p.simd,
                           PE=p.pe, inputDataType=idt, weightDataType=f"INT{p.w_bits}", outputDataType=odt,
                           accDataType=f"INT{p.acc_bits}", ActVal=p.act_bias, binaryXnorMode=0,
                           noActivation=int(p.steps == 0), numInputVectors=[v])
    return execute_int(model, case.inputs).reshape(v, p.mh)

def build_plan(cases: Sequence[MvauCase], out_dir: Path) -> tuple[Path, Path]:
    """Write memory files, wrapper and plan for ``cases`` (expected beats from :func:`finn_reference`)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    instances = []
    for i, case in enumerate(cases):
        p = case.params
        w_file = write_hex(out_dir / f"mvau{i}_w.hex", weight_words(case), p.pe * p.simd * p.w_bits)
        t_file = write_hex(out_dir / f"mvau{i}_t.hex", threshold_words(case), p.pe * p.steps * p.acc_bits) \
            if p.steps else None
        words_out = output_words(p, finn_reference(case))
        free = case.idle == 0 and case.stall == 0
        instances.append(StreamInstance(
            label=p.label(), params=p.hdl(w_file, t_file), in_width=p.simd * p.in_bits,
            out_width=p.pe * p.out_bits, words_in=tuple(input_words(case)), words_out=tuple(words_out),
            out_elems=p.pe, out_bits=p.out_bits, out_signed=p.out_signed, idle=case.idle, stall=case.stall,
            seed=case.seed,
            # FINN's cycle model, NF*SF cycles per vector, plus 4 of latency (ROM/input read, product register,
            # accumulator, skid): exact, so one lost cycle per vector fails.
            max_cycles=case.inputs.shape[0] * p.nf * p.sf + 4 if free else None))
    return write_plan("qdet_mvau", instances, out_dir)


@cocotb.test()
async def mvau_random(dut) -> None:
    """Every instance of the plan named by ``QDET_TB_PLAN``: all beats equal FINN's, none extra, rate kept."""
    await run_plan(dut, Path(os.environ[PLAN_ENV]))
