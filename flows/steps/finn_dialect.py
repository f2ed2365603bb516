"""Step 1a: QONNX cleanup and conversion to FINN's dialect, then tidy-up.

Before converting, the graph is checked: a float model (no quantizers) and ops outside what the flow can map are
refused with the node's name, its op type and what to change in the model.
"""

from __future__ import annotations

from flows.config import FlowConfig, FlowError
from quant_models.export import FINN_MAPPABLE_OPS

QUANT_OPS = frozenset({"Quant", "BipolarQuant", "BinaryQuant", "Trunc", "MultiThreshold"})
# What to do about ops people commonly put in detectors; anything else gets the generic advice.
_HINTS = {
    "Sigmoid": "apply the sigmoid on the host (qdet's decode does) and end the model at the head conv",
    "LeakyRelu": "use a quantized ReLU (QuantReLU); FINN maps activations to thresholds",
    "Clip": "use a quantized ReLU (QuantReLU) with a learned scale instead of a clip",
    "AveragePool": "use max pooling (FINN streams MaxPool; average pooling changes the integer scale)",
    "GlobalAveragePool": "use max pooling or a strided conv",
    "Resize": "upsampling is not supported by qdet's flow yet; use a single-scale head",
    "Upsample": "upsampling is not supported by qdet's flow yet; use a single-scale head",
    "Concat": "concatenation (multi-scale heads, routes) is not supported by qdet's flow yet",
    "Gemm": "use a 1x1 conv head instead of a fully connected layer",
    "Softmax": "apply the softmax on the host",
}


def check_mappable(model) -> None:
    """Refuse float models and unmappable ops, naming the first offending node."""
    ops = [n.op_type for n in model.graph.node]
    if not QUANT_OPS.intersection(ops):
        raise FlowError("the model is a float model (no Quant nodes): FINN needs a quantized graph. Train with a bit "
                        "spec (qdet train --bits w4a4) and export that checkpoint with qdet export")
    for node in model.graph.node:
        if node.op_type not in FINN_MAPPABLE_OPS | QUANT_OPS:
            hint = _HINTS.get(node.op_type, "remove it from the model or move it into the host-side decode")
            raise FlowError(f"node {node.name!r} (op {node.op_type}) cannot be mapped to hardware: {hint}. "
                            f"Supported ops: {', '.join(sorted(FINN_MAPPABLE_OPS))}")


def tidy_up(model):
    """FINN's tidy-up: shapes, constant folding, unique readable names, datatypes."""
    from qonnx.transformation.fold_constants import FoldConstants
    from qonnx.transformation.general import (GiveReadableTensorNames, GiveUniqueNodeNames,
                                              RemoveStaticGraphInputs)
    from qonnx.transformation.infer_datatypes import InferDataTypes
    from qonnx.transformation.infer_shapes import InferShapes

    for transform in (InferShapes(), FoldConstants(), GiveUniqueNodeNames(), GiveReadableTensorNames(),
                      InferDataTypes(), RemoveStaticGraphInputs()):
        model = model.transform(transform)
    return model


def step_qonnx_to_finn(model, cfg: FlowConfig):
    """Check the graph, clean it up (QONNX), convert Quant nodes to FINN's MultiThreshold dialect, tidy up."""
    from finn.transformation.qonnx.convert_qonnx_to_finn import ConvertQONNXtoFINN
    from qonnx.util.cleanup import cleanup_model

    check_mappable(model)
    model = cleanup_model(model)
    model = model.transform(ConvertQONNXtoFINN())
    return tidy_up(model)
