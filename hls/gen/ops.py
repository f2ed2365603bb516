"""Typed views of the folded graph's nodes: one frozen dataclass per FINN op kind, built by ``from_node``.

Each view knows its qdet kernel, that kernel's parameters (hls/rtl/README.md), its stream widths in elements and
element bits, and how many beats one frame moves through its input and output. The generator works on these views
only; FINN attribute names appear nowhere else.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hls.gen.dsp import dsp_lanes, is_narrow


class GenerateError(ValueError):
    """The folded graph cannot be turned into RTL (an unsupported node, a layout the kernels do not cover)."""


def _attrs(node) -> dict[str, Any]:
    """A node's attributes as plain Python values."""
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def dtype_info(name: str) -> tuple[int, bool, int, int]:
    """(bits, signed, min, max) of a FINN DataType name such as ``UINT4``."""
    from qonnx.core.datatype import DataType

    dt = DataType[_text(name)]
    if not dt.is_integer():
        raise GenerateError(f"datatype {name} is not an integer type")
    return dt.bitwidth(), dt.signed(), int(dt.min()), int(dt.max())


@dataclass(frozen=True)
class Stream:
    """One stream port of a kernel: elements per beat, bits per element, signedness, beats per frame."""

    elems: int
    bits: int
    signed: bool
    beats: int

    @property
    def width(self) -> int:
        return self.elems * self.bits


@dataclass(frozen=True)
class Layer:
    """Common part of every view: node name, FINN op type, and the stream shape at both ends.

    ``in_elems``/``out_elems`` are elements per beat, ``in_bits``/``out_bits`` bits per element,
    ``in_beats``/``out_beats`` beats per frame.
    """

    name: str
    op_type: str
    in_elems: int
    in_bits: int
    out_elems: int
    out_bits: int
    in_beats: int
    out_beats: int
    out_signed: bool

    kernel = ""

    @property
    def in_width(self) -> int:
        return self.in_elems * self.in_bits

    @property
    def out_width(self) -> int:
        return self.out_elems * self.out_bits

    @property
    def in_streams(self) -> tuple[Stream, ...]:
        """The input ports in port order (``s_axis``; a join kernel has ``s0_axis``, ``s1_axis``, ...)."""
        return (Stream(self.in_elems, self.in_bits, False, self.in_beats),)

    @property
    def out_streams(self) -> tuple[Stream, ...]:
        """The output ports in port order (``m_axis``; a fork's packed ``m_axis`` has one stream per output)."""
        return (Stream(self.out_elems, self.out_bits, self.out_signed, self.out_beats),)

    def params(self) -> dict[str, int | str]:
        """The kernel's Verilog parameters, in the README's order."""
        raise NotImplementedError


@dataclass(frozen=True)
class FMPadParams(Layer):
    """``FMPadding_*``: zero padding around an NHWC image."""

    img_h: int = 0
    img_w: int = 0
    channels: int = 0
    simd: int = 1
    pad: tuple[int, int, int, int] = (0, 0, 0, 0)  # FINN's order: top, left, bottom, right
    kernel = "qdet_fmpad"

    @classmethod
    def from_node(cls, model, node) -> FMPadParams:
        a = _attrs(node)
        h, w = a["ImgDim"]
        c, simd = a["NumChannels"], a["SIMD"]
        bits, signed, _, _ = dtype_info(a["inputDataType"])
        t, l, b, r = a["Padding"]
        oh, ow = h + t + b, w + l + r
        return cls(node.name, node.op_type, simd, bits, simd, bits, h * w * c // simd, oh * ow * c // simd, signed,
                   h, w, c, simd, (t, l, b, r))

    def params(self) -> dict[str, int | str]:
        t, l, b, r = self.pad
        return {"IMG_H": self.img_h, "IMG_W": self.img_w, "C": self.channels, "SIMD": self.simd,
                "BITS": self.in_bits, "PAD_T": t, "PAD_L": l, "PAD_B": b, "PAD_R": r}


@dataclass(frozen=True)
class SWGParams(Layer):
    """``ConvolutionInputGenerator_*``: the sliding window (im2col) generator, standard or depthwise order."""

    ifm: tuple[int, int] = (0, 0)
    ofm: tuple[int, int] = (0, 0)
    channels: int = 0
    simd: int = 1
    k: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    dilation: tuple[int, int] = (1, 1)
    depthwise: bool = False
    parallel_window: bool = False
    kernel = "qdet_swg"

    @classmethod
    def from_node(cls, model, node) -> SWGParams:
        a = _attrs(node)
        c, simd = a["IFMChannels"], a["SIMD"]
        kh, kw = a["ConvKernelDim"]
        ih, iw = a["IFMDim"]
        oh, ow = a["OFMDim"]
        bits, signed, _, _ = dtype_info(a["inputDataType"])
        obits, osigned, _, _ = dtype_info(a.get("outputDataType", a["inputDataType"]))
        if obits != bits:
            raise GenerateError(f"{node.name} ({node.op_type}): input and output element widths differ")
        pw = bool(a.get("parallel_window", 0))
        if pw and simd != c:
            raise GenerateError(f"{node.name} ({node.op_type}): parallel_window needs SIMD == IFMChannels")
        out_elems = kh * kw * simd if pw else simd
        out_beats = oh * ow * kh * kw * c // out_elems
        return cls(node.name, node.op_type, simd, bits, out_elems, bits, ih * iw * c // simd, out_beats, osigned,
                   (ih, iw), (oh, ow), c, simd, (kh, kw), tuple(a.get("Stride", [1, 1])),
                   tuple(a.get("Dilation", [1, 1])), bool(a.get("depthwise", 0)), pw)

    def params(self) -> dict[str, int | str]:
        return {"IFM_H": self.ifm[0], "IFM_W": self.ifm[1], "C": self.channels, "SIMD": self.simd,
                "K_H": self.k[0], "K_W": self.k[1], "STRIDE_H": self.stride[0], "STRIDE_W": self.stride[1],
                "DIL_H": self.dilation[0], "DIL_W": self.dilation[1], "OFM_H": self.ofm[0], "OFM_W": self.ofm[1],
                "BITS": self.in_bits, "DEPTHWISE": int(self.depthwise), "PARALLEL_WINDOW": int(self.parallel_window)}


RAM_STYLES = ("auto", "block", "distributed", "ultra")


def ram_style_of(attrs: dict[str, Any]) -> str:
    """A weighted node's weight memory style (FINN's ``ram_style``, which qdet's folder chooses)."""
    style = _text(attrs.get("ram_style", "auto"))
    if style not in RAM_STYLES:
        raise GenerateError(f"ram_style {style!r} is not one of {', '.join(RAM_STYLES)}")
    return style


def mac_params(view) -> dict[str, int | str]:
    """The parameters the MVAU and VVAU kernels share, after their shape ones (the README's order): element types,
    accumulator, activation, memory files, MAC and memory styles, adder-tree pipelining."""
    return {"IN_BITS": view.in_bits, "IN_SIGNED": int(view.in_signed), "W_BITS": view.w_bits,
            "ACC_BITS": view.acc_bits, "STEPS": view.steps, "OUT_BITS": view.out_bits,
            "OUT_SIGNED": int(view.out_signed), "ACT_BIAS": view.act_bias, "W_FILE": f"{view.name}_w.mem",
            "T_FILE": f"{view.name}_t.mem" if view.steps else "", "MAC_STYLE": view.mac_style,
            "RAM_STYLE": view.ram_style, "TREE_LEVELS": view.tree_levels}


def mac_style_for(policy: str, in_bits: int, w_bits: int, res_type: str = "auto") -> str:
    """The MVAU's MAC_STYLE under ``policy``: "auto" follows the node's ``resType`` (FINN's attribute, which qdet's
    folder sets to "lut" or "dsp" per layer when the board has DSPs); a node left at "auto" gets "lut" when
    min(IN_BITS, W_BITS) <= 4 else "dsp" (a product with a <= 4-bit operand is a handful of shifted partial products;
    wider ones are what DSP slices are for). "lut" and "dsp" force every layer.
    """
    if policy == "auto":
        if res_type in ("lut", "dsp"):
            return res_type
        return "lut" if min(in_bits, w_bits) <= 4 else "dsp"
    if policy not in ("lut", "dsp"):
        raise GenerateError(f"unknown MAC style {policy!r}: choose auto, lut or dsp")
    return policy


def integer_thresholds(thresholds: np.ndarray, channels: int, lo: int, hi: int) -> np.ndarray:
    """FINN's float thresholds (C or 1 rows) -> int64 (channels, steps) for an integer input in [lo, hi].

    For an integer x, ``x >= t`` iff ``x >= ceil(t)``; values below ``lo`` are always met and above ``hi`` never,
    so clipping to [lo, hi + 1] keeps every comparison's result (hi + 1 may need one more bit than the input).
    """
    t = np.asarray(thresholds, dtype=np.float64)
    if t.ndim != 2:
        raise GenerateError(f"thresholds of shape {t.shape}: expected (channels, steps)")
    if t.shape[0] == 1 and channels > 1:
        t = np.broadcast_to(t, (channels, t.shape[1]))
    if t.shape[0] != channels:
        raise GenerateError(f"thresholds for {t.shape[0]} channels, the layer has {channels}")
    return np.clip(np.ceil(t), lo, hi + 1).astype(np.int64)


def signed_bits_for(lo: int, hi: int) -> int:
    """Fewest two's complement bits holding every integer in [lo, hi]."""
    bits = 1
    while not (-(1 << (bits - 1)) <= lo and hi <= (1 << (bits - 1)) - 1):
        bits += 1
    return bits


@dataclass(frozen=True)
class MVAUParams(Layer):
    """``MVAU_*`` (binaryXnorMode=0): matrix-vector product with optional multi-threshold activation.

    ``weights`` is FINN's param0 (MW, MH) as int64, ``thresholds`` the integer (MH, STEPS) thresholds (empty when
    there is no activation). ``acc_bits`` is FINN's accDataType width, plus one bit only where a threshold needs
    the value ``acc_max + 1`` (a threshold no accumulator value reaches).
    """

    mw: int = 0
    mh: int = 0
    pe: int = 1
    simd: int = 1
    in_signed: bool = False
    w_bits: int = 0
    acc_bits: int = 0
    steps: int = 0
    act_bias: int = 0
    mac_style: str = "lut"
    weights: np.ndarray = field(default=None, repr=False, compare=False)
    thresholds: np.ndarray = field(default=None, repr=False, compare=False)
    ram_style: str = "auto"
    tree_levels: int = 0  # the generator's pipelining option (GenConfig.tree_levels)
    dsp_lanes: int = 1  # MAC_STYLE "dsp": products per DSP multiplier (hls.gen.dsp)
    w_narrow: bool = False  # no weight is -2^(W_BITS-1): the packed weight words are one bit narrower
    kernel = "qdet_mvau"

    @classmethod
    def from_node(cls, model, node, mac_policy: str = "auto", family: str = "xcup") -> MVAUParams:
        """The view of an ``MVAU_*`` node; ``family`` (yosys' synth_xilinx family of the board) sets how many
        products share a DSP when the layer's MAC style is "dsp"."""
        a = _attrs(node)
        if a.get("binaryXnorMode", 0):
            raise GenerateError(f"{node.name} ({node.op_type}): binaryXnorMode is not supported")
        mw, mh, pe, simd = a["MW"], a["MH"], a["PE"], a["SIMD"]
        if mh % pe or mw % simd:
            raise GenerateError(f"{node.name}: PE {pe} must divide MH {mh} and SIMD {simd} must divide MW {mw}")
        in_bits, in_signed, _, _ = dtype_info(a["inputDataType"])
        w_type_bits, w_signed, _, _ = dtype_info(a["weightDataType"])
        # The kernel's weights are two's complement: an unsigned weight type (FINN's weight minimisation gives
        # UINTn when a layer's weights are all >= 0) needs one more bit.
        w_bits = w_type_bits if w_signed else w_type_bits + 1
        out_bits, out_signed, _, _ = dtype_info(a["outputDataType"])
        acc_bits, _, acc_lo, acc_hi = dtype_info(a["accDataType"])
        w = model.get_initializer(node.input[1])
        if w is None or tuple(w.shape) != (mw, mh):
            raise GenerateError(f"{node.name}: weight initializer missing or not of shape ({mw}, {mh})")
        if not np.array_equal(w, np.round(w)):
            raise GenerateError(f"{node.name}: weights are not integers")
        weights = np.asarray(w).astype(np.int64)
        pixels = int(np.prod(a.get("numInputVectors", [1])))
        steps = 0
        thresholds = np.zeros((mh, 0), np.int64)
        if not a.get("noActivation", 0):
            thresholds = integer_thresholds(model.get_initializer(node.input[2]), mh, acc_lo, acc_hi)
            steps = thresholds.shape[1]
            # The kernel compares signed: an unsigned accumulator type needs its sign bit here.
            acc_bits = max(acc_bits, signed_bits_for(min(acc_lo, int(thresholds.min())),
                                                     max(acc_hi, int(thresholds.max()))))
        else:
            out_bits = acc_bits
        style = mac_style_for(mac_policy, in_bits, w_bits, _text(a.get("resType", "auto")))
        narrow = is_narrow(weights, w_bits)
        lanes = dsp_lanes(in_bits, w_bits, pe, family, narrow) if style == "dsp" else 1
        return cls(node.name, node.op_type, simd, in_bits, pe, out_bits, pixels * mw // simd, pixels * mh // pe,
                   out_signed, mw, mh, pe, simd, in_signed, w_bits, acc_bits, steps, int(a.get("ActVal", 0)),
                   style, weights, thresholds, ram_style_of(a), dsp_lanes=lanes, w_narrow=narrow)

    def params(self) -> dict[str, int | str]:
        return {"MW": self.mw, "MH": self.mh, "PE": self.pe, "SIMD": self.simd, **mac_params(self),
                "DSP_LANES": self.dsp_lanes, "W_NARROW": int(self.w_narrow)}


@dataclass(frozen=True)
class ThresholdParams(Layer):
    """``Thresholding_*``: standalone multi-threshold activation; thresholds clipped to [min_in, max_in + 1]."""

    channels: int = 0
    pe: int = 1
    in_signed: bool = False
    steps: int = 0
    act_bias: int = 0
    thresholds: np.ndarray = field(default=None, repr=False, compare=False)
    kernel = "qdet_thresholding"

    @classmethod
    def from_node(cls, model, node) -> ThresholdParams:
        a = _attrs(node)
        c, pe = a["NumChannels"], a["PE"]
        in_bits, in_signed, lo, hi = dtype_info(a["inputDataType"])
        out_bits, out_signed, _, _ = dtype_info(a["outputDataType"])
        t = integer_thresholds(model.get_initializer(node.input[1]), c, lo, hi)
        pixels = int(np.prod(a.get("numInputVectors", [1])))
        return cls(node.name, node.op_type, pe, in_bits, pe, out_bits, pixels * c // pe, pixels * c // pe,
                   out_signed, c, pe, in_signed, t.shape[1], int(a.get("ActVal", 0)), t)

    def params(self) -> dict[str, int | str]:
        return {"C": self.channels, "PE": self.pe, "IN_BITS": self.in_bits, "IN_SIGNED": int(self.in_signed),
                "STEPS": self.steps, "OUT_BITS": self.out_bits, "ACT_BIAS": self.act_bias,
                "T_FILE": f"{self.name}_t.mem"}


def pool_window(a: dict) -> tuple[int, int]:
    """(K, output pixels) of a ``Pool_*`` node's attributes: the window's elements, and OutImgDims times
    BatchSize."""
    return int(np.prod(a["KernelSize"])), int(np.prod(a["OutImgDims"])) * int(a.get("BatchSize", 1))


@dataclass(frozen=True)
class PoolParams(Layer):
    """``Pool_*`` with ``Function=MaxPool``: consumes the depthwise SWG stream, K beats per channel fold."""

    channels: int = 0
    pe: int = 1
    k: int = 1
    signed: bool = False
    out_pixels: int = 0
    kernel = "qdet_maxpool"

    @classmethod
    def from_node(cls, model, node) -> Layer:
        """The view of a ``Pool_*`` node by its Function: MaxPool here, QuantAvgPool/AccPool in hls.gen.pool."""
        a = _attrs(node)
        if _text(a.get("Function", "")) in AVG_FUNCTIONS:
            return AvgPoolParams.from_node(model, node)
        if _text(a.get("Function", "")) != "MaxPool":
            raise GenerateError(f"{node.name} ({node.op_type}): Function={_text(a.get('Function', ''))} is not "
                                f"supported (MaxPool, {', '.join(AVG_FUNCTIONS)})")
        c, pe = a["Channels"], a["PE"]
        k, pixels = pool_window(a)
        bits, signed, _, _ = dtype_info(a["InputDataType"])
        return cls(node.name, node.op_type, pe, bits, pe, bits, pixels * k * c // pe, pixels * c // pe, signed, c,
                   pe, k, signed, pixels)

    def params(self) -> dict[str, int | str]:
        return {"C": self.channels, "PE": self.pe, "K": self.k, "BITS": self.in_bits, "SIGNED": int(self.signed),
                "OUT_PIXELS": self.out_pixels}


@dataclass(frozen=True)
class DWCParams(Layer):
    """A width converter: FINN's ``StreamingDataWidthConverter_*`` or one the generator inserts."""

    kernel = "qdet_dwc"

    @classmethod
    def from_node(cls, model, node) -> DWCParams:
        a = _attrs(node)
        bits, signed, _, _ = dtype_info(a["dataType"])
        iw, ow = a["inWidth"], a["outWidth"]
        if iw % bits or ow % bits:
            raise GenerateError(f"{node.name}: widths {iw}/{ow} are not whole {bits}-bit elements")
        shape = a.get("inShape", a.get("in_shape"))
        elems = int(np.prod(shape)) if shape is not None else 0
        return cls.between(node.name, iw // bits, ow // bits, bits, signed, elems, node.op_type)

    @classmethod
    def between(cls, name: str, in_elems: int, out_elems: int, bits: int, signed: bool, frame_elems: int,
                op_type: str = "inserted") -> DWCParams:
        """A converter from ``in_elems`` to ``out_elems`` elements per beat for ``frame_elems`` elements a frame."""
        return cls(name, op_type, in_elems, bits, out_elems, bits, frame_elems // in_elems,
                   frame_elems // out_elems, signed)

    def params(self) -> dict[str, int | str]:
        return {"IN_ELEMS": self.in_elems, "OUT_ELEMS": self.out_elems, "BITS": self.in_bits}


@dataclass(frozen=True)
class FIFOParams(Layer):
    """A FIFO: FINN's ``StreamingFIFO_*`` or one the generator inserts between layers."""

    depth: int = 2
    kernel = "qdet_fifo"

    @classmethod
    def from_node(cls, model, node) -> FIFOParams:
        a = _attrs(node)
        bits, signed, _, _ = dtype_info(a["dataType"])
        shape = list(a["folded_shape"])
        elems = int(shape[-1])
        beats = int(np.prod(shape[:-1]))
        return cls(node.name, node.op_type, elems, bits, elems, bits, beats, beats, signed, max(2, int(a["depth"])))

    @classmethod
    def after(cls, name: str, producer: Layer, depth: int) -> FIFOParams:
        """A FIFO carrying ``producer``'s output stream."""
        return cls(name, "inserted", producer.out_elems, producer.out_bits, producer.out_elems, producer.out_bits,
                   producer.out_beats, producer.out_beats, producer.out_signed, max(2, depth))

    def params(self) -> dict[str, int | str]:
        return {"WIDTH": self.in_width, "DEPTH": self.depth}


# The accumulating pools' views live in hls.gen.pool, which imports this module's base classes (defined above).
from hls.gen.pool import AVG_FUNCTIONS, AccPoolParams, AvgPoolParams  # noqa: E402
# Likewise the depthwise VVAU's view (hls.gen.vvau imports Layer and the helpers above), and the graph kernels'.
from hls.gen.joins import AddParams, ConcatParams, ForkParams, UpsampleParams  # noqa: E402
from hls.gen.vvau import VVAUParams  # noqa: E402

# FINN op type prefix (before _hls/_rtl) -> view. Anything else is rejected by name.
VIEWS = {
    "FMPadding": FMPadParams,
    "ConvolutionInputGenerator": SWGParams,
    "MVAU": MVAUParams,
    "Thresholding": ThresholdParams,
    "Pool": PoolParams,  # dispatches on Function: QuantAvgPool/AccPool -> hls.gen.pool.AvgPoolParams
    "StreamingDataWidthConverter": DWCParams,
    "StreamingFIFO": FIFOParams,
    "GlobalAccPool": AccPoolParams,
    "VVAU": VVAUParams,
    "DuplicateStreams": ForkParams,
    "ElementwiseAdd": AddParams,
    "StreamingConcat": ConcatParams,
    "UpsampleNearestNeighbour": UpsampleParams,
}


def view_of(model, node, mac_policy: str = "auto", family: str = "xcup") -> Layer:
    """The typed view of one folded-graph node; raises :class:`GenerateError` naming an unsupported node.
    ``family`` (the board's yosys family) sets the MVAU's DSP packing."""
    base, _, backend = node.op_type.rpartition("_")
    if backend not in ("hls", "rtl") or base not in VIEWS:
        raise GenerateError(f"node {node.name!r} has op type {node.op_type!r}, which the RTL backend does not "
                            f"support (supported: {', '.join(f'{k}_hls/_rtl' for k in VIEWS)})")
    view = VIEWS[base]
    try:
        if view is MVAUParams:
            return view.from_node(model, node, mac_policy, family)
        if getattr(view, "uses_mac_policy", False):  # VVAUParams
            return view.from_node(model, node, mac_policy)
        return view.from_node(model, node)
    except KeyError as exc:
        raise GenerateError(f"node {node.name!r} ({node.op_type}) lacks attribute {exc}") from None


def pow2_bytes_width(bits: int) -> int:
    """Smallest power-of-two number of bytes (at least one) holding ``bits``, in bits: 48 -> 64, 3 -> 8."""
    return 8 * (1 << max(0, math.ceil(math.log2(max(1, math.ceil(bits / 8))))))
