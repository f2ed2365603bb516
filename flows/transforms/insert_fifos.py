"""FIFOs in the graph: one in front of every hardware layer's input (none at the accelerator's own ports), with the
depth its consumer needs to keep up; the reconvergent paths' depths follow (flows.transforms.fifo_sizing).

Placement around a width converter (FINN's InsertDWC runs first): an up-converter (SWG SIMD 8 -> MVAU SIMD 48)
can only assemble its wide beats ahead of time when there is room for them behind it, so the FIFO goes after it;
with the FIFO before it, an MVAU that takes its SF input beats in a burst and then replays the vector NF-1 times
waited for every wide beat to be assembled anew (measured on tinydet: 1.6x the estimated cycles per frame). A
down-converter takes a wide beat only every few cycles, and a parallel-window sliding window emits a row's windows
on consecutive cycles, so its FIFO goes in front of the converter (measured on random third-party nets: up to 1.30x
the estimate, 0.99-1.08x with the FIFO in front).

Depth (:func:`consumer_depth`): ``default`` beats (32: one SRL32/LUTRAM column per bit on a 7-series part, so a FIFO
costs about width/2 LUTs) absorb the short bursts. An MVAU takes a whole vector (SF beats) in a burst and then
replays it NF-1 times, so its FIFO holds at least two vectors: the next one is complete when the replay ends. A
sliding window must read SPAN beats (K_H-1 rows plus K_W pixels) of a frame before its first window leaves, and its
line buffer holds no more than that, so at every frame boundary its consumer would wait while a slower producer
delivers the next frame's first rows; a FIFO of SPAN beats lets the producer deliver them during the previous
frame's last windows instead (measured on BNN-PYNQ's CNV: 10% more cycles per frame than estimated with 32 beats).
Frames back to back leave gaps at every frame boundary, which the FIFOs must also cover at the pipeline's rate
(:func:`consumer_depth`): a padding takes no input while it writes two frames' border rows, and a sliding window
emits nothing while it reads the next frame's first rows; in a pipeline folded to one cycle count, every layer
sets the pace, so a gap nothing absorbs costs every frame (UltraNet: 1.6%).
These depths count the consumer's beats: a FIFO in front of a down-converter holds wider ones, so it gets
proportionally fewer entries (:func:`wide_depth`; tinyyolo's 4,096-beat window FIFO on 512-bit beats had been
estimated at 114 BRAM18 instead of 2).
"""

from __future__ import annotations

import math

from onnx import TensorProto, helper
from qonnx.custom_op.registry import getCustomOp
from qonnx.transformation.base import Transformation

DEFAULT_FIFO_DEPTH = 32
FIFO_DOMAIN = "finn.custom_op.fpgadataflow"


def is_fifo(node) -> bool:
    return node is not None and node.op_type.startswith("StreamingFIFO")


def is_dwc(node) -> bool:
    return node is not None and node.op_type.startswith("StreamingDataWidthConverter")


# FINN's FIFO cost ladder for ram_style "auto" may pick UltraRAM whatever the part (a 7-series part has none), so the
# style is chosen here: shallow FIFOs in LUTs (SRL / LUTRAM), deep ones in block RAM. qdet_fifo leaves the memory
# to the synthesis tool's inference; the style is what the estimate assumes.
LUT_FIFO_DEPTH = 64


def fifo_style(depth: int) -> str:
    """The FINN ``ram_style`` a FIFO of ``depth`` beats is estimated with."""
    return "distributed" if depth <= LUT_FIFO_DEPTH else "block"


def set_depth(node, depth: int) -> None:
    """Set a FIFO node's depth and the memory style that goes with it."""
    op = getCustomOp(node)
    op.set_nodeattr("depth", int(depth))
    op.set_nodeattr("ram_style", fifo_style(depth))


def pow2_at_least(n: int) -> int:
    """The smallest power of two >= max(n, 2)."""
    return 1 << max(1, (max(2, n) - 1).bit_length())


def wide_depth(depth: int, wide: int, narrow: int) -> int:
    """Entries of ``wide``-bit beats that hold ``depth`` beats of ``narrow`` bits (a FIFO in front of a
    down-converter), a power of two.

    >>> wide_depth(4096, 512, 8), wide_depth(32, 64, 16), wide_depth(32, 24, 16)
    (64, 8, 32)
    """
    return pow2_at_least(-(-depth * narrow // wide))


def window_span(op) -> int:
    """Input beats a sliding window (FINN node op) reads of a frame before its first window leaves: K_H-1 rows and
    K_W pixels, times the channel folds."""
    kh, kw = op.get_nodeattr("ConvKernelDim")
    dh, dw = op.get_nodeattr("Dilation") if "Dilation" in op.get_nodeattr_types() else (1, 1)
    iw = op.get_nodeattr("IFMDim")[1]
    folds = op.get_nodeattr("IFMChannels") // op.get_nodeattr("SIMD")
    return ((kh - 1) * dh * iw + (kw - 1) * dw + 1) * folds


def border_gap(op) -> int:
    """Cycles an FMPadding (FINN node op) takes no input between two frames: it emits the bottom border rows of one
    frame and the top border rows (and first left border) of the next, one beat per cycle."""
    h, w = op.get_nodeattr("ImgDim")
    t, l, b, r = op.get_nodeattr("Padding")
    folds = op.get_nodeattr("NumChannels") // op.get_nodeattr("SIMD")
    return ((t + b) * (w + l + r) + l) * folds


def _beats_per_frame(op) -> int:
    return math.prod(op.get_folded_input_shape()[:-1])


def _window_feeding(model, node):
    """The sliding window producing ``node``'s input (through one width converter at most), or None."""
    producer = model.find_producer(node.input[0]) if model is not None else None
    if is_dwc(producer):
        producer = model.find_producer(producer.input[0])
    return producer if producer is not None and producer.op_type.startswith("ConvolutionInputGenerator") else None


def consumer_depth(consumer, default: int, model=None, interval: int | None = None) -> int:
    """Depth of the FIFO in front of ``consumer`` (a FINN node) that lets it keep its folded rate (module doc).

    With the graph (``model``) and the pipeline's cycles per frame (``interval``), the frame-boundary gaps are
    covered too, at the pipeline's rate: an MVAU/VVAU fed by a sliding window gets nothing while the window reads
    the next frame's first rows (:func:`window_span` cycles at least), and a padding takes nothing while it emits
    two frames' border rows (:func:`border_gap`). Whatever its partner delivers or asks meanwhile must fit the FIFO,
    or a layer that sets the pace stalls: UltraNet's four 64-channel paddings at SIMD 1 cost 2,381 cycles per frame
    (155,981 simulated against 153,600), their 32-beat FIFOs filling while a padding wrote 2,816 border beats."""
    op = getCustomOp(consumer)
    depth = default
    kind = consumer.op_type.rsplit("_", 1)[0]
    if kind == "MVAU":
        depth = max(depth, 2 * (op.get_nodeattr("MW") // op.get_nodeattr("SIMD")))
    elif kind == "ConvolutionInputGenerator":
        depth = max(depth, window_span(op))
    if interval:
        gap = 0
        if kind in ("MVAU", "VVAU") and (swg := _window_feeding(model, consumer)) is not None:
            gap = window_span(getCustomOp(swg))
        elif kind == "FMPadding":
            gap = border_gap(op)
        depth += -(-gap * _beats_per_frame(op) // interval)
    return pow2_at_least(depth)


def make_fifo(model, tensor: str, producer, out_index: int, name: str, depth: int):
    """A StreamingFIFO node carrying ``tensor`` (``producer``'s output ``out_index``); returns (node, new tensor)."""
    op = getCustomOp(producer)
    out = f"{name}_out"
    shape = model.get_tensor_shape(tensor)
    model.graph.value_info.append(helper.make_tensor_value_info(out, TensorProto.FLOAT, shape))
    model.set_tensor_datatype(out, model.get_tensor_datatype(tensor))
    node = helper.make_node("StreamingFIFO", [tensor], [out], name=name, domain=FIFO_DOMAIN, backend="fpgadataflow",
                            depth=depth, folded_shape=list(op.get_folded_output_shape(out_index)),
                            normal_shape=list(op.get_normal_output_shape(out_index)),
                            dataType=op.get_output_datatype(out_index).name, ram_style=fifo_style(depth))
    return node, out


class NameStreamNodes(Transformation):
    """Name each width converter and FIFO after the layer input it feeds (``dwc_<layer>``, ``fifo_<layer>``, with
    ``_in<port>`` for a join's second input), so reports and the watchdog say where it sits. Run after
    SpecializeLayers, which renames every node it specialises."""

    def apply(self, model):
        # Every name is decided before any tensor is renamed: FINN's tensor names (the FIFOs' were given before
        # SpecializeLayers renamed their consumers) can already hold a name another node is about to take, and a
        # rename in place would then join two streams under one tensor.
        plan, taken = [], set()
        for node in model.graph.node:
            if not (is_fifo(node) or is_dwc(node)):
                continue
            tensor, consumer = node.output[0], model.find_consumer(node.output[0])
            while consumer is not None and (is_fifo(consumer) or is_dwc(consumer)):
                tensor, consumer = consumer.output[0], model.find_consumer(consumer.output[0])
            if consumer is None:
                continue
            port = list(consumer.input).index(tensor)
            base = f"{'fifo' if is_fifo(node) else 'dwc'}_{consumer.name}" + (f"_in{port}" if port else "")
            name, k = base, 1
            while name in taken:  # two stream nodes on one path to the same input (not seen; kept distinct)
                name, k = f"{base}_{k}", k + 1
            taken.add(name)
            plan.append((node, name))
        for i, (node, _) in enumerate(plan):  # first to names no graph holds, then to the final ones
            _rename_tensor(model, node.output[0], f"{node.output[0]}__stream{i}")
        for node, name in plan:
            node.name = name
            _rename_tensor(model, node.output[0], f"{name}_out")  # FINN names the new tensors randomly
        return model, False


def _rename_tensor(model, old: str, new: str) -> None:
    """Rename a graph-internal tensor (its producer's output, its consumers' inputs, its value_info)."""
    if old == new:
        return
    for node in model.graph.node:
        for i, t in enumerate(node.input):
            if t == old:
                node.input[i] = new
        for i, t in enumerate(node.output):
            if t == old:
                node.output[i] = new
    for vi in model.graph.value_info:
        if vi.name == old:
            vi.name = new
    for ann in model.graph.quantization_annotation:
        if ann.tensor_name == old:
            ann.tensor_name = new


class InsertFIFOs(Transformation):
    """A FIFO in front of every hardware layer input fed by another layer (module doc: placement and depth)."""

    def __init__(self, default_depth: int = DEFAULT_FIFO_DEPTH):
        super().__init__()
        self.default_depth = default_depth

    def apply(self, model):
        graph = model.graph
        # The pipeline's cycles per frame: its slowest layer's (the rate the frame-boundary gaps are covered at).
        interval = max((int(getCustomOp(n).get_exp_cycles()) for n in graph.node
                        if n.domain.startswith(FIFO_DOMAIN) and not (is_fifo(n) or is_dwc(n))), default=0) or None
        for consumer in list(graph.node):
            if is_fifo(consumer) or is_dwc(consumer):
                continue
            for port, tensor in enumerate(consumer.input):
                producer = model.find_producer(tensor)
                if producer is None or is_fifo(producer):
                    continue  # the accelerator's input port, a weight initializer, or already buffered
                layer, at, feeds = producer, tensor, consumer
                depth = consumer_depth(consumer, self.default_depth, model, interval)
                if is_dwc(producer):
                    dwc = getCustomOp(producer)
                    wide, narrow = dwc.get_nodeattr("inWidth"), dwc.get_nodeattr("outWidth")
                    if wide > narrow:
                        # A down-converter: the FIFO goes in front of it (module doc), where each of its entries
                        # holds wide / narrow of the consumer's beats.
                        layer, at, feeds = model.find_producer(producer.input[0]), producer.input[0], producer
                        depth = wide_depth(depth, wide, narrow)
                if is_fifo(layer):
                    continue
                name = f"fifo_{consumer.name}" + (f"_in{port}" if port else "")  # renamed after specialising
                node, out = make_fifo(model, at, layer, list(layer.output).index(at), name, depth)
                graph.node.insert(list(graph.node).index(feeds), node)
                for i, t in enumerate(feeds.input):
                    if t == at:
                        feeds.input[i] = out
        return model, False
