"""Graph joins and upsampling: the checks a residual ``Add``, a ``Concat`` and a ``Resize`` must pass before FINN
streamlines them, and the split of a many-input ``Concat`` into two-input ones.

FINN streams an ``Add`` or ``Concat`` of two quantized tensors as integers only when both carry the same scale (and
zero point): streamlining then moves the common ``Mul`` past the join into the next thresholds, exactly. With
different scales the join stays a float op in the middle of the network, which no integer datapath computes
exactly, so the flow refuses it here, naming the node and the Brevitas module, with the fix: one activation
quantizer shared by the branches.
"""

from __future__ import annotations

import numpy as np
from onnx import helper
from qonnx.transformation.base import Transformation
from qonnx.transformation.infer_datatypes import InferDataTypes
from qonnx.transformation.infer_shapes import InferShapes
from qonnx.util.basic import get_by_name

from flows.config import FlowError

# Ops a quantized tensor passes through with its scale unchanged (a join input is traced back through them).
SCALE_INVARIANT = frozenset({"Resize", "Upsample", "MaxPool", "Relu", "Identity", "Transpose", "Reshape", "Flatten"})
QUANTIZERS = frozenset({"Quant", "BipolarQuant", "BinaryQuant"})

JOIN_FIX = ("share one activation quantizer across the branches in Brevitas: pass the same QuantIdentity / "
            "QuantReLU instance (or act_quant) to the layers that end each branch, so both inputs carry one scale "
            "(see the README, 'Residual blocks and feature pyramids')")


def module_of(node) -> str:
    """The innermost PyTorch module an exported node came from (its ``name_scopes`` metadata, without Brevitas'
    quantizer internals), or ''."""
    import ast

    for p in node.metadata_props:
        if p.key == "pkg.torch.onnx.name_scopes":
            try:
                scopes = [s for s in ast.literal_eval(p.value) if s][:-1]  # the last one is the op itself
            except (ValueError, SyntaxError):
                return ""
            inner = [s for s in scopes if not any(part in s for part in ("act_quant", "weight_quant",
                                                                           "export_handler", "tensor_quant"))]
            return inner[-1] if inner else ""
    return ""


def describe(node) -> str:
    """``'name' (op X, module m)`` for error messages."""
    module = module_of(node)
    return f"{node.name!r} (op {node.op_type}{', module ' + module if module else ''})"


def _constant(model, tensor: str) -> np.ndarray | None:
    value = model.get_initializer(tensor)
    if value is not None:
        return np.asarray(value)
    producer = model.find_producer(tensor)
    if producer is not None and producer.op_type == "Constant":
        from onnx import numpy_helper

        return numpy_helper.to_array(producer.attribute[0].t)
    return None


def quantizer_of(model, tensor: str):
    """The quantizer a tensor comes out of, traced back through scale-invariant ops; None for a float tensor."""
    node = model.find_producer(tensor)
    while node is not None and node.op_type in SCALE_INVARIANT:
        node = model.find_producer(node.input[0])
    return node if node is not None and node.op_type in QUANTIZERS else None


def _scale_and_zero(model, quant) -> tuple[np.ndarray | None, np.ndarray | None]:
    scale = _constant(model, quant.input[1]) if len(quant.input) > 1 else np.float32(1.0)
    zero = _constant(model, quant.input[2]) if quant.op_type == "Quant" and len(quant.input) > 2 else np.float32(0)
    return scale, zero


def check_join_scales(model) -> None:
    """Refuse an ``Add`` of two tensors or a ``Concat`` whose inputs are not quantized with one scale and zero
    point, naming the node, both scales and the Brevitas fix."""
    for node in model.graph.node:
        if node.op_type not in ("Add", "Concat"):
            continue
        dynamic = [t for t in node.input if t and _constant(model, t) is None]
        if node.op_type == "Add" and len(dynamic) < 2:
            continue  # a bias or preprocessing add: streamlining folds it into thresholds
        seen = []
        for tensor in dynamic:
            quant = quantizer_of(model, tensor)
            if quant is None:
                raise FlowError(f"node {describe(node)} joins tensor {tensor!r}, which is not quantized: every input "
                                f"of a residual add or concat must come out of a quantized activation; "
                                f"{JOIN_FIX}")
            seen.append((tensor, quant, *_scale_and_zero(model, quant)))
        _, q0, s0, z0 = seen[0]
        for tensor, quant, scale, zero in seen[1:]:
            same = (s0 is not None and scale is not None and np.array_equal(s0, scale)
                    and np.array_equal(z0, zero))
            if not same:
                def show(v):
                    return "non-constant" if v is None else np.array2string(np.asarray(v).reshape(-1)[:4],
                                                                           precision=8)

                raise FlowError(f"node {describe(node)} joins inputs with different quantization scales: "
                                f"{seen[0][0]!r} from {describe(q0)} has scale {show(s0)}, {tensor!r} from "
                                f"{describe(quant)} has scale {show(scale)} (zero points {show(z0)} / {show(zero)}). "
                                f"FINN can only stream the {node.op_type} as integers when they are equal; {JOIN_FIX}")


def check_resize(model) -> None:
    """Refuse a ``Resize`` / ``Upsample`` other than nearest-neighbour upsampling by integer factors of H and W."""
    for node in model.graph.node:
        if node.op_type not in ("Resize", "Upsample"):
            continue
        mode = get_by_name(node.attribute, "mode")
        mode = mode.s.decode() if mode is not None else "nearest"
        if mode != "nearest":
            raise FlowError(f"node {describe(node)} resizes in mode {mode!r}: only nearest-neighbour upsampling by "
                            "integer factors maps to hardware; use nn.Upsample(scale_factor=2, mode='nearest')")
        ishape, oshape = model.get_tensor_shape(node.input[0]), model.get_tensor_shape(node.output[0])
        if ishape is None or oshape is None or len(ishape) != 4 or len(oshape) != 4:
            raise FlowError(f"node {describe(node)}: the resize needs known 4-D (N, C, H, W) shapes")
        bad = [f"{o}/{i}" for i, o in zip(ishape, oshape) if i <= 0 or o % i]
        if bad or ishape[:2] != oshape[:2]:
            raise FlowError(f"node {describe(node)} resizes {list(ishape)} to {list(oshape)}: only upsampling H and "
                            f"W by integer factors maps to hardware (factors {', '.join(bad) or 'on N or C'} are "
                            "not); use nn.Upsample with an integer scale_factor on an input whose size it divides")


class SplitConcat(Transformation):
    """A ``Concat`` of more than two inputs -> a chain of two-input ``Concat`` nodes (channel concatenation is
    associative, so the element order stays the same); qdet's concat kernel takes two streams."""

    def apply(self, model):
        changed = False
        for node in list(model.graph.node):
            if node.op_type != "Concat" or len(node.input) <= 2:
                continue
            axis = get_by_name(node.attribute, "axis").i
            index = list(model.graph.node).index(node)
            left = node.input[0]
            for k, right in enumerate(node.input[1:-1], start=1):
                out = f"{node.output[0]}_part{k}"
                model.graph.node.insert(index, helper.make_node("Concat", [left, right], [out], axis=axis,
                                                                name=f"{node.name}_part{k}"))
                index += 1
                left = out
            last = node.input[-1]
            del node.input[:]
            node.input.extend([left, last])
            changed = True
        if changed:
            model = model.transform(InferShapes()).transform(InferDataTypes())
        return model, False


class ExactAddDatatype(Transformation):
    """Give each ElementwiseAdd the smallest output type that holds every sum of its inputs' ranges.

    FINN's accumulator minimisation is one bit short when a signed input is added to an unsigned one of the same
    width (INT4 + UINT4 -> INT5, yet 7 + 15 = 22); its python model adds in int64 and never shows it, but a
    hardware adder of that width would wrap. Run after MinimizeAccumulatorWidth."""

    def apply(self, model):
        from qonnx.core.datatype import DataType
        from qonnx.custom_op.registry import getCustomOp

        for node in model.graph.node:
            if not node.op_type.startswith("ElementwiseAdd"):
                continue
            op = getCustomOp(node)
            lhs, rhs = DataType[op.get_nodeattr("lhs_dtype")], DataType[op.get_nodeattr("rhs_dtype")]
            if not (lhs.is_integer() and rhs.is_integer()):
                continue
            lo, hi = int(lhs.min()) + int(rhs.min()), int(lhs.max()) + int(rhs.max())
            bits = 1
            if lo < 0:
                while not (-(1 << (bits - 1)) <= lo and hi < (1 << (bits - 1))):
                    bits += 1
                out = DataType[f"INT{bits}"]
            else:
                while hi >= (1 << bits):
                    bits += 1
                out = DataType[f"UINT{bits}"]
            op.set_nodeattr("out_dtype", out.name)
            model.set_tensor_datatype(node.output[0], out)
        return model, False
