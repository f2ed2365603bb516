"""Exact execution of a QONNX/FINN graph: the reference the golden model is held to, free of float32 accidents.

A quantized net's integer datapath is a function of its integers alone; a float32 evaluation of the same graph is
not: its convolutions and BatchNorms round each sum in an order of their own, so an activation that sits within
float32 noise of a rounding tie (``x / s = k + 1/2``) lands on either level, depending on who evaluates it (seen on
MobileNet-v1: Brevitas' torch and QONNX's onnxruntime disagree on 1 of 100,352 activations of one layer, and most
224x224 frames have such an activation somewhere). No integer hardware can match such a reference "exactly".

This executor evaluates the graph in float64 instead (29 more bits: a tie within float64 noise is ~1e9 times rarer)
with the semantics the integer datapath implements:

- the quantizers Brevitas computes elementwise on float32 values, with no sum in front (weight and bias quantizers,
  whose inputs are constants, and the input quantizer with its preprocessing, which the host replays in float32)
  are evaluated in float32 exactly as Brevitas and QONNX compute them; their integers are then dequantized exactly
  (``(q - z) * s`` in float64, no float32 rounding of the product);
- everything downstream of them (convolutions, BatchNorm, activation quantizers, pools, FINN's hardware layers) is
  evaluated in float64.

Ops are run by their own implementations, not ours: QONNX/FINN custom ops (Quant, Trunc, MultiThreshold, Im2Col,
MVAU, ...) by QONNX's ``execute_custom_node``, standard ONNX ops by ONNX's reference implementation
(``onnx.reference``), since onnxruntime has no float64 Conv or AveragePool.
"""

from __future__ import annotations

import numpy as np

QUANT_OPS = ("Quant", "BipolarQuant")


def _standard(node, opset: int, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    """One standard ONNX node, run by ONNX's reference implementation."""
    import onnx
    from onnx import helper
    from onnx.reference import ReferenceEvaluator

    names = [name for name in node.input if name]
    graph = helper.make_graph(
        [node], "node", [helper.make_tensor_value_info(n, onnx.TensorProto.UNDEFINED, None) for n in names],
        [helper.make_tensor_value_info(n, onnx.TensorProto.UNDEFINED, None) for n in node.output])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    feeds = dict(zip(names, [x for name, x in zip(node.input, inputs) if name]))
    return list(ReferenceEvaluator(model).run(None, feeds))


def _exact_dequant(node, args: list, y: np.ndarray) -> np.ndarray:
    """QONNX's quantizer output, which it casts to float32 (``fl32((q - z) * s)``) -> ``(q - z) * s`` in float64:
    the integers recovered (exactly: the float32 product is within half a level of them) and multiplied out
    without rounding."""
    scale = np.asarray(args[1], np.float64)
    zero = np.asarray(args[2], np.float64) if node.op_type == "Quant" else 0.0
    levels = np.round(np.asarray(y, np.float64) / scale + zero)
    return (levels - zero) * scale


def _narrowed(node, args: list) -> list:
    """Custom-op inputs as float32 when that loses nothing: some QONNX/FINN ops (MaxPoolNHWC, QuantAvgPool2d, ...)
    run onnxruntime inside, in float32 only; values that float32 holds exactly give the same result there. Never
    for a quantizer: its x / s would then round in float32 even where its inputs are exact."""
    if node.op_type in QUANT_OPS or node.op_type == "Trunc":
        return args
    floats = [a for a in args if isinstance(a, np.ndarray) and a.dtype == np.float64]
    if not floats or not all(np.array_equal(a.astype(np.float32), a) for a in floats):
        return args
    return [a.astype(np.float32) if isinstance(a, np.ndarray) and a.dtype == np.float64 else a for a in args]


def _opset(model) -> int:
    return next((o.version for o in model.model.opset_import if o.domain in ("", "ai.onnx")), 11)


def execute_exact(model, inputs: dict[str, np.ndarray], return_full_exec_context: bool = False) -> dict:
    """Execute ``model`` (a qonnx ModelWrapper) on ``inputs`` as described in the module docstring.

    Returns the graph outputs (float64), or every tensor with ``return_full_exec_context``. The graph input is
    taken as float32 when the graph still has quantizers (it is then the user's float or image input, quantized
    as Brevitas does), else as float64 (a later step's graph, whose input is the host's integers)."""
    import qonnx.core.execute_custom_node as custom
    from qonnx.custom_op.registry import is_custom_op

    graph = model.graph
    has_quant = any(n.op_type in QUANT_OPS for n in graph.node)
    ctx = model.make_empty_exec_context()  # initializers, and output buffers some custom ops read shapes from
    exact: set[str] = set()  # tensors evaluated in float64 exact semantics
    for inp in graph.input:
        if inp.name in inputs:
            x = np.asarray(inputs[inp.name])
            ctx[inp.name] = x.astype(np.float32 if has_quant else np.float64)
            if not has_quant:
                exact.add(inp.name)
    opset = _opset(model)
    for node in graph.node:
        in_exact = any(name in exact for name in node.input)
        args = [ctx.get(name) if name else None for name in node.input]
        if in_exact:  # downstream of the exact region: float64 throughout
            args = [a.astype(np.float64) if isinstance(a, np.ndarray) and a.dtype.kind == "f" else a for a in args]
        if is_custom_op(node.domain, node.op_type):
            local = {name: a for name, a in zip(node.input, _narrowed(node, args)) if name}
            local.update({out: ctx.get(out) for out in node.output})
            custom.execute_custom_node(node, local, graph, onnx_opset_version=opset)
            outs = [local[out] for out in node.output]
        else:
            outs = _standard(node, opset, args)
        if node.op_type in QUANT_OPS:
            # A float32 quantizer (weights, input) as Brevitas computes it, or a float64 one: dequantized exactly.
            outs = [_exact_dequant(node, args, outs[0])]
            in_exact = True
        for name, value in zip(node.output, outs):
            value = np.asarray(value)
            ctx[name] = value.astype(np.float64) if in_exact and value.dtype == np.float32 else value
            if in_exact:
                exact.add(name)
    if return_full_exec_context:
        return ctx
    return {out.name: ctx[out.name] for out in graph.output}
