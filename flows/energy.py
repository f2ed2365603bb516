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
stream bit                 ``0.1 pJ / 32`` per bit per link hop (a register write plus wiring, taken as a 32-bit
                           add's energy spread over its bits, Horowitz), times 14 for the fabric
DMA byte                   ``1.3 nJ per 64 bits`` (a DRAM access, Horowitz), for the input and output frames
static                     the board's idle power (table below, assumed figures) times the frame time 1 / FPS
=========================  ======================================================================================

Left out: the thresholding comparisons (``2^a - 1`` thresholds per output element, a few percent of the MACs'
energy at 4 bits), the FIFOs' memories beyond their one write per beat, and clock-tree power.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

FPGA_GAP = 14.0  # Kuon & Rose 2007: FPGA / ASIC dynamic power for logic
MAC_8X8_PJ = 0.2
ADD_8_PJ = 0.03
SRAM_64B_PJ = 10.0
STREAM_BIT_PJ = 0.1  # per 32 bits (a 32-bit add): per bit 0.1 / 32
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


def layer_counts(model) -> list[dict[str, int]]:
    """FINN's op and parameter counts (``get_op_and_param_counts``) of each hardware layer of ``model`` (a
    ModelWrapper) that has them (MVAU, VVAU: ``op_mac_<a>bx<b>b``, ``param_weight_<w>b``, ...)."""
    from qonnx.custom_op.registry import getCustomOp

    layers = []
    for node in model.graph.node:
        counts = getattr(getCustomOp(node), "get_op_and_param_counts", None)
        if counts is not None:
            layers.append({k: int(v) for k, v in counts().items()})
    return layers


def traffic(model) -> tuple[int, int]:
    """(bits per frame over the graph's internal streams, bytes per frame through the DMAs) of the hardware graph
    ``model``: each tensor's elements x its FINN DataType's width (the data, not the ports' padding). The types are
    the layers' own (``get_output_datatype``): the FIFOs and width converters the flow inserts carry no tensor
    annotation, which qonnx would read as FLOAT32."""
    from qonnx.custom_op.registry import getCustomOp

    def elems(name: str) -> int:
        n = 1
        for d in model.get_tensor_shape(name):
            n *= int(d)
        return n

    width: dict[str, int] = {}
    for node in model.graph.node:
        op = getCustomOp(node)
        for k, out in enumerate(node.output):
            width[out] = op.get_output_datatype(k).bitwidth()
        for k, inp in enumerate(node.input):
            if inp == model.graph.input[0].name:
                width[inp] = op.get_input_datatype(k).bitwidth()
    ends = [t.name for t in (*model.graph.input, *model.graph.output)]
    inner = [o for node in model.graph.node for o in node.output if o not in ends]
    return sum(elems(t) * width[t] for t in inner), sum(elems(t) * width[t] for t in ends) // 8


def estimate_energy(layers: list[dict[str, int]], stream_bits: int, dma_bytes: int, board: str, fps: float,
                    static_power_w: float | None = None) -> EnergyEstimate:
    """The estimate from FINN's per-layer op counts (:func:`layer_counts`), the stream and DMA traffic per frame,
    running at ``fps`` on ``board`` (see the module docstring for the table)."""
    macs = bops = weight_reads = 0
    mac_pj = 0.0
    for counts in layers:
        weight_bits = [int(m.group(1)) for k in counts if (m := _WEIGHT.fullmatch(k))]
        for key, n in counts.items():
            m = _MAC.fullmatch(key)
            if m:
                a, b = int(m.group(1)), int(m.group(2))
                macs += n
                bops += n * a * b
                mac_pj += n * (MAC_8X8_PJ * a * b / 64 + ADD_8_PJ) * FPGA_GAP
                # Each MAC reads its weight once: the layer's weight width (FINN's MAC key does not say which
                # operand is the weight; its weight key does).
                weight_reads += n * (weight_bits[0] if weight_bits else max(a, b))
    parts = {
        "MACs": mac_pj * 1e-6,
        "weight reads": weight_reads / 64 * SRAM_64B_PJ * 1e-6,
        "streams": stream_bits * STREAM_BIT_PJ / 32 * FPGA_GAP * 1e-6,
        "DMA": dma_bytes * 8 / 64 * DRAM_64B_PJ * 1e-6,
    }
    if fps <= 0:
        raise ValueError(f"the energy per frame needs a frame rate > 0, got {fps}")
    static_w = IDLE_POWER_W.get(board, 2.0) if static_power_w is None else float(static_power_w)
    static_uj = static_w / fps * 1e6
    return EnergyEstimate(macs=macs, bops=bops, weight_bits_read=weight_reads, stream_bits=stream_bits,
                          dma_bytes=dma_bytes, fps=fps, static_power_w=static_w,
                          dynamic_uj=round(sum(parts.values()), 6), static_uj=round(static_uj, 6),
                          parts_uj={k: round(v, 6) for k, v in parts.items()})


def estimate_build_energy(layout, fps: float, static_power_w: float | None = None) -> EnergyEstimate:
    """:func:`estimate_energy` of a build (a :class:`flows.build.BuildLayout`): the counts and traffic of its
    hardware checkpoint, its board."""
    from qonnx.core.modelwrapper import ModelWrapper

    from flows.build import HARDWARE_STEP

    model = ModelWrapper(str(layout.step_checkpoint(HARDWARE_STEP)))
    stream_bits, dma_bytes = traffic(model)
    # The DMAs move the ports' padded beats: a backend manifest says how wide they are (else the data alone).
    manifest = layout.read_manifest() if layout.has_rtl() else (layout.read_cpp_manifest() if layout.has_cpp()
                                                                else None)
    if manifest is not None:
        dma_bytes = sum(int(p["beats_per_frame"]) * int(p["width"]) // 8 for p in manifest["ports"].values())
    return estimate_energy(layer_counts(model), stream_bits, dma_bytes, layout.target()[0].name, fps, static_power_w)
