"""cocotb bench for ``qdet_fork``: random legal parameter sets, FINN's ``DuplicateStreams`` as the golden model.

Each instance streams several frames (numInputVectors [frames, pixels]) of C channels, PE per beat, into one input
and N outputs, every port with its own idle or stall pattern; each output must carry FINN's copy of the stream
exactly, and take no extra beat. Free-running instances must move one beat per cycle. The multi-port driving is
:func:`sim.tb.streams.run_ports`."""

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

# Cycles from the first input beat offered to the last output beat taken, beyond one per beat, at full rate:
# the skid's register, then the output handshake (measured; the bound is exact).
LATENCY = 1


@dataclass(frozen=True, eq=False)
class ForkCase:
    """One instance: N outputs, C channels PE per beat of ``dtype``, ``inputs`` [frames, pixels, C]."""

    n: int
    c: int
    pe: int
    dtype: str
    inputs: np.ndarray
    idle: float
    stalls: tuple[float, ...]
    seed: int

    @property
    def bits(self) -> int:
        return dtype_range(self.dtype)[0]

    @property
    def free(self) -> bool:
        return self.idle == 0 and not any(self.stalls)

    def label(self) -> str:
        return f"N{self.n} C{self.c} PE{self.pe} {self.dtype} {self.inputs.shape[0]}x{self.inputs.shape[1]}px"


_TYPES = ("UINT1", "INT2", "UINT3", "INT4", "UINT4", "INT8", "UINT8", "INT5", "UINT2", "INT3")


def sample_cases(seed: int, n: int = 24, free: int = 5) -> list[ForkCase]:
    """``n`` random cases: N of 2..5, PE of 1, C and in between, types of 1..8 bits; the first ``free`` run with no
    idle and no stall, the others with idle and stall drawn per port (a zero on some ports, heavy on others)."""
    rng = random.Random(seed)
    types = cycled(rng, list(_TYPES), n)
    ns = cycled(rng, [2, 3, 4, 5], n)
    folds = cycled(rng, ["1", "full", "mid"], n)
    cases = []
    for i in range(n):
        c = rng.choice((1, 2, 3, 4, 6, 8, 12, 16))
        divs = [d for d in range(1, c + 1) if c % d == 0]
        mid = [d for d in divs if 1 < d < c] or divs
        pe = {"1": 1, "full": c, "mid": rng.choice(mid)}[folds[i]]
        frames = rng.randint(2, 3)
        pixels = max(1, min(30, 300 // (frames * (c // pe))))
        _, lo, hi, _ = dtype_range(types[i])
        if i < free:
            idle, stalls = 0.0, (0.0,) * ns[i]
        else:
            idle, stalls = rng.choice(PORT_PRESSURE), tuple(rng.choice(PORT_PRESSURE) for _ in range(ns[i]))
        cases.append(ForkCase(ns[i], c, pe, types[i], with_extremes(rng, (frames, pixels, c), lo, hi), idle, stalls,
                              rng.getrandbits(32)))
    return cases


def finn_reference(case: ForkCase) -> list[np.ndarray]:
    """The N outputs [frames, pixels, C] of FINN's python execution of a one-node ``DuplicateStreams`` graph."""
    shape = list(case.inputs.shape)
    outs = [f"out{k}" for k in range(case.n)]
    model = finn_model("DuplicateStreams", [("inp", shape, case.dtype)], [(o, shape) for o in outs],
                       NumChannels=case.c, PE=case.pe, NumOutputStreams=case.n, inputDataType=case.dtype,
                       numInputVectors=shape[:-1])
    res = finn_execute(model, {"inp": case.inputs})
    return [res[o] for o in outs]


def build_plan(cases: Sequence[ForkCase], out_dir: Path) -> tuple[Path, Path]:
    """Wrapper and plan for ``cases``: input beats from the case, expected beats per output from FINN."""
    instances = []
    for case in cases:
        bits, signed = case.bits, dtype_range(case.dtype)[3]
        width = case.pe * bits
        words_in = fold_words(case.inputs.reshape(-1, case.c), case.pe, bits)
        outputs = tuple(PortStream("m_axis", tuple(fold_words(o.reshape(-1, case.c), case.pe, bits)), stall, k,
                                   case.pe, bits, signed)
                        for k, (o, stall) in enumerate(zip(finn_reference(case), case.stalls)))
        instances.append(PortsInstance(
            label=case.label(), params={"N": case.n, "WIDTH": width},
            ports={**axis_ports("s_axis", width), **axis_ports("m_axis", width, case.n)},
            inputs=(PortStream("s_axis", tuple(words_in), case.idle),), outputs=outputs, seed=case.seed,
            # one beat per cycle on every port at once, plus the latency: exact
            max_cycles=len(words_in) + LATENCY if case.free else None))
    return write_ports_plan("qdet_fork", instances, out_dir)


@cocotb.test()
async def fork_random(dut) -> None:
    """Every instance of the plan named by ``QDET_TB_PLAN``: each output equals FINN's, none extra, rate kept."""
    await run_ports(dut, Path(os.environ[PLAN_ENV]))
