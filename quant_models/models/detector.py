"""One detector module for every architecture: input quantizer, conv-BN-act(-pool) blocks, a 1x1 conv head.

The graph is FINN-friendly by construction: a quantized input (8-bit pixels), convolutions without bias (full,
strided, or depthwise with groups == channels) followed by BatchNorm and a quantized ReLU, 2x2 max pooling, and a
final conv whose float scale and bias are applied on the host. Every backbone block, whatever its conv, is a
:class:`ConvBlock` in ``Detector.layers`` with its activation at ``.act``: the flow's layer-level diagnosis hooks
there, and bit-spec layer ``l<i>`` is ``layers[i]``. The float twin (``bits=None``) has the same module names, so
a float checkpoint loads into a quantized model for QAT fine-tuning.
"""

from __future__ import annotations

import math

import torch
from brevitas.nn import QuantConv2d, QuantIdentity, QuantReLU
from torch import nn

from quant_models.models.config import ConvSpec, DetectorConfig, Factor, check_factor, plan_stride
from quant_models.quantizers import (ACT_MAX_INIT, ACT_QUANTIZERS, SIGNED_ACT_QUANTIZERS, WEIGHT_QUANTIZERS,
                                     Uint8Pixel)

PIXEL_MAX = 255.0


class ConvBlock(nn.Module):
    """conv (no bias; optionally strided or grouped) -> BN -> (quantized) ReLU -> optional 2x2 max pool."""

    def __init__(self, spec: ConvSpec, weight_bits: int | None, act_bits: int | None) -> None:
        super().__init__()
        # 'same' padding: a stride-s conv of an input divisible by s gives exactly input / s outputs per side.
        geometry = {"padding": spec.kernel // 2, "stride": spec.stride, "groups": spec.groups, "bias": False}
        if weight_bits is None:
            self.conv: nn.Module = nn.Conv2d(spec.in_ch, spec.out_ch, spec.kernel, **geometry)
        else:
            self.conv = QuantConv2d(spec.in_ch, spec.out_ch, spec.kernel, weight_quant=WEIGHT_QUANTIZERS[weight_bits],
                                    **geometry)
        self.bn = nn.BatchNorm2d(spec.out_ch)
        if act_bits is None:
            self.act: nn.Module = nn.ReLU()
        else:
            self.act = QuantReLU(act_quant=ACT_QUANTIZERS[act_bits], max_val=ACT_MAX_INIT[act_bits])
        self.pool: nn.Module = nn.MaxPool2d(2) if spec.pool else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.act(self.bn(self.conv(x))))


def _conv(in_ch: int, out_ch: int, kernel: int, weight_bits: int | None, stride: int = 1) -> nn.Module:
    geometry = {"padding": kernel // 2, "stride": stride, "bias": False}
    if weight_bits is None:
        return nn.Conv2d(in_ch, out_ch, kernel, **geometry)
    return QuantConv2d(in_ch, out_ch, kernel, weight_quant=WEIGHT_QUANTIZERS[weight_bits], **geometry)


MID_RANGE_INIT = 4.0  # initial +-range of a factor's signed quantizer; the factorization sets the measured one


class LowRankBlock(nn.Module):
    """A :class:`ConvBlock` whose conv is replaced by low-rank factors (see :class:`Factor`), then BN -> act ->
    pool as before. ``convs`` are the factors in order; ``mids[i]`` quantizes (signed) the output of
    ``convs[i]`` for every factor but the last. The block's activation stays at ``.act``."""

    def __init__(self, spec: ConvSpec, factor: Factor, weight_bits: int | None, act_bits: int | None) -> None:
        super().__init__()
        check_factor(factor, spec)
        k, s = spec.kernel, spec.stride
        if factor.kind == "svd":
            r, = factor.ranks
            shapes = [(spec.in_ch, r, k, s), (r, spec.out_ch, 1, 1)]
        else:
            r1, r2 = factor.ranks
            shapes = [(spec.in_ch, r1, 1, 1), (r1, r2, k, s), (r2, spec.out_ch, 1, 1)]
        self.convs = nn.ModuleList(_conv(i, o, kk, weight_bits, st) for i, o, kk, st in shapes)
        mid_bits = None if act_bits is None else (factor.bits or max(2, act_bits))
        self.mids = nn.ModuleList(
            nn.Identity() if mid_bits is None else
            QuantIdentity(act_quant=SIGNED_ACT_QUANTIZERS[mid_bits], min_val=-MID_RANGE_INIT, max_val=MID_RANGE_INIT)
            for _ in shapes[:-1])
        self.bn = nn.BatchNorm2d(spec.out_ch)
        self.act: nn.Module = nn.ReLU() if act_bits is None else QuantReLU(act_quant=ACT_QUANTIZERS[act_bits],
                                                                          max_val=ACT_MAX_INIT[act_bits])
        self.pool: nn.Module = nn.MaxPool2d(2) if spec.pool else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv, mid in zip(self.convs, self.mids):
            x = mid(conv(x))
        return self.pool(self.act(self.bn(self.convs[-1](x))))


def make_block(spec: ConvSpec, factor: Factor | None, weight_bits: int | None,
               act_bits: int | None) -> ConvBlock | LowRankBlock:
    """The block of one backbone layer: a :class:`ConvBlock`, or a :class:`LowRankBlock` where ``factor`` says."""
    if factor is None:
        return ConvBlock(spec, weight_bits, act_bits)
    return LowRankBlock(spec, factor, weight_bits, act_bits)


class Detector(nn.Module):
    """A single-scale YOLO-style detector. Input: float pixels in [0, 255], (B, 3, H, W).

    Output: raw head maps (B, anchors * (5 + classes), H / stride, W / stride); decode them with
    ``quant_models.decode``.
    """

    def __init__(self, cfg: DetectorConfig, plan: list[ConvSpec]) -> None:
        super().__init__()
        self.cfg = cfg
        self.plan = tuple(plan)
        spec = cfg.bit_spec
        num_convs = len(plan) + 1  # + head
        if spec is None:
            self.input_quant: nn.Module = nn.Identity()
        else:
            self.input_quant = QuantIdentity(act_quant=Uint8Pixel)
        blocks = []
        for i, conv in enumerate(plan):
            bits = None if spec is None else spec.layer_bits(i, num_convs)
            blocks.append(make_block(conv, cfg.factor_of(i), None if bits is None else bits.weight,
                                     None if bits is None else bits.act))
        self.layers = nn.ModuleList(blocks)
        in_ch = plan[-1].out_ch
        if spec is None:
            self.head: nn.Module = nn.Conv2d(in_ch, cfg.head_channels, 1, bias=True)
        else:
            head_bits = spec.layer_bits(num_convs - 1, num_convs).weight
            # Float bias, no bias quantizer: the head's scale and bias are applied on the host (decode), and
            # qonnx 1.0.0 cannot extract an Int32Bias (shared/toolchain.md).
            self.head = QuantConv2d(in_ch, cfg.head_channels, 1, bias=True, weight_quant=WEIGHT_QUANTIZERS[head_bits])
        self._init_head_bias()

    @property
    def stride(self) -> int:
        return plan_stride(self.plan)

    @property
    def grid_size(self) -> tuple[int, int]:
        h, w = self.cfg.input_size
        return h // self.stride, w // self.stride

    def _init_head_bias(self) -> None:
        # Start objectness near the prior of ~1 object per 100 cells, and classes near uniform, as YOLO does:
        # without it the first epochs are spent learning that almost every cell is background.
        with torch.no_grad():
            bias = self.head.bias.view(self.cfg.num_anchors, 5 + self.cfg.num_classes)
            bias.zero_()
            bias[:, 4] = math.log(1 / 100)
            bias[:, 5:] = math.log(1 / max(self.cfg.num_classes, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.input_quant(x / PIXEL_MAX)
        for block in self.layers:
            x = block(x)
        return self.head(x)

    @property
    def is_quantized(self) -> bool:
        return self.cfg.bits is not None

    @property
    def num_outputs(self) -> int:
        """One head map (a multi-scale model such as TinyYolo returns a tuple of several)."""
        return 1

    def head_scale_bias(self, index: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-channel float scale and bias that turn the head's integer accumulators into its float output.

        ``output = acc * scale + bias``; ``acc`` is what the hardware computes. Only for quantized models.
        ``index`` is the head (always 0 here: the signature is the one of multi-head models).
        """
        if index != 0:
            raise IndexError(f"{self.cfg.arch} has one head, got head {index}")
        if not self.is_quantized:
            raise ValueError("a float model has no integer head accumulators; train it with a bit spec")
        act_scale = self.layers[-1].act.act_quant.scale().detach().reshape(())
        weight_scale = self.head.quant_weight().scale.detach().reshape(-1)
        return act_scale * weight_scale, self.head.bias.detach().reshape(-1).clone()

    def head_accumulators(self, output: torch.Tensor, index: int = 0) -> torch.Tensor:
        """Recover the integer head accumulators from a float head output (exact up to float rounding)."""
        scale, bias = self.head_scale_bias(index)
        shape = (1, -1, 1, 1)
        return torch.round((output - bias.view(shape)) / scale.view(shape))
