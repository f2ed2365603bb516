"""Remove MultiThreshold nodes that map every possible input value to itself."""

from __future__ import annotations

import numpy as np
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp
from qonnx.transformation.base import Transformation

MAX_CHECKED_VALUES = 1 << 16  # wider inputs are never identity thresholds in our graphs; skip them


def is_identity(model: ModelWrapper, node) -> bool:
    """True when the MultiThreshold ``node`` outputs exactly its input for every value of the input's datatype.

    Checked by evaluating the thresholds on every representable input value (at most 65,536 of them), so it
    holds for any threshold layout, scale and bias, not only the usual ``k - 0.5`` steps."""
    in_dt: DataType = model.get_tensor_datatype(node.input[0])
    if not in_dt.is_integer() or in_dt.max() - in_dt.min() + 1 > MAX_CHECKED_VALUES:
        return False
    op = getCustomOp(node)
    thresholds = model.get_initializer(node.input[1])
    if thresholds is None:
        return False
    values = np.arange(in_dt.min(), in_dt.max() + 1, dtype=np.float64)
    # output = out_scale * #(thresholds <= x) + out_bias, per channel
    counts = (values[None, :, None] >= thresholds.astype(np.float64)[:, None, :]).sum(-1)
    out = op.get_nodeattr("out_scale") * counts + op.get_nodeattr("out_bias")
    out_dt = DataType[op.get_nodeattr("out_dtype")]
    return bool(np.array_equal(out, np.broadcast_to(values, out.shape))) and out_dt.allowed(in_dt.min()) \
        and out_dt.allowed(in_dt.max())


class RemoveIdentityThresholds(Transformation):
    """Drop identity MultiThresholds (e.g. an 8-bit input quantizer that passes pixels unchanged)."""

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        graph = model.graph
        outputs = {o.name for o in graph.output}
        for node in list(graph.node):
            if node.op_type != "MultiThreshold" or node.output[0] in outputs or not is_identity(model, node):
                continue
            source, target = node.input[0], node.output[0]
            for consumer in model.find_consumers(target) or []:
                for i, name in enumerate(consumer.input):
                    if name == target:
                        consumer.input[i] = source
            graph.node.remove(node)
            return model, True  # one at a time: the graph changed under the loop
        return model, False
