"""The exact reference executor (quant_models.exact_exec): float32 where Brevitas computes elementwise on float32 values
(weight and input quantizers), exact-to-float64 downstream, checked against rational arithmetic (fractions) on
activations built to sit within float32 noise of a rounding tie, where onnxruntime's float32 execution may not."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.core.onnx_exec import execute_onnx
from qonnx.transformation.infer_shapes import InferShapes

from quant_models.exact_exec import execute_exact

QDOMAIN = "qonnx.custom_op.general"


def _quant(name: str, x: str, scale: str, zero: str, bits: str, signed: int) -> onnx.NodeProto:
    return helper.make_node("Quant", [x, scale, zero, bits], [name], domain=QDOMAIN, signed=signed, narrow=0,
                            rounding_mode="ROUND")


def _wrap(nodes: list[onnx.NodeProto], inits: dict[str, object], x_shape: list[int],
          out_shape: list[int]) -> ModelWrapper:
    """One graph ``x -> nodes -> out`` with float32 initializers, in ONNX opset 13 and QONNX's domain."""
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, out_shape)],
                              [onnx.numpy_helper.from_array(np.asarray(v, np.float32), n) for n, v in inits.items()])
    return ModelWrapper(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13),
                                                                helper.make_opsetid(QDOMAIN, 1)]))


def _graph(w: np.ndarray, s_in: float, s_w: float, a: np.ndarray, b: np.ndarray, s_out: float) -> ModelWrapper:
    """x -> Quant(8 bit, s_in) -> MatMul(Quant(4 bit, s_w) of w) -> Mul a -> Add b -> Quant(4 bit, s_out)."""
    k, c = w.shape
    nodes = [_quant("xq", "x", "s_in", "z", "b8", 1), _quant("wq", "w", "s_w", "z", "b4", 1),
             helper.make_node("MatMul", ["xq", "wq"], ["acc"]), helper.make_node("Mul", ["acc", "a"], ["m"]),
             helper.make_node("Add", ["m", "b"], ["y"]), _quant("out", "y", "s_out", "z", "b8", 1)]
    inits = {"w": w, "s_in": np.float32(s_in), "s_w": np.float32(s_w), "z": np.float32(0), "b8": np.float32(8),
             "b4": np.float32(4), "a": a, "b": b, "s_out": np.float32(s_out)}
    return _wrap(nodes, inits, [1, k], [1, c]).transform(InferShapes())


def _round_half_even(q: Fraction) -> int:
    return round(q)  # Python rounds Fractions half to even, as torch and QONNX's ROUND do


def _exact_levels(x, w, s_in, s_w, a, b, s_out) -> list[int]:
    """The graph's levels in rational arithmetic from its float32 parameters; the quantizers of the input and of
    the weights (elementwise on float32 values) as float32 computes them."""
    xi = np.clip(np.round((x / np.float32(s_in)).astype(np.float32)), -128, 127).astype(int)
    wi = np.clip(np.round((w / np.float32(s_w)).astype(np.float32)), -8, 7).astype(int)
    acc = xi[0] @ wi
    levels = []
    for c in range(w.shape[1]):
        y = Fraction(int(acc[c])) * Fraction(float(np.float32(s_in))) * Fraction(float(np.float32(s_w)))
        y = y * Fraction(float(a[c])) + Fraction(float(b[c]))
        levels.append(min(127, max(-128, _round_half_even(y / Fraction(float(np.float32(s_out)))))))
    return levels


def test_exact_executor_matches_rational_arithmetic_at_near_ties():
    rng = np.random.default_rng(3)
    differs32 = 0
    for trial in range(40):
        k, c = 24, 8
        s_in, s_w, s_out = (float(np.float32(v)) for v in rng.uniform(0.01, 0.2, 3))
        w = rng.uniform(-7.5, 7.5, (k, c)).astype(np.float32) * np.float32(s_w)
        x = (rng.integers(-128, 128, (1, k)) * np.float32(s_in)).astype(np.float32)
        a = rng.uniform(0.5, 2.0, c).astype(np.float32)
        # Biases that put every output within ~1e-7 of a rounding tie: float32 arithmetic decides those by accident.
        xi = np.round(x / np.float32(s_in)).astype(int)
        wi = np.clip(np.round((w / np.float32(s_w)).astype(np.float32)), -8, 7).astype(int)
        m = (xi[0] @ wi) * s_in * s_w * a.astype(np.float64)
        target = (np.round(m / s_out) + 0.5) * s_out
        b = (target - m + rng.uniform(-2e-7, 2e-7, c) * s_out).astype(np.float32)
        model = _graph(w, s_in, s_w, a, b, s_out)
        got = execute_exact(model, {"x": x})["out"]
        assert got.dtype == np.float64
        want = _exact_levels(x, w, s_in, s_w, a, b, s_out)
        np.testing.assert_array_equal(np.round(got[0] / s_out).astype(int), want, err_msg=f"trial {trial}")
        f32 = execute_onnx(model, {"x": x})["out"]
        differs32 += int((np.round(f32[0].astype(np.float64) / s_out).astype(int) != want).sum())
    assert differs32 > 0  # the float32 evaluation does miss some of these: the test can tell the difference


def _float32_tie(seed: int) -> tuple[np.float32, np.float32]:
    """A scale s and a value v whose float32 quotient v / s is the tie 2.5 (half to even: 2) while the exact
    quotient is just above 2.5 (level 3)."""
    rng = np.random.default_rng(seed)
    for s in rng.uniform(0.01, 1.0, 1000).astype(np.float32):
        v = np.nextafter(np.float32(2.5) * s, np.float32(1))
        if np.float32(v / s) == np.float32(2.5) and Fraction(float(v)) / Fraction(float(s)) > Fraction(5, 2):
            return s, v
    pytest.fail("no value found whose float32 quotient is a tie while the exact one is not")


def test_weight_quantizer_rounds_in_float32_as_brevitas_does():
    # A weight whose float32 quotient w / s is exactly 2.5 (a tie, half to even: 2) while the exact quotient is
    # just above 2.5 (float64 would round it to 3): Brevitas computes the float32 one.
    s, w = _float32_tie(0)
    nodes = [_quant("wq", "w", "s", "z", "b4", 1), helper.make_node("Mul", ["x", "wq"], ["out"])]
    model = _wrap(nodes, {"w": [w], "s": s, "z": 0.0, "b4": 4.0}, [1], [1])
    out = execute_exact(model, {"x": np.ones(1, np.float32)})["out"]
    assert out[0] == 2 * np.float64(s)  # level 2, dequantized exactly (not fl32(2 * s))


@pytest.mark.parametrize("has_quant", [True, False])
def test_graph_input_precision_follows_the_dialect(has_quant):
    """An export (with quantizers) takes its float input as float32; a later step's graph takes float64."""
    nodes = [helper.make_node("Identity", ["x"], ["out"])]
    inits: dict[str, object] = {}
    if has_quant:
        nodes = [_quant("q", "x", "s", "z", "b8", 1), helper.make_node("Identity", ["q"], ["out"])]
        inits = {"s": 1.0, "z": 0.0, "b8": 8.0}
    model = _wrap(nodes, inits, [1], [1])
    x = np.asarray([3.0000001], np.float64)
    out = execute_exact(model, {"x": x})["out"]
    assert out.dtype == np.float64
    assert out[0] == (3.0 if has_quant else 3.0000001)


def test_an_activation_quantizer_rounds_exactly_even_on_float32_values():
    # Downstream of the input quantizer, x / s is exact arithmetic even when x itself is a float32 value: here
    # fl32(y / s) is the tie 2.5 (half to even: 2) while the exact quotient is above 2.5 (level 3).
    s, y = _float32_tie(1)
    nodes = [_quant("xq", "x", "one", "z", "b8", 1), helper.make_node("Mul", ["xq", "y"], ["m"]),
             _quant("out", "m", "s", "z", "b8", 1)]
    model = _wrap(nodes, {"one": 1.0, "z": 0.0, "b8": 8.0, "y": [y], "s": s}, [1], [1])
    out = execute_exact(model.transform(InferShapes()), {"x": np.ones(1, np.float32)})["out"]
    assert out[0] == 3 * np.float64(s)
