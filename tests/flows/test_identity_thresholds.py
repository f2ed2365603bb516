import numpy as np
import pytest
from onnx import TensorProto, helper
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.core.onnx_exec import execute_onnx

from flows.transforms.identity_thresholds import RemoveIdentityThresholds


def _model(thresholds: np.ndarray, in_dt: str = "UINT8", out_dt: str = "UINT8", out_bias: float = 0.0):
    """input -> MultiThreshold -> Relu (a consumer, so the threshold is not the graph output)."""
    channels = thresholds.shape[0]
    mt = helper.make_node("MultiThreshold", ["x", "t"], ["y"], domain="qonnx.custom_op.general",
                          out_dtype=out_dt, out_bias=out_bias, name="mt")
    relu = helper.make_node("Relu", ["y"], ["z"], name="relu")
    graph = helper.make_graph([mt, relu], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, channels])],
                              [helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, channels])])
    graph.value_info.append(helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, channels]))
    model = ModelWrapper(helper.make_model(graph))
    model.set_initializer("t", thresholds.astype(np.float32))
    model.set_tensor_datatype("x", DataType[in_dt])
    return model


STEPS = np.arange(1, 256, dtype=np.float32) - 0.5  # x >= k - 0.5 for k = 1..255 counts x itself


def test_pixel_passthrough_threshold_is_removed_and_the_graph_computes_the_same():
    model = _model(np.stack([STEPS] * 3))
    x = np.arange(0, 256, dtype=np.float32)[:, None].repeat(3, 1)
    before = np.concatenate([execute_onnx(model, {"x": row[None]})["z"] for row in x])
    after_model = model.transform(RemoveIdentityThresholds())
    assert [n.op_type for n in after_model.graph.node] == ["Relu"]
    after = np.concatenate([execute_onnx(after_model, {"x": row[None]})["z"] for row in x])
    assert np.array_equal(before, after) and np.array_equal(after, x)


@pytest.mark.parametrize("change", ["one_step_off", "bias", "narrow_input_range", "signed_input"])
def test_thresholds_that_are_not_the_identity_stay(change):
    thresholds = np.stack([STEPS] * 3)
    kw = {}
    if change == "one_step_off":
        thresholds[1, 100] += 1.0  # channel 1 maps 100 to 99
    elif change == "bias":
        kw["out_bias"] = 1.0
    elif change == "narrow_input_range":
        thresholds, kw = thresholds[:, ::2], {"out_dt": "UINT7"}  # halves the value: not the identity
    else:
        kw["in_dt"] = "INT8"  # -128..-1 map to 0
    model = _model(thresholds, **kw).transform(RemoveIdentityThresholds())
    assert [n.op_type for n in model.graph.node] == ["MultiThreshold", "Relu"]
