"""Move a float model's input quantizer, and the linear preprocessing in front of it, to the host.

A Brevitas model that takes a float (normalised) image quantizes it with a ``QuantIdentity``, often after a few
constant ``Mul``/``Div``/``Add``/``Sub`` (``2x - 1``, per-channel mean/std). FINN would turn that quantizer into a
Thresholding layer on a FLOAT32 stream, which no integer accelerator can take. Here, on the QONNX graph (before
conversion to FINN's dialect), those nodes are cut off: the graph input becomes the quantizer's integer output
(``INT8``/``UINT8``/... as the quantizer's bit width and sign say), followed by ``Add(-zero_point)`` and
``Mul(scale)``, which streamlining folds into the first layer's thresholds like any other scale. The cut ops are
recorded in the model's metadata (``HOST_INPUT_KEY``) as :class:`boards.runtime.io_spec.HostOp` records, and the host
replays them in float32 (``IOSpec.host_input``), so the integers it sends are the ones Brevitas computes: the same
division, the same rounding (half to even for ``ROUND``), the same clamp.
"""

from __future__ import annotations

import json
from dataclasses import asdict

import numpy as np
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.base import Transformation

from flows.errors import FlowError
from boards.runtime.io_spec import ROUNDING_MODES, HostOp
from flows.io_spec import PREPROCESSING_OPS, host_op_from_node

HOST_INPUT_KEY = "qdet.host_input_ops"  # metadata entry: JSON list of the host ops cut off the input
_ADVICE = ("put a quantizer at the model's input (brevitas.nn.QuantIdentity, e.g. 8-bit per-tensor) so the "
           "accelerator receives integers, or export the model with an integer (UINT8) image input")


def host_input_ops(model: ModelWrapper) -> tuple[HostOp, ...]:
    """The host ops recorded on ``model`` by :class:`HostInputQuant` (empty for an integer-input model)."""
    text = next((p.value for p in model.model.metadata_props if p.key == HOST_INPUT_KEY), None)
    return tuple(HostOp.from_dict(d) for d in json.loads(text)) if text else ()


def _attr(node, name: str, default):
    from qonnx.util.basic import get_by_name

    a = get_by_name(node.attribute, name)
    if a is None:
        return default
    return a.s.decode() if a.type == a.STRING else a.i


def quant_host_op(model: ModelWrapper, node) -> HostOp:
    """The host-side record of an input ``Quant`` node; FlowError naming the node when it cannot give integers."""
    where = f"input quantizer {node.name!r} (Quant)"
    params = [model.get_initializer(name) for name in node.input[1:4]]
    if any(p is None for p in params):
        raise FlowError(f"{where}: its scale, zero point and bit width must be constants")
    scale, zero_point, bits = (np.asarray(p, dtype=np.float32) for p in params)
    if zero_point.size != 1 or bits.size != 1:
        raise FlowError(f"{where}: a per-channel zero point or bit width is not supported; use a per-tensor one")
    zp, width = float(zero_point.reshape(-1)[0]), float(bits.reshape(-1)[0])
    if zp != round(zp):
        raise FlowError(f"{where} has the float zero point {zp:g}: the accelerator's input must be integers, so the "
                        "zero point must be an integer (use a zero-point-free quantizer such as Int8ActPerTensorFloat,"
                        " or one whose zero point is an integer)")
    if width != round(width) or not 2 <= width <= 16:
        raise FlowError(f"{where} has bit width {width:g}: input quantizers of 2 to 16 bits are supported")
    if scale.size != 1:
        raise FlowError(f"{where} has a per-channel scale ({scale.size} values): FINN folds only a per-tensor input "
                        "scale into the first layer; use a per-tensor input quantizer")
    if not float(scale.reshape(-1)[0]) > 0:
        raise FlowError(f"{where}: its scale {float(scale.reshape(-1)[0]):g} is not positive")
    mode = str(_attr(node, "rounding_mode", "ROUND")).upper()
    if mode not in ROUNDING_MODES:
        raise FlowError(f"{where}: rounding mode {mode!r} is not one of {', '.join(ROUNDING_MODES)}")
    return HostOp("Quant", value=scale.reshape(-1).tolist(), shape=tuple(scale.shape), zero_point=zp,
                  bit_width=int(width), signed=bool(_attr(node, "signed", 1)), narrow=bool(_attr(node, "narrow", 0)),
                  rounding_mode=mode)


def input_chain(model: ModelWrapper) -> list:
    """The preprocessing nodes and the quantizer a float graph input goes through, in order."""
    tensor = model.graph.input[0].name
    chain = []
    while True:
        consumers = model.find_consumers(tensor) or []
        if len(consumers) != 1:
            raise FlowError(f"the float input {tensor!r} feeds {len(consumers)} nodes; qdet moves a float input's "
                            f"quantizer to the host only when one chain of ops leads to it: {_ADVICE}")
        node = consumers[0]
        if node.op_type == "Quant" and node.input[0] == tensor:
            return chain + [node]
        constant_operand = len(node.input) == 2 and sum(model.get_initializer(i) is not None for i in node.input) == 1
        if node.op_type not in PREPROCESSING_OPS or not constant_operand:
            raise FlowError(f"the float input {tensor!r} reaches node {node.name!r} (op {node.op_type}) before any "
                            f"quantizer: {_ADVICE}. Only constant Mul/Div/Add/Sub preprocessing may come first")
        chain.append(node)
        tensor = node.output[0]


class HostInputQuant(Transformation):
    """Cut a float input's preprocessing and quantizer off the graph (see the module docstring)."""

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        from onnx import TensorProto, helper

        graph = model.graph
        if len(graph.input) != 1:
            raise FlowError(f"the model has {len(graph.input)} inputs; qdet builds single-input models")
        if model.get_tensor_datatype(graph.input[0].name) != DataType["FLOAT32"] or host_input_ops(model):
            return model, False  # integer input (e.g. qdet's UINT8 images): nothing for the host to do
        chain = input_chain(model)
        quant = chain[-1]
        ops = [host_op_from_node(model, n) for n in chain[:-1]] + [quant_host_op(model, quant)]
        q = ops[-1]
        shape = model.get_tensor_shape(quant.output[0])
        integer = f"{quant.output[0]}_int"
        for node in chain:
            graph.node.remove(node)
        graph.input.remove(graph.input[0])
        graph.input.insert(0, helper.make_tensor_value_info(integer, TensorProto.FLOAT, shape))
        dtype = f"{'INT' if q.signed else 'UINT'}{q.bit_width}"
        model.set_tensor_datatype(integer, DataType[dtype])
        # The integer stream, then what the quantizer does after rounding: (q - zero point) * scale.
        current, new_nodes = integer, []
        if q.zero_point:
            model.set_initializer(f"{integer}_zero_point", np.asarray(-q.zero_point, dtype=np.float32))
            new_nodes.append(helper.make_node("Add", [current, f"{integer}_zero_point"], [f"{integer}_centred"],
                                              name="HostInputZeroPoint"))
            current = f"{integer}_centred"
        model.set_initializer(f"{integer}_scale", q.operand())
        new_nodes.append(helper.make_node("Mul", [current, f"{integer}_scale"], [quant.output[0]],
                                          name="HostInputScale"))
        for i, node in enumerate(new_nodes):
            graph.node.insert(i, node)
        entry = model.model.metadata_props.add()
        entry.key, entry.value = HOST_INPUT_KEY, json.dumps([asdict(op) for op in ops], sort_keys=True)
        return model, False
