"""FINN golden models of one kernel: a one-node FINN graph, run by qonnx's python execution (``execute_onnx``).

Every kernel testbench compares the RTL with FINN's own execution of the matching custom op; this builds that
graph once for all of them. qonnx and FINN are imported when called, so importing this module needs neither.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

FPGADATAFLOW = "finn.custom_op.fpgadataflow"


def one_node_model(op_type: str, in_shape: Sequence[int], out_shape: Sequence[int], in_dtype: str,
                   out_dtype: str | None = None, initializers: Sequence[tuple[str, np.ndarray, str | None]] = (),
                   domain: str = FPGADATAFLOW, **attrs: Any) -> Any:
    """A qonnx ``ModelWrapper`` holding one FINN ``op_type`` node: graph input ``inp`` (``in_dtype``), output
    ``outp`` (``out_dtype`` when given), then ``initializers`` as (name, value, FINN datatype or None) in the
    node's input order. ``attrs`` are the node's attributes."""
    from onnx import TensorProto, helper
    from qonnx.core.datatype import DataType
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.basic import qonnx_make_model

    node = helper.make_node(op_type, ["inp"] + [name for name, _, _ in initializers], ["outp"], domain=domain,
                            backend="fpgadataflow", **attrs)
    graph = helper.make_graph([node], op_type.lower(),
                              [helper.make_tensor_value_info("inp", TensorProto.FLOAT, list(in_shape))],
                              [helper.make_tensor_value_info("outp", TensorProto.FLOAT, list(out_shape))])
    model = ModelWrapper(qonnx_make_model(graph, producer_name="qdet-tb"))
    model.set_tensor_datatype("inp", DataType[in_dtype])
    if out_dtype is not None:
        model.set_tensor_datatype("outp", DataType[out_dtype])
    for name, value, dtype in initializers:
        model.set_initializer(name, value.astype(np.float32))
        if dtype is not None:
            model.set_tensor_datatype(name, DataType[dtype])
    return model


def execute_int(model: Any, x: np.ndarray) -> np.ndarray:
    """``outp`` of ``model`` for input ``x`` as int64; an output that is not integer-valued is an error."""
    from qonnx.core.onnx_exec import execute_onnx

    out = execute_onnx(model, {"inp": x.astype(np.float32)})["outp"]
    result = np.rint(out).astype(np.int64)
    if not np.array_equal(result, out):
        op_type = model.graph.node[0].op_type
        raise AssertionError(f"FINN's {op_type} returned non-integer values")
    return result
