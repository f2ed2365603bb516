"""Small Brevitas networks written the way people outside qdet write them, for the flow's generality tests.

Not qdet's zoo: plain ``torch.nn`` modules from Brevitas layers with Brevitas' own quantizers, a float input
(normalised image) quantized by a ``QuantIdentity`` after optional linear preprocessing, depthwise-separable and
strided convs, odd channel counts and non-square inputs, average / global pooling, fully connected layers, mixed
precision. ``random_spec`` draws one from a seed; ``export`` calibrates BatchNorm on random inputs and writes QONNX.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn


@dataclass(frozen=True)
class Layer:
    """One block. ``kind``: conv (conv-BN-ReLU), dw (depthwise conv-BN-ReLU), pw (1x1 conv-BN-ReLU), maxpool,
    avgpool (Brevitas TruncAvgPool2d), gap (global TruncAvgPool2d), flatten, fc (linear-BN1d-ReLU), head (last conv
    or linear, no activation)."""

    kind: str
    out: int = 0
    k: int = 3
    stride: int = 1
    pad: int = 1
    w_bits: int = 4
    a_bits: int = 4


@dataclass(frozen=True)
class NetSpec:
    """A network: input (C, H, W), input quantizer bits, preprocessing, layers."""

    in_shape: tuple[int, int, int]
    layers: tuple[Layer, ...]
    in_bits: int = 8
    preprocess: str = "none"  # none, affine (2x - 1), meanstd (per-channel (x - mean) / std)
    per_channel_weights: bool = True
    name: str = "net"
    extra: dict = field(default_factory=dict)


def _weight_quant(bits: int, per_channel: bool):
    from brevitas.quant import Int8WeightPerChannelFloat, Int8WeightPerTensorFloat

    base = Int8WeightPerChannelFloat if per_channel else Int8WeightPerTensorFloat
    return type(f"W{bits}", (base,), {"bit_width": bits})


def _act_quant(bits: int):
    from brevitas.quant import Uint8ActPerTensorFloatMaxInit

    return type(f"A{bits}", (Uint8ActPerTensorFloatMaxInit,), {"bit_width": bits, "max_val": 6.0})


class _Flatten(nn.Module):
    """Flatten that keeps a QuantTensor a QuantTensor (``view``, as Brevitas' MobileNet example does)."""

    def forward(self, x):
        return x.view(x.size(0), -1)


class Net(nn.Module):
    """The network a :class:`NetSpec` describes."""

    def __init__(self, spec: NetSpec):
        super().__init__()
        from brevitas.nn import QuantConv2d, QuantIdentity, QuantLinear, QuantReLU, TruncAvgPool2d
        from brevitas.quant import Int8ActPerTensorFloat

        self.spec = spec
        c, h, w = spec.in_shape
        if spec.preprocess == "meanstd":
            self.register_buffer("mean", torch.linspace(0.4, 0.5, c).view(1, c, 1, 1))
            self.register_buffer("std", torch.linspace(0.2, 0.3, c).view(1, c, 1, 1))
        in_quant = type(f"In{spec.in_bits}", (Int8ActPerTensorFloat,), {"bit_width": spec.in_bits})
        self.quant_in = QuantIdentity(act_quant=in_quant, return_quant_tensor=False)
        blocks = []
        for layer in spec.layers:
            wq = _weight_quant(layer.w_bits, spec.per_channel_weights)
            if layer.kind in ("conv", "dw", "pw", "head"):
                groups = c if layer.kind == "dw" else 1
                out = c if layer.kind == "dw" else layer.out
                k, pad = (1, 0) if layer.kind == "pw" else (layer.k, layer.pad)
                blocks.append(QuantConv2d(c, out, k, stride=layer.stride, padding=pad, groups=groups, bias=False,
                                          weight_quant=wq))
                if layer.kind != "head":
                    blocks += [nn.BatchNorm2d(out), QuantReLU(act_quant=_act_quant(layer.a_bits))]
                h, w = (h + 2 * pad - k) // layer.stride + 1, (w + 2 * pad - k) // layer.stride + 1
                c = out
            elif layer.kind == "maxpool":
                blocks.append(nn.MaxPool2d(layer.k, layer.stride))
                h, w = (h - layer.k) // layer.stride + 1, (w - layer.k) // layer.stride + 1
            elif layer.kind in ("avgpool", "gap"):
                k = (h, w) if layer.kind == "gap" else layer.k
                stride = 1 if layer.kind == "gap" else layer.stride
                if layer.kind == "gap" and h != w:
                    raise ValueError("TruncAvgPool2d pools square windows: use a square map before gap")
                blocks.append(TruncAvgPool2d(kernel_size=k if isinstance(k, int) else k[0], stride=stride,
                                             bit_width=layer.a_bits, float_to_int_impl_type="FLOOR"))
                if layer.kind == "gap":
                    h = w = 1
                else:
                    h, w = (h - layer.k) // layer.stride + 1, (w - layer.k) // layer.stride + 1
            elif layer.kind == "flatten":
                blocks.append(_Flatten())
                c, h, w = c * h * w, 1, 1
            elif layer.kind in ("fc", "fc_head"):
                blocks.append(QuantLinear(c, layer.out, bias=False, weight_quant=wq))
                if layer.kind == "fc":
                    blocks += [nn.BatchNorm1d(layer.out), QuantReLU(act_quant=_act_quant(layer.a_bits))]
                c = layer.out
            else:
                raise ValueError(f"unknown layer kind {layer.kind!r}")
        for before, after in zip(blocks, blocks[1:]):
            if isinstance(after, TruncAvgPool2d):  # Brevitas' integer average pool needs its input's quant metadata
                before.return_quant_tensor = True
        self.body = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.spec.preprocess == "affine":
            x = 2.0 * x - 1.0
        elif self.spec.preprocess == "meanstd":
            x = (x - self.mean) / self.std
        return self.body(self.quant_in(x))


def calibrate(model: nn.Module, shape: tuple[int, ...], seed: int = 0, batches: int = 3) -> nn.Module:
    """Random init (seeded) and BatchNorm statistics from random inputs; returns the model in eval mode."""
    torch.manual_seed(seed)
    model.train()
    with torch.no_grad():
        for _ in range(batches):
            model(torch.rand(8, *shape))
    return model.eval()


def export(model: nn.Module, shape: tuple[int, ...], path: Path, seed: int = 0) -> Path:
    """Calibrate ``model`` and export it with Brevitas' own ``export_qonnx``; returns ``path``."""
    from brevitas.export import export_qonnx

    calibrate(model, shape, seed)
    export_qonnx(model, torch.rand(1, *shape), str(path))
    return path


def build_net(spec: NetSpec, seed: int = 0) -> Net:
    """The (uncalibrated) network of ``spec`` with seeded random weights."""
    torch.manual_seed(seed)
    return Net(spec)


def random_spec(seed: int) -> NetSpec:
    """A random small float-input net: odd channel counts, non-square input, strided and depthwise convs, mixed
    precision, and a conv or fully connected head."""
    rng = random.Random(seed)
    c = rng.choice([1, 3, 4])
    h, w = rng.choice([(12, 16), (16, 12), (15, 11), (16, 16)])
    layers = [Layer("conv", rng.choice([5, 7, 8]), k=rng.choice([3, 5]), stride=1, pad=rng.choice([0, 1, 2]),
                    w_bits=8, a_bits=rng.choice([2, 3, 4]))]
    ch = layers[0].out
    for _ in range(rng.randint(1, 3)):
        kind = rng.choice(["dw", "conv", "maxpool"])
        if kind == "dw":
            k = rng.choice([3, 5])
            layers += [Layer("dw", k=k, stride=rng.choice([1, 2]), pad=k // 2, w_bits=rng.choice([2, 4, 8]),
                             a_bits=rng.choice([2, 4])),
                       Layer("pw", rng.choice([6, 9, 13]), w_bits=rng.choice([2, 4]), a_bits=rng.choice([2, 4]))]
            ch = layers[-1].out
        elif kind == "conv":
            k = rng.choice([1, 3])
            layers.append(Layer("conv", rng.choice([6, 10, 11]), k=k, stride=rng.choice([1, 2]), pad=k // 2,
                                w_bits=rng.choice([3, 4]), a_bits=rng.choice([3, 4])))
            ch = layers[-1].out
        else:
            layers.append(Layer("maxpool", k=2, stride=2))
    layers.append(Layer("head", rng.choice([5, 12]), k=1, pad=0, w_bits=rng.choice([4, 8])))
    return NetSpec((c, h, w), tuple(layers), in_bits=8, preprocess=rng.choice(["none", "affine", "meanstd"]),
                   name=f"random{seed}")
