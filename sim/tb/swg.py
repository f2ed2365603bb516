"""cocotb tests of qdet_swg: every instance of the wrapper against FINN's golden stream, and cycles per frame.

The pytest side (tests/sim/test_swg.py) writes, per instance, an ``.npz`` with the input frames (``x``: frames x H x
W x C) and FINN's expected output beats (``y``: frames x beats x elements per beat), and passes the instance list as
JSON in ``QDET_TB_INSTANCES``: ``index`` (the wrapper's ``i<n>_`` prefix), ``params`` (the module parameters),
``signed``, ``idle``, ``stall``, ``perf`` (measure cycles: no idle, no stall) and ``npz``."""

from __future__ import annotations

import json
import os
import random

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge

from boards.runtime.stream import pack, unpack
from sim.axis import AxisSink, AxisSource

_PERIOD_NS = 10


def _port(dut, inst: dict, name: str):
    return getattr(dut, f"i{inst['index']}_{name}")


def _input_words(x: np.ndarray, simd: int, bits: int) -> list[int]:
    """NHWC frames -> beats of SIMD channels (channel fastest), all frames back to back."""
    flat = x.reshape(-1, simd)
    return [pack(row.tolist(), bits) for row in flat]


def _check(inst: dict, words: list[int], y: np.ndarray) -> None:
    """Compare every element of every beat; name the first difference by frame and beat."""
    p = inst["params"]
    frames, beats, elems = y.shape
    got = np.array([unpack(w, elems, p["BITS"], inst["signed"]) for w in words], dtype=np.int64)
    got = got.reshape(frames, beats, elems)
    bad = np.argwhere(got != y)
    if bad.size:
        f, b, e = (int(v) for v in bad[0])
        raise AssertionError(f"instance {inst['index']} {p}: {len(bad)} wrong elements; first at frame {f} beat {b} "
                             f"element {e}: got {got[f, b, e]}, expected {y[f, b, e]}")


async def _reset(dut) -> None:
    dut.ap_rst_n.value = 0
    await ClockCycles(dut.ap_clk, 3)
    dut.ap_rst_n.value = 1
    await RisingEdge(dut.ap_clk)


def _instances(perf: bool) -> list[dict]:
    return [i for i in json.loads(os.environ["QDET_TB_INSTANCES"]) if bool(i.get("perf")) == perf]


@cocotb.test()
async def random_sets_match_finn(dut):
    """All random instances at once, random idle/stall, frames back to back, then no extra beat."""
    insts = _instances(perf=False)
    cocotb.start_soon(Clock(dut.ap_clk, _PERIOD_NS, unit="ns").start())
    rng = random.Random(int(os.environ.get("QDET_TB_SEED", "0")))
    jobs = []
    for inst in insts:
        data = np.load(inst["npz"])
        p = inst["params"]
        src = AxisSource(dut.ap_clk, _port(dut, inst, "s_axis_tdata"), _port(dut, inst, "s_axis_tvalid"),
                         _port(dut, inst, "s_axis_tready"), random.Random(rng.random()), inst["idle"])
        sink = AxisSink(dut.ap_clk, _port(dut, inst, "m_axis_tdata"), _port(dut, inst, "m_axis_tvalid"),
                        _port(dut, inst, "m_axis_tready"), random.Random(rng.random()), inst["stall"])
        jobs.append((inst, _input_words(data["x"], p["SIMD"], p["BITS"]), data["y"], src, sink))
    await _reset(dut)
    receivers = [cocotb.start_soon(sink.recv(y.shape[0] * y.shape[1], 20_000)) for _, _, y, _, sink in jobs]
    for _, words, _, src, _ in jobs:
        cocotb.start_soon(src.send(words))
    for (inst, _, y, _, _), rx in zip(jobs, receivers):
        _check(inst, await rx, y)
    for _, _, _, _, sink in jobs:
        await sink.expect_quiet(50)


async def _timed_recv(dut, inst: dict, n: int, timeout_cycles: int) -> list[tuple[int, int]]:
    """(cycle, word) of ``n`` beats with tready held high."""
    tdata, tvalid, tready = (_port(dut, inst, s) for s in ("m_axis_tdata", "m_axis_tvalid", "m_axis_tready"))
    tready.value = 1
    out: list[tuple[int, int]] = []
    cycle = idle = 0
    while len(out) < n:
        await RisingEdge(dut.ap_clk)
        cycle += 1
        if int(tvalid.value):
            out.append((cycle, int(tdata.value)))
            idle = 0
        else:
            idle += 1
            if idle > timeout_cycles:
                raise TimeoutError(f"instance {inst['index']}: {len(out)} of {n} beats")
    tready.value = 0
    return out


async def _timed_send(dut, inst: dict, words: list[int], first: list[int]) -> None:
    """Send with tvalid held high; record the cycle (same count as _timed_recv) of the first accepted beat."""
    tdata, tvalid, tready = (_port(dut, inst, s) for s in ("s_axis_tdata", "s_axis_tvalid", "s_axis_tready"))
    cycle = 0
    for w in words:
        tdata.value = w
        tvalid.value = 1
        while True:
            await RisingEdge(dut.ap_clk)
            cycle += 1
            if int(tready.value):
                break
        if not first:
            first.append(cycle)
    tvalid.value = 0


@cocotb.test()
async def real_shapes_cycles(dut):
    """Real layer shapes, no backpressure: FINN's stream, and cycles per frame written to QDET_TB_CYCLES."""
    insts = _instances(perf=True)
    if not insts:
        return
    cocotb.start_soon(Clock(dut.ap_clk, _PERIOD_NS, unit="ns").start())
    for inst in insts:
        for name in ("s_axis_tvalid", "m_axis_tready"):
            _port(dut, inst, name).value = 0
    await _reset(dut)
    tasks = []
    for inst in insts:
        data = np.load(inst["npz"])
        p = inst["params"]
        y = data["y"]
        first: list[int] = []
        words = _input_words(data["x"], p["SIMD"], p["BITS"])
        rx = cocotb.start_soon(_timed_recv(dut, inst, y.shape[0] * y.shape[1], 20_000))
        cocotb.start_soon(_timed_send(dut, inst, words, first))
        tasks.append((inst, y, rx, first))
    result = {}
    for inst, y, rx, first in tasks:
        beats = await rx
        _check(inst, [w for _, w in beats], y)
        per = y.shape[1]
        ends = [beats[(f + 1) * per - 1][0] for f in range(y.shape[0])]
        # Both counters start at the same edge; a beat at cycle c moved at the c-th edge.
        result[str(inst["index"])] = {"first_frame": ends[0] - first[0] + 1,
                                      "later_frames": [b - a for a, b in zip(ends, ends[1:])]}
    with open(os.environ["QDET_TB_CYCLES"], "w") as fh:
        json.dump(result, fh)
