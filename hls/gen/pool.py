"""Typed views of FINN's accumulating pools: ``Pool_*`` with Function QuantAvgPool/AccPool and ``GlobalAccPool_*``.

Like the views in :mod:`hls.gen.ops`: each knows its qdet kernel (hls/rtl/README.md), its parameters, and its
streams. The arithmetic rules (the QuantAvgPool shift, the accumulator widths) are FINN's, read from finn-plus
1.6.1's node models, so that FINN's python execution of the node is the golden model of the kernel.
"""

from __future__ import annotations

from dataclasses import dataclass

from hls.gen.ops import GenerateError, Layer, _attrs, _text, dtype_info, pool_window

# Pool functions the qdet_avgpool kernel covers (MaxPool is qdet_maxpool's; FINN's AvgPool divides, which the
# kernel does not do).
AVG_FUNCTIONS = ("QuantAvgPool", "AccPool")


def _int_type(node, attr: str, name) -> tuple[int, bool, int, int]:
    """dtype_info of an integer FINN type in two's complement encoding (BIPOLAR packs -1 as 0: not supported)."""
    if _text(name).startswith("BIPOLAR"):
        raise GenerateError(f"{node.name} ({node.op_type}): {attr} {_text(name)} is not a two's complement type")
    return dtype_info(name)


def _folded_channels(node, a: dict, attr: str) -> tuple[int, int]:
    """(channels, PE) of a pool node, the channel count read from ``attr``; PE must divide it."""
    c, pe = a[attr], a["PE"]
    if pe < 1 or c % pe:
        raise GenerateError(f"{node.name}: PE {pe} must divide {attr} {c}")
    return c, pe


def quant_avg_shift(in_bits: int, k: int, out_bits: int) -> int:
    """FINN's QuantAvgPool right shift: max(0, bitlen((2^in_bits - 1) * k) - out_bits).

    ``in_bits`` is the input type's full width, sign bit included, for signed inputs too (FINN's ``Pool``
    execute_node and qonnx's ``QuantAvgPool2d.get_shifts`` both use ``2**ibits - 1``).

    >>> quant_avg_shift(4, 49, 4)   # MobileNet-v1: 7x7 window of UINT4 to UINT4
    6
    >>> quant_avg_shift(2, 1, 8)
    0
    """
    return max(0, int((2**in_bits - 1) * k).bit_length() - out_bits)


@dataclass(frozen=True)
class AvgPoolParams(Layer):
    """``Pool_*`` with ``Function`` QuantAvgPool or AccPool: window sums over the depthwise SWG stream.

    ``shift`` is FINN's QuantAvgPool shift (0 for AccPool); the output is ``sum >> shift`` (arithmetic when
    signed) in ``out_bits``. FINN's HLS code shifts by the node's ``Size`` attribute and its python execution by
    the rule of :func:`quant_avg_shift`; a node where the two disagree is refused rather than built to either.
    """

    function: str = "QuantAvgPool"
    channels: int = 0
    pe: int = 1
    k: int = 1
    signed: bool = False
    shift: int = 0
    out_pixels: int = 0
    kernel = "qdet_avgpool"

    @classmethod
    def from_node(cls, model, node) -> AvgPoolParams:
        a = _attrs(node)
        fxn = _text(a.get("Function", ""))
        if fxn not in AVG_FUNCTIONS:
            raise GenerateError(f"{node.name} ({node.op_type}): Function={fxn} is not one of "
                                f"{', '.join(AVG_FUNCTIONS)} (qdet_avgpool)")
        c, pe = _folded_channels(node, a, "Channels")
        k, pixels = pool_window(a)
        bits, signed, lo, hi = _int_type(node, "InputDataType", a["InputDataType"])
        obits, osigned, _, _ = _int_type(node, "OutputDataType", a["OutputDataType"])
        if fxn == "QuantAvgPool":
            if osigned != signed:
                raise GenerateError(f"{node.name}: QuantAvgPool mixes signed and unsigned types (FINN rejects it)")
            shift = quant_avg_shift(bits, k, obits)
            if "Size" in a and int(a["Size"]) != shift:
                raise GenerateError(f"{node.name}: Size={a['Size']} (FINN's HLS shift) differs from the shift "
                                    f"{shift} of its input/output types (FINN's python model); fix the graph")
        else:
            shift = 0
            # The plain sum must fit the output type, or the hardware would emit a truncated sum.
            _, _, olo, ohi = dtype_info(a["OutputDataType"])
            if not (olo <= k * lo and k * hi <= ohi):
                raise GenerateError(f"{node.name}: AccPool output {_text(a['OutputDataType'])} cannot hold "
                                    f"{k} x {_text(a['InputDataType'])}")
        return cls(node.name, node.op_type, pe, bits, pe, obits, pixels * k * c // pe, pixels * c // pe, osigned,
                   fxn, c, pe, k, signed, shift, pixels)

    def params(self) -> dict[str, int | str]:
        return {"C": self.channels, "PE": self.pe, "K": self.k, "IN_BITS": self.in_bits,
                "SIGNED": int(self.signed), "OUT_BITS": self.out_bits, "SHIFT": self.shift,
                "OUT_PIXELS": self.out_pixels}


def global_acc_type(in_dtype: str, pixels: int) -> tuple[int, bool]:
    """(bits, signed) of FINN's GlobalAccPool output: the smallest type holding ``pixels`` x the input's extreme
    (its minimum when signed, else its maximum), as ``GlobalAccPool.get_output_datatype``."""
    from qonnx.core.datatype import DataType

    dt = DataType[_text(in_dtype)]
    out = DataType.get_smallest_possible(pixels * (dt.min() if dt.signed() else dt.max()))
    return out.bitwidth(), out.signed()


@dataclass(frozen=True)
class AccPoolParams(Layer):
    """``GlobalAccPool_*``: per-channel sums over all H*W pixels of each image, one output pixel per image.

    FINN's node takes ``numInputVectors`` = [N, H, W]; the output type is computed by FINN from the input type and
    H*W (the node has no output type attribute). Unlike FINN's HLS code, which loops over H*H pixels, the kernel
    sums H*W pixels, the python model's (and the network's) meaning for a non-square map.
    """

    channels: int = 0
    pe: int = 1
    pixels: int = 0
    signed: bool = False
    frames: int = 1
    kernel = "qdet_accpool"

    @classmethod
    def from_node(cls, model, node) -> AccPoolParams:
        a = _attrs(node)
        c, pe = _folded_channels(node, a, "NumChannels")
        vecs = list(a.get("numInputVectors", [1]))
        if len(vecs) != 3:
            raise GenerateError(f"{node.name} ({node.op_type}): numInputVectors {vecs} is not [N, H, W]")
        bits, signed, _, _ = _int_type(node, "inputDataType", a["inputDataType"])
        pixels = int(vecs[1] * vecs[2])
        obits, osigned = global_acc_type(a["inputDataType"], pixels)
        frames = int(vecs[0])
        return cls(node.name, node.op_type, pe, bits, pe, obits, frames * pixels * c // pe, frames * c // pe,
                   osigned, c, pe, pixels, signed, frames)

    def params(self) -> dict[str, int | str]:
        return {"C": self.channels, "PE": self.pe, "PIXELS": self.pixels, "IN_BITS": self.in_bits,
                "SIGNED": int(self.signed), "OUT_BITS": self.out_bits}
