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
from dataclasses import dataclass, replace
from pathlib import Path

import cocotb
import numpy as np

from sim.axis import pack
from sim.tb.finn_node import execute_int, one_node_model
from sim.tb.streams import BACKPRESSURE, PLAN_ENV, StreamInstance, cycled, fold_words, run_plan, write_hex, write_plan

# Largest accumulator magnitude allowed in random cases: FINN executes the VVAU in float32, exact below 2^24.
_FLOAT_EXACT = 1 << 23
# Pipeline latency of qdet_vvau at full rate (weight ROM/input register, product register, accumulator, skid).
LATENCY = 4


@dataclass(frozen=True)
class VvauParams:
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

    @property
    def k(self) -> int:
        return self.kh * self.kw

    @property
    def sf(self) -> int:
        return self.k // self.simd

    @property
    def nf(self) -> int:
        return self.c // self.pe

    def in_dtype(self) -> str:
        return f"{'INT' if self.in_signed else 'UINT'}{self.in_bits}"

    def in_range(self) -> tuple[int, int]:
        """Smallest and largest input element."""
        if self.in_signed:
            return -(1 << (self.in_bits - 1)), (1 << (self.in_bits - 1)) - 1
        return 0, (1 << self.in_bits) - 1

    def hdl(self, w_file: Path, t_file: Path | None) -> dict[str, int | str]:
        """The parameter map for the wrapper (file paths absolute, so the simulator's working dir is irrelevant)."""
        return {"C": self.c, "PE": self.pe, "SIMD": self.simd, "K": self.k, "IN_BITS": self.in_bits,
                "IN_SIGNED": int(self.in_signed), "W_BITS": self.w_bits, "ACC_BITS": self.acc_bits,
                "STEPS": self.steps, "OUT_BITS": self.out_bits, "OUT_SIGNED": int(self.out_signed),
                "ACT_BIAS": self.act_bias, "W_FILE": str(w_file.resolve()),
                "T_FILE": str(t_file.resolve()) if t_file is not None else "", "MAC_STYLE": self.mac_style,
                "RAM_STYLE": self.ram_style}

    def label(self) -> str:
        act = "noact" if self.steps == 0 else f"T{self.steps}->{'INT' if self.out_signed else 'UINT'}{self.out_bits}"
        if self.act_bias:
            act += f"{self.act_bias:+d}"
        return (f"C{self.c} PE{self.pe} K{self.kh}x{self.kw} SIMD{self.simd} {self.in_dtype()} W{self.w_bits} "
                f"ACC{self.acc_bits} {act} {self.mac_style}")


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


def _extremes_uniform(rng: random.Random, lo: int, hi: int, shape: tuple[int, ...]) -> np.ndarray:
    """Uniform integers in [lo, hi], a tenth each forced to lo and hi (the corner products)."""
    out = np.empty(int(np.prod(shape)), dtype=np.int64)
    for i in range(out.size):
        r = rng.random()
        out[i] = lo if r < 0.1 else hi if r < 0.2 else rng.randint(lo, hi)
    return out.reshape(shape)


def _signed_bits(lo: int, hi: int) -> int:
    """Fewest two's complement bits holding every integer in [lo, hi] (at least 2)."""
    n = 2
    while lo < -(1 << (n - 1)) or hi > (1 << (n - 1)) - 1:
        n += 1
    return n


def make_case(rng: random.Random, *, c: int, pe: int, simd: int, kh: int, kw: int, in_bits: int, in_signed: bool,
              w_bits: int, steps: int, out_signed: bool, mac_style: str, dim: tuple[int, int], idle: float,
              stall: float, acc_margin: int = 0) -> VvauCase:
    """Random data for one parameter set. ACC_BITS is the fewest bits holding every reachable accumulator value
    and threshold (as FINN's accumulator minimisation does) plus ``acc_margin``. About a third of the thresholds
    equal accumulator values these inputs really produce, so ties (acc >= t) are exercised on purpose."""
    k = kh * kw
    xlo, xhi = (-(1 << (in_bits - 1)), (1 << (in_bits - 1)) - 1) if in_signed else (0, (1 << in_bits) - 1)
    w = _extremes_uniform(rng, -(1 << (w_bits - 1)), (1 << (w_bits - 1)) - 1, (c, k))
    pixels = dim[0] * dim[1]
    cols = _extremes_uniform(rng, xlo, xhi, (pixels, k * c))
    lo = np.minimum(w * xlo, w * xhi).sum(axis=1)
    hi = np.maximum(w * xlo, w * xhi).sum(axis=1)
    # Only to place ties among the thresholds; the expected outputs are FINN's.
    acc = np.einsum("pkc,ck->pc", cols.reshape(pixels, k, c), w)
    t = None
    if steps:
        t = np.empty((c, steps), dtype=np.int64)
        for ch in range(c):
            for j in range(steps):
                t[ch, j] = (int(acc[rng.randrange(pixels), ch]) if rng.random() < 0.35
                            else rng.randint(int(lo[ch]) - 2, int(hi[ch]) + 2))
        t = np.sort(t, axis=1)
    tlo = min(int(lo.min()), int(t.min()) if t is not None else 0)
    thi = max(int(hi.max()), int(t.max()) if t is not None else 0)
    if max(-tlo, thi) >= _FLOAT_EXACT:
        raise ValueError("accumulator range too wide for an exact float32 golden model")
    acc_bits = _signed_bits(tlo, thi) + acc_margin
    if steps:
        out_bits = max(1, steps.bit_length())
        act_bias = -(1 << (out_bits - 1)) if out_signed else 0
    else:
        out_bits, act_bias, out_signed = acc_bits, 0, True
    p = VvauParams(c=c, pe=pe, simd=simd, kh=kh, kw=kw, in_bits=in_bits, in_signed=in_signed, w_bits=w_bits,
                   acc_bits=acc_bits, steps=steps, out_bits=out_bits, out_signed=out_signed, act_bias=act_bias,
                   mac_style=mac_style)
    return VvauCase(p, w, t, cols, dim, idle, stall, rng.getrandbits(32))


def _divisor(rng: random.Random, n: int, kind: str) -> int:
    divs = [d for d in range(1, n + 1) if n % d == 0]
    if kind == "1":
        return 1
    if kind == "full":
        return n
    mid = [d for d in divs if 1 < d < n]
    return rng.choice(mid) if mid else rng.choice(divs)


# Kernels (K_H, K_W): every case draws one; 7x7 and 5x5 keep their SF small through SIMD (see sample_cases).
KERNELS = ((1, 1), (3, 3), (5, 5), (7, 7), (3, 1), (1, 3), (2, 2))
_CHANNELS = (1, 2, 3, 4, 5, 6, 7, 8, 12, 13, 16)
_MAX_BEATS = 240  # input beats per instance (pixels * NF * SF): bounds the simulated cycles
_MAX_MACS = 49  # PE * SIMD per instance (a whole 7x7 window at PE = 1): bounds the compiled model


RAM_STYLES = ("auto", "block", "distributed", "ultra")


def sample_cases(seed: int, n: int = 24) -> list[VvauCase]:
    """``n`` random legal cases from ``seed``; with ``n`` >= 16 every input type of 1..8 bits (both signs), weight
    widths 1..8, STEPS 0/1/3/7/15, both MAC styles, every kernel of :data:`KERNELS`, SIMD 1/mid/K, PE 1/mid/C
    and every backpressure mix appear."""
    rng = random.Random(seed)
    in_types = cycled(rng, [(b, s) for s in (False, True) for b in range(1, 9)], n)
    w_bits = cycled(rng, list(range(1, 9)), n)
    steps = cycled(rng, [0, 1, 3, 7, 15], n)
    macs = cycled(rng, ["lut", "dsp"], n)
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
            pe = _divisor(rng, c, pe_kinds[i])
            simd = _divisor(rng, k, simd_kinds[i])
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
    # Every weight memory style in turn (same data: the style changes only the vendor attribute of the ROM).
    return [replace(c, params=replace(c.params, ram_style=RAM_STYLES[i % len(RAM_STYLES)])) for i, c in enumerate(cases)]


# ====================================================================== memory files, streams, golden model

def weight_words(case: VvauCase) -> list[int]:
    """W_FILE words: line nf*SF + sf, lane (p, s) at bit offset (p*SIMD + s)*W_BITS holds W[nf*PE + p][sf*SIMD + s]."""
    p, w = case.params, case.weights
    return [pack([w[nf * p.pe + q, sf * p.simd + s] for q in range(p.pe) for s in range(p.simd)], p.w_bits)
            for nf in range(p.nf) for sf in range(p.sf)]


def threshold_words(case: VvauCase) -> list[int]:
    """T_FILE words: line nf, lane (p, j) holds T[nf*PE + p][j] in ACC_BITS."""
    p, t = case.params, case.thresholds
    return [pack([t[nf * p.pe + q, j] for q in range(p.pe) for j in range(p.steps)], p.acc_bits)
            for nf in range(p.nf)]


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
        w_file = write_hex(out_dir / f"vvau{i}_w.hex", weight_words(case), p.pe * p.simd * p.w_bits)
        t_file = write_hex(out_dir / f"vvau{i}_t.hex", threshold_words(case), p.pe * p.steps * p.acc_bits) \
            if p.steps else None
        words_in = input_words(case)
        free = case.idle == 0 and case.stall == 0
        instances.append(StreamInstance(
            label=p.label(), params=p.hdl(w_file, t_file), in_width=p.simd * p.pe * p.in_bits,
            out_width=p.pe * p.out_bits, words_in=tuple(words_in),
            words_out=tuple(output_words(p, finn_reference(case))), out_elems=p.pe, out_bits=p.out_bits,
            out_signed=p.out_signed, idle=case.idle, stall=case.stall, seed=case.seed,
            # FINN's get_exp_cycles, C*K/(PE*SIMD) per pixel = one cycle per input beat, plus the pipeline
            # latency: exact, so one lost cycle anywhere fails.
            max_cycles=len(words_in) + LATENCY if free else None))
    return write_plan("qdet_vvau", instances, out_dir)


@cocotb.test()
async def vvau_random(dut) -> None:
    """Every instance of the plan named by ``QDET_TB_PLAN``: all beats equal FINN's, none extra, rate kept."""
    await run_plan(dut, Path(os.environ[PLAN_ENV]))
