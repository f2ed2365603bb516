"""flows/transforms/joins.py on hand-made graphs: the add's exact output type, the split of a many-input concat."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.util.basic import qonnx_make_model

from flows.transforms.joins import ExactAddDatatype, SplitConcat


@pytest.mark.parametrize(("lhs", "rhs", "expected"), [("INT4", "UINT4", "INT6"), ("UINT4", "INT4", "INT6"),
                                                      ("UINT4", "UINT4", "UINT5"), ("INT4", "INT4", "INT5"),
                                                      ("UINT2", "INT8", "INT9"), ("UINT1", "UINT1", "UINT2")])
def test_an_add_gets_the_type_that_holds_every_sum(lhs, rhs, expected):
    # By hand: INT4 + UINT4 spans -8 .. 7 + 15 = 22, which needs INT6; UINT2 + INT8 spans -128 .. 3 + 127 = 130.
    node = helper.make_node("ElementwiseAdd_hls", ["a", "b"], ["y"], domain="finn.custom_op.fpgadataflow.hls",
                            backend="fpgadataflow", lhs_dtype=lhs, rhs_dtype=rhs, out_dtype="INT32",
                            lhs_shape=[1, 2, 2, 3], rhs_shape=[1, 2, 2, 3], out_shape=[1, 2, 2, 3], PE=1)
    vi = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 2, 2, 3]) for n in ("a", "b", "y")]
    model = ModelWrapper(qonnx_make_model(helper.make_graph([node], "g", vi[:2], vi[2:])))
    model = model.transform(ExactAddDatatype())
    assert model.get_tensor_datatype("y") == DataType[expected]
    assert helper.get_attribute_value(next(a for a in model.graph.node[0].attribute if a.name == "out_dtype")) \
        == expected.encode()


def test_a_three_input_concat_becomes_two_two_input_ones_with_the_same_result():
    from qonnx.core.onnx_exec import execute_onnx

    shapes = {"a": [1, 2, 2, 2], "b": [1, 3, 2, 2], "c": [1, 1, 2, 2]}
    node = helper.make_node("Concat", ["a", "b", "c"], ["y"], axis=1, name="cat")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info(n, TensorProto.FLOAT, s)
                                            for n, s in shapes.items()],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 6, 2, 2])])
    model = ModelWrapper(qonnx_make_model(graph))
    rng = np.random.default_rng(0)
    feed = {n: rng.integers(0, 9, s).astype(np.float32) for n, s in shapes.items()}
    split = model.transform(SplitConcat())
    assert [len(n.input) for n in split.graph.node] == [2, 2]
    got = execute_onnx(split, feed)["y"]
    assert np.array_equal(got, np.concatenate([feed["a"], feed["b"], feed["c"]], axis=1))
