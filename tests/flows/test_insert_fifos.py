"""flows/transforms/insert_fifos.py: NameStreamNodes on a hand-made graph whose FINN tensor names already hold the
names it hands out (found on a random graph net: a fork's two FIFOs ended up as one tensor); FIFO depths in a
down-converter's wide beats; and the frame-boundary gaps of paddings and sliding windows, by RTL simulation."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from onnx import TensorProto, helper
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp
from qonnx.util.basic import qonnx_make_model

from flows.transforms.insert_fifos import NameStreamNodes
from tests.tools import require_simulator

RTL = "finn.custom_op.fpgadataflow.rtl"


def _node(op: str, inputs: list[str], outputs: list[str], name: str):
    return helper.make_node(op, inputs, outputs, name=name, domain=RTL, backend="fpgadataflow")


def test_stream_nodes_take_their_consumers_names_without_joining_two_streams():
    # A fork feeds two layers, "B" through a FIFO and a width converter, "A" through a FIFO alone. The second
    # FIFO's output is already called "fifo_B_out" (FINN named it before SpecializeLayers renamed the layers),
    # the name the first FIFO is about to take.
    nodes = [
        _node("DuplicateStreams_hls", ["x"], ["d0", "d1"], "fork"),
        _node("StreamingFIFO_rtl", ["d0"], ["t_rand"], "f0"),
        _node("StreamingDataWidthConverter_rtl", ["t_rand"], ["w_rand"], "w0"),
        _node("MVAU_hls", ["w_rand"], ["yb"], "B"),
        _node("StreamingFIFO_rtl", ["d1"], ["fifo_B_out"], "f1"),
        _node("MVAU_hls", ["fifo_B_out"], ["ya"], "A"),
    ]
    inner = ["d0", "d1", "t_rand", "w_rand", "fifo_B_out"]
    vi = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 4]) for n in ["x", "ya", "yb", *inner]]
    graph = helper.make_graph(nodes, "g", vi[:1], vi[1:3], value_info=vi[3:])
    model = ModelWrapper(qonnx_make_model(graph)).transform(NameStreamNodes())

    by_name = {n.name: n for n in model.graph.node}
    assert set(by_name) == {"fork", "fifo_B", "dwc_B", "B", "fifo_A", "A"}
    assert list(by_name["fifo_B"].input) == ["d0"] and list(by_name["fifo_B"].output) == ["fifo_B_out"]
    assert list(by_name["dwc_B"].input) == ["fifo_B_out"] and list(by_name["B"].input) == ["dwc_B_out"]
    assert list(by_name["fifo_A"].input) == ["d1"] and list(by_name["A"].input) == ["fifo_A_out"]
    names = Counter(v.name for v in model.graph.value_info)
    assert max(names.values()) == 1 and {"fifo_B_out", "dwc_B_out", "fifo_A_out"} <= set(names)


def test_a_fifo_in_front_of_a_down_converter_counts_the_consumers_beats(tmp_path):
    # Random graph net 0 (residual blocks, forks, two heads) built to its stream links: every FIFO that feeds a
    # down-converter holds wide beats, each worth wide/narrow of its consumer's beats. By the module doc's rule its
    # consumer needs at least 32 beats, an MVAU two input vectors (2 * MW / SIMD), rounded up to a power of two; the
    # FIFO must hold that many consumer beats, and half its depth must not (the fewest power-of-two entries).
    import math

    from qonnx.custom_op.registry import getCustomOp

    from flows.config import FlowConfig
    from flows.runner import run_flow
    from flows.steps import DEFAULT_STEPS
    from tests.flows.brevitas_nets import export
    from tests.flows.graph_nets import build_graph_net, random_graph

    spec = random_graph(0)
    onnx = export(build_graph_net(spec, seed=3), spec.in_shape, tmp_path / "model.onnx", seed=3)
    cfg = FlowConfig(out=tmp_path / "build", board="pynq-z2", verify_images=1, stop="stream_links")
    run_flow(onnx, cfg, DEFAULT_STEPS)
    model = ModelWrapper(str(cfg.layout.step_checkpoint("stream_links")))
    sized = set(json.loads(cfg.layout.fifo_sizing.read_text())) if cfg.layout.fifo_sizing.is_file() else set()
    interval = max(getCustomOp(n).get_exp_cycles() for n in model.graph.node
                   if not n.op_type.startswith(("StreamingFIFO", "StreamingDataWidthConverter")))
    checked = 0
    for fifo in model.graph.node:
        dwc = model.find_consumer(fifo.output[0])
        if not fifo.op_type.startswith("StreamingFIFO") or dwc is None or \
                not dwc.op_type.startswith("StreamingDataWidthConverter"):
            continue
        conv = getCustomOp(dwc)
        wide, narrow = conv.get_nodeattr("inWidth"), conv.get_nodeattr("outWidth")
        if wide <= narrow:
            continue
        consumer = model.find_consumer(dwc.output[0])
        op = getCustomOp(consumer)
        need = 32
        if consumer.op_type.startswith("MVAU"):
            need = max(need, 2 * op.get_nodeattr("MW") // op.get_nodeattr("SIMD"))
        # The frame-boundary gap, covered at the pipeline's rate: a sliding window in front of an MVAU/VVAU reads
        # (K-1) rows and K pixels of the next frame before its first window; a padding writes two border rows.
        gap, producer = 0, model.find_producer(fifo.input[0])
        if consumer.op_type.startswith(("MVAU", "VVAU")) and producer.op_type.startswith("ConvolutionInput"):
            swg = getCustomOp(producer)
            (kh, kw), iw = swg.get_nodeattr("ConvKernelDim"), swg.get_nodeattr("IFMDim")[1]
            gap = ((kh - 1) * iw + kw) * swg.get_nodeattr("IFMChannels") // swg.get_nodeattr("SIMD")
        elif consumer.op_type.startswith("FMPadding"):
            (h, w), (t, left, b, r) = op.get_nodeattr("ImgDim"), op.get_nodeattr("Padding")
            gap = ((t + b) * (w + left + r) + left) * op.get_nodeattr("NumChannels") // op.get_nodeattr("SIMD")
        need += math.ceil(gap * math.prod(op.get_folded_input_shape()[:-1]) / interval)
        need = 1 << math.ceil(math.log2(need))
        depth = getCustomOp(fifo).get_nodeattr("depth")
        assert depth * wide >= need * narrow, (fifo.name, depth, wide, narrow, need)
        if fifo.name not in sized:  # a reconvergent FIFO may be deeper (flows.transforms.fifo_sizing)
            assert depth == 2 or (depth // 2) * wide < need * narrow, (fifo.name, depth, wide, narrow, need)
        checked += 1
    assert checked >= 2


@pytest.mark.rtlsim
@pytest.mark.slow
def test_frame_boundaries_do_not_slow_a_balanced_pipeline(tmp_path):
    # Three 3x3 convs folded to the same cycles per frame (the folder's balance), their paddings at 1-4 channels per
    # beat: between two frames a padding writes its bottom and top border rows and takes no input, and a conv's
    # sliding window reads the next frame's first rows before its first window. With 32-beat FIFOs the convs in
    # front waited: 8,690 simulated cycles per frame in steady state against the estimate's 8,192 (6% slower, every
    # frame). With the FIFOs covering those gaps at the pipeline's rate, frames back to back run at the estimate.
    require_simulator("verilator")
    from flows.config import FlowConfig
    from flows.runner import run_flow
    from flows.steps import DEFAULT_STEPS
    from sim.network import SimConfig, simulate
    from tests.flows.brevitas_nets import Layer, NetSpec, build_net, export

    spec = NetSpec((3, 16, 32), (Layer("conv", 16, w_bits=4, a_bits=4), Layer("conv", 32, w_bits=4, a_bits=4),
                                 Layer("conv", 32, w_bits=4, a_bits=4), Layer("head", 12, k=1, pad=0, w_bits=4)))
    onnx = export(build_net(spec, seed=1), spec.in_shape, tmp_path / "m.onnx", seed=1)
    cfg = FlowConfig(out=tmp_path / "b", board="pynq-z2", verify_images=1)
    model = run_flow(onnx, cfg, DEFAULT_STEPS)
    pads = [getCustomOp(n).get_nodeattr("SIMD") for n in model.graph.node if n.op_type.startswith("FMPadding")]
    assert len(pads) == 3 and max(pads) < 32  # the paddings are folded: their border rows take many cycles
    r = simulate(cfg.layout, SimConfig(images=8, backpressure=0.2, seed=1, diagnose=False))
    assert r.status == "done" and r.frames == 8 and r.mismatches == 0, r.message
    est = r.estimate_cycles_per_frame
    assert r.steady_cycles_per_frame <= est * 1.005, (r.steady_cycles_per_frame, est, r.frame_done_cycles)
