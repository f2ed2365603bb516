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
from hls.gen.dsp import DSP_PORTS, dsp_lanes
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
    dsp_lanes: int = 1  # MAC_STYLE "dsp": products per multiplier (qdet_packdot)
    w_narrow: bool = False  # no weight is -2^(W_BITS-1): packed words one bit narrower

    @property
    def sf(self) -> int:
        return self.mw // self.simd

    @property
    def nf(self) -> int:
        return self.mh // self.pe

    def hdl(self, w_file: Path, t_file: Path | None) -> dict[str, int | str]:
        """The parameter map for the wrapper (file paths absolute, so the simulator's working dir is irrelevant)."""
        return {"MW": self.mw, "MH": self.mh, "PE": self.pe, "SIMD": self.simd, **self.mac_hdl(w_file, t_file),
                "DSP_LANES": self.dsp_lanes, "W_NARROW": int(self.w_narrow)}

    @property
    def word_bits(self) -> int:
        """One W_FILE word: PE*SIMD weights, or (MAC_STYLE "dsp") ceil(PE/L)*SIMD packed words of
        (L-1)*S + W_BITS bits, S = IN_BITS + W_BITS - 1."""
        if self.mac_style != "dsp":
            return self.pe * self.simd * self.w_bits
        groups = -(-self.pe // self.dsp_lanes)
        return groups * self.simd * self.packed_bits

    @property
    def packed_bits(self) -> int:
        """One packed weight: (L-1)*S + W_BITS, plus 1 for L > 1 unless the weights are narrow."""
        extra = int(self.dsp_lanes > 1 and not self.w_narrow)
        return (self.dsp_lanes - 1) * (self.in_bits + self.w_bits - 1) + self.w_bits + extra

    def label(self) -> str:
        return (f"MW{self.mw} MH{self.mh} PE{self.pe} SIMD{self.simd} {self.in_dtype()} W{self.w_bits} "
                f"ACC{self.acc_bits} {self.act_label()} {self.mac_style}"
                + (f"x{self.dsp_lanes}{'n' if self.w_narrow else ''}" if self.mac_style == "dsp" else ""))


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
    # Half the DSP cases have narrow-range weights (no -2^(W-1), as Brevitas trains them): tighter packed words.
    narrow = mac_style == "dsp" and rng.random() < 0.5
    w = extremes_uniform(rng, -(1 << (w_bits - 1)) + int(narrow), (1 << (w_bits - 1)) - 1, (mw, mh))
    x = extremes_uniform(rng, xlo, xhi, (vectors, mw))
    lo = np.minimum(w * xlo, w * xhi).sum(axis=0)
    hi = np.maximum(w * xlo, w * xhi).sum(axis=0)
    acc = x @ w  # only to place ties among the thresholds; the golden is FINN's execution
    t = tie_thresholds(rng, acc, lo, hi, steps) if steps else None
    # DSP packing: the most lanes a DSP48E2 or a DSP48E1 takes, or fewer (any count from 1 to PE is legal).
    most = dsp_lanes(in_bits, w_bits, pe, rng.choice(sorted(DSP_PORTS)), narrow)
    lanes = rng.choice([most, most, rng.randint(1, most)]) if mac_style == "dsp" else 1
    p = MvauParams(mw=mw, mh=mh, pe=pe, simd=simd, in_bits=in_bits, in_signed=in_signed, w_bits=w_bits,
                   steps=steps, mac_style=mac_style, dsp_lanes=lanes, w_narrow=narrow,
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
        cases += corner_cases(rng)
    return with_styles_in_turn(cases)


# DSP packing at its limits: (IN_BITS, signed, W_BITS, narrow weights, family), PE 8 or more so that a DSP is full.
PACKING_CORNERS = ((4, False, 4, False, "xcup"), (4, False, 4, True, "xc7"), (4, True, 4, False, "xcup"),
                   (2, False, 2, True, "xcup"), (8, True, 8, False, "xc7"), (1, False, 3, False, "xcup"))


def _corner_values(lo: int, hi: int, most: int, rng: random.Random) -> list[int]:
    """Every integer in [lo, hi] when there are at most ``most``; else the extremes, -1, 0, 1 and random others."""
    if hi - lo + 1 <= most:
        return list(range(lo, hi + 1))
    fixed = sorted({lo, lo + 1, -1, 0, 1, hi - 1, hi} & set(range(lo, hi + 1)))
    return fixed + rng.sample([v for v in range(lo, hi + 1) if v not in fixed], most - len(fixed))


def corner_cases(rng: random.Random) -> list[MvauCase]:
    """DSP-packed MVAUs whose data hold every operand value: the vectors take every input value at every
    position, the weights every value (and 0) in every lane of a packed word, so each product corner, each
    borrow pattern of the lanes below and each zero meets the packing (README, "DSP-packed MAC lanes")."""
    cases = []
    for k, (ib, isg, wb, narrow, family) in enumerate(PACKING_CORNERS):
        mw, simd = 8, 4
        pe = 8 if ib > 2 else 16
        lanes = dsp_lanes(ib, wb, pe, family, narrow)
        xs = _corner_values(-(1 << (ib - 1)) if isg else 0, (1 << (ib - 1)) - 1 if isg else (1 << ib) - 1, 16, rng)
        ws = _corner_values(-(1 << (wb - 1)) + int(narrow), (1 << (wb - 1)) - 1, 16, rng)
        mh = pe * max(1, -(-len(ws) // simd))
        x = np.array([[xs[(v + 3 * i) % len(xs)] for i in range(mw)] for v in range(max(len(xs), 2))], np.int64)
        w = np.array([[ws[(i * 5 + c * 3 + c // pe) % len(ws)] for c in range(mh)] for i in range(mw)], np.int64)
        lo = np.minimum(w * x.min(), w * x.max()).sum(axis=0)
        hi = np.maximum(w * x.min(), w * x.max()).sum(axis=0)
        steps = (0, 15)[k % 2]
        t = tie_thresholds(rng, x @ w, lo, hi, steps) if steps else None
        p = MvauParams(mw=mw, mh=mh, pe=pe, simd=simd, in_bits=ib, in_signed=isg, w_bits=wb, steps=steps,
                       mac_style="dsp", dsp_lanes=lanes, w_narrow=narrow,
                       **act_widths(lo, hi, t, steps, False, 0, 0))
        idle, stall = BACKPRESSURE[k % len(BACKPRESSURE)]
        cases.append(MvauCase(p, w, t, x, idle, stall, rng.getrandbits(32)))
    return cases


# ====================================================================== memory files, streams, golden model

def weight_words(case: MvauCase) -> list[int]:
    """W_FILE words: line nf*SF + sf, lane (p, s) holds W[sf*SIMD + s][nf*PE + p]; with MAC_STYLE "dsp", lane
    (g, s) of PW bits holds sum_j W[sf*SIMD + s][nf*PE + g*L + j] * 2^(j*S) (README, "DSP-packed MAC lanes")."""
    p, w = case.params, case.weights
    if p.mac_style != "dsp":
        return [pack([w[sf * p.simd + s, nf * p.pe + q] for q in range(p.pe) for s in range(p.simd)], p.w_bits)
                for nf in range(p.nf) for sf in range(p.sf)]
    lanes, spacing = p.dsp_lanes, p.in_bits + p.w_bits - 1
    groups = -(-p.pe // lanes)
    width = p.packed_bits
    words = []
    for nf in range(p.nf):
        for sf in range(p.sf):
            packed = []
            for g in range(groups):
                for s in range(p.simd):
                    chans = [nf * p.pe + g * lanes + j for j in range(lanes) if g * lanes + j < p.pe]
                    packed.append(sum(int(w[sf * p.simd + s, c]) << (j * spacing) for j, c in enumerate(chans)))
            words.append(pack(packed, width))
    return words


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
                                      + pipeline_extra_latency(p.simd, p.tree_levels, p.mac_style == "dsp"),
                                      word_bits=p.word_bits))
    return write_plan("qdet_mvau", instances, out_dir)


@cocotb.test()
async def mvau_random(dut) -> None:
    """Every instance of the plan named by ``QDET_TB_PLAN``: all beats equal FINN's, none extra, rate kept."""
    await run_plan(dut, Path(os.environ[PLAN_ENV]))
