"""flows/transforms/insert_fifos.py: NameStreamNodes on a hand-made graph whose FINN tensor names already hold the
names it hands out (found on a random graph net: a fork's two FIFOs ended up as one tensor)."""

from __future__ import annotations

from collections import Counter

from onnx import TensorProto, helper
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.util.basic import qonnx_make_model

from flows.transforms.insert_fifos import NameStreamNodes

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
