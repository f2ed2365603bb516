"""cocotb test of qdet_fifo (DEPTH 2 is the qdet_skid register slice, so this also covers qdet_skid).

The streaming check and its stimulus format are in :mod:`sim.tb.streams`."""

from __future__ import annotations

import json
import os
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge

from sim.axis import AxisSink
from sim.tb.streams import first_difference, check_streams


async def _reset(dut) -> None:
    cocotb.start_soon(Clock(dut.ap_clk, 10, unit="ns").start())
    dut.ap_rst_n.value = 0
    await ClockCycles(dut.ap_clk, 3)
    dut.ap_rst_n.value = 1
    await RisingEdge(dut.ap_clk)


@cocotb.test()
async def fifo_streams(dut):
    """qdet_fifo instances pass random words through unchanged, in order, under random idle and stall."""
    await check_streams(dut)


@cocotb.test()
async def fifo_holds_depth_beats(dut):
    """With the consumer stopped, each FIFO accepts exactly DEPTH beats, then returns them in order."""
    with open(os.environ["QDET_TB_STIM"]) as f:
        stim = json.load(f)
    for n in range(len(stim)):
        getattr(dut, f"i{n}_m_axis_tready").value = 0
        getattr(dut, f"i{n}_s_axis_tvalid").value = 0
    await _reset(dut)
    accepted: list[list[int]] = [[] for _ in stim]
    for _ in range(max(inst["depth"] for inst in stim) + 10):
        for n, inst in enumerate(stim):
            # Offer the next word until it is taken (AXI: a source holds its beat).
            getattr(dut, f"i{n}_s_axis_tdata").value = inst["in"][len(accepted[n]) % len(inst["in"])]
            getattr(dut, f"i{n}_s_axis_tvalid").value = 1
        await RisingEdge(dut.ap_clk)
        for n, inst in enumerate(stim):
            if int(getattr(dut, f"i{n}_s_axis_tready").value):
                accepted[n].append(inst["in"][len(accepted[n]) % len(inst["in"])])
    errors = [f"instance {n}: accepted {len(acc)} beats, DEPTH {inst['depth']}"
              for n, (inst, acc) in enumerate(zip(stim, accepted)) if len(acc) != inst["depth"]]
    assert not errors, "; ".join(errors)
    rng = random.Random(1)
    for n in range(len(stim)):
        getattr(dut, f"i{n}_s_axis_tvalid").value = 0
    sinks = [AxisSink(dut.ap_clk, getattr(dut, f"i{n}_m_axis_tdata"), getattr(dut, f"i{n}_m_axis_tvalid"),
                      getattr(dut, f"i{n}_m_axis_tready"), random.Random(rng.random()), 0.3) for n in range(len(stim))]
    rx = [cocotb.start_soon(s.recv(len(acc), 200)) for s, acc in zip(sinks, accepted)]
    for n, (task, acc) in enumerate(zip(rx, accepted)):
        got = await task
        assert got == acc, f"instance {n}: {first_difference(got, acc)}"
