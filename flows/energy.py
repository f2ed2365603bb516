"""An analytic energy-per-frame estimate of a build: operations, on-chip memory reads, stream traffic, DMA traffic,
and the board's static power over the frame time.

It is an order-of-magnitude figure for comparing builds, not a measurement (``qdet run --backend pynq`` measures
the board's rails). The counts are FINN's own (``get_op_and_param_counts`` of every hardware layer of the build's
``stream_links`` checkpoint: MACs by operand widths, weights); the per-operation energies are the 45 nm figures of
Horowitz, "Computing's energy problem (and what we can do about it)", ISSCC 2014, scaled to FPGA fabric:

=========================  ======================================================================================
quantity                   energy and its source
=========================  ======================================================================================
a b_w x b_a bit MAC        ``0.2 pJ * (b_w * b_a) / 64`` (8-bit multiply, scaled by the multiplier's partial
                           products) ``+ 0.03 pJ`` (8-bit add), times 14, the dynamic-power gap between FPGA logic
                           and an ASIC measured by Kuon and Rose, "Measuring the gap between FPGAs and ASICs",
                           IEEE TCAD 2007
weight read                ``10 pJ per 64 bits`` (an 8 KB SRAM read, Horowitz); BRAM and LUTRAM are the FPGA's
                           own SRAMs, so no gap factor; every MAC reads its weight once
stream bit                 ``0.1 pJ per bit`` per link hop (a register write plus wiring: a 32-bit add, Horowitz,
                           per bit), times 14 for the fabric
DMA byte                   ``1.3 nJ per 64 bits`` (a DRAM access, Horowitz), for the input and output frames
static                     the board's idle power (table below, assumed figures) times the frame time 1 / FPS
=========================  ======================================================================================
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

FPGA_GAP = 14.0  # Kuon & Rose 2007: FPGA / ASIC dynamic power for logic
MAC_8X8_PJ = 0.2
ADD_8_PJ = 0.03
SRAM_64B_PJ = 10.0
STREAM_BIT_PJ = 0.1
DRAM_64B_PJ = 1300.0
# Idle (static) power of the whole board, in W. ASSUMED figures, not measurements: below the running power published
# for each board (LPYOLO 2.4 W on PYNQ-Z2, UltraNet ~5.2 W on Ultra96: ../shared/references.md); pass
# ``static_power_w`` to use a measured one.
IDLE_POWER_W = {"pynq-z1": 1.5, "pynq-z2": 1.5, "ultra96-v2": 3.0, "kv260": 3.5, "zcu104": 6.0, "u250": 30.0}
_MAC = re.compile(r"op_mac_(\d+)bx(\d+)b")
_WEIGHT = re.compile(r"param_weight_(\d+)b")


@dataclass(frozen=True)
class EnergyEstimate:
    """Energy per frame in microjoules, by part, and what it was computed from."""

    macs: int
    bops: int  # sum over MACs of weight bits x activation bits
    weight_bits_read: int
    stream_bits: int
    dma_bytes: int
    fps: float
    static_power_w: float
    dynamic_uj: float
    static_uj: float
    parts_uj: dict[str, float]

    @property
    def total_uj(self) -> float:
        return self.dynamic_uj + self.static_uj

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "total_uj": self.total_uj}


def op_counts(model) -> dict[str, int]:
    """FINN's op and parameter counts summed over the hardware layers of ``model`` (a ModelWrapper)."""
    from qonnx.custom_op.registry import getCustomOp

    totals: dict[str, int] = {}
    for node in model.graph.node:
        try:
            op = getCustomOp(node)
        except Exception:  # not a FINN op (none is left after stream_links, but a checkpoint may be older)
            continue
        counts = getattr(op, "get_op_and_param_counts", None)
        for key, value in (counts() if counts else {}).items():
            totals[key] = totals.get(key, 0) + int(value)
    return totals


def estimate_energy(model, manifest: dict[str, Any], board: str, fps: float,
                    static_power_w: float | None = None) -> EnergyEstimate:
    """The estimate for the hardware graph ``model`` whose backend ``manifest`` lists the links and ports, running
    at ``fps`` on ``board`` (see the module docstring for the table)."""
    counts = op_counts(model)
    macs = bops = 0
    mac_pj = 0.0
    for key, n in counts.items():
        m = _MAC.fullmatch(key)
        if m:
            a, b = int(m.group(1)), int(m.group(2))
            macs += n
            bops += n * a * b
            mac_pj += n * (MAC_8X8_PJ * a * b / 64 + ADD_8_PJ) * FPGA_GAP
    # Each MAC reads one weight: the weight bits read per frame are MACs x the layer's weight width. FINN reports
    # weight counts per layer, not per MAC, so the widths come from the MAC keys (the wider operand is the weight
    # for every zoo layer but the first, whose 8-bit input is wider: either way an upper bound).
    weight_reads = sum(n * max(int(g) for g in _MAC.fullmatch(k).groups()) for k, n in counts.items()
                       if _MAC.fullmatch(k))
    stream_bits = sum(int(l["beats_per_frame"]) * int(l["width"]) for l in manifest["links"])
    dma_bytes = sum(int(p["beats_per_frame"]) * int(p["width"]) // 8 for p in manifest["ports"].values())
    parts = {
        "MACs": mac_pj * 1e-6,
        "weight reads": weight_reads / 64 * SRAM_64B_PJ * 1e-6,
        "streams": stream_bits * STREAM_BIT_PJ * FPGA_GAP * 1e-6,
        "DMA": dma_bytes * 8 / 64 * DRAM_64B_PJ * 1e-6,
    }
    static_w = IDLE_POWER_W.get(board, 2.0) if static_power_w is None else float(static_power_w)
    static_uj = static_w / fps * 1e6 if fps > 0 else float("inf")
    return EnergyEstimate(macs=macs, bops=bops, weight_bits_read=weight_reads, stream_bits=stream_bits,
                          dma_bytes=dma_bytes, fps=fps, static_power_w=static_w,
                          dynamic_uj=round(sum(parts.values()), 6), static_uj=round(static_uj, 6),
                          parts_uj={k: round(v, 6) for k, v in parts.items()})


def estimate_build_energy(layout, fps: float, static_power_w: float | None = None) -> EnergyEstimate:
    """:func:`estimate_energy` of a build (a :class:`flows.build.BuildLayout`): its hardware checkpoint, the RTL
    or C++ manifest (whichever it has), its board."""
    from qonnx.core.modelwrapper import ModelWrapper

    from flows.build import HARDWARE_STEP

    model = ModelWrapper(str(layout.step_checkpoint(HARDWARE_STEP)))
    manifest = layout.read_manifest() if layout.has_rtl() else layout.read_cpp_manifest()
    board = layout.target()[0].name
    return estimate_energy(model, manifest, board, fps, static_power_w)

