"""The house quantizers: named Brevitas quantizer classes, one per bit width, plus the bit-spec grammar.

Choices, and why:
- Weights are per-output-channel scaled (``W{n}PerChannel``). Per-channel scales keep every layer mappable to a
  FINN hardware layer and avoid the rounding ties seen with per-tensor scales (shared/toolchain.md).
  1-bit weights are bipolar {-s, +s} with a per-channel scale from weight statistics (XNOR-Net style),
  which FINN maps to BIPOLAR weights.
- Activations are unsigned per-tensor with a *learned* scale initialised from ``max_val`` (``A{n}Unsigned``).
  Brevitas' default activation quantizers collect percentile statistics at run time, which made training 58x
  slower than float on a GPU; a max-initialised parameter costs about 2x (shared/toolchain.md).
- The input quantizer passes 8-bit pixels exactly: the model divides by 255 and quantizes with a constant scale
  of 1/255, so the FINN graph input is UINT8 and the hardware sees the raw pixel values.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from brevitas.core.scaling import ScalingImplType
from brevitas.core.stats import StatsOp
from brevitas.quant import Int8WeightPerChannelFloat
from brevitas.core.function_wrapper import TensorClamp
from brevitas.core.restrict_val import RestrictValueType
from brevitas.quant.base import UintQuant
from brevitas.quant.solver import ActQuantSolver
from brevitas.quant.solver.common import ScalingPerOutputType
from brevitas.quant import Int8ActPerTensorFloatMinMaxInit, Uint8ActPerTensorFloatMaxInit
from brevitas.quant.binary import SignedBinaryWeightPerTensorConst

MIN_BITS = 1
MAX_BITS = 8
# Initial clip level of a quantized ReLU (the scale is learned from there). BatchNorm hands the ReLU roughly unit
# variance, so few levels want a low clip: with 2 bits and a clip of 6, the levels would sit at 0, 2, 4, 6 and
# almost everything would round to 0 or 2. From 4 bits on, 6 (ReLU6) leaves enough resolution.
ACT_MAX_INIT: dict[int, float] = {1: 1.0, 2: 2.0, 3: 3.0, 4: 6.0, 5: 6.0, 6: 6.0, 7: 6.0, 8: 6.0}


class W1PerChannel(SignedBinaryWeightPerTensorConst):
    """Bipolar weights {-s, +s} with a per-output-channel scale taken from the weights' average statistics."""

    scaling_impl_type = ScalingImplType.STATS
    scaling_stats_op = StatsOp.AVE
    scaling_per_output_channel = True
    scaling_min_val = 1e-8
    # Brevitas clamps binary weights *in place* by default, which changes the statistics the scale is taken
    # from on every call: export would then see other scales than training. A pure clamp keeps it idempotent.
    tensor_clamp_impl = TensorClamp


def _weight_quant(bits: int) -> type:
    attrs: dict[str, object] = {"bit_width": bits, "__module__": __name__}
    if bits == 2:
        # Narrow-range 2 bits is ternary {-s, 0, s}. A max-based scale rounds every weight under max/2 to zero
        # (most of them); the mean absolute weight puts the zero threshold near TWN's 0.7 * E|w| optimum.
        attrs["scaling_stats_op"] = StatsOp.AVE
    return type(f"W{bits}PerChannel", (Int8WeightPerChannelFloat,), attrs)


def _act_quant(bits: int) -> type:
    return type(f"A{bits}Unsigned", (Uint8ActPerTensorFloatMaxInit,), {"bit_width": bits, "__module__": __name__})


def _signed_act_quant(bits: int) -> type:
    return type(f"S{bits}Signed", (Int8ActPerTensorFloatMinMaxInit,), {"bit_width": bits, "__module__": __name__})


# Named classes, so checkpoints, logs and exported graphs say what was used (W4PerChannel, A4Unsigned, ...).
W2PerChannel = _weight_quant(2)
W3PerChannel = _weight_quant(3)
W4PerChannel = _weight_quant(4)
W5PerChannel = _weight_quant(5)
W6PerChannel = _weight_quant(6)
W7PerChannel = _weight_quant(7)
W8PerChannel = _weight_quant(8)
A1Unsigned = _act_quant(1)
A2Unsigned = _act_quant(2)
A3Unsigned = _act_quant(3)
A4Unsigned = _act_quant(4)
A5Unsigned = _act_quant(5)
A6Unsigned = _act_quant(6)
A7Unsigned = _act_quant(7)
A8Unsigned = _act_quant(8)


# Signed activations between the linear factors of a low-rank layer (no ReLU there). A learned per-tensor scale,
# initialised by the factorization from the factors' measured range, as the unsigned ones: no run-time statistics.
S2Signed = _signed_act_quant(2)
S3Signed = _signed_act_quant(3)
S4Signed = _signed_act_quant(4)
S5Signed = _signed_act_quant(5)
S6Signed = _signed_act_quant(6)
S7Signed = _signed_act_quant(7)
S8Signed = _signed_act_quant(8)


class Uint8Pixel(UintQuant, ActQuantSolver):
    """8-bit unsigned input with the constant scale 1/255: ``x/255`` quantizes back to the exact pixel value."""

    bit_width = 8
    scaling_impl_type = ScalingImplType.CONST
    scaling_const = 1.0  # the largest representable value; the scale is scaling_const / 255
    max_val = 1.0  # the activation solver asks for it even with constant scaling
    min_val = 0.0
    restrict_scaling_type = RestrictValueType.FP
    scaling_per_output_type = ScalingPerOutputType.TENSOR


WEIGHT_QUANTIZERS: dict[int, type] = {
    1: W1PerChannel, 2: W2PerChannel, 3: W3PerChannel, 4: W4PerChannel,
    5: W5PerChannel, 6: W6PerChannel, 7: W7PerChannel, 8: W8PerChannel,
}
ACT_QUANTIZERS: dict[int, type] = {
    1: A1Unsigned, 2: A2Unsigned, 3: A3Unsigned, 4: A4Unsigned,
    5: A5Unsigned, 6: A6Unsigned, 7: A7Unsigned, 8: A8Unsigned,
}
SIGNED_ACT_QUANTIZERS: dict[int, type] = {
    2: S2Signed, 3: S3Signed, 4: S4Signed, 5: S5Signed, 6: S6Signed, 7: S7Signed, 8: S8Signed,
}


class BitSpecError(ValueError):
    """A bit-width spec that cannot be parsed (the message shows the grammar) or that names a layer the model
    does not have (the message names the override and the valid range)."""


GRAMMAR = (
    "'float', or 'w<W>a<A>' optionally followed by comma-separated overrides: "
    "'first=<W>' (first conv's weights), 'last=<W>' (head conv's weights), "
    "'l<i>=w<W>a<A>' (conv layer i, 0-based); bit widths 1..8. Example: 'w4a4,first=8,last=8'"
)


@dataclass(frozen=True)
class LayerBits:
    """Bit widths of one conv layer: its weights and its output activation (None for the head)."""

    weight: int
    act: int | None


@dataclass(frozen=True)
class BitSpec:
    """Per-layer (mixed) precision of a detector. ``None`` in a model config means the float twin."""

    weight: int
    act: int
    first: int | None = None
    last: int | None = None
    layers: tuple[tuple[int, int, int], ...] = ()  # (layer index, weight bits, act bits), sorted
    input_bits: int = 8

    def layer_bits(self, index: int, num_layers: int) -> LayerBits:
        """Bits of conv ``index`` out of ``num_layers`` (the last one is the head, which has no activation)."""
        weight, act = self.weight, self.act
        for i, w, a in self.layers:
            if i == index:
                weight, act = w, a
        if index == 0 and self.first is not None:
            weight = self.first
        is_head = index == num_layers - 1
        if is_head and self.last is not None:
            weight = self.last
        return LayerBits(weight=weight, act=None if is_head else act)

    def __str__(self) -> str:
        parts = [f"w{self.weight}a{self.act}"]
        if self.first is not None:
            parts.append(f"first={self.first}")
        if self.last is not None:
            parts.append(f"last={self.last}")
        parts += [f"l{i}=w{w}a{a}" for i, w, a in self.layers]
        return ",".join(parts)


_WA = re.compile(r"^w([0-9]+)a([0-9]+)$")


def _bits(value: str, spec: str) -> int:
    if not value.isdigit() or not MIN_BITS <= int(value) <= MAX_BITS:
        raise BitSpecError(f"bad bit width {value!r} in {spec!r}; expected {GRAMMAR}")
    return int(value)


def _wa(text: str, spec: str) -> tuple[int, int]:
    match = _WA.match(text)
    if not match:
        raise BitSpecError(f"cannot parse {text!r} in {spec!r}; expected {GRAMMAR}")
    return _bits(match.group(1), spec), _bits(match.group(2), spec)


def parse_bits(spec: str) -> BitSpec | None:
    """Parse a bit spec such as ``w4a4`` or ``w4a4,first=8,last=8``; ``float`` gives None.

    >>> str(parse_bits("W4A4, last=8, first=8"))
    'w4a4,first=8,last=8'
    >>> parse_bits("w2a2").layer_bits(0, 3)
    LayerBits(weight=2, act=2)
    """
    text = spec.strip().lower().replace(" ", "")
    if text in ("float", "fp32", "none"):
        return None
    head, *overrides = text.split(",")
    weight, act = _wa(head, spec)
    first = last = None
    layers: dict[int, tuple[int, int]] = {}
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise BitSpecError(f"override {item!r} in {spec!r} has no '='; expected {GRAMMAR}")
        if key == "first":
            first = _bits(value, spec)
        elif key == "last":
            last = _bits(value, spec)
        elif re.fullmatch(r"l[0-9]+", key):
            layers[int(key[1:])] = _wa(value, spec)
        else:
            raise BitSpecError(f"unknown override {key!r} in {spec!r}; expected {GRAMMAR}")
    return BitSpec(weight, act, first, last, tuple((i, w, a) for i, (w, a) in sorted(layers.items())))
