"""cocotb bench for ``qdet_concat``: random legal parameter sets, FINN's ``StreamingConcat`` (two inputs) as the
golden model.

Inputs [frames, pixels, C0] and [frames, pixels, C1] of their own types, SIMD channels per beat; the output type is
FINN's (``StreamingConcat.get_output_datatype``: the smallest type holding both inputs' ranges). Every port has
its own idle or stall pattern. The multi-port driving is :func:`sim.tb.streams.run_ports`."""

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

# Cycles beyond one per output beat at full rate: the output skid, then the output handshake (measured; exact).
LATENCY = 1


@dataclass(frozen=True, eq=False)
class ConcatCase:
    """One instance: channel counts, SIMD, input types, inputs [frames, pixels, C0] and [frames, pixels, C1]."""

    c0: int
    c1: int
    simd: int
    dtypes: tuple[str, str]
    in0: np.ndarray
    in1: np.ndarray
    pressure: tuple[float, float, float]  # idle on s0, idle on s1, stall on m
    seed: int

    @property
    def free(self) -> bool:
        return not any(self.pressure)

    def model(self):
        """The one-node ``StreamingConcat`` graph of this case."""
        f, px = self.in0.shape[:2]
        return finn_model("StreamingConcat", [("in0", [f, px, self.c0], self.dtypes[0]),
                                              ("in1", [f, px, self.c1], self.dtypes[1])],
                          [("out", [f, px, self.c0 + self.c1])], SIMD=self.simd,
                          ChannelsPerStream=[self.c0, self.c1], inputDataTypes=list(self.dtypes),
                          numInputVectors=[f, px])

    def out_dtype(self) -> str:
        """FINN's output type for the two input types."""
        from qonnx.custom_op.registry import getCustomOp

        return getCustomOp(self.model().graph.node[0]).get_output_datatype().name

    def params(self) -> dict[str, int]:
        b0, _, _, s0 = dtype_range(self.dtypes[0])
        b1, _, _, s1 = dtype_range(self.dtypes[1])
        return {"C0": self.c0, "C1": self.c1, "SIMD": self.simd, "IN0_BITS": b0, "IN0_SIGNED": int(s0),
                "IN1_BITS": b1, "IN1_SIGNED": int(s1), "OUT_BITS": dtype_range(self.out_dtype())[0]}

    def label(self) -> str:
        return (f"C{self.c0}+{self.c1} SIMD{self.simd} {self.dtypes[0]},{self.dtypes[1]}->{self.out_dtype()} "
                f"{self.in0.shape[0]}x{self.in0.shape[1]}px")


_TYPES = ("UINT1", "UINT2", "INT2", "UINT3", "INT3", "UINT4", "INT4", "INT5", "UINT6", "UINT8", "INT8")


def sample_cases(seed: int, n: int = 24, free: int = 5) -> list[ConcatCase]:
    """``n`` random cases: SIMD 1, a common divisor in between, or gcd(C0, C1) (one beat per pixel from one side
    when it equals that side's C), equal and mixed types (signed with unsigned: the unsigned input zero-extended
    into a signed output); the first ``free`` run with no idle and no stall, the rest with pressure per port."""
    rng = random.Random(seed)
    pairs = [("UINT4", "INT4"), ("INT3", "UINT8"), ("UINT2", "UINT4"), ("INT4", "INT4")]
    pairs += [(rng.choice(_TYPES), rng.choice(_TYPES)) for _ in range(n - len(pairs))]
    simds = cycled(rng, ["1", "gcd", "mid"], n)
    cases = []
    for i in range(n):
        g = rng.choice((1, 2, 3, 4, 6, 8))
        c0, c1 = g * rng.randint(1, 4), g * rng.randint(1, 4)
        divs = [d for d in range(1, g + 1) if g % d == 0]
        simd = {"1": 1, "gcd": g, "mid": rng.choice([d for d in divs if 1 < d < g] or divs)}[simds[i]]
        frames = rng.randint(2, 3)
        pixels = max(2, min(25, 300 // (frames * (c0 + c1) // simd)))
        (t0, t1) = pairs[i]
        _, lo0, hi0, _ = dtype_range(t0)
        _, lo1, hi1, _ = dtype_range(t1)
        pressure = (0.0, 0.0, 0.0) if i < free else tuple(rng.choice(PORT_PRESSURE) for _ in range(3))
        cases.append(ConcatCase(c0, c1, simd, (t0, t1), with_extremes(rng, (frames, pixels, c0), lo0, hi0),
                                with_extremes(rng, (frames, pixels, c1), lo1, hi1), pressure, rng.getrandbits(32)))
    return cases


def finn_reference(case: ConcatCase) -> np.ndarray:
    """The output [frames, pixels, C0 + C1] of FINN's python execution of the one-node graph."""
    return finn_execute(case.model(), {"in0": case.in0, "in1": case.in1})["out"]


def build_plan(cases: Sequence[ConcatCase], out_dir: Path) -> tuple[Path, Path]:
    """Wrapper and plan for ``cases``: input beats from the case, expected beats from FINN."""
    instances = []
    for case in cases:
        p = case.params()
        s = case.simd
        w0 = fold_words(case.in0.reshape(-1, case.c0), s, p["IN0_BITS"])
        w1 = fold_words(case.in1.reshape(-1, case.c1), s, p["IN1_BITS"])
        out = fold_words(finn_reference(case).reshape(-1, case.c0 + case.c1), s, p["OUT_BITS"])
        instances.append(PortsInstance(
            label=case.label(), params=p,
            ports={**axis_ports("s0_axis", s * p["IN0_BITS"]), **axis_ports("s1_axis", s * p["IN1_BITS"]),
                   **axis_ports("m_axis", s * p["OUT_BITS"])},
            inputs=(PortStream("s0_axis", tuple(w0), case.pressure[0]),
                    PortStream("s1_axis", tuple(w1), case.pressure[1])),
            outputs=(PortStream("m_axis", tuple(out), case.pressure[2], None, s, p["OUT_BITS"],
                                dtype_range(case.out_dtype())[3]),),
            seed=case.seed,
            # one output beat per cycle, the inputs taking turns, plus the latency: exact
            max_cycles=len(out) + LATENCY if case.free else None))
    return write_ports_plan("qdet_concat", instances, out_dir)


@cocotb.test()
async def concat_random(dut) -> None:
    """Every instance of the plan named by ``QDET_TB_PLAN``: all beats equal FINN's, none extra, rate kept."""
    await run_ports(dut, Path(os.environ[PLAN_ENV]))
