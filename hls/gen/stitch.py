"""Layer mapping and stitching: the folded graph's chain of nodes -> kernel instances joined by stream links.

Between two layers the generator puts, where the producer's elements per beat differ from the consumer's, a
``qdet_dwc`` (element order is kept, so no reordering is needed: every kernel streams NHWC, channel fastest, per
the README), and then a ``qdet_fifo`` on the consumer's width, right at the consumer's input. The FIFO goes after
the converter because an up-converter (SWG SIMD 8 -> MVAU SIMD 48) can only assemble its wide beats ahead of
time when there is room for them: with the FIFO before it, an MVAU that takes its SF input beats in a burst and
then replays the vector NF-1 times waited for every wide beat to be assembled anew (measured on tinydet: 1.6x the
estimated cycles per frame). A down-converter gets its FIFO in front instead: it takes a wide beat only every few
cycles, and a parallel-window sliding window emits a row's windows on consecutive cycles, which stalled its input
(measured on random third-party nets: up to 1.30x the estimate, 0.99-1.08x with the FIFO in front).
"""

from __future__ import annotations

from dataclasses import dataclass

from hls.gen.ops import DWCParams, FIFOParams, GenerateError, Layer, view_of

# Default depth of an inserted FIFO (see fifo_depth_for).
DEFAULT_FIFO_DEPTH = 32


@dataclass(frozen=True)
class Link:
    """One AXI-Stream link of the top: ``<name>_tdata/_tvalid/_tready``.

    ``layer`` is the FINN layer whose output the link carries ("input" for the top input); ``beats`` the beats per
    frame, so a harness can cut the first frame out of a dump.
    """

    name: str
    producer: str
    consumer: str
    layer: str
    elems: int
    bits: int
    signed: bool
    beats: int

    @property
    def width(self) -> int:
        return self.elems * self.bits


@dataclass(frozen=True)
class Stage:
    """One kernel instance: its view, instance name, and the links on its two sides."""

    view: Layer
    instance: str
    link_in: str
    link_out: str
    role: str  # "layer" (a FINN node), "dwc" or "fifo" (inserted)


def chain_nodes(model) -> list:
    """The graph's nodes in stream order; raises unless they form one linear chain from input to output."""
    if len(model.graph.input) != 1 or len(model.graph.output) != 1:
        raise GenerateError("the folded graph must have exactly one input and one output")
    consumers: dict[str, list] = {}
    for node in model.graph.node:
        for t in node.input[:1]:
            consumers.setdefault(t, []).append(node)
    order = []
    tensor = model.graph.input[0].name
    while tensor != model.graph.output[0].name:
        nxt = consumers.get(tensor, [])
        if len(nxt) != 1:
            raise GenerateError(f"tensor {tensor!r} feeds {len(nxt)} nodes: only linear chains are supported")
        node = nxt[0]
        order.append(node)
        if len(node.output) != 1:
            raise GenerateError(f"node {node.name!r} ({node.op_type}) has {len(node.output)} outputs")
        tensor = node.output[0]
    if len(order) != len(model.graph.node):
        extra = [n.name for n in model.graph.node if n not in order]
        raise GenerateError(f"nodes outside the input-output chain: {', '.join(extra)}")
    return order


def fifo_depth_for(producer: Layer, consumer: Layer, default: int) -> int:
    """Depth of the FIFO in front of ``consumer``.

    A linear chain cannot deadlock whatever the depths, so depth only buys throughput: it lets a producer run
    ahead while its consumer is busy with a burst (an MVAU replaying a vector NF times, a sliding window filling
    its line buffer, a 2x2 pool that emits only on every other row). ``default`` beats (32: one SRL32/LUTRAM
    column per bit on a 7-series part, so a FIFO costs about width/2 LUTs) absorbs the short bursts. An MVAU
    takes a whole vector (SF beats) in a burst and then replays it NF-1 times, so its FIFO holds at least two
    vectors: the next one is complete when the replay ends. A sliding window must read SPAN beats (K_H-1 rows plus
    K_W pixels) of a frame before its first window can leave, and its line buffer holds no more than that, so at
    every frame boundary its consumer would wait while a slower producer delivers the next frame's first rows;
    a FIFO of SPAN beats lets the producer deliver them during the previous frame's last windows instead (measured
    on BNN-PYNQ's CNV: 10% more cycles per frame than estimated with 32 beats, see bench/results/third_party.md).
    The simulation's cycles per frame against FINN's estimate is the check that this suffices.
    """
    from hls.gen.ops import MVAUParams, SWGParams

    depth = default
    if isinstance(consumer, MVAUParams):
        depth = max(depth, 2 * (consumer.mw // consumer.simd))
    if isinstance(consumer, SWGParams):
        (kh, kw), (dh, dw) = consumer.k, consumer.dilation
        span = ((kh - 1) * dh * consumer.ifm[1] + (kw - 1) * dw + 1) * (consumer.channels // consumer.simd)
        depth = max(depth, span)
    return 1 << max(1, (depth - 1).bit_length())


DEPTHWISE_CONSUMERS = ("qdet_maxpool", "qdet_avgpool", "qdet_vvau")


def _check_depthwise_order(prev: Layer, layer: Layer) -> None:
    """A pool or VVAU reads its sliding window's fold-major depthwise stream (hls/rtl/README.md): its PE channels
    per beat must be the window's SIMD, and a pool takes no parallel window. Any other pairing would need a
    reordering no width converter does, so it is refused here rather than simulated into wrong numbers."""
    from hls.gen.ops import SWGParams

    if layer.kernel not in DEPTHWISE_CONSUMERS or not isinstance(prev, SWGParams):
        return
    pe = getattr(layer, "pe", 1)
    bad = prev.simd != pe or (prev.parallel_window and layer.kernel != "qdet_vvau")
    if bad or not prev.depthwise and pe != prev.channels and prev.k[0] * prev.k[1] > 1:
        raise GenerateError(f"{prev.name} (SIMD {prev.simd}, parallel_window {int(prev.parallel_window)}, depthwise "
                            f"{int(prev.depthwise)}) cannot feed {layer.name} (PE {pe}): a depthwise consumer needs "
                            "its sliding window's SIMD equal to its PE (and no parallel window for a pool); fold them "
                            "together (qdet's folder does)")


def build_chain(model, mac_policy: str = "auto", fifo_depth: int = DEFAULT_FIFO_DEPTH) -> tuple[list[Stage],
                                                                                                 list[Link]]:
    """Map every node to a kernel view and stitch them: returns the stages and links in stream order."""
    layers = [view_of(model, node, mac_policy) for node in chain_nodes(model)]
    stages: list[Stage] = []
    links: list[Link] = []
    first = layers[0]

    def new_link(producer: str, layer: str, view: Layer) -> str:
        name = f"l{len(links)}"
        links.append(Link(name, producer, "", layer, view.out_elems, view.out_bits, view.out_signed, view.out_beats))
        return name

    # The top input link carries what the first layer consumes.
    links.append(Link("l0", "s_axis", "", "input", first.in_elems, first.in_bits, first.out_signed,
                      first.in_beats))
    current = "l0"
    prev: Layer | None = None
    for layer in layers:
        if prev is not None:
            _check_depthwise_order(prev, layer)
            if prev.out_bits != layer.in_bits:
                raise GenerateError(f"{prev.name} emits {prev.out_bits}-bit elements, {layer.name} takes "
                                    f"{layer.in_bits}-bit elements")
            wants_fifo = not (prev.op_type.startswith("StreamingFIFO") or layer.op_type.startswith("StreamingFIFO"))
            # A down-converter (wide beats split into narrower ones) takes a producer beat only every few cycles,
            # so a producer that emits in bursts (a parallel-window sliding window: up to a row of windows on
            # consecutive cycles) needs its FIFO in front of the converter; an up-converter needs it behind (above).
            fifo_first = prev.out_elems > layer.in_elems
            steps = ("fifo", "dwc") if fifo_first else ("dwc", "fifo")
            prev_view: Layer = prev
            for step in steps:
                if step == "dwc" and prev.out_elems != layer.in_elems:
                    frame = prev.out_beats * prev.out_elems
                    dwc = DWCParams.between(f"dwc_{layer.name}", prev.out_elems, layer.in_elems, prev.out_bits,
                                            prev.out_signed, frame)
                    out = new_link(dwc.name, prev.name, dwc)
                    stages.append(Stage(dwc, f"u_{dwc.name}", current, out, "dwc"))
                    current, prev_view = out, dwc
                elif step == "fifo" and wants_fifo:
                    fifo = FIFOParams.after(f"fifo_{layer.name}", prev_view, fifo_depth_for(prev, layer, fifo_depth))
                    out = new_link(fifo.name, prev.name, fifo)
                    stages.append(Stage(fifo, f"u_{fifo.name}", current, out, "fifo"))
                    current = out
        out = new_link(layer.name, layer.name, layer)
        stages.append(Stage(layer, f"u_{layer.name}", current, out, "layer"))
        current = out
        prev = layer
    # Fill in each link's consumer from the stages (the last one feeds m_axis).
    consumer = {s.link_in: s.instance for s in stages}
    links = [Link(l.name, l.producer if l.name == "l0" else f"u_{l.producer}", consumer.get(l.name, "m_axis"),
                  l.layer, l.elems, l.bits, l.signed, l.beats) for l in links]
    return stages, links
