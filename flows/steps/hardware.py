"""Step 2: conversion to FINN's generic hardware layers, and the host/FPGA split recorded in ``io_spec.json``."""

from __future__ import annotations

import json

from flows.config import FlowConfig, FlowError
from flows.io_spec import HOST_OPS, IOSpec, Port, host_op_from_node
from flows.transforms.host_input_quant import host_input_ops
from quant_models.export import MODEL_CONFIG_KEY

HW_DOMAIN = "finn.custom_op.fpgadataflow"


def is_hw(node) -> bool:
    """True for a FINN hardware layer (a node that will run on the FPGA)."""
    return node.domain.startswith(HW_DOMAIN)


def convert_to_hw(model):
    """FINN's conversions for the layers detectors and classifiers contain, then tidy-up of layouts and datatypes.

    Depthwise convs become VVAUs before the remaining MatMuls become MVAUs (FINN's order: a depthwise conv is a
    MatMul with a sparse weight matrix after lowering); pools run before the sliding windows so their Im2Cols get
    one; a global average pool becomes GlobalAccPool; the conv-to-FC flatten between two hardware layers goes."""
    import finn.transformation.streamline.absorb as absorb
    from finn.transformation.fpgadataflow.convert_to_hw.conv_inp_gen import InferConvInpGen
    from finn.transformation.fpgadataflow.convert_to_hw.global_acc_pool import InferGlobalAccPoolLayer
    from finn.transformation.fpgadataflow.convert_to_hw.pool import InferPool
    from finn.transformation.fpgadataflow.convert_to_hw.quantized_matrix_vector_activation import (
        InferQuantizedMatrixVectorActivation)
    from finn.transformation.fpgadataflow.convert_to_hw.thresholding import InferThresholdingLayer
    from finn.transformation.fpgadataflow.convert_to_hw.vector_vector_activation import (
        InferVectorVectorActivation)
    from finn.transformation.move_reshape import RemoveCNVtoFCFlatten
    from qonnx.transformation.general import GiveReadableTensorNames, GiveUniqueNodeNames, SortGraph
    from qonnx.transformation.infer_data_layouts import InferDataLayouts
    from qonnx.transformation.infer_datatypes import InferDataTypes
    from qonnx.transformation.infer_shapes import InferShapes

    # FINN names new tensors randomly; readable names (from node names) make the same build give the same bytes.
    # MatMul + MultiThreshold first (into one MVAU with its activation), then the thresholds left on their own.
    for transform in (InferVectorVectorActivation(), InferQuantizedMatrixVectorActivation(), InferThresholdingLayer(),
                      InferPool(), InferGlobalAccPoolLayer(), InferConvInpGen(), absorb.AbsorbConsecutiveTransposes(),
                      RemoveCNVtoFCFlatten(), SortGraph(), GiveUniqueNodeNames(),
                      GiveReadableTensorNames(), InferDataLayouts(), InferDataTypes(), InferShapes()):
        model = model.transform(transform)
    return model


def _unmapped_cause(model, node) -> str:
    """The likely reason FINN left ``node`` as a plain op, and what to change."""
    dt = model.get_tensor_datatype(node.input[0]).name if node.input else "?"
    if dt.startswith("FLOAT"):
        return (f"its input is {dt}, not an integer: a float scale or bias was left in front of it. Check that every "
                "conv / linear layer is followed by BatchNorm (optional) and a quantized activation (QuantReLU / "
                "QuantIdentity), that average pools are Brevitas TruncAvgPool2d, and that no float op (a non-constant "
                "Mul/Add, a float residual) sits inside the network")
    if node.op_type in ("MatMul", "Gemm"):
        return ("a MatMul/Gemm with integer input whose weights or output FINN cannot map (weights must be a "
                "quantized constant; its output must go through a quantized activation, or be the network's output)")
    if node.op_type in ("Transpose", "Reshape", "Flatten"):
        return ("a layout change inside the network (FINN streams NHWC; a flatten is removed only between two "
                "hardware layers): flatten right before the fully connected layers")
    return "qdet's flow has no hardware mapping for this op in this position"


def _promote(model, tensor: str, to_input: bool) -> None:
    """Make an inner tensor the graph's only input (or output), keeping its shape."""
    from onnx import TensorProto, helper

    shape = model.get_tensor_shape(tensor)
    info = helper.make_tensor_value_info(tensor, TensorProto.FLOAT, shape)
    for vi in list(model.graph.value_info):
        if vi.name == tensor:
            model.graph.value_info.remove(vi)
    ports = model.graph.input if to_input else model.graph.output
    for old in list(ports):
        ports.remove(old)
    ports.append(info)


def split_host_ops(model) -> tuple[object, IOSpec]:
    """Cut the non-hardware nodes at both ends off the graph; return the FPGA-side graph and its IOSpec.

    Only layout changes and the head's float scale/bias may stay outside the FPGA; any other node that did not
    become a hardware layer is an error naming that node."""
    nodes = list(model.graph.node)
    hw_index = [i for i, n in enumerate(nodes) if is_hw(n)]
    if not hw_index:
        raise FlowError("no node became a hardware layer; is the model a quantized conv net exported by qdet export?")
    first, last = hw_index[0], hw_index[-1]
    for node in nodes[first:last + 1]:
        if not is_hw(node):
            raise FlowError(f"node {node.name!r} (op {node.op_type}) sits between hardware layers but FINN could not "
                            f"map it to one: {_unmapped_cause(model, node)}")
    head, tail = nodes[:first], nodes[last + 1:]
    for node in head + tail:
        if node.op_type not in HOST_OPS:
            raise FlowError(f"node {node.name!r} (op {node.op_type}) was not mapped to hardware and cannot run on "
                            f"the host either (host side: {', '.join(sorted(HOST_OPS))})")
    in_ops = host_input_ops(model) + tuple(host_op_from_node(model, n) for n in head)
    out_ops = tuple(host_op_from_node(model, n) for n in tail)
    in_name, out_name = nodes[first].input[0], nodes[last].output[0]
    meta = next((p.value for p in model.graph.metadata_props if p.key == MODEL_CONFIG_KEY), None)
    for node in head + tail:
        model.graph.node.remove(node)
    _promote(model, in_name, to_input=True)
    _promote(model, out_name, to_input=False)

    def port(name: str, ops: tuple) -> Port:
        return Port(name, tuple(model.get_tensor_shape(name)), model.get_tensor_datatype(name).name, "NHWC", ops)

    spec = IOSpec(port(in_name, in_ops), port(out_name, out_ops), json.loads(meta) if meta else {})
    return model, spec


def step_to_hw_layers(model, cfg: FlowConfig):
    """Convert to hardware layers, cut the host-side ops off both ends, write the build's io_spec."""
    model = convert_to_hw(model)
    model, spec = split_host_ops(model)
    spec.save(cfg.layout.io_spec)
    return model
