"""cocotb side of the whole-network simulation: at most the clock, and the wait (sim/hdl/qdet_net_tb.sv.j2 does the rest).

The harness streams frames from its own buffer, applies backpressure, writes every output beat to trace.txt and
raises ``done`` when all frames are out, the watchdog fired or the cycle limit passed; Python reads the files.
This test writes the wall time of the simulated part to ``timing.json`` for the cycles-per-second figure.
"""

from __future__ import annotations

import json
import os
import time

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge


@cocotb.test()
async def stream_frames(dut):
    """Clock the harness (unless it runs its own clock) until it raises ``done``."""
    if os.environ.get("QDET_NET_HDL_CLOCK") != "1":
        Clock(dut.clk, 10, unit="ns").start()
    start = time.perf_counter()
    await RisingEdge(dut.done)
    with open("timing.json", "w") as f:
        json.dump({"wall_s": time.perf_counter() - start}, f)
