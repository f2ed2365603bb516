"""Streamlining in float64 (flows.transforms.precision): the integer thresholds it folds BatchNorm-like scales and
biases into are the ones rational arithmetic gives, where float32 folding puts some on the wrong side of an
integer."""

from __future__ import annotations

from fractions import Fraction
from math import ceil

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.infer_shapes import InferShapes

from flows.config import FlowError
from flows.steps.streamline import step_streamline
from flows.transforms.precision import ToFloat32, ToFloat64

K, C, LEVELS = 16, 64, 15


def _layer(w: np.ndarray, a: np.ndarray, b: np.ndarray, t: np.ndarray) -> ModelWrapper:
    """x (INT8) -> MatMul(w, INT8) -> Mul a -> Add b -> MultiThreshold t (UINT4): a conv, its BN, its quantizer."""
    nodes = [helper.make_node("MatMul", ["x", "w"], ["acc"]), helper.make_node("Mul", ["acc", "a"], ["m"]),
             helper.make_node("Add", ["m", "b"], ["y"]),
             helper.make_node("MultiThreshold", ["y", "t"], ["out"], domain="qonnx.custom_op.general",
                              out_dtype="UINT4")]
    inits = [onnx.numpy_helper.from_array(np.asarray(v, np.float32), n) for n, v in
             {"w": w, "a": a, "b": b, "t": t}.items()]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, K])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, C])], inits)
    model = ModelWrapper(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])).transform(
        InferShapes())
    model.set_tensor_datatype("x", DataType["INT8"])
    model.set_tensor_datatype("w", DataType["INT8"])
    return model


def _thresholds(model: ModelWrapper) -> np.ndarray:
    (node,) = model.get_nodes_by_op_type("MultiThreshold")
    assert model.get_tensor_datatype(node.input[0]).is_integer()  # the scales and bias were folded away
    return model.get_initializer(node.input[1])


def test_float64_streamlining_gives_the_exact_integer_thresholds():
    rng = np.random.default_rng(7)
    w = rng.integers(-128, 128, (K, C)).astype(np.float32)
    a = rng.uniform(0.01, 0.05, C).astype(np.float32)
    t = np.tile((np.arange(LEVELS) + 0.5) * 0.125, (C, 1)).astype(np.float32)  # power-of-two step: exact in both
    # Biases that put threshold 7 of each channel within float32 noise of an integer accumulator.
    n = rng.integers(500, 3000, C)
    b = (t[:, 7] - a.astype(np.float64) * (n + rng.uniform(-1e-5, 1e-5, C))).astype(np.float32)
    model = _layer(w, a, b, t)
    exact = np.asarray([[ceil((Fraction(float(t[c, j])) - Fraction(float(b[c]))) / Fraction(float(a[c])))
                         for j in range(LEVELS)] for c in range(C)], np.float64)
    got64 = _thresholds(step_streamline(model.transform(ToFloat64()), None))
    assert got64.dtype == np.float32  # back in FINN's float32 containers, holding integers
    np.testing.assert_array_equal(got64, exact)
    got32 = _thresholds(step_streamline(model, None))
    assert int((np.ceil(got32) != exact).sum()) > 0  # float32 folding misses some: the test can tell


def test_float32_refuses_thresholds_it_cannot_hold():
    model = _layer(np.ones((K, C), np.float32), np.ones(C, np.float32), np.zeros(C, np.float32),
                   np.tile(np.arange(LEVELS) + 0.5, (C, 1)).astype(np.float32))
    # A MultiThreshold on an integer tensor whose thresholds are not integers (nothing rounded them).
    model.get_nodes_by_op_type("MultiThreshold")[0].input[0] = "acc"
    model.set_tensor_datatype("acc", DataType["INT32"])
    with pytest.raises(FlowError, match="MultiThreshold"):
        model.transform(ToFloat64()).transform(ToFloat32())
