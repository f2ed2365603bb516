"""cocotb test of qdet_fmpad: every instance pads its images exactly as FINN's FMPadding does.

The expected beats come from the pytest side (FINN python execution, folded SIMD channels per beat); see
:func:`sim.tb.streams.check_streams` for the stimulus format and the checks (order, extra beats, full rate)."""

from __future__ import annotations

import cocotb

from sim.tb.streams import check_streams


@cocotb.test()
async def fmpad_streams(dut):
    """Several images back to back per instance, random idle and stall; exact beats, no extra beat."""
    await check_streams(dut)
