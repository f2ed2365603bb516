"""Lean AXI-Stream drivers for cocotb with random backpressure (beat packing: :mod:`boards.runtime.stream`).

Per-cycle Python is the slow part of any cocotb run (shared/toolchain.md: cocotbext-axi is ~2x slower than a lean
driver), so these do the least per cycle: one edge wait, a few signal writes, and a seeded random draw.

Signals are read right after ``RisingEdge``, which gives their values during the cycle that just ended (before the
edge's non-blocking updates), as cocotbext-axi does: a beat moved at that edge iff tvalid and tready were both high."""

from __future__ import annotations

import random
from collections.abc import Sequence

from cocotb.triggers import RisingEdge



class AxisSource:
    """Drives tdata/tvalid, honouring tready; idles each cycle with probability ``idle``."""

    def __init__(self, clk, tdata, tvalid, tready, rng: random.Random, idle: float = 0.0) -> None:
        self.clk, self.tdata, self.tvalid, self.tready = clk, tdata, tvalid, tready
        self.rng, self.idle = rng, idle
        self.tvalid.value = 0

    async def send(self, words: Sequence[int]) -> None:
        """Send every word; returns after the last one was accepted."""
        i = 0
        while i < len(words):
            if self.idle and self.rng.random() < self.idle:
                self.tvalid.value = 0
                await RisingEdge(self.clk)
                continue
            self.tdata.value = words[i]
            self.tvalid.value = 1
            await RisingEdge(self.clk)
            # The beat moved at this edge if tready was high during the cycle just ended.
            while not int(self.tready.value):
                await RisingEdge(self.clk)
            i += 1
        self.tvalid.value = 0


class AxisSink:
    """Collects beats, deasserting tready each cycle with probability ``stall``."""

    def __init__(self, clk, tdata, tvalid, tready, rng: random.Random, stall: float = 0.0) -> None:
        self.clk, self.tdata, self.tvalid, self.tready = clk, tdata, tvalid, tready
        self.rng, self.stall = rng, stall
        self.tready.value = 0

    async def recv(self, n: int, timeout_cycles: int = 100_000) -> list[int]:
        """Receive ``n`` beats; raise if fewer arrive within ``timeout_cycles`` cycles without progress."""
        out: list[int] = []
        idle = 0
        while len(out) < n:
            ready = not (self.stall and self.rng.random() < self.stall)
            self.tready.value = int(ready)
            await RisingEdge(self.clk)
            if ready and int(self.tvalid.value):
                out.append(int(self.tdata.value))
                idle = 0
            else:
                idle += 1
                if idle > timeout_cycles:
                    raise TimeoutError(f"received {len(out)} of {n} beats; nothing for {timeout_cycles} cycles")
        self.tready.value = 0
        return out

    async def expect_quiet(self, cycles: int = 200) -> None:
        """Hold tready high for ``cycles`` cycles and fail on any beat: catches duplicated or extra beats."""
        self.tready.value = 1
        for _ in range(cycles):
            await RisingEdge(self.clk)
            if int(self.tvalid.value):
                raise AssertionError(f"extra beat {int(self.tdata.value):#x} after the expected stream ended")
        self.tready.value = 0
