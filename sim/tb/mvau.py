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
from dataclasses import dataclass
from pathlib import Path

import cocotb
import numpy as np

from boards.runtime.stream import pack
from sim.tb.finn_node import execute_int, one_node_model
from sim.tb.mac import (MacParamsMixin, act_widths, cycled_types, divisor, extremes_uniform, mac_instance,
                        pipeline_extra_latency, threshold_words as _threshold_words, tie_thresholds,
                        with_styles_in_turn)
from sim.tb.streams import BACKPRESSURE, PLAN_ENV, cycled, fold_words, run_plan, write_plan


# ====================================================================== MVAU cases

@dataclass(frozen=True)
class MvauParams(MacParamsMixin):
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
    tree_levels: int = 0  # adder-tree levels per pipeline stage (qdet_dot): 0, 1 and 2 are simulated

    @property
    def sf(self) -> int:
        return self.mw // self.simd

    @property
    def nf(self) -> int:
        return self.mh // self.pe

    def hdl(self, w_file: Path, t_file: Path | None) -> dict[str, int | str]:
        """The parameter map for the wrapper (file paths absolute, so the simulator's working dir is irrelevant)."""
        return {"MW": self.mw, "MH": self.mh, "PE": self.pe, "SIMD": self.simd, **self.mac_hdl(w_file, t_file)}

    def label(self) -> str:
        return (f"MW{self.mw} MH{self.mh} PE{self.pe} SIMD{self.simd} {self.in_dtype()} W{self.w_bits} "
                f"ACC{self.acc_bits} {self.act_label()} {self.mac_style}")


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


def make_case(rng: random.Random, *, mw: int, mh: int, pe: int, simd: int, in_bits: int, in_signed: bool,
              w_bits: int, steps: int, out_signed: bool, mac_style: str, vectors: int, idle: float, stall: float,
              min_acc_bits: int = 0, acc_margin: int = 0) -> MvauCase:
    """Random data for one parameter set; ACC_BITS is the fewest bits holding every reachable accumulator value and
    threshold (as FINN's accumulator minimisation does), plus ``acc_margin``, at least ``min_acc_bits``."""
    xlo, xhi = (-(1 << (in_bits - 1)), (1 << (in_bits - 1)) - 1) if in_signed else (0, (1 << in_bits) - 1)
    w = extremes_uniform(rng, -(1 << (w_bits - 1)), (1 << (w_bits - 1)) - 1, (mw, mh))
    x = extremes_uniform(rng, xlo, xhi, (vectors, mw))
    lo = np.minimum(w * xlo, w * xhi).sum(axis=0)
    hi = np.maximum(w * xlo, w * xhi).sum(axis=0)
    acc = x @ w  # only to place ties among the thresholds; the golden is FINN's execution
    t = tie_thresholds(rng, acc, lo, hi, steps) if steps else None
    p = MvauParams(mw=mw, mh=mh, pe=pe, simd=simd, in_bits=in_bits, in_signed=in_signed, w_bits=w_bits,
                   steps=steps, mac_style=mac_style,
                   **act_widths(lo, hi, t, steps, out_signed, acc_margin, min_acc_bits))
    return MvauCase(p, w, t, x, idle, stall, rng.getrandbits(32))


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


def sample_cases(seed: int, n: int = 24, real: bool = True) -> list[MvauCase]:
    """``n`` random legal cases plus (``real``) the real graphs' shapes with random data, all from ``seed``.

    Every (IN_BITS, signedness) pair of 1..8 bits, W_BITS 2..8, STEPS 0/1/3/7/15, both MAC styles, SIMD and PE of
    1, full and in between, and all backpressure mixes appear when ``n`` >= 16."""
    rng = random.Random(seed)
    in_types, w_bits, steps, macs = cycled_types(rng, n, range(2, 9))
    folds = cycled(rng, [("1", "1"), ("full", "full"), ("1", "full"), ("full", "1"), ("mid", "mid")], n)
    signed_out = cycled(rng, [False, True], n)
    pressure = cycled(rng, list(BACKPRESSURE), n)
    cases = []
    for i in range(n):
        while True:
            mw, mh = rng.choice(_MW), rng.choice(_MH)
            simd, pe = divisor(rng, mw, folds[i][0]), divisor(rng, mh, folds[i][1])
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
    return with_styles_in_turn(cases)


# ====================================================================== memory files, streams, golden model

def weight_words(case: MvauCase) -> list[int]:
    """W_FILE words: line nf*SF + sf, lane (p, s) holds W[sf*SIMD + s][nf*PE + p]."""
    p, w = case.params, case.weights
    return [pack([w[sf * p.simd + s, nf * p.pe + q] for q in range(p.pe) for s in range(p.simd)], p.w_bits)
            for nf in range(p.nf) for sf in range(p.sf)]


def threshold_words(case: MvauCase) -> list[int]:
    """T_FILE words: line nf, lane (p, k) holds T[nf*PE + p][k] in ACC_BITS."""
    return _threshold_words(case.params, case.thresholds)


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
    idt = p.in_dtype()
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
        # FINN's cycle model, NF*SF cycles per vector, plus 4 of latency (ROM/input read, product register,
        # accumulator, skid) and the pipelined tree's stages: exact, so one lost cycle per vector fails.
        instances.append(mac_instance(case, out_dir / f"mvau{i}", weight_words(case), input_words(case),
                                      output_words(p, finn_reference(case)), p.simd * p.in_bits,
                                      max_cycles=case.inputs.shape[0] * p.nf * p.sf + 4
                                      + pipeline_extra_latency(p.simd, p.tree_levels)))
    return write_plan("qdet_mvau", instances, out_dir)


@cocotb.test()
async def mvau_random(dut) -> None:
    """Every instance of the plan named by ``QDET_TB_PLAN``: all beats equal FINN's, none extra, rate kept."""
    await run_plan(dut, Path(os.environ[PLAN_ENV]))
