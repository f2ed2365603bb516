"""Step 2: conversion to FINN's generic hardware layers, and the host/FPGA split recorded in ``io_spec.json``."""

from __future__ import annotations

import json

from flows.config import FlowConfig, FlowError
from boards.runtime.io_spec import IOSpec, Port
from flows.io_spec import HOST_OPS, host_op_from_node
from flows.transforms.host_input_quant import host_input_ops
from quant_models.export import MODEL_CONFIG_KEY

HW_DOMAIN = "finn.custom_op.fpgadataflow"


def is_hw(node) -> bool:
    """True for a FINN hardware layer (a node that will run on the FPGA)."""
    return node.domain.startswith(HW_DOMAIN)


def _streamed_add(model, node) -> bool:
    """InferElementwiseBinaryOperation's filter: only an Add of two integer streams becomes a hardware layer."""
    return node.op_type == "Add" and all(
        model.get_initializer(t) is None and model.get_tensor_datatype(t).is_integer() for t in node.input)


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

    from finn.transformation.fpgadataflow.convert_to_hw.concat import InferConcatLayer
    from finn.transformation.fpgadataflow.convert_to_hw.duplicate_streams import InferDuplicateStreamsLayer
    from finn.transformation.fpgadataflow.convert_to_hw.elementwise_binary_operation import (
        InferElementwiseBinaryOperation)
    from finn.transformation.fpgadataflow.convert_to_hw.upsample import InferUpsample

    from flows.transforms.joins import SplitConcat

    # FINN names new tensors randomly; readable names (from node names) make the same build give the same bytes.
    # The joins first: a residual Add of two integer streams (never a constant add or the head's scale, which stay
    # for the host), two-input concats, nearest upsampling. Then MatMul + MultiThreshold (into one MVAU with its
    # activation), then the thresholds left on their own; the forks between hardware layers last.
    for transform in (InferElementwiseBinaryOperation(_streamed_add), SplitConcat(), InferConcatLayer(),
                      InferUpsample(), InferVectorVectorActivation(), InferQuantizedMatrixVectorActivation(), InferThresholdingLayer(),
                      InferPool(), InferGlobalAccPoolLayer(), InferConvInpGen(), absorb.AbsorbConsecutiveTransposes(),
                      RemoveCNVtoFCFlatten(), InferDuplicateStreamsLayer(), SortGraph(), GiveUniqueNodeNames(),
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


def _set_ports(model, tensors: list[str], to_input: bool) -> None:
    """Make inner tensors the graph's inputs (or outputs), in order, keeping their shapes."""
    from onnx import TensorProto, helper

    ports = model.graph.input if to_input else model.graph.output
    for old in list(ports):
        ports.remove(old)
    for tensor in tensors:
        shape = model.get_tensor_shape(tensor)
        for vi in list(model.graph.value_info):
            if vi.name == tensor:
                model.graph.value_info.remove(vi)
        ports.append(helper.make_tensor_value_info(tensor, TensorProto.FLOAT, shape))


def _join_cause(model, node) -> str | None:
    """Why a join (Add / Concat) did not become a hardware layer, when its inputs are not integers."""
    if node.op_type not in ("Add", "Concat"):
        return None
    from flows.transforms.joins import JOIN_FIX

    types = ", ".join(f"{t!r}: {model.get_tensor_datatype(t).name}" for t in node.input if t)
    return (f"its inputs are not integer streams after streamlining ({types}): the branches' scales did not "
            f"cancel; {JOIN_FIX}")


def _host_chain(model, start, forward: bool) -> list:
    """The non-hardware nodes from a graph input forward (or back from a graph output) to the first hardware
    layer, in graph order; raises when the chain forks."""
    chain, node = [], start
    while node is not None and not is_hw(node):
        chain.append(node)
        if forward:
            nxt = model.find_consumers(node.output[0]) or []
            if len(nxt) > 1:
                raise FlowError(f"node {node.name!r} (op {node.op_type}) on the host side feeds {len(nxt)} nodes: "
                                "the host part before the accelerator must be a chain")
            node = nxt[0] if nxt else None
        else:
            dynamic = [t for t in node.input if t and model.get_initializer(t) is None]
            node = model.find_producer(dynamic[0]) if len(dynamic) == 1 else None
    return chain if forward else chain[::-1]


def split_host_ops(model) -> tuple[object, IOSpec]:
    """Cut the non-hardware nodes at the ends off the graph; return the FPGA-side graph and its IOSpec.

    The host part is a chain from the graph input to the first hardware layer and one chain from a hardware layer
    to each graph output (a model with several heads has several). Only layout changes and the heads' float
    scale/bias may stay outside the FPGA; any other node that did not become a hardware layer is an error naming
    that node."""
    nodes = list(model.graph.node)
    if not any(is_hw(n) for n in nodes):
        raise FlowError("no node became a hardware layer; is the model a quantized conv net exported by qdet export?")
    if len(model.graph.input) != 1:
        raise FlowError(f"the model has {len(model.graph.input)} inputs: qdet's accelerators take one image input")
    first = model.find_consumers(model.graph.input[0].name) or []
    if len(first) != 1:
        raise FlowError(f"the graph input feeds {len(first)} nodes: put the model's first layer on it alone")
    head = _host_chain(model, first[0], forward=True)
    in_name = (head[-1].output[0] if head else model.graph.input[0].name)
    tails, out_names = [], []
    for out in model.graph.output:
        producer = model.find_producer(out.name)
        tail = _host_chain(model, producer, forward=False)
        tails.append(tail)
        out_names.append(tail[0].input[0] if tail else out.name)
    host = {id(n) for n in head} | {id(n) for t in tails for n in t}
    for node in nodes:
        if id(node) not in host and not is_hw(node):
            cause = _join_cause(model, node) or _unmapped_cause(model, node)
            raise FlowError(f"node {node.name!r} (op {node.op_type}) sits between hardware layers but FINN could not "
                            f"map it to one: {cause}")
    for node in head + [n for t in tails for n in t]:
        if node.op_type not in HOST_OPS:
            raise FlowError(f"node {node.name!r} (op {node.op_type}) was not mapped to hardware and cannot run on "
                            f"the host either (host side: {', '.join(sorted(HOST_OPS))})")
    if len(set(out_names)) != len(out_names):
        raise FlowError("two model outputs come from the same hardware tensor: export each head once")
    in_ops = host_input_ops(model) + tuple(host_op_from_node(model, n) for n in head)
    out_ops = [tuple(host_op_from_node(model, n) for n in tail) for tail in tails]
    meta = next((p.value for p in model.graph.metadata_props if p.key == MODEL_CONFIG_KEY), None)
    for node in head + [n for t in tails for n in t]:
        model.graph.node.remove(node)
    _set_ports(model, [in_name], to_input=True)
    _set_ports(model, out_names, to_input=False)

    def port(name: str, ops: tuple, decode: dict | None = None) -> Port:
        return Port(name, tuple(model.get_tensor_shape(name)), model.get_tensor_datatype(name).name, "NHWC", ops,
                    decode or {})

    config = json.loads(meta) if meta else {}
    heads = config.get("heads") or []  # a multi-head detector: one entry per model output, in order
    decode = [heads[i] if i < len(heads) and len(heads) == len(out_names) else {} for i in range(len(out_names))]
    spec = IOSpec(port(in_name, in_ops), tuple(port(n, ops, d) for n, ops, d in zip(out_names, out_ops, decode)),
                  config)
    return model, spec


def step_to_hw_layers(model, cfg: FlowConfig):
    """Convert to hardware layers, cut the host-side ops off both ends, write the build's io_spec."""
    model = convert_to_hw(model)
    model, spec = split_host_ops(model)
    spec.save(cfg.layout.io_spec)
    return model
