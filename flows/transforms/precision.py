"""Streamline in float64: the container precision of a graph's float tensors, and the way back to float32.

FINN folds BatchNorm, biases and scales into thresholds in the graph's own float type. In float32 each fold rounds
(~1e-7 relative), and a threshold that lands within that noise of an integer falls on a side of it that the model
does not decide (measured on MobileNet-v1: 87 thresholds within float32 noise of an integer, such as 193.99997, and
2 of its 164,160 thresholds rounding to another integer than the float64 fold gives). Folding in float64
makes the integer each threshold rounds to the one exact arithmetic gives (bar a tie within 1e-16), which is what
the exact reference (:mod:`quant_models.exact_exec`) computes. The float32 weights and scales convert to float64
exactly.

After streamlining the thresholds that compare integers are rounded up to integers in float64 (FINN's
``RoundAndClipThresholds``: ``acc >= t`` equals ``acc >= ceil(t)`` for integer ``acc``) and the graph goes back to
float32 containers, which hold those integers exactly (below 2^24, checked) and which the rest of FINN expects.
"""

from __future__ import annotations

import numpy as np
from onnx import TensorProto
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.base import Transformation

from flows.config import FlowError

THRESHOLD_INPUT = {"MultiThreshold": 1, "Thresholding": 1, "MVAU": 2, "VVAU": 2}


def _retype(model: ModelWrapper, src: int, dst: int, np_dst) -> None:
    for value in (*model.graph.input, *model.graph.output, *model.graph.value_info):
        if value.type.tensor_type.elem_type == src:
            value.type.tensor_type.elem_type = dst
    for init in list(model.graph.initializer):
        if init.data_type == src:
            model.set_initializer(init.name, np.asarray(model.get_initializer(init.name)).astype(np_dst))


class ToFloat64(Transformation):
    """Every float32 tensor of the graph (initializers, inputs, outputs, value infos) becomes float64."""

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        _retype(model, TensorProto.FLOAT, TensorProto.DOUBLE, np.float64)
        return model, False


class ToFloat32(Transformation):
    """Back to float32 containers, after checking that no integer-input threshold would lose its value."""

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        for node in model.graph.node:
            index = THRESHOLD_INPUT.get(node.op_type.split("_")[0])
            if index is None or len(node.input) <= index:
                continue
            t = model.get_initializer(node.input[index])
            if t is None or not model.get_tensor_datatype(node.input[0]).is_integer():
                continue
            if np.any(t != np.round(t)) or np.any(np.abs(t) > 2.0 ** 24):
                raise FlowError(f"node {node.name!r} ({node.op_type}): its thresholds on an integer input are not "
                                "integers below 2^24 after rounding, so float32 cannot hold them exactly (a qdet bug: please report "
                                "it with the model)")
        _retype(model, TensorProto.DOUBLE, TensorProto.FLOAT, np.float32)
        return model, False
