"""cocotb test of qdet_avgpool: every instance sums (and shifts) its windows exactly as FINN's Pool does with
Function=QuantAvgPool or AccPool.

The expected beats come from the pytest side (FINN python execution, streamed in the depthwise SWG order); see
:func:`sim.tb.streams.check_streams` for the stimulus format and the checks (order, extra beats, full rate)."""

from __future__ import annotations

import cocotb

from sim.tb.streams import check_streams


@cocotb.test()
async def avgpool_streams(dut):
    """Several frames of windows back to back per instance, random idle and stall; exact beats, no extra beat."""
    await check_streams(dut)
