"""cocotb bench for ``qdet_vvau``: random legal parameter sets, FINN's VVAU as the golden model, random backpressure.

The pytest side (tests/sim/test_vvau.py) samples cases, writes the weight/threshold files and one multi-instance
wrapper, and computes the expected output beats with FINN's python execution of a one-node ``VVAU`` graph; the
cocotb side (:func:`vvau_random`) only drives and checks beats (:func:`sim.tb.streams.run_plan`).

Stream order. A case's input is an im2col tensor in FINN's python index order, row = pixel, column k*C + c
(window position major), which is what FINN's VVAU execution takes from a generic ``ConvolutionInputGenerator``
or ``Im2Col`` producer. The hardware stream is the depthwise sliding window's folded order (hls/rtl/README.md):
per pixel, channel fold nf, then window fold sf, each beat's lane s*PE + p holding channel nf*PE + p at window
position sf*SIMD + s. :func:`input_words` reorders into it. FINN's VVAU without a producer reads its input in that
folded order for its own PE (``execute_node`` reshapes to (C/PE, K, PE)); the golden uses PE = C, where both
orders are the index order, and tests/sim/test_vvau.py checks the two readings agree."""

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
# Pipeline latency of qdet_vvau at full rate (weight ROM/input register, product register, accumulator, skid).
LATENCY = 4


@dataclass(frozen=True)
class VvauParams(MacParamsMixin):
    """The HDL parameters of one ``qdet_vvau`` instance (hls/rtl/README.md), files aside."""

    c: int
    pe: int
    simd: int
    kh: int
    kw: int
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
    def k(self) -> int:
        return self.kh * self.kw

    @property
    def sf(self) -> int:
        return self.k // self.simd

    @property
    def nf(self) -> int:
        return self.c // self.pe

    def hdl(self, w_file: Path, t_file: Path | None) -> dict[str, int | str]:
        """The parameter map for the wrapper (file paths absolute, so the simulator's working dir is irrelevant)."""
        return {"C": self.c, "PE": self.pe, "SIMD": self.simd, "K": self.k, **self.mac_hdl(w_file, t_file)}

    def label(self) -> str:
        return (f"C{self.c} PE{self.pe} K{self.kh}x{self.kw} SIMD{self.simd} {self.in_dtype()} W{self.w_bits} "
                f"ACC{self.acc_bits} {self.act_label()} {self.mac_style}")


@dataclass(frozen=True, eq=False)
class VvauCase:
    """Parameters plus the data of one run: weights [C, K] (FINN's param0 (C, 1, K_H, K_W) flattened), thresholds
    [C, STEPS] (or None), im2col inputs [pixels, K*C] in index order (column k*C + c), output image (H, W)."""

    params: VvauParams
    weights: np.ndarray
    thresholds: np.ndarray | None
    cols: np.ndarray
    dim: tuple[int, int]
    idle: float
    stall: float
    seed: int


def make_case(rng: random.Random, *, c: int, pe: int, simd: int, kh: int, kw: int, in_bits: int, in_signed: bool,
              w_bits: int, steps: int, out_signed: bool, mac_style: str, dim: tuple[int, int], idle: float,
              stall: float, acc_margin: int = 0) -> VvauCase:
    """Random data for one parameter set. ACC_BITS is the fewest bits holding every reachable accumulator value
    and threshold (as FINN's accumulator minimisation does) plus ``acc_margin``. About a third of the thresholds
    equal accumulator values these inputs really produce, so ties (acc >= t) are exercised on purpose."""
    k = kh * kw
    xlo, xhi = (-(1 << (in_bits - 1)), (1 << (in_bits - 1)) - 1) if in_signed else (0, (1 << in_bits) - 1)
    w = extremes_uniform(rng, -(1 << (w_bits - 1)), (1 << (w_bits - 1)) - 1, (c, k))
    pixels = dim[0] * dim[1]
    cols = extremes_uniform(rng, xlo, xhi, (pixels, k * c))
    lo = np.minimum(w * xlo, w * xhi).sum(axis=1)
    hi = np.maximum(w * xlo, w * xhi).sum(axis=1)
    # Only to place ties among the thresholds; the expected outputs are FINN's.
    acc = np.einsum("pkc,ck->pc", cols.reshape(pixels, k, c), w)
    t = tie_thresholds(rng, acc, lo, hi, steps) if steps else None
    p = VvauParams(c=c, pe=pe, simd=simd, kh=kh, kw=kw, in_bits=in_bits, in_signed=in_signed, w_bits=w_bits,
                   steps=steps, mac_style=mac_style, **act_widths(lo, hi, t, steps, out_signed, acc_margin))
    return VvauCase(p, w, t, cols, dim, idle, stall, rng.getrandbits(32))


# Kernels (K_H, K_W): every case draws one; 7x7 and 5x5 keep their SF small through SIMD (see sample_cases).
KERNELS = ((1, 1), (3, 3), (5, 5), (7, 7), (3, 1), (1, 3), (2, 2))
_CHANNELS = (1, 2, 3, 4, 5, 6, 7, 8, 12, 13, 16)
_MAX_BEATS = 240  # input beats per instance (pixels * NF * SF): bounds the simulated cycles
_MAX_MACS = 49  # PE * SIMD per instance (a whole 7x7 window at PE = 1): bounds the compiled model


def sample_cases(seed: int, n: int = 24) -> list[VvauCase]:
    """``n`` random legal cases from ``seed``; with ``n`` >= 16 every input type of 1..8 bits (both signs), weight
    widths 1..8, STEPS 0/1/3/7/15, both MAC styles, every kernel of :data:`KERNELS`, SIMD 1/mid/K, PE 1/mid/C
    and every backpressure mix appear."""
    rng = random.Random(seed)
    in_types, w_bits, steps, macs = cycled_types(rng, n, range(1, 9))
    kernels = cycled(rng, list(KERNELS), n)
    pe_kinds = cycled(rng, ["1", "mid", "full"], n)
    simd_kinds = cycled(rng, ["1", "mid", "full"], n)
    signed_out = cycled(rng, [False, True], n)
    pressure = cycled(rng, list(BACKPRESSURE), n)
    cases = []
    for i in range(n):
        kh, kw = kernels[i]
        k = kh * kw
        for _ in range(1000):
            c = rng.choice(_CHANNELS)
            pe = divisor(rng, c, pe_kinds[i])
            simd = divisor(rng, k, simd_kinds[i])
            per_pixel = (c // pe) * (k // simd)
            if per_pixel <= _MAX_BEATS // 2 and pe * simd <= _MAX_MACS:
                break
        else:
            raise RuntimeError(f"no legal fold for case {i} (kernel {kh}x{kw})")
        pixels = max(2, min(6, _MAX_BEATS // per_pixel))
        dim = (1, pixels) if rng.random() < 0.5 else next((h, pixels // h) for h in (3, 2, 1) if pixels % h == 0)
        ib, isg = in_types[i]
        cases.append(make_case(rng, c=c, pe=pe, simd=simd, kh=kh, kw=kw, in_bits=ib, in_signed=isg,
                               w_bits=w_bits[i], steps=steps[i], out_signed=signed_out[i] and steps[i] >= 3,
                               mac_style=macs[i], dim=dim, idle=pressure[i][0], stall=pressure[i][1],
                               acc_margin=rng.choice([0, 0, 1, 3])))
    return with_styles_in_turn(cases)


# ====================================================================== memory files, streams, golden model

def weight_words(case: VvauCase) -> list[int]:
    """W_FILE words: line nf*SF + sf, lane (p, s) at bit offset (p*SIMD + s)*W_BITS holds W[nf*PE + p][sf*SIMD + s]."""
    p, w = case.params, case.weights
    return [pack([w[nf * p.pe + q, sf * p.simd + s] for q in range(p.pe) for s in range(p.simd)], p.w_bits)
            for nf in range(p.nf) for sf in range(p.sf)]


def threshold_words(case: VvauCase) -> list[int]:
    """T_FILE words: line nf, lane (p, j) holds T[nf*PE + p][j] in ACC_BITS (the MVAU's layout)."""
    return _threshold_words(case.params, case.thresholds)


def hardware_order(cols: np.ndarray, c: int, pe: int) -> np.ndarray:
    """Im2col rows [pixels, K*C] (column k*C + c) -> the same rows in the folded depthwise order: column
    (nf*K + k)*PE + p holds channel nf*PE + p at window position k."""
    pixels, kc = cols.shape
    k = kc // c
    return cols.reshape(pixels, k, c // pe, pe).transpose(0, 2, 1, 3).reshape(pixels, kc)


def input_words(case: VvauCase) -> list[int]:
    """The input stream: per pixel, NF*SF beats of SIMD*PE elements in the folded depthwise order."""
    p = case.params
    return fold_words(hardware_order(case.cols, p.c, p.pe), p.simd * p.pe, p.in_bits)


def output_words(params: VvauParams, out: np.ndarray) -> list[int]:
    """The output stream for outputs [pixels, C]: per pixel, NF beats of PE consecutive channels."""
    return fold_words(out, params.pe, params.out_bits)


def finn_model(case: VvauCase, pe: int | None = None, simd: int = 1):
    """A one-node FINN ``VVAU`` graph for ``case`` with attributes PE = ``pe`` (default C: the python execution
    then reads the index order, see the module doc) and SIMD = ``simd`` (no effect on the execution)."""
    p = case.params
    h, w = case.dim
    odt = f"{'INT' if p.out_signed else 'UINT'}{p.out_bits}"
    inits = [("weights", case.weights.reshape(p.c, 1, p.kh, p.kw), f"INT{p.w_bits}")]
    if p.steps:
        inits.append(("thresh", case.thresholds, None))
    return one_node_model("VVAU", [1, h, w, p.k * p.c], [1, h, w, p.c], p.in_dtype(), initializers=inits,
                          PE=p.c if pe is None else pe, SIMD=simd, Channels=p.c, Kernel=[p.kh, p.kw], Dim=[h, w],
                          inputDataType=p.in_dtype(), weightDataType=f"INT{p.w_bits}", outputDataType=odt,
                          accDataType=f"INT{p.acc_bits}", ActVal=p.act_bias, noActivation=int(p.steps == 0),
                          binaryXnorMode=0, ram_style=p.ram_style)


def finn_reference(case: VvauCase) -> np.ndarray:
    """Outputs [pixels, C] from FINN's python execution of a one-node ``VVAU`` graph on the im2col inputs."""
    p = case.params
    h, w = case.dim
    return execute_int(finn_model(case), case.cols.reshape(1, h, w, p.k * p.c)).reshape(h * w, p.c)


def build_plan(cases: Sequence[VvauCase], out_dir: Path) -> tuple[Path, Path]:
    """Write memory files, wrapper and plan for ``cases`` (expected beats from :func:`finn_reference`)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    instances = []
    for i, case in enumerate(cases):
        p = case.params
        words_in = input_words(case)
        # FINN's get_exp_cycles, C*K/(PE*SIMD) per pixel = one cycle per input beat, plus the pipeline latency:
        # exact, so one lost cycle anywhere fails.
        instances.append(mac_instance(case, out_dir / f"vvau{i}", weight_words(case), words_in,
                                      output_words(p, finn_reference(case)), p.simd * p.pe * p.in_bits,
                                      max_cycles=len(words_in) + LATENCY
                                      + pipeline_extra_latency(p.simd, p.tree_levels)))
    return write_plan("qdet_vvau", instances, out_dir)


@cocotb.test()
async def vvau_random(dut) -> None:
    """Every instance of the plan named by ``QDET_TB_PLAN``: all beats equal FINN's, none extra, rate kept."""
    await run_plan(dut, Path(os.environ[PLAN_ENV]))
