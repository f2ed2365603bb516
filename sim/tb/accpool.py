"""cocotb test of qdet_accpool: every instance sums each channel over a frame exactly as FINN's GlobalAccPool does.

The expected beats come from the pytest side (FINN python execution, NHWC streams); see
:func:`sim.tb.streams.check_streams` for the stimulus format and the checks (order, extra beats, full rate)."""

from __future__ import annotations

import cocotb

from sim.tb.streams import check_streams


@cocotb.test()
async def accpool_streams(dut):
    """Several frames back to back per instance, random idle and stall; exact beats, no extra beat."""
    await check_streams(dut)
