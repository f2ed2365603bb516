"""The reconvergent FIFO sizing model: each kernel's per-beat need, written out by hand here for small shapes, and
the composition along a branch. (Whether the bound is exact is checked in RTL: tests/sim/test_network_graph.py.)"""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.util.basic import qonnx_make_model

from flows.transforms.fifo_sizing import compose, need

HLS, RTL = "finn.custom_op.fpgadataflow.hls", "finn.custom_op.fpgadataflow.rtl"


def _one(op_type: str, domain: str, in_shape, out_shape, **attrs):
    node = helper.make_node(op_type, ["x"], ["y"], name=op_type, domain=domain, backend="fpgadataflow", **attrs)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)])
    return ModelWrapper(qonnx_make_model(graph)), node


def test_an_mvau_needs_its_whole_input_vector_for_each_output_pixel():
    # MW 6 / SIMD 2: 3 input beats a vector; MH 4 / PE 2: 2 output beats a vector; 2 pixels.
    model, node = _one("MVAU_hls", HLS, [1, 1, 2, 6], [1, 1, 2, 4], MW=6, MH=4, SIMD=2, PE=2, inputDataType="UINT4",
                       weightDataType="INT4", outputDataType="INT12", accDataType="INT12", noActivation=1,
                       numInputVectors=[1, 1, 2], binaryXnorMode=0)
    assert need(model, node, 0, 0, True).tolist() == [3, 3, 6, 6]


def test_a_sliding_window_needs_the_last_pixel_of_each_window():
    # 4x4 input, 3x3 windows, stride 1 -> 2x2 outputs, one channel: 9 beats a window.
    model, node = _one("ConvolutionInputGenerator_rtl", RTL, [1, 4, 4, 1], [1, 2, 2, 9], ConvKernelDim=[3, 3],
                       IFMChannels=1, IFMDim=[4, 4], OFMDim=[2, 2], SIMD=1, Stride=[1, 1], Dilation=[1, 1],
                       inputDataType="UINT4", outputDataType="UINT4", depthwise=0)
    got = need(model, node, 0, 0, True)
    # Window (0,0) ends at pixel (2,2) = 11th input beat; (0,1) at (2,3) = 12; (1,0) at (3,2) = 15; (1,1) = 16.
    assert got.tolist() == [11] * 9 + [12] * 9 + [15] * 9 + [16] * 9


def test_padding_needs_the_real_pixels_up_to_each_output_beat():
    # 2x2 image, one pixel of zeros around it: 4x4 out; real pixels at (1,1) (1,2) (2,1) (2,2).
    model, node = _one("FMPadding_rtl", RTL, [1, 2, 2, 1], [1, 4, 4, 1], ImgDim=[2, 2], NumChannels=1,
                       Padding=[1, 1, 1, 1], SIMD=1, inputDataType="UINT4", numInputVectors=1)
    assert need(model, node, 0, 0, True).tolist() == [0, 0, 0, 0,  0, 1, 2, 2,  2, 3, 4, 4,  4, 4, 4, 4]


def test_nearest_upsampling_needs_the_pixel_it_repeats():
    # 2x2 -> 4x4, two channels at SIMD 1: 2 beats a pixel.
    model, node = _one("UpsampleNearestNeighbour_hls", HLS, [1, 2, 2, 2], [1, 4, 4, 2], HI=2, WI=2, HO=4, WO=4,
                       NumChannels=2, SIMD=1, inputDataType="UINT4", batchSize=1)
    got = need(model, node, 0, 0, True).reshape(4, 4, 2)
    # Output pixel (y, x) repeats input pixel (y // 2, x // 2): its beats are 2 * (row * 2 + col) + fold + 1.
    for y in range(4):
        for x in range(4):
            base = 2 * ((y // 2) * 2 + x // 2)
            assert got[y, x].tolist() == [base + 1, base + 2], (y, x)


def test_a_branch_needs_what_its_kernels_need_in_turn():
    # A 2 -> 3 element width converter's need, then an MVAU that needs 3 converted beats per output pair.
    dwc = np.array([2, 3, 5, 6, 8, 9])  # ceil((k + 1) * 3 / 2): 3-element beats made of 2-element ones
    mvau = np.array([3, 3, 6, 6])
    # MVAU beat 0 needs converter beats 1..3, i.e. input beats up to dwc[2] = 5; beat 2 needs dwc[5] = 9.
    assert compose([dwc, mvau]).tolist() == [5, 5, 9, 9]
    # A zero need (a padding beat before any real pixel) stays zero through the upstream kernels.
    assert compose([np.array([4, 8]), np.array([0, 1, 2])]).tolist() == [0, 4, 8]


def test_every_join_of_a_graph_net_gets_its_reconvergent_fifo_sized(tmp_path):
    """A three-stage net with three heads and a three-input concat (split into two two-input ones, the second fed
    by the first and by the skip): every join, the second concat half too, has an input FIFO sized for its fork.
    (Random graph 101 deadlocked in RTL when the second half's skip FIFO, behind a width converter and fed by a
    fork whose other two outputs both reach the first half, was left at its default depth.)"""
    import json

    from flows.config import FlowConfig
    from flows.runner import run_flow
    from flows.steps import DEFAULT_STEPS
    from tests.flows.brevitas_nets import export
    from tests.flows.graph_nets import build_graph_net, random_graph

    spec = random_graph(101)
    assert spec.triple_concat and len(spec.heads) == 3
    onnx = export(build_graph_net(spec, seed=101), spec.in_shape, tmp_path / "model.onnx", seed=101)
    cfg = FlowConfig(out=tmp_path / "build", board="pynq-z2", verify_images=0, stop="stream_links")
    run_flow(onnx, cfg, DEFAULT_STEPS)
    model = ModelWrapper(str(cfg.layout.step_checkpoint("stream_links")))
    joins = {n.name for n in model.graph.node if n.op_type.startswith(("ElementwiseAdd", "StreamingConcat"))}
    sized = json.loads(cfg.layout.fifo_sizing.read_text())
    assert len(joins) == 6 and {r["join"] for r in sized.values()} == joins, sized
    for name, record in sized.items():
        depth = next(a.i for a in model.get_node_from_name(name).attribute if a.name == "depth")
        assert depth == record["depth"] >= record["deadlock_depth"]
