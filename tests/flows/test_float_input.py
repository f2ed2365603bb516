"""The host-side input quantizer of a float-input model: Brevitas' own rounding, ties included, and the cut."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from flows.errors import FlowError
from boards.runtime.io_spec import HostOp, round_as
from flows.transforms.host_input_quant import HostInputQuant, host_input_ops


class _Preprocessed(torch.nn.Module):
    """x -> preprocessing -> QuantIdentity, the quantizer returning its QuantTensor (its integers are the truth)."""

    def __init__(self, preprocess: str, pow2: bool, bits: int, signed: bool):
        super().__init__()
        from brevitas.core.restrict_val import RestrictValueType
        from brevitas.nn import QuantIdentity
        from brevitas.quant import Int8ActPerTensorFloat, Uint8ActPerTensorFloat

        base = Int8ActPerTensorFloat if signed else Uint8ActPerTensorFloat
        attrs = {"bit_width": bits}
        if pow2:
            attrs["restrict_scaling_type"] = RestrictValueType.POWER_OF_TWO
        self.quant = QuantIdentity(act_quant=type("InQuant", (base,), attrs), return_quant_tensor=True)
        self.preprocess = preprocess

    def pre(self, x: torch.Tensor) -> torch.Tensor:
        if self.preprocess == "affine":
            return 2.0 * x - 1.0
        if self.preprocess == "meanstd":
            return (x - 0.45) / 0.225
        return x

    def forward(self, x: torch.Tensor):
        return self.quant(self.pre(x))


def _export(model: _Preprocessed, path, width: int = 64) -> None:
    """Export with the quantizer returning plain tensors (torch.export cannot trace a QuantTensor output)."""
    from brevitas.export import export_qonnx

    model.eval().quant.return_quant_tensor = False
    try:
        export_qonnx(model, torch.rand(1, 1, 1, width), str(path))
    finally:
        model.quant.return_quant_tensor = True


def _host_ops(model: _Preprocessed, tmp_path) -> tuple[HostOp, ...]:
    """Export (QONNX), cut the input quantizer off with qdet's transformation, return the host ops it recorded."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.cleanup import cleanup_model

    path = tmp_path / "q.onnx"
    _export(model, path)
    graph = cleanup_model(ModelWrapper(str(path))).transform(HostInputQuant())
    assert graph.get_tensor_datatype(graph.graph.input[0].name).is_integer()  # the FPGA side starts from integers
    return host_input_ops(graph)


def _tie_inputs(model: _Preprocessed, scale: float, lo: int, hi: int) -> torch.Tensor:
    """Inputs whose preprocessed value is (k + 1/2) * scale for every level k (and a few past the range), each with
    its float32 neighbours: exact ties where the arithmetic allows, the nearest misses around them otherwise."""
    levels = np.arange(lo - 3, hi + 3, dtype=np.float64)
    target = (levels + 0.5) * scale
    if model.preprocess == "affine":
        x = (target + 1.0) / 2.0
    elif model.preprocess == "meanstd":
        x = target * 0.225 + 0.45
    else:
        x = target
    x = x.astype(np.float32)
    near = [x]
    for direction in (np.inf, -np.inf):
        step = x
        for _ in range(2):
            step = np.nextafter(step, np.float32(direction))
            near.append(step)
    return torch.from_numpy(np.concatenate(near)).reshape(1, 1, 1, -1)


@pytest.mark.parametrize("preprocess,pow2,bits,signed", [
    ("none", True, 8, True), ("none", False, 8, True), ("affine", True, 8, True), ("meanstd", False, 8, True),
    ("none", True, 4, False), ("affine", False, 6, True)])
def test_host_quantization_equals_brevitas_on_rounding_ties(preprocess, pow2, bits, signed, tmp_path):
    torch.manual_seed(3)
    model = _Preprocessed(preprocess, pow2, bits, signed)
    model.train()
    with torch.no_grad():
        for _ in range(3):  # calibrate the scale on a spread of inputs
            model(torch.rand(4, 1, 1, 64) * 1.5 - 0.2)
    model.eval()
    ops = _host_ops(model, tmp_path)
    assert [op.op for op in ops][-1] == "Quant"
    quant = ops[-1]
    scale = float(quant.operand().reshape(-1)[0])
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    x = _tie_inputs(model, scale, lo, hi)
    with torch.no_grad():
        brevitas = model(x).int().numpy().astype(np.int64)
    host = x.numpy()
    for op in ops:
        host = op.apply(host)
    np.testing.assert_array_equal(host.astype(np.int64), brevitas)
    # The inputs really sit on ties where half-to-even and FINN's half-up disagree (else the test proves nothing).
    pre = model.pre(x).numpy() / np.float32(scale)
    exact_ties = (pre - np.floor(pre)) == 0.5
    disagree = exact_ties & (round_as("ROUND", pre) != round_as("HALF_UP", pre))
    if pow2:
        assert disagree.sum() >= (hi - lo) // 2
    assert host.min() == lo and host.max() == hi  # the clamp at both ends is exercised


def test_a_float_zero_point_is_refused_with_the_node(tmp_path):
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.cleanup import cleanup_model

    model = _Preprocessed("none", True, 8, True).eval()
    path = tmp_path / "q.onnx"
    _export(model, path, 8)
    graph = cleanup_model(ModelWrapper(str(path)))
    quant = next(n for n in graph.graph.node if n.op_type == "Quant")
    graph.set_initializer(quant.input[2], np.asarray(0.25, np.float32))
    with pytest.raises(FlowError, match=f"{quant.name}.*float zero point 0.25.*integer"):
        graph.transform(HostInputQuant())


def test_an_integer_zero_point_shifts_the_stream(tmp_path):
    """A zero point moves the integer range; the graph gets Add(-zp) then Mul(scale) and QONNX agrees."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.util.cleanup import cleanup_model

    model = _Preprocessed("none", True, 8, False).eval()
    path = tmp_path / "q.onnx"
    _export(model, path, 8)
    graph = cleanup_model(ModelWrapper(str(path)))
    quant = next(n for n in graph.graph.node if n.op_type == "Quant")
    graph.set_initializer(quant.input[2], np.asarray(3.0, np.float32))
    x = np.linspace(-0.2, 1.2, 8, dtype=np.float32).reshape(1, 1, 1, 8)
    want = execute_onnx(graph, {graph.graph.input[0].name: x})[graph.graph.output[0].name]
    from qonnx.transformation.infer_shapes import InferShapes

    cut = graph.transform(HostInputQuant()).transform(InferShapes())
    q = x
    for op in host_input_ops(cut):
        q = op.apply(q)
    assert q.min() >= 0 and q.max() <= 255 and ops_names(cut) == ["Add", "Mul"]
    got = execute_onnx(cut, {cut.graph.input[0].name: q})[cut.graph.output[0].name]
    np.testing.assert_array_equal(got, want)


def ops_names(model) -> list[str]:
    return [n.op_type for n in model.graph.node]


def test_a_float_input_straight_into_a_conv_names_the_fix(tmp_path):
    from brevitas.export import export_qonnx
    from brevitas.nn import QuantConv2d
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.cleanup import cleanup_model

    path = tmp_path / "noquant.onnx"
    export_qonnx(QuantConv2d(3, 4, 3, weight_bit_width=4).eval(), torch.rand(1, 3, 8, 8), str(path))
    with pytest.raises(FlowError, match="before any quantizer.*QuantIdentity"):
        cleanup_model(ModelWrapper(str(path))).transform(HostInputQuant())
