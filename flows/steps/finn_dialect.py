"""Step 1a: QONNX cleanup and conversion to FINN's dialect, then tidy-up.

Before converting, the graph is checked: a float model (no quantizers), ops outside what the flow can map, convs
FINN cannot stream (grouped convs, depthwise convs with a channel multiplier) and layers with float weights are
refused with the node's name, its op type and what to change in the model. A float input's quantizer (and the
linear preprocessing in front of it) then moves to the host (:mod:`flows.transforms.host_input_quant`).
"""

from __future__ import annotations

from flows.config import FlowConfig, FlowError

QUANT_OPS = frozenset({"Quant", "BipolarQuant", "BinaryQuant", "Trunc", "MultiThreshold"})
# Ops the flow maps (to hardware layers, into thresholds, or to the host at either end).
MAPPABLE_OPS = frozenset({"Conv", "BatchNormalization", "Relu", "MaxPool", "AveragePool", "GlobalAveragePool",
                          "Gemm", "MatMul", "Mul", "Div", "Add", "Sub", "Reshape", "Flatten", "Transpose", "TopK",
                          "ArgMax", "Identity", "Concat", "Resize", "Upsample"})
WEIGHTED_OPS = frozenset({"Conv", "Gemm", "MatMul"})
# What to do about ops people commonly put in detectors; anything else gets the generic advice.
_HINTS = {
    "Sigmoid": "apply the sigmoid on the host (qdet's decode does) and end the model at the head conv",
    "LeakyRelu": "use a quantized ReLU (QuantReLU); FINN maps activations to thresholds",
    "Clip": "use a quantized ReLU (QuantReLU) with a learned scale instead of a clip",
    "Softmax": "apply the softmax on the host",
}


def _conv_groups_problem(model, node) -> str | None:
    """Why a grouped Conv cannot be streamed, or None (standard convs, depthwise with multiplier 1)."""
    from qonnx.util.basic import get_by_name

    group = get_by_name(node.attribute, "group")
    groups = group.i if group is not None else 1
    if groups == 1:
        return None
    w_shape = model.get_tensor_shape(node.input[1])
    in_shape = model.get_tensor_shape(node.input[0])
    out_ch, in_ch = w_shape[0], in_shape[1]
    if groups == in_ch and out_ch == in_ch:
        return None
    if groups == in_ch:
        return (f"depthwise conv with channel multiplier {out_ch // in_ch} is not supported (FINN's depthwise layer "
                f"has one filter per channel): use out_channels == in_channels == groups ({in_ch}) and change the "
                "channel count in the following 1x1 conv")
    return (f"grouped conv with {groups} groups ({in_ch} input channels) is not supported: FINN streams standard "
            "(groups=1) and depthwise (groups == channels) convs; split it into those")


def _is_quantized_weight(model, tensor: str) -> bool:
    """True when ``tensor`` (a weight input) comes out of a quantizer (or an integer-valued constant)."""
    import numpy as np

    producer = model.find_producer(tensor)
    if producer is not None:
        return producer.op_type in QUANT_OPS
    value = model.get_initializer(tensor)
    return value is not None and bool(np.array_equal(value, np.round(value)))


def check_mappable(model) -> None:
    """Refuse float models, unmappable ops, unstreamable convs and float weights, naming the first offending node."""
    ops = [n.op_type for n in model.graph.node]
    if not QUANT_OPS.intersection(ops):
        raise FlowError("the model is a float model (no Quant nodes): FINN needs a quantized graph. Train with a bit "
                        "spec (qdet train --bits w4a4) and export that checkpoint with qdet export")
    for node in model.graph.node:
        if node.op_type not in MAPPABLE_OPS | QUANT_OPS:
            hint = _HINTS.get(node.op_type, "remove it from the model or move it into the host-side decode")
            raise FlowError(f"node {node.name!r} (op {node.op_type}) cannot be mapped to hardware: {hint}. "
                            f"Supported ops: {', '.join(sorted(MAPPABLE_OPS))}")
        if node.op_type == "Conv":
            problem = _conv_groups_problem(model, node)
            if problem:
                raise FlowError(f"node {node.name!r} (op Conv): {problem}")
        if node.op_type in WEIGHTED_OPS and len(node.input) > 1 and not _is_quantized_weight(model, node.input[1]):
            raise FlowError(f"node {node.name!r} (op {node.op_type}) has float weights (no weight quantizer): every "
                            "conv and fully connected layer, the last one too, needs quantized weights (Brevitas "
                            "QuantConv2d / QuantLinear with a weight bit width)")


def check_graph(model) -> None:
    """All checks of :func:`check_mappable`, then the joins' and resizes' (flows.transforms.joins)."""
    from flows.transforms.joins import check_join_scales, check_resize

    check_mappable(model)
    check_resize(model)
    check_join_scales(model)


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
    """Check the graph, clean it up (QONNX), move a float input's quantizer to the host, convert Quant nodes to
    FINN's MultiThreshold dialect with exact thresholds, in float64 containers for streamlining, tidy up."""
    from finn.transformation.qonnx.convert_qonnx_to_finn import ConvertQONNXtoFINN
    from qonnx.util.cleanup import cleanup_model

    from flows.transforms.exact_thresholds import ExactQuantThresholds, collect_act_quants
    from flows.transforms.host_input_quant import HostInputQuant
    from flows.transforms.joins import SplitConcat
    from flows.transforms.precision import ToFloat64

    from qonnx.transformation.infer_shapes import InferShapes

    check_graph(model.transform(InferShapes()))  # before cleanup renames the nodes: errors name the user's
    # Two-input concats (associative) before cleanup: QONNX's tensor renaming misses the second use of a tensor a
    # node takes twice (torch.cat([up, skip, skip])), and qdet's concat kernel takes two streams.
    model = cleanup_model(model.transform(SplitConcat()))
    model = cleanup_model(model.transform(HostInputQuant()))
    quants = collect_act_quants(model)
    # Weight quantizers fold to integers here, in float32 as Brevitas computes them; from here on, float64.
    model = model.transform(ConvertQONNXtoFINN()).transform(ToFloat64())
    model = model.transform(ExactQuantThresholds(quants))  # before tidy-up renames the tensors they are keyed by
    return tidy_up(model)
