"""The detector architectures: layer plans for tinydet, UltraNet, mobiledet and tinyyolo, and ``build_model``."""

from __future__ import annotations

from collections.abc import Callable

from quant_models.models.config import Anchor, ConvSpec, DetectorConfig, apply_channels, plan_stride, scale_channels
from quant_models.models.detector import Detector
from quant_models.models.tinyyolo import TINYYOLO_STRIDES, TinyYolo, borrowed_acts, tinyyolo_layout, tinyyolo_plan
from quant_models.quantizers import BitSpec, BitSpecError, parse_bits

Model = Detector | TinyYolo  # what build_model returns


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


def _chain(plan: Callable[[DetectorConfig], list[ConvSpec]]) -> Callable[[DetectorConfig], list[ConvSpec]]:
    """A chain architecture's plan with the config's explicit channels (a pruned model's) applied."""
    def planned(cfg: DetectorConfig) -> list[ConvSpec]:
        return apply_channels(plan(cfg), cfg.channels)
    planned.__doc__ = plan.__doc__
    return planned


# Each returns the backbone plan of a config, its explicit (pruned) channels included.
ARCHITECTURES: dict[str, Callable[[DetectorConfig], list[ConvSpec]]] = {
    "tinydet": _chain(tinydet_plan),
    "ultranet": _chain(ultranet_plan),
    "mobiledet": _chain(mobiledet_plan),
    "tinyyolo": tinyyolo_plan,
}
# Output strides of the multi-scale architectures, in output order; the others have one output.
HEAD_STRIDES: dict[str, tuple[int, ...]] = {"tinyyolo": TINYYOLO_STRIDES}

# Defaults per architecture: input size, depth, anchors.
TINYDET_ANCHORS: tuple[Anchor, ...] = ((0.08, 0.08), (0.16, 0.16), (0.30, 0.30))
ULTRANET_ANCHORS: tuple[Anchor, ...] = (  # six anchors on the 10x20 grid of a 160x320 input
    (0.05, 0.06), (0.08, 0.12), (0.12, 0.20), (0.20, 0.16), (0.25, 0.35), (0.45, 0.50),
)
TINYYOLO_ANCHORS: tuple[Anchor, ...] = (  # output order: stride 16's three (larger), then stride 8's
    (0.20, 0.20), (0.28, 0.28), (0.40, 0.40), (0.06, 0.06), (0.10, 0.10), (0.14, 0.14),
)


def default_config(arch: str, num_classes: int, bits: str | None = "w4a4", width: float = 1.0,
                   depth: int | None = None, class_names: tuple[str, ...] = (),
                   anchors: tuple[Anchor, ...] | None = None,
                   input_size: tuple[int, int] | None = None) -> DetectorConfig:
    """The published/default configuration of ``arch`` (tinydet, mobiledet: 128x128, depth 2, tinydet's anchors;
    ultranet: 160x320, depth 4; tinyyolo: 128x128, one residual block per stage, three anchors on each of its
    stride-16 and stride-8 outputs). mobiledet shares tinydet's input, stride and anchors, so the two compare head
    to head and the decode is unchanged."""
    if arch in ("tinydet", "mobiledet"):
        size, d, anc = (128, 128), 2, TINYDET_ANCHORS
    elif arch == "ultranet":
        size, d, anc = (160, 320), 4, ULTRANET_ANCHORS
    elif arch == "tinyyolo":
        size, d, anc = (128, 128), 1, TINYYOLO_ANCHORS
    else:
        raise ValueError(f"unknown architecture {arch!r}; known: {', '.join(sorted(ARCHITECTURES))}")
    return DetectorConfig(arch=arch, num_classes=num_classes, input_size=input_size or size,
                          anchors=anchors or anc, bits=bits, width=width, depth=d if depth is None else depth,
                          class_names=class_names, head_strides=HEAD_STRIDES.get(arch, ()))


def num_conv_layers(arch: str, depth: int | None = None, width: float = 1.0) -> int:
    """Conv layers of ``arch`` at ``depth`` (default per arch), the head included: what ``l<i>`` overrides index."""
    return _layer_count(default_config(arch, 1, None, width, depth))


def _layer_count(cfg: DetectorConfig) -> int:
    return len(ARCHITECTURES[cfg.arch](cfg)) + cfg.num_heads


def _check_overrides(spec: BitSpec | None, text: str, cfg: DetectorConfig, count: int) -> None:
    heads = (f"l{count - 1} is the head" if cfg.num_heads == 1
             else f"l{count - cfg.num_heads}..l{count - 1} are the heads")
    for index, weight, act in () if spec is None else spec.layers:
        if index >= count:
            raise BitSpecError(f"bit spec {text!r}: override l{index}=w{weight}a{act} names no layer of {cfg.arch} "
                               f"(depth {cfg.depth}), which has {count} conv layers: l0..l{count - 1} ({heads})")
    if cfg.arch == "tinyyolo":
        problems = borrowed_acts(spec, tinyyolo_layout(cfg))
        if problems:
            raise BitSpecError(f"bit spec {text!r}: {'; '.join(problems)} (an Add or Concat needs one scale on "
                               "both inputs)")


def validate_bits(bits: str | BitSpec | None, arch: str, width: float = 1.0,
                  depth: int | None = None) -> BitSpec | None:
    """Parse ``bits`` and check its ``l<i>`` overrides against the conv layers of ``arch`` at ``width``/``depth``.

    Returns the parsed spec (None for float). Raises :class:`BitSpecError` for a bad spec or an override past the
    last layer, and ``ValueError`` for an unknown architecture; cheap, so callers run it before loading data.
    """
    spec = parse_bits(bits) if isinstance(bits, str) else bits
    cfg = default_config(arch, 1, None, width, depth)
    _check_overrides(spec, str(bits), cfg, _layer_count(cfg))
    return spec


def build_model(cfg: DetectorConfig) -> Model:
    """Build the detector described by ``cfg`` (float twin when ``cfg.bits`` is None): a :class:`Detector`, or
    for tinyyolo a :class:`TinyYolo` (two outputs)."""
    if cfg.arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {cfg.arch!r}; known: {', '.join(sorted(ARCHITECTURES))}")
    expected = HEAD_STRIDES.get(cfg.arch, ())
    if cfg.head_strides != expected:
        raise ValueError(f"{cfg.arch} has head_strides {expected}, the config says {cfg.head_strides}")
    plan = ARCHITECTURES[cfg.arch](cfg)
    for factor in cfg.factors:
        if factor.layer >= len(plan):
            raise ValueError(f"factorized layer l{factor.layer} is not a backbone layer of {cfg.arch} (l0..l"
                             f"{len(plan) - 1}; the heads stay full rank)")
    # An override past the last layer would otherwise be ignored silently, and recorded as if it applied.
    _check_overrides(cfg.bit_spec, str(cfg.bits), cfg, len(plan) + cfg.num_heads)
    stride = plan_stride(plan)
    h, w = cfg.input_size
    if h % stride or w % stride:
        raise ValueError(f"input size {h}x{w} of {cfg.arch} must be a multiple of its stride {stride}")
    if cfg.arch == "tinyyolo":
        return TinyYolo(cfg, tinyyolo_layout(cfg))
    return Detector(cfg, plan)
