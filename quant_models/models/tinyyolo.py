"""tinyyolo: a YOLOv3-tiny-style detector in miniature, with residual blocks, an FPN-style neck and two heads.

The graph (width 1, depth 1; every conv is conv (no bias) -> BN -> (quantized) ReLU, ``pool`` a 2x2 max pool)::

    l0  stem0     3 -> 16   3x3, pool                      stride 2
    l1  stem1    16 -> 32   3x3, pool                      stride 4
    l2  down8    32 -> 64   3x3 stride 2       act Q8      stride 8    (residual stage entry)
    l3  res8.0a  64 -> 32   1x1
    l4  res8.0b  32 -> 64   3x3                act Q8      (f(x) leaves through x's quantizer)
        p8 = sum8.0(x + f(x))                  act S8      (a fresh quantizer after the Add)
    l5  down16   64 -> 128  3x3 stride 2       act Q16     stride 16
    l6  res16.0a 128 -> 64  1x1
    l7  res16.0b 64 -> 128  3x3                act Q16
        p16 = sum16.0(x + f(x))                act S16
    l8  lateral  128 -> 64  1x1 on p16         act S8      (the quantizer of p8: concat's inputs share a scale)
        cat(Upsample x2 nearest (lateral), p8)             -> 128 channels at stride 8
    l9  fuse     128 -> 64  3x3
    l10 head16   128 -> A * (5 + C)  1x1 on p16   output 0 (stride 16, the larger anchors)
    l11 head8     64 -> A * (5 + C)  1x1 on fuse  output 1 (stride 8, the smaller anchors)

``depth`` is the number of residual blocks per stage (default 1); each block's input and its f(x) come out of one
quantizer and its sum goes through a fresh one.

Why the shared quantizers: FINN only streamlines an Add (and a Concat) whose inputs carry the same scale, so both
inputs of each Add, and both inputs of the Concat, come from *one* activation quantizer instance (called twice,
it exports as two Quant nodes with the same scale initialiser). Downsampling into a residual stage is a strided
conv (as in Darknet-53), not conv + pool, so the tensor entering the block comes straight out of a quantizer; a
max pool between them would leave a MaxPool, not a Quant, at the Add's input.

Bits: bit-spec layer ``l<i>`` is ``layers[i]``; the heads are the last two indices (``last=`` applies to both).
Every quantizer of a stage's residual trunk (the sums, the blocks' second convs, and for stride 8 also the lateral
conv) has the activation bits of the stage's downsampling conv; an override giving one of those layers other
activation bits is refused (:func:`borrowed_acts`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from brevitas.nn import QuantConv2d, QuantIdentity, QuantReLU
from torch import nn

from quant_models.models.config import ConvSpec, DetectorConfig, scale_channels
from quant_models.models.detector import PIXEL_MAX, make_block
from quant_models.quantizers import ACT_MAX_INIT, ACT_QUANTIZERS, WEIGHT_QUANTIZERS, BitSpec, LayerBits, Uint8Pixel

TINYYOLO_STRIDES = (16, 8)  # output strides, in output order
STEM = (16, 32)  # pooled 3x3 stem convs, strides 2 and 4
STAGES = (64, 128)  # channels of the stride-8 and stride-16 residual stages
NECK = 64  # lateral and fuse conv channels


@dataclass(frozen=True)
class YoloLayer:
    """One conv block of tinyyolo: its role's name, its conv, and where it sits in the graph.

    ``in_stride`` is the stride of its input; ``input_from`` the layer whose activation bits its input carries
    (None: the 8-bit pixels); ``act_from`` the layer whose activation bits its own output takes, as it leaves
    through a quantizer of that layer's residual trunk (None: its own quantizer and bits)."""

    name: str
    conv: ConvSpec
    in_stride: int
    input_from: int | None
    act_from: int | None = None

    @property
    def out_stride(self) -> int:
        """Stride of the conv's own output (before any pool): what its MACs are counted at."""
        return self.in_stride * self.conv.stride


@dataclass(frozen=True)
class YoloLayout:
    """Where each part of tinyyolo sits in its layer list."""

    layers: tuple[YoloLayer, ...]
    down8: int
    down16: int
    res8: tuple[tuple[int, int], ...]  # (first, second) conv of each residual block at stride 8
    res16: tuple[tuple[int, int], ...]
    lateral: int
    fuse: int
    head_inputs: tuple[int, int]  # the layer whose activation bits each head's input carries, in output order

    @property
    def num_convs(self) -> int:
        """Conv layers, both heads included: what bit-spec ``l<i>`` indexes."""
        return len(self.layers) + 2

    @property
    def head_indices(self) -> tuple[int, int]:
        """Bit-spec indices of the heads, in output order."""
        return len(self.layers), len(self.layers) + 1


def tinyyolo_layout(cfg: DetectorConfig) -> YoloLayout:
    """The layer list of tinyyolo at ``cfg.width`` / ``cfg.depth`` (residual blocks per stage), with the config's
    explicit channels (a pruned model's) where it has them. Channels that meet at an Add are one group: a block's
    second conv must output its stage trunk's channels (the downsampling conv's)."""
    layers: list[YoloLayer] = []
    explicit = cfg.channels
    count = len(STEM) + len(STAGES) * (1 + 2 * cfg.depth) + 2
    if explicit and len(explicit) != count:
        raise ValueError(f"the channel plan has {len(explicit)} entries for tinyyolo's {count} backbone layers")

    def add(name: str, in_ch: int, out_ch: int, kernel: int, in_stride: int, input_from: int | None, *,
            pool: bool = False, conv_stride: int = 1, act_from: int | None = None) -> int:
        out_ch = explicit[len(layers)] if explicit else out_ch
        conv = ConvSpec(in_ch, out_ch, kernel, pool, conv_stride)
        layers.append(YoloLayer(name, conv, in_stride, input_from, act_from))
        return len(layers) - 1

    def out(index: int) -> int:
        return layers[index].conv.out_ch

    ch, stride, last = 3, 1, None
    for i, width in enumerate(STEM):
        last = add(f"stem{i}", ch, scale_channels(width, cfg.width), 3, stride, last, pool=True)
        ch, stride = out(last), stride * 2
    downs, blocks = [], []
    for stage_ch in STAGES:
        down = add(f"down{stride * 2}", ch, scale_channels(stage_ch, cfg.width), 3, stride, last, conv_stride=2)
        stride *= 2
        trunk = out(down)
        pairs = []
        for k in range(cfg.depth):
            # Every tensor of the trunk (block inputs, f(x) outputs, sums) carries the downsampling conv's bits.
            a = add(f"res{stride}.{k}a", trunk, scale_channels(stage_ch // 2, cfg.width), 1, stride, down)
            b = add(f"res{stride}.{k}b", out(a), trunk, 3, stride, a, act_from=down)
            if out(b) != trunk:
                raise ValueError(f"layer l{b} ({layers[b].name}) outputs {out(b)} channels but is added to its "
                                 f"stage's trunk of {trunk} (l{down}, {layers[down].name}): channels that meet "
                                 "at an Add are pruned together")
            pairs.append((a, b))
        downs.append(down)
        blocks.append(tuple(pairs))
        ch, last = trunk, down
    lateral = add("lateral", ch, scale_channels(NECK, cfg.width), 1, stride, downs[1], act_from=downs[0])
    fuse = add("fuse", out(lateral) + out(downs[0]), scale_channels(NECK, cfg.width), 3, stride // 2, downs[0])
    return YoloLayout(tuple(layers), downs[0], downs[1], blocks[0], blocks[1], lateral, fuse, (downs[1], fuse))


def tinyyolo_plan(cfg: DetectorConfig) -> list[ConvSpec]:
    """tinyyolo's conv blocks in bit-spec order (the heads excluded): see the module docstring."""
    return [layer.conv for layer in tinyyolo_layout(cfg).layers]


def layer_bits(spec: BitSpec, layout: YoloLayout, index: int) -> LayerBits:
    """Bits of conv ``index`` (a head: act None; a layer with ``act_from``: its owner's activation bits)."""
    heads = layout.head_indices
    if index in heads:  # either head is 'last'
        return spec.layer_bits(index, index + 1)
    own = spec.layer_bits(index, layout.num_convs)
    owner = layout.layers[index].act_from
    if owner is None:
        return own
    return LayerBits(own.weight, spec.layer_bits(owner, layout.num_convs).act)


def borrowed_acts(spec: BitSpec | None, layout: YoloLayout) -> list[str]:
    """The ``l<i>`` overrides that would give a layer other activation bits than the quantizer it shares: each
    as a message naming the owner. Empty when the spec is consistent."""
    problems = []
    for index, _, act in () if spec is None else spec.layers:
        if index >= len(layout.layers) or layout.layers[index].act_from is None:
            continue
        owner = layout.layers[index].act_from
        owner_act = spec.layer_bits(owner, layout.num_convs).act
        if act != owner_act:
            problems.append(f"l{index} ({layout.layers[index].name}) shares the activation quantizer of "
                            f"l{owner} ({layout.layers[owner].name}), whose activation is {owner_act}-bit: give "
                            f"l{index} a{owner_act}, or change l{owner}")
    return problems


def _act(bits: int | None) -> nn.Module:
    if bits is None:
        return nn.ReLU()
    return QuantReLU(act_quant=ACT_QUANTIZERS[bits], max_val=ACT_MAX_INIT[bits])


class TinyYolo(nn.Module):
    """Two-scale YOLO-style detector. Input: float pixels in [0, 255], (B, 3, H, W), H and W multiples of 16.

    Output: a tuple of raw head maps in ``cfg.head_strides`` order, (stride 16, stride 8); output ``i`` has
    ``cfg.head_channels`` channels and the anchors ``cfg.anchor_sets[i]``. Decode with
    ``quant_models.decode.decode_heads``.
    """

    def __init__(self, cfg: DetectorConfig, layout: YoloLayout) -> None:
        super().__init__()
        self.cfg = cfg
        self.layout = layout
        self.plan = tuple(layer.conv for layer in layout.layers)
        spec = cfg.bit_spec
        self.input_quant: nn.Module = nn.Identity() if spec is None else QuantIdentity(act_quant=Uint8Pixel)
        blocks = []
        for i, layer in enumerate(layout.layers):
            bits = None if spec is None else layer_bits(spec, layout, i)
            blocks.append(make_block(layer.conv, cfg.factor_of(i), None if bits is None else bits.weight,
                                     None if bits is None else bits.act))
        self.layers = nn.ModuleList(blocks)
        # The residual sums' quantizers, stride 8's blocks first: each has its stage's downsampling conv's bits.
        sums = []
        for down, pairs in ((layout.down8, layout.res8), (layout.down16, layout.res16)):
            act_bits = None if spec is None else layer_bits(spec, layout, down).act
            sums += [_act(act_bits) for _ in pairs]
        self.sums = nn.ModuleList(sums)
        # Sharing: a block's second conv leaves through the quantizer of the block's input; the lateral conv
        # through the quantizer of p8 (the last sum at stride 8, or down8's own when depth is 0).
        for stage, (down, pairs) in enumerate(((layout.down8, layout.res8), (layout.down16, layout.res16))):
            entry = self.layers[down].act
            for k, (_, second) in enumerate(pairs):
                self.layers[second].act = entry
                entry = self.sums[stage * len(layout.res8) + k]
            if stage == 0:
                self.layers[layout.lateral].act = entry
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        heads = []
        in_chs = (layout.layers[layout.down16].conv.out_ch, layout.layers[layout.fuse].conv.out_ch)
        for index, in_ch in zip(layout.head_indices, in_chs):
            if spec is None:
                heads.append(nn.Conv2d(in_ch, cfg.head_channels, 1, bias=True))
            else:
                # Float bias, no bias quantizer, as Detector's head: scale and bias are applied on the host.
                heads.append(QuantConv2d(in_ch, cfg.head_channels, 1, bias=True,
                                         weight_quant=WEIGHT_QUANTIZERS[layer_bits(spec, layout, index).weight]))
        self.heads = nn.ModuleList(heads)
        self._init_head_bias()

    def _init_head_bias(self) -> None:
        # As Detector: objectness near a prior of ~1 object per 100 cells, classes near uniform.
        per_head = self.cfg.anchors_per_head
        with torch.no_grad():
            for head in self.heads:
                bias = head.bias.view(per_head, 5 + self.cfg.num_classes)
                bias.zero_()
                bias[:, 4] = math.log(1 / 100)
                bias[:, 5:] = math.log(1 / max(self.cfg.num_classes, 2))

    @property
    def num_outputs(self) -> int:
        return len(self.heads)

    @property
    def strides(self) -> tuple[int, ...]:
        """Stride of each output, in output order."""
        return self.cfg.head_strides

    @property
    def grid_sizes(self) -> tuple[tuple[int, int], ...]:
        h, w = self.cfg.input_size
        return tuple((h // s, w // s) for s in self.strides)

    @property
    def is_quantized(self) -> bool:
        return self.cfg.bits is not None

    def _stage(self, x: torch.Tensor, pairs: tuple[tuple[int, int], ...], first_sum: int) -> torch.Tensor:
        for k, (a, b) in enumerate(pairs):
            x = self.sums[first_sum + k](x + self.layers[b](self.layers[a](x)))
        return x

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        lay = self.layout
        x = self.input_quant(x / PIXEL_MAX)
        for i in range(lay.down8):
            x = self.layers[i](x)
        p8 = self._stage(self.layers[lay.down8](x), lay.res8, 0)
        p16 = self._stage(self.layers[lay.down16](p8), lay.res16, len(lay.res8))
        lateral = self.up(self.layers[lay.lateral](p16))
        fused = self.layers[lay.fuse](torch.cat([lateral, p8], 1))
        return self.heads[0](p16), self.heads[1](fused)

    def head_input_quant(self, index: int) -> nn.Module:
        """The activation (quantizer) whose output feeds head ``index``."""
        if index == 0:
            return self.sums[-1] if self.layout.res16 else self.layers[self.layout.down16].act
        if index == 1:
            return self.layers[self.layout.fuse].act
        raise IndexError(f"tinyyolo has 2 heads, got head {index}")

    def head_scale_bias(self, index: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-channel float scale and bias of head ``index``: ``output = acc * scale + bias`` (see Detector)."""
        if not self.is_quantized:
            raise ValueError("a float model has no integer head accumulators; train it with a bit spec")
        act_scale = self.head_input_quant(index).act_quant.scale().detach().reshape(())
        head = self.heads[index]
        weight_scale = head.quant_weight().scale.detach().reshape(-1)
        return act_scale * weight_scale, head.bias.detach().reshape(-1).clone()

    def head_accumulators(self, output: torch.Tensor, index: int = 0) -> torch.Tensor:
        """Integer accumulators of head ``index`` from its float output (exact up to float rounding)."""
        scale, bias = self.head_scale_bias(index)
        shape = (1, -1, 1, 1)
        return torch.round((output - bias.view(shape)) / scale.view(shape))
