"""The stimulus-file stream check shared by the fifo, dwc, fmpad and maxpool cocotb benches.

The pytest side writes a JSON stimulus file (path in ``QDET_TB_STIM``): one entry per wrapper instance with the
input beats ``in``, the expected output beats ``out`` (from an independent reference), the source idle and sink
stall probabilities, and ``rate`` (no idle, no stall: the whole stream must then take at most
max(len(in), len(out)) + ``slack`` cycles, the kernel's folded rate plus its pipeline latency). Every instance
runs at once; each must deliver exactly ``out`` and then stay quiet (no extra beat)."""

from __future__ import annotations

import json
import os
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge

from sim.axis import AxisSink, AxisSource

RATE_SLACK = 8  # cycles of pipeline latency allowed on top of the folded rate


def first_difference(got: list[int], want: list[int]) -> str:
    """Where two beat lists first differ, for a failure message."""
    for i, (a, b) in enumerate(zip(got, want)):
        if a != b:
            return f"beat {i}: got {a:#x}, want {b:#x}"
    return f"lengths {len(got)} vs {len(want)}"


async def _timed_recv(sink: AxisSink, n: int, counter: list[int]) -> tuple[list[int], int]:
    """Receive ``n`` beats; also return the cycle count (a shared counter) when the last one arrived."""
    got = await sink.recv(n, 5000)
    return got, counter[0]


async def _count_cycles(clk, counter: list[int]) -> None:
    while True:
        await RisingEdge(clk)
        counter[0] += 1


async def check_streams(dut) -> None:
    """Drive every instance of the wrapper with its stimulus and compare its output beats exactly."""
    with open(os.environ["QDET_TB_STIM"]) as f:
        stim = json.load(f)
    rng = random.Random(int(os.environ.get("QDET_TB_SEED", "0")))
    cocotb.start_soon(Clock(dut.ap_clk, 10, unit="ns").start())
    dut.ap_rst_n.value = 0
    jobs = []
    for n, inst in enumerate(stim):
        src = AxisSource(dut.ap_clk, getattr(dut, f"i{n}_s_axis_tdata"), getattr(dut, f"i{n}_s_axis_tvalid"),
                         getattr(dut, f"i{n}_s_axis_tready"), random.Random(rng.random()), inst["idle"])
        sink = AxisSink(dut.ap_clk, getattr(dut, f"i{n}_m_axis_tdata"), getattr(dut, f"i{n}_m_axis_tvalid"),
                        getattr(dut, f"i{n}_m_axis_tready"), random.Random(rng.random()), inst["stall"])
        jobs.append((inst, src, sink))
    await ClockCycles(dut.ap_clk, 3)
    dut.ap_rst_n.value = 1
    await RisingEdge(dut.ap_clk)
    cycles = [0]
    cocotb.start_soon(_count_cycles(dut.ap_clk, cycles))
    receivers = [cocotb.start_soon(_timed_recv(sink, len(inst["out"]), cycles)) for inst, _, sink in jobs]
    for inst, src, _ in jobs:
        cocotb.start_soon(src.send(inst["in"]))
    errors = []
    for n, ((inst, _, _), rx) in enumerate(zip(jobs, receivers)):
        got, took = await rx
        if got != inst["out"]:
            errors.append(f"instance {n} ({inst.get('name', '')}): {first_difference(got, inst['out'])}")
        limit = max(len(inst["in"]), len(inst["out"])) + RATE_SLACK
        if inst.get("rate") and took > limit:
            errors.append(f"instance {n} ({inst.get('name', '')}): {took} cycles at full rate, limit {limit}")
    quiet = [cocotb.start_soon(sink.expect_quiet(30)) for _, _, sink in jobs]
    for n, q in enumerate(quiet):
        try:
            await q
        except AssertionError as exc:
            errors.append(f"instance {n} ({jobs[n][0].get('name', '')}): {exc}")
    assert not errors, "; ".join(errors)
