"""The typed views of hls/gen/joins.py against FINN nodes built here: Verilog parameters, streams (checked against
FINN's own stream widths and folded shapes), and the errors for what the kernels do not cover. No simulator."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from hls.gen.joins import AddParams, ConcatParams, ForkParams, UpsampleParams, concat_out_type
from hls.gen.ops import GenerateError, Layer, Stream, dtype_info

HLS = "finn.custom_op.fpgadataflow.hls"
RTL = "finn.custom_op.fpgadataflow.rtl"


def _model(op_type: str, inputs: list[tuple[str, list[int]]], outputs: list[tuple[str, list[int]]],
           domain: str = HLS, initializers: dict | None = None, **attrs):
    """A graph holding one ``op_type`` node named ``n0``, and the node."""
    from onnx import TensorProto, helper
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.basic import qonnx_make_model

    node = helper.make_node(op_type, [n for n, _ in inputs], [n for n, _ in outputs], name="n0", domain=domain,
                            backend="fpgadataflow", **attrs)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info(n, TensorProto.FLOAT, s)
                                            for n, s in inputs if n not in (initializers or {})],
                              [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in outputs])
    model = ModelWrapper(qonnx_make_model(graph))
    for name, value in (initializers or {}).items():
        model.set_initializer(name, value)
    return model, model.graph.node[0]


def _finn_streams(model, node, n_in: int, n_out: int) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """(width, beats) per input and per output stream, from FINN's node model."""
    from qonnx.custom_op.registry import getCustomOp

    op = getCustomOp(node)
    ins = [(op.get_instream_width(i), int(np.prod(op.get_folded_input_shape(i)[:-1]))) for i in range(n_in)]
    outs = [(op.get_outstream_width(i), int(np.prod(op.get_folded_output_shape(i)[:-1]))) for i in range(n_out)]
    return ins, outs


def _ours(streams: tuple[Stream, ...]) -> list[tuple[int, int]]:
    return [(s.width, s.beats) for s in streams]


def _assert_layer(view: Layer) -> None:
    """The Layer base fields describe port 0's input and the first output."""
    s0, m0 = view.in_streams[0], view.out_streams[0]
    assert (view.in_elems, view.in_bits, view.in_beats) == (s0.elems, s0.bits, s0.beats)
    assert (view.out_elems, view.out_bits, view.out_beats, view.out_signed) == (m0.elems, m0.bits, m0.beats,
                                                                                m0.signed)


# ---- fork

def _fork(n: int = 3, c: int = 6, pe: int = 2, dtype: str = "INT3", outputs: int | None = None,
          domain: str = HLS, op: str = "DuplicateStreams_hls"):
    shape = [1, 4, 5, c]
    return _model(op, [("x", shape)], [(f"y{k}", shape) for k in range(n if outputs is None else outputs)],
                  domain=domain, NumChannels=c, PE=pe, NumOutputStreams=n, inputDataType=dtype,
                  numInputVectors=[1, 4, 5])


def test_fork_view() -> None:
    model, node = _fork()
    v = ForkParams.from_node(model, node)
    assert v.kernel == "qdet_fork"
    assert list(v.params().items()) == [("N", 3), ("WIDTH", 6)]
    assert v.in_streams == (Stream(2, 3, True, 60),)
    assert v.out_streams == (Stream(2, 3, True, 60),) * 3
    _assert_layer(v)
    ins, outs = _finn_streams(model, node, 1, 3)
    assert _ours(v.in_streams) == ins and _ours(v.out_streams) == outs


def test_fork_errors() -> None:
    model, node = _fork(n=1)
    with pytest.raises(GenerateError, match="n0 .*N >= 2"):
        ForkParams.from_node(model, node)
    model, node = _fork(n=3, outputs=2)
    with pytest.raises(GenerateError, match="n0 .*NumOutputStreams 3 with 2 outputs"):
        ForkParams.from_node(model, node)
    model, node = _fork(c=6, pe=4)
    with pytest.raises(GenerateError, match="n0 .*PE 4 must divide 6"):
        ForkParams.from_node(model, node)
    model, node = _fork(dtype="FLOAT32")
    with pytest.raises(GenerateError, match="n0 .*inputDataType"):
        ForkParams.from_node(model, node)


# ---- add

def _add(lhs: str = "INT4", rhs: str = "UINT3", out: str = "INT6", pe: int = 4, lhs_shape=(1, 3, 3, 8),
         rhs_shape=None, out_shape=None, op: str = "ElementwiseAdd_hls", domain: str = HLS, const_rhs=False,
         **extra):
    ls = list(lhs_shape)
    rs = list(rhs_shape or lhs_shape)
    os_ = list(out_shape or np.broadcast_shapes(tuple(ls), tuple(rs)))
    inits = {"b": np.ones(rs, dtype=np.float32)} if const_rhs else None
    return _model(op, [("a", ls), ("b", rs)], [("y", os_)], domain=domain, initializers=inits, lhs_dtype=lhs,
                  rhs_dtype=rhs, out_dtype=out, lhs_shape=ls, rhs_shape=rs, out_shape=os_, PE=pe, **extra)


@pytest.mark.parametrize("op,domain", [("ElementwiseAdd_hls", HLS), ("ElementwiseAdd_rtl", RTL)])
def test_add_view(op: str, domain: str) -> None:
    model, node = _add(op=op, domain=domain)
    v = AddParams.from_node(model, node)
    assert v.kernel == "qdet_add"
    assert list(v.params().items()) == [("PE", 4), ("LHS_BITS", 4), ("LHS_SIGNED", 1), ("RHS_BITS", 3),
                                        ("RHS_SIGNED", 0), ("OUT_BITS", 6), ("OUT_SIGNED", 1)]
    assert v.in_streams == (Stream(4, 4, True, 18), Stream(4, 3, False, 18))
    assert v.out_streams == (Stream(4, 6, True, 18),)
    _assert_layer(v)
    ins, outs = _finn_streams(model, node, 2, 1)
    assert _ours(v.in_streams) == ins and _ours(v.out_streams) == outs


def test_add_takes_finn_out_type_when_it_holds_the_sums() -> None:
    """For every operand pair FINN's derived out_dtype is accepted exactly when it holds every sum; where it does
    not (exactly: a signed lhs with an unsigned rhs of the same width) the error names the type that does."""
    from qonnx.custom_op.registry import getCustomOp

    types = ["UINT1", "UINT3", "UINT4", "INT2", "INT4", "INT5", "UINT8", "INT8"]
    refused = []
    for lt, rt in itertools.product(types, types):
        model, node = _add(lt, rt, "INT32")
        finn = getCustomOp(node).minimize_accumulator_width(model).name
        model, node = _add(lt, rt, finn)
        _, _, llo, lhi = dtype_info(lt)
        _, _, rlo, rhi = dtype_info(rt)
        _, _, olo, ohi = dtype_info(finn)
        if olo <= llo + rlo and lhi + rhi <= ohi:
            assert AddParams.from_node(model, node).out_bits == dtype_info(finn)[0]
        else:
            with pytest.raises(GenerateError, match=f"n0 .*out_dtype {finn} does not hold"):
                AddParams.from_node(model, node)
            refused.append((lt, rt))
    assert ("INT4", "UINT4") in refused and ("UINT4", "INT4") not in refused
    assert all(dtype_info(lt)[1] and not dtype_info(rt)[1] and dtype_info(rt)[0] == dtype_info(lt)[0]
               for lt, rt in refused)
    model, node = _add("INT4", "UINT4", "INT5")
    with pytest.raises(GenerateError, match=r"-8\.\.22\); it needs INT6"):
        AddParams.from_node(model, node)


def test_add_errors() -> None:
    model, node = _add(rhs_style="const")
    with pytest.raises(GenerateError, match="n0 .*rhs operand is a constant"):
        AddParams.from_node(model, node)
    model, node = _add(const_rhs=True)
    with pytest.raises(GenerateError, match="n0 .*rhs operand is a constant"):
        AddParams.from_node(model, node)
    model, node = _add(lhs_style="const")
    with pytest.raises(GenerateError, match="n0 .*lhs operand is a constant"):
        AddParams.from_node(model, node)
    model, node = _add(rhs_shape=(1, 1, 1, 8))
    with pytest.raises(GenerateError, match="n0 .*does not broadcast"):
        AddParams.from_node(model, node)
    model, node = _add(rhs_shape=(1, 3, 3, 1), pe=1)
    with pytest.raises(GenerateError, match="n0 .*does not broadcast"):
        AddParams.from_node(model, node)
    model, node = _add(pe=3)
    with pytest.raises(GenerateError, match="n0 .*PE 3 must divide 8"):
        AddParams.from_node(model, node)
    model, node = _add(out="FLOAT32")
    with pytest.raises(GenerateError, match="n0 .*out_dtype"):
        AddParams.from_node(model, node)
    model, node = _add(lhs="BIPOLAR")
    with pytest.raises(GenerateError, match="n0 .*BIPOLAR is not a two's complement type"):
        AddParams.from_node(model, node)


# ---- concat

def _concat(channels=(4, 6), simd: int = 2, types=("UINT4", "INT3"), domain: str = HLS,
            op: str = "StreamingConcat_hls"):
    vec = [1, 3, 5]
    ins = [(f"x{k}", vec + [c]) for k, c in enumerate(channels)]
    return _model(op, ins, [("y", vec + [sum(channels)])], domain=domain, SIMD=simd,
                  ChannelsPerStream=list(channels), inputDataTypes=list(types), numInputVectors=vec)


def test_concat_view() -> None:
    model, node = _concat()
    v = ConcatParams.from_node(model, node)
    assert v.kernel == "qdet_concat"
    assert list(v.params().items()) == [("C0", 4), ("C1", 6), ("SIMD", 2), ("IN0_BITS", 4), ("IN0_SIGNED", 0),
                                        ("IN1_BITS", 3), ("IN1_SIGNED", 1), ("OUT_BITS", 5)]
    assert v.in_streams == (Stream(2, 4, False, 30), Stream(2, 3, True, 45))
    assert v.out_streams == (Stream(2, 5, True, 75),)
    _assert_layer(v)
    ins, outs = _finn_streams(model, node, 2, 1)
    assert _ours(v.in_streams) == ins and _ours(v.out_streams) == outs


def test_concat_out_type_is_finns() -> None:
    """The view's output type equals FINN's get_output_datatype for every pair of these types."""
    from qonnx.custom_op.registry import getCustomOp

    types = ["UINT1", "UINT2", "UINT4", "UINT8", "INT2", "INT3", "INT4", "INT8", "INT9"]
    for t0, t1 in itertools.product(types, types):
        model, node = _concat(types=(t0, t1))
        finn = getCustomOp(node).get_output_datatype()
        v = ConcatParams.from_node(model, node)
        assert (v.out_bits, v.out_signed) == (finn.bitwidth(), finn.signed()), (t0, t1)
        assert concat_out_type([dtype_info(t0)[2:], dtype_info(t1)[2:]]) == (finn.bitwidth(), finn.signed())


def test_concat_errors() -> None:
    model, node = _concat(channels=(2, 4, 6), types=("UINT4", "UINT4", "UINT4"))
    with pytest.raises(GenerateError, match="n0 .*concat of 3 inputs.*chains of two-input"):
        ConcatParams.from_node(model, node)
    model, node = _concat(channels=(4, 6), simd=4)
    with pytest.raises(GenerateError, match="n0 .*SIMD 4 must divide 6"):
        ConcatParams.from_node(model, node)
    model, node = _concat(types=("BIPOLAR", "INT3"))
    with pytest.raises(GenerateError, match="n0 .*BIPOLAR"):
        ConcatParams.from_node(model, node)


# ---- upsample

def _upsample(hi=3, wi=5, ho=6, wo=15, c=6, simd=3, dtype="INT4", batch=2):
    return _model("UpsampleNearestNeighbour_hls", [("x", [batch, hi, wi, c])], [("y", [batch, ho, wo, c])], SIMD=simd,
                  HI=hi, WI=wi, HO=ho, WO=wo, NumChannels=c, inputDataType=dtype, batchSize=batch)


def test_upsample_view() -> None:
    model, node = _upsample()
    v = UpsampleParams.from_node(model, node)
    assert v.kernel == "qdet_upsample"
    assert list(v.params().items()) == [("IFM_H", 3), ("IFM_W", 5), ("OFM_H", 6), ("OFM_W", 15), ("C", 6),
                                        ("SIMD", 3), ("BITS", 4)]
    assert v.factors == (2, 3)
    assert v.in_streams == (Stream(3, 4, True, 2 * 3 * 5 * 2),)
    assert v.out_streams == (Stream(3, 4, True, 2 * 6 * 15 * 2),)
    _assert_layer(v)
    ins, outs = _finn_streams(model, node, 1, 1)
    assert _ours(v.in_streams) == ins and _ours(v.out_streams) == outs


def test_upsample_errors() -> None:
    model, node = _upsample(ho=5)
    with pytest.raises(GenerateError, match="n0 .*5x15 is not an integer multiple of the input 3x5"):
        UpsampleParams.from_node(model, node)
    model, node = _upsample(wo=4)
    with pytest.raises(GenerateError, match="n0 .*integer factors only"):
        UpsampleParams.from_node(model, node)
    model, node = _upsample(simd=4)
    with pytest.raises(GenerateError, match="n0 .*SIMD 4 must divide 6"):
        UpsampleParams.from_node(model, node)
