"""The detector architectures: layer plans for tinydet, UltraNet and mobiledet, and ``build_model``."""

from __future__ import annotations

from collections.abc import Callable

from quant_models.models.config import Anchor, ConvSpec, DetectorConfig, plan_stride
from quant_models.models.detector import Detector
from quant_models.quantizers import BitSpec, BitSpecError, parse_bits

CHANNEL_MULTIPLE = 8  # channel counts stay multiples of 8 so PE/SIMD folding has divisors to choose from


def scale_channels(channels: int, width: float) -> int:
    """Apply a width multiplier, rounding to a multiple of 8 (at least 8).

    >>> scale_channels(64, 0.5), scale_channels(16, 0.25), scale_channels(64, 1.3)
    (32, 8, 80)
    """
    return max(CHANNEL_MULTIPLE, int(round(channels * width / CHANNEL_MULTIPLE)) * CHANNEL_MULTIPLE)


def _plan(pooled: tuple[int, ...], tail: int, depth: int, width: float) -> list[ConvSpec]:
    plan, in_ch = [], 3
    for ch in pooled:
        out = scale_channels(ch, width)
        plan.append(ConvSpec(in_ch, out, 3, pool=True))
        in_ch = out
    for _ in range(depth):
        out = scale_channels(tail, width)
        plan.append(ConvSpec(in_ch, out, 3, pool=False))
        in_ch = out
    return plan


def tinydet_plan(cfg: DetectorConfig) -> list[ConvSpec]:
    """tinydet: three pooled 3x3 blocks (16, 32, 64) then ``depth`` 3x3 blocks of 64 at stride 8."""
    return _plan((16, 32, 64), 64, cfg.depth, cfg.width)


def ultranet_plan(cfg: DetectorConfig) -> list[ConvSpec]:
    """UltraNet as published: 3->16->32->64->64 with 2x2 pooling after each, then ``depth`` (4) 64->64 blocks."""
    return _plan((16, 32, 64, 64), 64, cfg.depth, cfg.width)


# mobiledet's depthwise-separable blocks before the final resolution: (pointwise output channels, depthwise stride).
# MobileNet-v1's pattern, scaled down: every stride-2 depthwise conv is followed by a pointwise conv that widens.
MOBILEDET_STEM = 16
MOBILEDET_BLOCKS: tuple[tuple[int, int], ...] = ((32, 1), (64, 2), (64, 1), (128, 2))
MOBILEDET_TAIL = 128


def _separable(plan: list[ConvSpec], in_ch: int, out_ch: int, stride: int) -> int:
    """Append dw 3x3 (groups == channels, ``stride``) and pw 1x1 blocks to ``plan``; returns the new width."""
    plan.append(ConvSpec(in_ch, in_ch, 3, pool=False, stride=stride, groups=in_ch))
    plan.append(ConvSpec(in_ch, out_ch, 1, pool=False))
    return out_ch


def mobiledet_plan(cfg: DetectorConfig) -> list[ConvSpec]:
    """mobiledet: a stride-2 full 3x3 stem (3 -> 16), depthwise-separable blocks 32 / 64 (dw stride 2) / 64 /
    128 (dw stride 2), then ``depth`` separable blocks of 128 at stride 8. No max pooling anywhere.

    The stem is strided rather than stride 1 + pool: it is the largest feature map of the net, so striding it
    costs a quarter of the MACs of a stride-1 stem, it is how MobileNet-v1 (which FINN builds) starts, and it keeps
    the graph free of MaxPool, so the hardware needs no pool unit at all. Downsampling after the stem is by
    strided depthwise convs only, as in MobileNet.
    """
    stem = scale_channels(MOBILEDET_STEM, cfg.width)
    plan = [ConvSpec(3, stem, 3, pool=False, stride=2)]
    ch = stem
    for out, stride in MOBILEDET_BLOCKS:
        ch = _separable(plan, ch, scale_channels(out, cfg.width), stride)
    for _ in range(cfg.depth):
        ch = _separable(plan, ch, scale_channels(MOBILEDET_TAIL, cfg.width), 1)
    return plan


ARCHITECTURES: dict[str, Callable[[DetectorConfig], list[ConvSpec]]] = {
    "tinydet": tinydet_plan,
    "ultranet": ultranet_plan,
    "mobiledet": mobiledet_plan,
}

# Defaults per architecture: input size, depth, anchors.
TINYDET_ANCHORS: tuple[Anchor, ...] = ((0.08, 0.08), (0.16, 0.16), (0.30, 0.30))
ULTRANET_ANCHORS: tuple[Anchor, ...] = (  # six anchors on the 10x20 grid of a 160x320 input
    (0.05, 0.06), (0.08, 0.12), (0.12, 0.20), (0.20, 0.16), (0.25, 0.35), (0.45, 0.50),
)


def default_config(arch: str, num_classes: int, bits: str | None = "w4a4", width: float = 1.0,
                   depth: int | None = None, class_names: tuple[str, ...] = (),
                   anchors: tuple[Anchor, ...] | None = None,
                   input_size: tuple[int, int] | None = None) -> DetectorConfig:
    """The published/default configuration of ``arch`` (tinydet, mobiledet: 128x128, depth 2, tinydet's anchors;
    ultranet: 160x320, depth 4). mobiledet shares tinydet's input, stride and anchors, so the two compare head to
    head and the decode is unchanged."""
    if arch in ("tinydet", "mobiledet"):
        size, d, anc = (128, 128), 2, TINYDET_ANCHORS
    elif arch == "ultranet":
        size, d, anc = (160, 320), 4, ULTRANET_ANCHORS
    else:
        raise ValueError(f"unknown architecture {arch!r}; known: {', '.join(sorted(ARCHITECTURES))}")
    return DetectorConfig(arch=arch, num_classes=num_classes, input_size=input_size or size,
                          anchors=anchors or anc, bits=bits, width=width, depth=d if depth is None else depth,
                          class_names=class_names)


def num_conv_layers(arch: str, depth: int | None = None, width: float = 1.0) -> int:
    """Conv layers of ``arch`` at ``depth`` (default per arch), the head included: what ``l<i>`` overrides index."""
    return _layer_count(default_config(arch, 1, None, width, depth))


def _layer_count(cfg: DetectorConfig) -> int:
    return len(ARCHITECTURES[cfg.arch](cfg)) + 1


def _check_overrides(spec: BitSpec | None, text: str, arch: str, depth: int, count: int) -> None:
    for index, weight, act in () if spec is None else spec.layers:
        if index >= count:
            raise BitSpecError(f"bit spec {text!r}: override l{index}=w{weight}a{act} names no layer of {arch} "
                               f"(depth {depth}), which has {count} conv layers: l0..l{count - 1} "
                               f"(l{count - 1} is the head)")


def validate_bits(bits: str | BitSpec | None, arch: str, width: float = 1.0,
                  depth: int | None = None) -> BitSpec | None:
    """Parse ``bits`` and check its ``l<i>`` overrides against the conv layers of ``arch`` at ``width``/``depth``.

    Returns the parsed spec (None for float). Raises :class:`BitSpecError` for a bad spec or an override past the
    last layer, and ``ValueError`` for an unknown architecture; cheap, so callers run it before loading data.
    """
    spec = parse_bits(bits) if isinstance(bits, str) else bits
    cfg = default_config(arch, 1, None, width, depth)
    _check_overrides(spec, str(bits), arch, cfg.depth, _layer_count(cfg))
    return spec


def build_model(cfg: DetectorConfig) -> Detector:
    """Build the detector described by ``cfg`` (float twin when ``cfg.bits`` is None)."""
    if cfg.arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {cfg.arch!r}; known: {', '.join(sorted(ARCHITECTURES))}")
    plan = ARCHITECTURES[cfg.arch](cfg)
    # An override past the last layer would otherwise be ignored silently, and recorded as if it applied.
    _check_overrides(cfg.bit_spec, str(cfg.bits), cfg.arch, cfg.depth, len(plan) + 1)
    stride = plan_stride(plan)
    h, w = cfg.input_size
    if h % stride or w % stride:
        raise ValueError(f"input size {h}x{w} of {cfg.arch} must be a multiple of its stride {stride}")
    return Detector(cfg, plan)
