"""cocotb test of qdet_dwc: every instance regroups its element stream exactly as the stimulus file says.

The expected beats (the same elements in the same order, regrouped OUT_ELEMS per beat) come from the pytest side;
see :func:`sim.tb.streams.check_streams` for the stimulus format and the checks (order, extra beats, full rate)."""

from __future__ import annotations

import cocotb

from sim.tb.streams import check_streams


@cocotb.test()
async def dwc_streams(dut):
    """Several frames back to back per instance, random idle and stall; exact beats, no extra beat."""
    await check_streams(dut)
