"""cocotb bench for ``qdet_add``: random legal parameter sets, FINN's ``ElementwiseAdd`` as the golden model.

Both operands stream (lhs_style = rhs_style = "input"), equal shapes [frames, pixels, C], PE lanes per beat; every
port has its own idle or stall pattern. The output type is FINN's (``minimize_accumulator_width``, the rule
ElementwiseAdd derives) where it holds every sum, else the smallest type that does (FINN's rule is one bit short
for a signed lhs plus an unsigned rhs of the same width, see hls/gen/joins.py); some instances take a wider
output, as an unminimised graph has. The multi-port driving is :func:`sim.tb.streams.run_ports`."""

from __future__ import annotations

import os
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cocotb
import numpy as np

from sim.tb.streams import (PLAN_ENV, PORT_PRESSURE, PortsInstance, PortStream, axis_ports, cycled, dtype_range,
                            finn_execute, finn_model, fold_words, run_ports, with_extremes, write_ports_plan)

# Cycles beyond one per beat at full rate: input skid, output register, output handshake (measured; exact).
LATENCY = 2


@dataclass(frozen=True, eq=False)
class AddCase:
    """One instance: PE lanes, operand types, output type, operands [frames, pixels, C]."""

    c: int
    pe: int
    lhs_dtype: str
    rhs_dtype: str
    out_dtype: str
    lhs: np.ndarray
    rhs: np.ndarray
    pressure: tuple[float, float, float]  # idle on s0, idle on s1, stall on m
    seed: int

    @property
    def free(self) -> bool:
        return not any(self.pressure)

    def params(self) -> dict[str, int]:
        lb, _, _, ls = dtype_range(self.lhs_dtype)
        rb, _, _, rs = dtype_range(self.rhs_dtype)
        ob, _, _, osg = dtype_range(self.out_dtype)
        return {"PE": self.pe, "LHS_BITS": lb, "LHS_SIGNED": int(ls), "RHS_BITS": rb, "RHS_SIGNED": int(rs),
                "OUT_BITS": ob, "OUT_SIGNED": int(osg)}

    def label(self) -> str:
        return (f"C{self.c} PE{self.pe} {self.lhs_dtype}+{self.rhs_dtype}->{self.out_dtype} "
                f"{self.lhs.shape[0]}x{self.lhs.shape[1]}px")


def _holding(lo: int, hi: int) -> str:
    """The smallest FINN integer type holding [lo, hi]."""
    if lo >= 0:
        return f"UINT{max(1, hi.bit_length())}"
    bits = 2
    while lo < -(1 << (bits - 1)) or hi > (1 << (bits - 1)) - 1:
        bits += 1
    return f"INT{bits}"


def node_model(case_shape: Sequence[int], lhs_dtype: str, rhs_dtype: str, out_dtype: str, pe: int):
    """A one-node ``ElementwiseAdd`` graph, both inputs streamed, equal shapes."""
    shape = list(case_shape)
    return finn_model("ElementwiseAdd", [("lhs", shape, lhs_dtype), ("rhs", shape, rhs_dtype)], [("out", shape)],
                      lhs_dtype=lhs_dtype, rhs_dtype=rhs_dtype, out_dtype=out_dtype, lhs_shape=shape, rhs_shape=shape,
                      out_shape=shape, lhs_style="input", rhs_style="input", PE=pe)


def finn_out_dtype(lhs_dtype: str, rhs_dtype: str) -> str:
    """The output type FINN's ``minimize_accumulator_width`` gives ElementwiseAdd for these operand types."""
    from qonnx.custom_op.registry import getCustomOp

    model = node_model([1, 1], lhs_dtype, rhs_dtype, "INT32", 1)
    return getCustomOp(model.graph.node[0]).minimize_accumulator_width(model).name


def out_dtype_for(lhs_dtype: str, rhs_dtype: str, extra_bits: int = 0) -> str:
    """FINN's output type when it holds every sum, else the smallest that does; ``extra_bits`` wider."""
    _, llo, lhi, _ = dtype_range(lhs_dtype)
    _, rlo, rhi, _ = dtype_range(rhs_dtype)
    finn = finn_out_dtype(lhs_dtype, rhs_dtype)
    _, olo, ohi, _ = dtype_range(finn)
    name = finn if olo <= llo + rlo and lhi + rhi <= ohi else _holding(llo + rlo, lhi + rhi)
    if extra_bits:
        bits, _, _, signed = dtype_range(name)
        name = f"{'INT' if signed else 'UINT'}{bits + extra_bits}"
    return name


_TYPES = ("UINT1", "UINT2", "INT2", "UINT3", "INT3", "UINT4", "INT4", "INT5", "UINT6", "UINT8", "INT8")


def _operands(rng: random.Random, shape: tuple[int, ...], lhs_dtype: str, rhs_dtype: str) -> tuple[np.ndarray, ...]:
    """Random operands; pixel 0 of frame 0 is min + min, pixel 1 max + max, pixel 2 min + max, pixel 3 max + min
    (the extreme sums), the rest with a fifth of each operand at its range ends."""
    _, llo, lhi, _ = dtype_range(lhs_dtype)
    _, rlo, rhi, _ = dtype_range(rhs_dtype)
    lhs = with_extremes(rng, shape, llo, lhi)
    rhs = with_extremes(rng, shape, rlo, rhi)
    for px, (a, b) in enumerate(((llo, rlo), (lhi, rhi), (llo, rhi), (lhi, rlo))[:shape[1]]):
        lhs[0, px, :], rhs[0, px, :] = a, b
    return lhs, rhs


def sample_cases(seed: int, n: int = 24, free: int = 5) -> list[AddCase]:
    """``n`` random cases: operand types of 1..8 bits in every signedness mix (the first three: INT4 + UINT4, where
    FINN's type is too narrow, UINT4 + INT4 and INT3 + UINT5), PE of 1, C and in between, some outputs wider than
    needed; the first ``free`` run with no idle and no stall, the rest with pressure drawn per port."""
    rng = random.Random(seed)
    pairs = [("INT4", "UINT4"), ("UINT4", "INT4"), ("INT3", "UINT5")]
    pairs += [(rng.choice(_TYPES), rng.choice(_TYPES)) for _ in range(n - len(pairs))]
    folds = cycled(rng, ["1", "full", "mid"], n)
    wider = cycled(rng, [0, 0, 0, 1, 3], n)
    cases = []
    for i in range(n):
        c = rng.choice((1, 2, 3, 4, 6, 8, 12))
        divs = [d for d in range(1, c + 1) if c % d == 0]
        mid = [d for d in divs if 1 < d < c] or divs
        pe = {"1": 1, "full": c, "mid": rng.choice(mid)}[folds[i]]
        frames = rng.randint(2, 3)
        pixels = max(4, min(30, 300 // (frames * (c // pe))))
        lt, rt = pairs[i]
        lhs, rhs = _operands(rng, (frames, pixels, c), lt, rt)
        pressure = (0.0, 0.0, 0.0) if i < free else tuple(rng.choice(PORT_PRESSURE) for _ in range(3))
        cases.append(AddCase(c, pe, lt, rt, out_dtype_for(lt, rt, wider[i]), lhs, rhs, pressure,
                             rng.getrandbits(32)))
    return cases


def finn_reference(case: AddCase) -> np.ndarray:
    """The sums [frames, pixels, C] from FINN's python execution of the one-node ``ElementwiseAdd`` graph."""
    model = node_model(case.lhs.shape, case.lhs_dtype, case.rhs_dtype, case.out_dtype, case.pe)
    return finn_execute(model, {"lhs": case.lhs, "rhs": case.rhs})["out"]


def build_plan(cases: Sequence[AddCase], out_dir: Path) -> tuple[Path, Path]:
    """Wrapper and plan for ``cases``: operand beats from the case, expected beats from FINN."""
    instances = []
    for case in cases:
        p = case.params()
        lw, rw, ow = case.pe * p["LHS_BITS"], case.pe * p["RHS_BITS"], case.pe * p["OUT_BITS"]
        lhs = fold_words(case.lhs.reshape(-1, case.c), case.pe, p["LHS_BITS"])
        rhs = fold_words(case.rhs.reshape(-1, case.c), case.pe, p["RHS_BITS"])
        out = fold_words(finn_reference(case).reshape(-1, case.c), case.pe, p["OUT_BITS"])
        instances.append(PortsInstance(
            label=case.label(), params=p,
            ports={**axis_ports("s0_axis", lw), **axis_ports("s1_axis", rw), **axis_ports("m_axis", ow)},
            inputs=(PortStream("s0_axis", tuple(lhs), case.pressure[0]),
                    PortStream("s1_axis", tuple(rhs), case.pressure[1])),
            outputs=(PortStream("m_axis", tuple(out), case.pressure[2], None, case.pe, p["OUT_BITS"],
                                bool(p["OUT_SIGNED"])),),
            seed=case.seed,
            # one beat per cycle on all three ports, plus the latency: exact
            max_cycles=len(out) + LATENCY if case.free else None))
    return write_ports_plan("qdet_add", instances, out_dir)


@cocotb.test()
async def add_random(dut) -> None:
    """Every instance of the plan named by ``QDET_TB_PLAN``: all sums equal FINN's, none extra, rate kept."""
    await run_ports(dut, Path(os.environ[PLAN_ENV]))
