"""Model cost figures: parameters, weight memory, MACs and bit operations (BOPs) per layer and in total.

BOPs follow the usual definition for quantized networks: MACs x weight bits x input-activation bits. A float
layer counts 32 x 32. The first conv's input is the 8-bit pixel.

A conv's weights are ``out_ch x (in_ch / groups) x K x K`` and it does that many MACs per *output* pixel: a
depthwise conv (groups == channels) costs ``C x K x K`` weights and ``C x K x K x H_out x W_out`` MACs, not
``C x C x ...``, and a stride-s conv computes ``H / s x W / s`` output pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

from quant_models.models import Model, TinyYolo
from quant_models.models.config import ConvSpec, Factor
from quant_models.models.tinyyolo import layer_bits as yolo_layer_bits

FLOAT_BITS = 32


@dataclass(frozen=True)
class LayerCost:
    """Cost of one conv layer."""

    name: str
    params: int
    weight_bits: int
    input_bits: int
    macs: int
    bops: int


@dataclass(frozen=True)
class Complexity:
    """Totals over a detector (conv weights only; BN folds into thresholds in hardware)."""

    layers: tuple[LayerCost, ...]

    @property
    def params(self) -> int:
        return sum(layer.params for layer in self.layers)

    @property
    def weight_memory_bits(self) -> int:
        return sum(layer.params * layer.weight_bits for layer in self.layers)

    @property
    def macs(self) -> int:
        return sum(layer.macs for layer in self.layers)

    @property
    def bops(self) -> int:
        return sum(layer.bops for layer in self.layers)


def _conv_cost(name: str, params: int, out_hw: tuple[int, int], weight_bits: int, input_bits: int) -> LayerCost:
    macs = params * out_hw[0] * out_hw[1]
    return LayerCost(name, params, weight_bits, input_bits, macs, macs * weight_bits * input_bits)


def _layer_costs(name: str, conv: ConvSpec, factor: Factor | None, out_hw: tuple[int, int], weight_bits: int,
                 input_bits: int, mid_bits: int) -> list[LayerCost]:
    """One backbone layer's cost rows: the conv, or each low-rank factor (``name.0``, ``name.1``, ...), each with
    its own input bits (the factors after the first read the signed ``mid_bits`` activations)."""
    k2 = conv.kernel ** 2
    if factor is None:
        return [_conv_cost(name, conv.in_ch // conv.groups * conv.out_ch * k2, out_hw, weight_bits, input_bits)]
    h, w = out_hw
    if factor.kind == "svd":
        r, = factor.ranks
        parts = [(conv.in_ch * r * k2, out_hw), (r * conv.out_ch, out_hw)]
    else:
        r1, r2 = factor.ranks
        parts = [(conv.in_ch * r1, (h * conv.stride, w * conv.stride)), (r1 * r2 * k2, out_hw),
                 (r2 * conv.out_ch, out_hw)]
    return [_conv_cost(f"{name}.{j}", params, hw, weight_bits, input_bits if j == 0 else mid_bits)
            for j, (params, hw) in enumerate(parts)]


def _mid_bits(factor: Factor | None, act_bits: int | None) -> int:
    if act_bits is None or act_bits == FLOAT_BITS:
        return FLOAT_BITS
    return factor.bits or max(2, act_bits) if factor is not None else act_bits


def _tinyyolo_complexity(model: TinyYolo) -> Complexity:
    """tinyyolo's graph is not a chain: each conv's resolution and input bits come from its place in the layout."""
    spec, lay = model.cfg.bit_spec, model.layout
    h, w = model.cfg.input_size

    def bits(index: int | None) -> tuple[int, int | None]:  # (weight bits, output act bits) of conv ``index``
        if spec is None:
            return FLOAT_BITS, FLOAT_BITS
        b = yolo_layer_bits(spec, lay, index)
        return b.weight, b.act

    def input_bits(source: int | None) -> int:
        if spec is None:
            return FLOAT_BITS
        return spec.input_bits if source is None else bits(source)[1]

    layers = []
    for i, layer in enumerate(lay.layers):
        conv = layer.conv
        s = layer.out_stride
        factor = model.cfg.factor_of(i)
        layers += _layer_costs(layer.name, conv, factor, (h // s, w // s), bits(i)[0], input_bits(layer.input_from),
                               _mid_bits(factor, bits(i)[1]))
    for index, head, source, stride in zip(lay.head_indices, model.heads, lay.head_inputs, model.strides):
        params = head.in_channels * head.out_channels
        layers.append(_conv_cost(f"head{stride}", params, (h // stride, w // stride), bits(index)[0],
                                 input_bits(source)))
    return Complexity(tuple(layers))


def model_complexity(model: Model) -> Complexity:
    """Per-layer parameters, weight bits, MACs and BOPs of ``model`` at its configured input size."""
    if isinstance(model, TinyYolo):
        return _tinyyolo_complexity(model)
    spec = model.cfg.bit_spec
    h, w = model.cfg.input_size
    n = len(model.plan) + 1
    layers, in_bits = [], FLOAT_BITS if spec is None else spec.input_bits
    for i, conv in enumerate(model.plan):
        bits = None if spec is None else spec.layer_bits(i, n)
        wb = FLOAT_BITS if bits is None else bits.weight
        h, w = h // conv.stride, w // conv.stride  # 'same' padding: input / stride output pixels per side
        factor = model.cfg.factor_of(i)
        layers += _layer_costs(f"conv{i}", conv, factor, (h, w), wb, in_bits,
                               _mid_bits(factor, None if bits is None else bits.act))
        in_bits = FLOAT_BITS if bits is None else bits.act
        if conv.pool:
            h, w = h // 2, w // 2
    head_w = FLOAT_BITS if spec is None else spec.layer_bits(n - 1, n).weight
    params = model.plan[-1].out_ch * model.cfg.head_channels
    layers.append(LayerCost("head", params, head_w, in_bits, params * h * w, params * h * w * head_w * in_bits))
    return Complexity(tuple(layers))
