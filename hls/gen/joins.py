"""Typed views of the graph-shaped nodes: forks, joins and the upsampler of detector necks and heads.

``DuplicateStreams_*`` -> ``qdet_fork``, ``ElementwiseAdd_*`` (both operands streamed) -> ``qdet_add``,
``StreamingConcat_*`` (two inputs) -> ``qdet_concat``, ``UpsampleNearestNeighbour_*`` (integer factors) ->
``qdet_upsample``. Like the views in :mod:`hls.gen.ops`: each knows its kernel (hls/rtl/README.md), its parameters
in the README's order, and its streams, here one :class:`hls.gen.ops.Stream` per port in port order
(``in_streams``: s0, s1; ``out_streams``: the fork's N outputs). The Layer base fields hold port 0's input stream
and the (first) output stream. The rules read from finn-plus 1.6.1's node models are noted where they matter.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hls.gen.ops import GenerateError, Layer, Stream, _attrs, _text, dtype_info


def _where(node) -> str:
    return f"{node.name} ({node.op_type})"


def _int_type(node, attr: str, name, twos_complement: bool = True) -> tuple[int, bool, int, int]:
    """dtype_info of an integer FINN type, naming the node when it is not one; BIPOLAR (which packs -1 as 0) is
    refused where the kernel extends or adds two's complement values (``twos_complement``)."""
    text = _text(name)
    if twos_complement and text.startswith("BIPOLAR"):
        raise GenerateError(f"{_where(node)}: {attr} {text} is not a two's complement type")
    try:
        return dtype_info(text)
    except GenerateError as exc:
        raise GenerateError(f"{_where(node)}: {attr}: {exc}") from None
    except KeyError:
        raise GenerateError(f"{_where(node)}: {attr} {text!r} is not a FINN datatype") from None


def _divides(node, what: str, fold: int, total: int) -> None:
    if fold < 1 or total % fold:
        raise GenerateError(f"{_where(node)}: {what} {fold} must divide {total}")


def _holding_type(lo: int, hi: int) -> str:
    """The smallest FINN integer type holding [lo, hi] (for error messages)."""
    if lo >= 0:
        return f"UINT{max(1, int(hi).bit_length())}"
    return f"INT{max((-lo - 1).bit_length(), int(hi).bit_length()) + 1}"


@dataclass(frozen=True)
class ForkParams(Layer):
    """``DuplicateStreams_*``: every input beat to each of N outputs (PE channels per beat, any element type)."""

    n: int = 2
    channels: int = 0
    pe: int = 1
    signed: bool = False
    kernel = "qdet_fork"

    @classmethod
    def from_node(cls, model, node) -> ForkParams:
        a = _attrs(node)
        n = int(a["NumOutputStreams"])
        if n < 2 or n != len(node.output):
            raise GenerateError(f"{_where(node)}: NumOutputStreams {n} with {len(node.output)} outputs "
                                "(qdet_fork needs N >= 2, one per output)")
        c, pe = int(a["NumChannels"]), int(a["PE"])
        _divides(node, "PE", pe, c)
        # A fork copies bits: any integer type (BIPOLAR included) streams unchanged.
        bits, signed, _, _ = _int_type(node, "inputDataType", a["inputDataType"], twos_complement=False)
        beats = int(np.prod(a.get("numInputVectors", [1]))) * c // pe
        return cls(node.name, node.op_type, pe, bits, pe, bits, beats, beats, signed, n, c, pe, signed)

    @property
    def in_streams(self) -> tuple[Stream, ...]:
        return (Stream(self.pe, self.in_bits, self.signed, self.in_beats),)

    @property
    def out_streams(self) -> tuple[Stream, ...]:
        return tuple(Stream(self.pe, self.out_bits, self.signed, self.out_beats) for _ in range(self.n))

    def params(self) -> dict[str, int | str]:
        return {"N": self.n, "WIDTH": self.pe * self.in_bits}


@dataclass(frozen=True)
class AddParams(Layer):
    """``ElementwiseAdd_*`` with both operands streamed and equal shapes: lhs + rhs per element, PE per beat.

    The output type is the node's ``out_dtype``, which must hold every sum. FINN's own rule
    (``ElementwiseAdd._derive_out_dtype``, used by its accumulator minimisation) is one bit short when a signed lhs
    is added to an unsigned rhs of the same width: INT4 + UINT4 gives INT5, but 7 + 15 = 22 (UINT4 + INT4 gives
    INT6). Such a node is refused, naming the type that holds the sums, rather than built to wrap around.
    """

    pe: int = 1
    lhs_signed: bool = False
    rhs_bits: int = 0
    rhs_signed: bool = False
    kernel = "qdet_add"

    @classmethod
    def from_node(cls, model, node) -> AddParams:
        a = _attrs(node)
        if len(node.input) != 2:
            raise GenerateError(f"{_where(node)}: {len(node.input)} inputs, an ElementwiseAdd has two")
        for side, tensor in (("lhs", node.input[0]), ("rhs", node.input[1])):
            style = _text(a.get(f"{side}_style", "input"))
            if style != "input" or model.get_initializer(tensor) is not None:
                raise GenerateError(f"{_where(node)}: the {side} operand is a constant ({side}_style={style}); "
                                    "qdet_add adds two streams only")
        lhs_shape, rhs_shape = list(a["lhs_shape"]), list(a["rhs_shape"])
        out_shape = list(a.get("out_shape", lhs_shape))
        if not (lhs_shape == rhs_shape == out_shape):
            raise GenerateError(f"{_where(node)}: shapes lhs {lhs_shape}, rhs {rhs_shape}, out {out_shape}: "
                                "qdet_add does not broadcast (equal shapes only)")
        pe = int(a.get("PE", 1))
        _divides(node, "PE", pe, int(lhs_shape[-1]))
        lbits, lsigned, llo, lhi = _int_type(node, "lhs_dtype", a["lhs_dtype"])
        rbits, rsigned, rlo, rhi = _int_type(node, "rhs_dtype", a["rhs_dtype"])
        obits, osigned, olo, ohi = _int_type(node, "out_dtype", a["out_dtype"])
        if llo + rlo < olo or lhi + rhi > ohi:
            raise GenerateError(f"{_where(node)}: out_dtype {_text(a['out_dtype'])} does not hold every sum of "
                                f"{_text(a['lhs_dtype'])} + {_text(a['rhs_dtype'])} ({llo + rlo}..{lhi + rhi}); "
                                f"it needs {_holding_type(llo + rlo, lhi + rhi)}")
        beats = int(np.prod(lhs_shape)) // pe
        return cls(node.name, node.op_type, pe, lbits, pe, obits, beats, beats, osigned, pe, lsigned, rbits, rsigned)

    @property
    def in_streams(self) -> tuple[Stream, ...]:
        return (Stream(self.pe, self.in_bits, self.lhs_signed, self.in_beats),
                Stream(self.pe, self.rhs_bits, self.rhs_signed, self.in_beats))

    @property
    def out_streams(self) -> tuple[Stream, ...]:
        return (Stream(self.pe, self.out_bits, self.out_signed, self.out_beats),)

    def params(self) -> dict[str, int | str]:
        return {"PE": self.pe, "LHS_BITS": self.in_bits, "LHS_SIGNED": int(self.lhs_signed),
                "RHS_BITS": self.rhs_bits, "RHS_SIGNED": int(self.rhs_signed), "OUT_BITS": self.out_bits,
                "OUT_SIGNED": int(self.out_signed)}


def concat_out_type(ranges: list[tuple[int, int]]) -> tuple[int, bool]:
    """(bits, signed) of StreamingConcat's output for inputs of these (min, max) ranges, FINN's rule
    (``StreamingConcat.get_output_datatype``): the smallest type holding 0 and every input's range (UINT when no
    input is signed).

    >>> concat_out_type([(0, 15), (-8, 7)]), concat_out_type([(0, 3), (0, 15)]), concat_out_type([(-4, 3), (0, 1)])
    ((5, True), (4, False), (3, True))
    """
    lo = min(0, *(r[0] for r in ranges))
    hi = max(0, *(r[1] for r in ranges))
    if lo >= 0:
        return max(1, hi.bit_length()), False
    # FINN: ceil(log2(max(-lo, 1 + hi)) + 1) bits, in integers.
    return (max(-lo, 1 + hi) - 1).bit_length() + 1, True


@dataclass(frozen=True)
class ConcatParams(Layer):
    """``StreamingConcat_*`` with two inputs: per pixel C0/SIMD beats from s0, then C1/SIMD beats from s1.

    FINN gives the node no output type attribute: the output is the smallest type holding both inputs' ranges
    (:func:`concat_out_type`, FINN's ``get_output_datatype``), each input sign- or zero-extended into it. Concats of
    more inputs are split into chains of two-input ones before the generator runs.
    """

    c0: int = 0
    c1: int = 0
    simd: int = 1
    in0_signed: bool = False
    in1_bits: int = 0
    in1_signed: bool = False
    kernel = "qdet_concat"

    @classmethod
    def from_node(cls, model, node) -> ConcatParams:
        a = _attrs(node)
        channels = [int(c) for c in a["ChannelsPerStream"]]
        if len(channels) != 2 or len(node.input) != 2:
            raise GenerateError(f"{_where(node)}: a concat of {len(node.input)} inputs ({len(channels)} in "
                                "ChannelsPerStream); qdet_concat takes two, longer concats must be split into "
                                "chains of two-input ones first")
        c0, c1 = channels
        simd = int(a["SIMD"])
        _divides(node, "SIMD", simd, c0)
        _divides(node, "SIMD", simd, c1)
        types = [_text(t) for t in a["inputDataTypes"]]
        if len(types) != 2:
            raise GenerateError(f"{_where(node)}: {len(types)} inputDataTypes for two inputs")
        b0, s0, lo0, hi0 = _int_type(node, "inputDataTypes[0]", types[0])
        b1, s1, lo1, hi1 = _int_type(node, "inputDataTypes[1]", types[1])
        obits, osigned = concat_out_type([(lo0, hi0), (lo1, hi1)])
        vectors = int(np.prod(a.get("numInputVectors", [1])))
        return cls(node.name, node.op_type, simd, b0, simd, obits, vectors * c0 // simd,
                   vectors * (c0 + c1) // simd, osigned, c0, c1, simd, s0, b1, s1)

    @property
    def in_streams(self) -> tuple[Stream, ...]:
        f0 = self.in_beats // (self.c0 // self.simd)  # pixels per frame
        return (Stream(self.simd, self.in_bits, self.in0_signed, self.in_beats),
                Stream(self.simd, self.in1_bits, self.in1_signed, f0 * self.c1 // self.simd))

    @property
    def out_streams(self) -> tuple[Stream, ...]:
        return (Stream(self.simd, self.out_bits, self.out_signed, self.out_beats),)

    def params(self) -> dict[str, int | str]:
        return {"C0": self.c0, "C1": self.c1, "SIMD": self.simd, "IN0_BITS": self.in_bits,
                "IN0_SIGNED": int(self.in0_signed), "IN1_BITS": self.in1_bits, "IN1_SIGNED": int(self.in1_signed),
                "OUT_BITS": self.out_bits}


@dataclass(frozen=True)
class UpsampleParams(Layer):
    """``UpsampleNearestNeighbour_*``: NHWC nearest-neighbour upsampling by integer factors HO/HI and WO/WI.

    FINN's attributes are ``HI``/``WI`` (input), ``HO``/``WO`` (output), ``NumChannels``, ``SIMD``,
    ``inputDataType`` (the output type is the same) and ``batchSize`` (frames per run, counted in the beats). FINN
    itself executes the node as an ONNX Resize with scales ``round(HO/HI)``, ``round(WO/WI)``, so a non-integer
    ratio does not even run in its python model; the view refuses it.
    """

    ifm: tuple[int, int] = (0, 0)
    ofm: tuple[int, int] = (0, 0)
    channels: int = 0
    simd: int = 1
    signed: bool = False
    kernel = "qdet_upsample"

    @classmethod
    def from_node(cls, model, node) -> UpsampleParams:
        a = _attrs(node)
        hi, wi, ho, wo = (int(a[k]) for k in ("HI", "WI", "HO", "WO"))
        if min(hi, wi, ho, wo) < 1 or ho % hi or wo % wi:
            raise GenerateError(f"{_where(node)}: output {ho}x{wo} is not an integer multiple of the input "
                                f"{hi}x{wi}; qdet_upsample takes integer factors only")
        c, simd = int(a["NumChannels"]), int(a["SIMD"])
        _divides(node, "SIMD", simd, c)
        # The upsampler copies bits: any integer type (BIPOLAR included) streams unchanged.
        bits, signed, _, _ = _int_type(node, "inputDataType", a["inputDataType"], twos_complement=False)
        batch = int(a.get("batchSize", 1))
        return cls(node.name, node.op_type, simd, bits, simd, bits, batch * hi * wi * c // simd,
                   batch * ho * wo * c // simd, signed, (hi, wi), (ho, wo), c, simd, signed)

    @property
    def factors(self) -> tuple[int, int]:
        """(FH, FW): output rows per input row, output columns per input column."""
        return self.ofm[0] // self.ifm[0], self.ofm[1] // self.ifm[1]

    @property
    def in_streams(self) -> tuple[Stream, ...]:
        return (Stream(self.simd, self.in_bits, self.signed, self.in_beats),)

    @property
    def out_streams(self) -> tuple[Stream, ...]:
        return (Stream(self.simd, self.out_bits, self.signed, self.out_beats),)

    def params(self) -> dict[str, int | str]:
        return {"IFM_H": self.ifm[0], "IFM_W": self.ifm[1], "OFM_H": self.ofm[0], "OFM_W": self.ofm[1],
                "C": self.channels, "SIMD": self.simd, "BITS": self.in_bits}
