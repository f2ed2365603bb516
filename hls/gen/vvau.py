"""The typed view of FINN's ``VVAU_*`` (VectorVectorActivation, depthwise convolution MACs) for ``qdet_vvau``.

Registered in :data:`hls.gen.ops.VIEWS`; it imports only :mod:`hls.gen.ops` (which imports this module after the
names used here, so either import order works through the ``hls.gen`` package).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hls.gen.ops import (GenerateError, Layer, _attrs, _text, dtype_info, integer_thresholds, mac_params, mac_style_for,
                         ram_style_of, signed_bits_for)


@dataclass(frozen=True)
class VVAUParams(Layer):
    """``VVAU_*`` (binaryXnorMode=0): per-channel dot products over the K = K_H*K_W window, optional thresholds.

    ``weights`` is FINN's param0 reshaped to (C, K) int64 (row c, column ky*K_W + kx), ``thresholds`` the
    integer (C, STEPS) thresholds (empty without activation). ``w_bits`` is the signed width holding the weight
    type (an unsigned weight type gets one more bit: the kernel's weights are two's complement). ``acc_bits`` is
    FINN's accDataType width, widened (as :class:`hls.gen.ops.MVAUParams` does) to the signed width that holds
    the accumulator range and every clipped threshold, which the kernel compares signed; without activation it is
    the accDataType width itself, and the output keeps its signedness.
    """

    channels: int = 0
    pe: int = 1
    simd: int = 1
    k: tuple[int, int] = (1, 1)
    in_signed: bool = False
    w_bits: int = 0
    acc_bits: int = 0
    steps: int = 0
    act_bias: int = 0
    mac_style: str = "lut"
    pixels: int = 0
    weights: np.ndarray = field(default=None, repr=False, compare=False)
    thresholds: np.ndarray = field(default=None, repr=False, compare=False)
    ram_style: str = "auto"
    tree_levels: int = 0  # the generator's pipelining option (GenConfig.tree_levels)
    kernel = "qdet_vvau"
    # view_of passes the generator's MAC style policy to views that set this.
    uses_mac_policy = True

    @property
    def k_total(self) -> int:
        """Window positions per channel, K_H*K_W (the kernel's ``K``)."""
        return self.k[0] * self.k[1]

    @classmethod
    def from_node(cls, model, node, mac_policy: str = "auto") -> VVAUParams:
        """The view of one ``VVAU_hls``/``VVAU_rtl`` node; raises :class:`GenerateError` for what the kernel lacks."""
        a = _attrs(node)
        if a.get("binaryXnorMode", 0):
            raise GenerateError(f"{node.name} ({node.op_type}): binaryXnorMode is not supported")
        c, pe, simd = a["Channels"], a["PE"], a.get("SIMD", 1)
        kh, kw = a["Kernel"]
        k = kh * kw
        if c % pe or k % simd:
            raise GenerateError(f"{node.name}: PE {pe} must divide Channels {c} and SIMD {simd} must divide "
                                f"the kernel's {k} positions")
        for attr in ("inputDataType", "weightDataType", "outputDataType"):
            if "BIPOLAR" in str(a[attr]):
                raise GenerateError(f"{node.name} ({node.op_type}): {attr} BIPOLAR is not supported")
        in_bits, in_signed, _, _ = dtype_info(a["inputDataType"])
        w_type_bits, w_signed, _, _ = dtype_info(a["weightDataType"])
        out_bits, out_signed, _, _ = dtype_info(a["outputDataType"])
        acc_type_bits, acc_signed, acc_lo, acc_hi = dtype_info(a.get("accDataType", "INT32"))
        w_bits = w_type_bits if w_signed else w_type_bits + 1
        w = model.get_initializer(node.input[1])
        if w is None or tuple(w.shape) != (c, 1, kh, kw):
            raise GenerateError(f"{node.name}: weight initializer missing or not of shape ({c}, 1, {kh}, {kw})")
        if not np.array_equal(w, np.round(w)):
            raise GenerateError(f"{node.name}: weights are not integers")
        weights = np.asarray(w).astype(np.int64).reshape(c, k)
        wlo, whi = -(1 << (w_bits - 1)), (1 << (w_bits - 1)) - 1
        if weights.min() < wlo or weights.max() > whi:
            raise GenerateError(f"{node.name}: weights outside {a['weightDataType']}")
        dim_h, dim_w = a["Dim"]
        pixels = dim_h * dim_w
        steps = 0
        thresholds = np.zeros((c, 0), np.int64)
        if not a.get("noActivation", 0):
            thresholds = integer_thresholds(model.get_initializer(node.input[2]), c, acc_lo, acc_hi)
            steps = thresholds.shape[1]
            # Signed compare in the kernel: an unsigned accumulator type needs its sign bit here.
            acc_bits = signed_bits_for(min(acc_lo, int(thresholds.min())), max(acc_hi, int(thresholds.max())))
        else:
            # No comparison: the accumulator's low bits are exact in its own type, signed or not.
            acc_bits, out_bits, out_signed = acc_type_bits, acc_type_bits, acc_signed
        return cls(node.name, node.op_type, simd * pe, in_bits, pe, out_bits, pixels * (c // pe) * (k // simd),
                   pixels * (c // pe), out_signed, c, pe, simd, (kh, kw), in_signed, w_bits, acc_bits, steps,
                   int(a.get("ActVal", 0)), mac_style_for(mac_policy, in_bits, w_bits, _text(a.get("resType", "auto"))),
                   pixels, weights, thresholds, ram_style_of(a))

    def params(self) -> dict[str, int | str]:
        """The kernel's Verilog parameters, in the README's order."""
        return {"C": self.channels, "PE": self.pe, "SIMD": self.simd, "K": self.k_total, **mac_params(self)}
