"""Reading the host/FPGA boundary off a graph: which nodes run on the host, described as :class:`HostOp` s.

The spec itself (:class:`IOSpec`, :class:`Port`, :class:`HostOp` and their numpy replay) lives in
:mod:`boards.runtime.io_spec`, because the on-board driver reads it without qdet; this module holds what needs the
graph (QONNX).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from boards.runtime.io_spec import HostOp

HOST_OPS = frozenset({"Transpose", "Mul", "Add", "Reshape", "Flatten", "TopK", "ArgMax"})
# Linear preprocessing a float input may go through before its quantizer (replayed on the host, in order).
PREPROCESSING_OPS = ("Mul", "Div", "Add", "Sub")


def _const_operand(model, node) -> tuple[np.ndarray, bool]:
    """(constant, reverse) of a binary node with one constant input; ValueError otherwise."""
    values = [model.get_initializer(name) for name in node.input]
    constants = [i for i, v in enumerate(values) if v is not None]
    if len(node.input) != 2 or len(constants) != 1:
        raise ValueError(f"host op {node.name} ({node.op_type}) needs exactly one constant operand")
    return np.asarray(values[constants[0]], dtype=np.float32), constants[0] == 0


def host_op_from_node(model, node) -> HostOp:
    """Describe a Transpose/Reshape/Flatten/Mul/Add/Sub/Div/TopK/ArgMax node as a HostOp."""
    from qonnx.util.basic import get_by_name

    def attr(name: str, default: Any) -> Any:
        a = get_by_name(node.attribute, name)
        return default if a is None else (a.i if a.type == a.INT else list(a.ints))

    if node.op_type == "Transpose":
        return HostOp("Transpose", perm=tuple(int(p) for p in attr("perm", [])))
    if node.op_type in ("Reshape", "Flatten"):
        return HostOp(node.op_type, shape=tuple(int(s) for s in model.get_tensor_shape(node.output[0])))
    if node.op_type == "TopK":
        k = model.get_initializer(node.input[1])
        if k is None:
            raise ValueError(f"host op {node.name} (TopK) needs a constant k")
        used = [i for i, name in enumerate(node.output) if name and (model.find_consumers(name) or
                                                                    name in [o.name for o in model.graph.output])]
        return HostOp("TopK", k=int(np.asarray(k).reshape(-1)[0]), axis=int(attr("axis", -1)),
                      largest=bool(attr("largest", 1)), output=used[0] if used else 1)
    if node.op_type == "ArgMax":
        return HostOp("ArgMax", axis=int(attr("axis", 0)), keepdims=bool(attr("keepdims", 1)))
    value, reverse = _const_operand(model, node)
    return HostOp(node.op_type, value=value.reshape(-1).tolist(), shape=tuple(value.shape), reverse=reverse)
