"""Layer mapping and stitching: the folded graph's nodes -> kernel instances joined by stream links, as a DAG.

The graph arrives complete: the flow's ``stream_links`` step has put width converters and FIFOs in it (see
flows/transforms/insert_fifos.py), so every node maps to one kernel instance and every tensor between two nodes to
one AXI-Stream link. A fork (DuplicateStreams) drives several links, a join (ElementwiseAdd, StreamingConcat) takes
several; the top has one input port (``s_axis``) and one output port per graph output (``m_axis``, ``m1_axis``,
...). Stages come in topological order, each with its input and output links in port order.
"""

from __future__ import annotations

from dataclasses import dataclass

from hls.gen.ops import GenerateError, Layer, view_of


def output_port(index: int) -> str:
    """The top's AXI-Stream output port of graph output ``index``: ``m_axis``, ``m1_axis``, ..."""
    return "m_axis" if index == 0 else f"m{index}_axis"


@dataclass(frozen=True)
class Link:
    """One AXI-Stream link of the top: ``<name>_tdata/_tvalid/_tready``.

    ``layer`` is the FINN layer whose output the link carries ("input" for the top input); ``beats`` the beats per
    frame, so a harness can cut the first frame out of a dump; ``tensor`` the graph tensor it carries.
    """

    name: str
    producer: str
    consumer: str
    layer: str
    elems: int
    bits: int
    signed: bool
    beats: int
    tensor: str = ""

    @property
    def width(self) -> int:
        return self.elems * self.bits


@dataclass(frozen=True)
class Stage:
    """One kernel instance: its view, instance name, its input and output links in port order, and its role."""

    view: Layer
    instance: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    role: str  # "layer" (a FINN node), "dwc" or "fifo"

    @property
    def link_in(self) -> str:
        return self.inputs[0]

    @property
    def link_out(self) -> str:
        return self.outputs[0]


def graph_nodes(model) -> list:
    """The graph's nodes in topological order; raises for a node fed by no one, several graph inputs, or a cycle."""
    if len(model.graph.input) != 1:
        raise GenerateError(f"the folded graph must have exactly one input, not {len(model.graph.input)}")
    ready = {model.graph.input[0].name} | {t.name for t in model.graph.initializer}
    todo, order = list(model.graph.node), []
    while todo:
        progress = [n for n in todo if all(t in ready or not t for t in n.input)]
        if not progress:
            raise GenerateError(f"nodes not reachable from the graph input: {', '.join(n.name for n in todo)}")
        for node in progress:
            order.append(node)
            ready.update(node.output)
            todo.remove(node)
    return order


def _role(node) -> str:
    if node.op_type.startswith("StreamingFIFO"):
        return "fifo"
    if node.op_type.startswith("StreamingDataWidthConverter"):
        return "dwc"
    return "layer"


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


def build_graph(model, mac_policy: str = "auto", family: str = "xcup") -> tuple[list[Stage], list[Link]]:
    """Map every node to a kernel view and connect them: returns the stages (topological order) and the links
    (``l0`` the top input; the graph outputs' links end at ``m_axis``, ``m1_axis``, ...). ``family`` is the board's
    (yosys synth_xilinx family: the MVAU's DSP packing follows its DSP ports)."""
    nodes = graph_nodes(model)
    views = {n.name: view_of(model, n, mac_policy, family) for n in nodes}
    outputs = [o.name for o in model.graph.output]
    layer_of: dict[str, str] = {}  # tensor -> the FINN layer whose output it carries (through FIFOs and DWCs)
    links: dict[str, Link] = {}
    consumers: dict[str, str] = {}

    if not nodes:
        raise GenerateError("the folded graph has no nodes")
    in_tensor = model.graph.input[0].name
    readers = [(n, p) for n in nodes for p, t in enumerate(n.input) if t == in_tensor]
    if len(readers) != 1:
        raise GenerateError(f"the graph input feeds {len(readers)} nodes; the flow puts a fork (DuplicateStreams) "
                            "after it")
    node0, port0 = readers[0]
    s0 = views[node0.name].in_streams[port0]
    links[in_tensor] = Link("l0", "s_axis", "", "input", s0.elems, s0.bits, False, s0.beats, in_tensor)
    layer_of[in_tensor] = "input"
    stages: list[Stage] = []
    for node in nodes:
        view = views[node.name]
        ins = [t for t in node.input if t in links]
        if len(ins) != len(view.in_streams):
            raise GenerateError(f"node {node.name!r} ({node.op_type}) has {len(ins)} stream inputs, its kernel "
                                f"{view.kernel} takes {len(view.in_streams)}")
        for port, tensor in enumerate(ins):
            src, want = links[tensor], view.in_streams[port]
            if src.bits != want.bits or src.elems != want.elems:
                raise GenerateError(f"{src.producer} emits {src.elems} x {src.bits}-bit elements on {src.name}, "
                                    f"{node.name} input {port} takes {want.elems} x {want.bits}-bit elements (the "
                                    "flow's stream_links step inserts the width converters; was it run?)")
            _check_depthwise_order(views.get(layer_of[tensor]), view)
            consumers[tensor] = f"u_{node.name}"
        role = _role(node)
        outs = []
        for port, tensor in enumerate(node.output):
            stream = view.out_streams[port]
            layer = layer_of[ins[0]] if role != "layer" else node.name
            layer_of[tensor] = layer
            links[tensor] = Link(f"l{len(links)}", f"u_{node.name}", "", layer, stream.elems, stream.bits,
                                 stream.signed, stream.beats, tensor)
            outs.append(links[tensor].name)
        stages.append(Stage(view, f"u_{node.name}", tuple(links[t].name for t in ins), tuple(outs), role))
    for index, tensor in enumerate(outputs):
        if tensor not in links:
            raise GenerateError(f"graph output {tensor!r} is produced by no node")
        consumers[tensor] = output_port(index)
    dangling = [t for t in links if t not in consumers]
    if dangling:
        raise GenerateError(f"tensors {', '.join(dangling)} feed no node and no output")
    ordered = sorted(links.values(), key=lambda l: int(l.name[1:]))
    return stages, [Link(l.name, l.producer, consumers[l.tensor], l.layer, l.elems, l.bits, l.signed, l.beats,
                         l.tensor) for l in ordered]
