"""cocotb bench for ``qdet_upsample``: random legal parameter sets, FINN's ``UpsampleNearestNeighbour`` as the
golden model.

Inputs [batch, IFM_H, IFM_W, C] (FINN's ``batchSize`` frames back to back), SIMD channels per beat, integer factors
FH = OFM_H / IFM_H and FW = OFM_W / IFM_W of 1 to 3 each (1x1 included: a pass-through), non-square images and
factors included. The multi-port driving is :func:`sim.tb.streams.run_ports`."""

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

# Cycles beyond one per output beat at full rate: the memory write, its registered read (the output register),
# then the output handshake (measured; exact). The kernel reads a row while it is being written, so only the first
# frame's first beat pays this; the frames after it follow without a gap.
LATENCY = 2


@dataclass(frozen=True, eq=False)
class UpsampleCase:
    """One instance: output size, SIMD, element type, inputs [batch, IFM_H, IFM_W, C]."""

    ofm: tuple[int, int]
    simd: int
    dtype: str
    inputs: np.ndarray
    pressure: tuple[float, float]  # idle on s, stall on m
    seed: int

    @property
    def ifm(self) -> tuple[int, int]:
        return self.inputs.shape[1], self.inputs.shape[2]

    @property
    def c(self) -> int:
        return self.inputs.shape[3]

    @property
    def free(self) -> bool:
        return not any(self.pressure)

    def params(self) -> dict[str, int]:
        return {"IFM_H": self.ifm[0], "IFM_W": self.ifm[1], "OFM_H": self.ofm[0], "OFM_W": self.ofm[1],
                "C": self.c, "SIMD": self.simd, "BITS": dtype_range(self.dtype)[0]}

    def label(self) -> str:
        (ih, iw), (oh, ow) = self.ifm, self.ofm
        return f"{ih}x{iw}->{oh}x{ow} C{self.c} SIMD{self.simd} {self.dtype} x{self.inputs.shape[0]}"


_TYPES = ("UINT1", "UINT2", "INT2", "UINT3", "INT3", "UINT4", "INT4", "INT5", "UINT8", "INT8")
_MAX_OUT_BEATS = 480  # output beats per instance: bounds the simulated cycles


def sample_cases(seed: int, n: int = 24, free: int = 6) -> list[UpsampleCase]:
    """``n`` random cases: factors (FH, FW) of 1..3 each (the first few: 2x2, 1x1, 3x1, 1x2, as YOLO necks and the
    corner cases have them), images 1..4 by 1..4 pixels, SIMD of 1, C and in between, 2 or 3 frames; the first
    ``free`` run with no idle and no stall, the rest with idle and stall drawn per port."""
    rng = random.Random(seed)
    factors = [(2, 2), (1, 1), (3, 1), (1, 2), (2, 3), (2, 2)]
    factors += [(rng.randint(1, 3), rng.randint(1, 3)) for _ in range(n - len(factors))]
    types = cycled(rng, list(_TYPES), n)
    folds = cycled(rng, ["1", "full", "mid"], n)
    cases = []
    for i in range(n):
        fh, fw = factors[i]
        c = rng.choice((1, 2, 3, 4, 6, 8))
        divs = [d for d in range(1, c + 1) if c % d == 0]
        pe = {"1": 1, "full": c, "mid": rng.choice([d for d in divs if 1 < d < c] or divs)}[folds[i]]
        frames = rng.randint(2, 3)
        while True:
            ih, iw = rng.randint(1, 4), rng.randint(1, 4)
            if frames * ih * fh * iw * fw * (c // pe) <= _MAX_OUT_BEATS:
                break
        _, lo, hi, _ = dtype_range(types[i])
        pressure = (0.0, 0.0) if i < free else (rng.choice(PORT_PRESSURE), rng.choice(PORT_PRESSURE))
        cases.append(UpsampleCase((ih * fh, iw * fw), pe, types[i], with_extremes(rng, (frames, ih, iw, c), lo, hi),
                                  pressure, rng.getrandbits(32)))
    return cases


def finn_reference(case: UpsampleCase) -> np.ndarray:
    """The output [batch, OFM_H, OFM_W, C] of FINN's python execution of a one-node ``UpsampleNearestNeighbour``."""
    b, ih, iw, c = case.inputs.shape
    oh, ow = case.ofm
    model = finn_model("UpsampleNearestNeighbour", [("inp", [b, ih, iw, c], case.dtype)], [("out", [b, oh, ow, c])],
                       SIMD=case.simd, HO=oh, WO=ow, HI=ih, WI=iw, NumChannels=c, inputDataType=case.dtype,
                       batchSize=b)
    return finn_execute(model, {"inp": case.inputs})["out"]


def build_plan(cases: Sequence[UpsampleCase], out_dir: Path) -> tuple[Path, Path]:
    """Wrapper and plan for ``cases``: input beats from the case, expected beats from FINN."""
    instances = []
    for case in cases:
        p = case.params()
        bits, signed = p["BITS"], dtype_range(case.dtype)[3]
        words_in = fold_words(case.inputs.reshape(-1, case.c), case.simd, bits)
        out = fold_words(finn_reference(case).reshape(-1, case.c), case.simd, bits)
        width = case.simd * bits
        instances.append(PortsInstance(
            label=case.label(), params=p, ports={**axis_ports("s_axis", width), **axis_ports("m_axis", width)},
            inputs=(PortStream("s_axis", tuple(words_in), case.pressure[0]),),
            outputs=(PortStream("m_axis", tuple(out), case.pressure[1], None, case.simd, bits, signed),),
            seed=case.seed,
            # the output rate (frames * OFM_H * OFM_W * C/SIMD beats, one per cycle) plus the latency: exact
            max_cycles=len(out) + LATENCY if case.free else None))
    return write_ports_plan("qdet_upsample", instances, out_dir)


@cocotb.test()
async def upsample_random(dut) -> None:
    """Every instance of the plan named by ``QDET_TB_PLAN``: all beats equal FINN's, none extra, rate kept."""
    await run_ports(dut, Path(os.environ[PLAN_ENV]))
