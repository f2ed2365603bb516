"""Graph-shaped Brevitas detectors written the way people outside qdet write them: residual blocks, forks, a
feature-pyramid neck (nearest upsampling + channel concat) and heads at several strides.

Joins follow the Brevitas pattern the flow needs (README, "Residual blocks and feature pyramids"): the two inputs of
every ``Add`` and ``Concat`` come out of one shared activation quantizer. ``random_graph`` draws a net from a seed
(channel counts, bit widths, block counts, strides, 1-3 heads, an optional 3-input concat); ``mismatched_residual``
breaks that rule on purpose. Export with ``tests.flows.brevitas_nets.export``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch
from torch import nn

from tests.flows.brevitas_nets import _act_quant, _weight_quant


@dataclass(frozen=True)
class GraphSpec:
    """A graph net: input (C, H, W), stem width, residual blocks per stage, stage widths (each stage after the
    first halves the map with a stride-2 conv), heads (which stages get one, deepest first), bit widths."""

    in_shape: tuple[int, int, int]
    widths: tuple[int, ...]
    blocks: tuple[int, ...]
    heads: tuple[int, ...]  # stage indices with a head; a head below the deepest stage gets the upsampled neck
    head_out: int = 6
    w_bits: int = 4
    a_bits: int = 4
    upsample: int = 2
    mode: str = "nearest"
    triple_concat: bool = False  # concat the upsampled map, the skip and the skip again (three inputs)
    shared_join: bool = True  # False: a residual add with two different scales (the error case)
    name: str = "graph"


def _conv(ci: int, co: int, k: int, stride: int, w_bits: int, act) -> nn.Sequential:
    from brevitas.nn import QuantConv2d

    return nn.Sequential(QuantConv2d(ci, co, k, stride=stride, padding=k // 2, bias=False,
                                     weight_quant=_weight_quant(w_bits, True)), nn.BatchNorm2d(co), act)


class GraphNet(nn.Module):
    """The network a :class:`GraphSpec` describes."""

    def __init__(self, spec: GraphSpec):
        super().__init__()
        from brevitas.nn import QuantConv2d, QuantIdentity, QuantReLU
        from brevitas.quant import Int8ActPerTensorFloat

        def relu():
            return QuantReLU(act_quant=_act_quant(spec.a_bits), return_quant_tensor=True)

        self.spec = spec
        c = spec.in_shape[0]
        self.quant_in = QuantIdentity(act_quant=type("In8", (Int8ActPerTensorFloat,), {"bit_width": 8}),
                                      return_quant_tensor=True)
        self.stages = nn.ModuleList()
        for s, (width, blocks) in enumerate(zip(spec.widths, spec.blocks)):
            stage = nn.Module()
            shared = relu()  # the activation both inputs of every residual add of this stage come out of
            stage.entry = _conv(c, width, 3, 1 if s == 0 else 2, 8 if s == 0 else spec.w_bits, shared)
            stage.res = nn.ModuleList()
            for b in range(blocks):
                block = nn.Module()
                block.a = _conv(width, width, 3, 1, spec.w_bits, relu())
                # The error case: a quantizer of its own, with another bit width, so another scale.
                other = QuantReLU(act_quant=_act_quant(spec.a_bits + 1), return_quant_tensor=False)
                block.b = _conv(width, width, 3, 1, spec.w_bits, shared if spec.shared_join else other)
                block.post = shared  # re-quantized with the stage's shared quantizer: the next add's input too
                stage.res.append(block)
            self.stages.append(stage)
            c = width
        deepest = len(spec.widths) - 1
        self.lateral = nn.ModuleDict()
        self.heads = nn.ModuleDict()
        self.cat_quant = nn.ModuleDict()
        for h in spec.heads:
            if h == deepest:
                cin = spec.widths[h]
            else:
                q = QuantIdentity(act_quant=_act_quant(spec.a_bits), return_quant_tensor=True)
                self.cat_quant[str(h)] = q
                self.lateral[str(h)] = _conv(spec.widths[deepest], spec.widths[h], 1, 1, spec.w_bits, q)
                cin = spec.widths[h] * (3 if spec.triple_concat else 2)
            self.heads[str(h)] = QuantConv2d(cin, spec.head_out, 1, bias=False, weight_quant=_weight_quant(8, True))
        self.up = nn.Upsample(scale_factor=spec.upsample, mode=spec.mode)

    def forward(self, x: torch.Tensor):
        x = self.quant_in(x)
        maps = []
        for stage in self.stages:
            x = stage.entry(x)
            for block in stage.res:
                x = block.post(x + block.b(block.a(x)))
            maps.append(x)
        deepest = len(maps) - 1
        outs = []
        for h in self.spec.heads:
            if h == deepest:
                outs.append(self.heads[str(h)](maps[h]))
                continue
            up = self.lateral[str(h)](maps[deepest])
            for _ in range(deepest - h):
                up = self.up(up)
            skip = self.cat_quant[str(h)](maps[h])
            parts = [up, skip, skip] if self.spec.triple_concat else [up, skip]
            outs.append(self.heads[str(h)](torch.cat(parts, dim=1)))
        return tuple(outs) if len(outs) > 1 else outs[0]


def build_graph_net(spec: GraphSpec, seed: int = 0) -> GraphNet:
    """The (uncalibrated) network of ``spec`` with seeded random weights."""
    torch.manual_seed(seed)
    return GraphNet(spec)


def random_graph(seed: int) -> GraphSpec:
    """A random small graph net: 1-3 stages with 0-2 residual blocks, odd widths, 1-3 heads, mixed bits."""
    rng = random.Random(seed)
    stages = rng.choice([2, 2, 3])
    widths = tuple(rng.choice([4, 5, 6, 8]) for _ in range(stages))
    blocks = tuple(rng.choice([0, 1, 1, 2]) for _ in range(stages))
    if not any(blocks):
        blocks = (1,) + blocks[1:]
    size = 4 * (2 ** (stages - 1)) * rng.choice([1, 2])
    h, w = size, size + (2 ** (stages - 1)) * rng.choice([0, 1])
    heads = tuple(sorted(rng.sample(range(stages), rng.randint(1, stages)), reverse=True))
    if stages - 1 not in heads and rng.random() < 0.5:
        heads = (stages - 1,) + heads
    return GraphSpec((rng.choice([1, 3]), h, w), widths, blocks, heads, head_out=rng.choice([3, 6, 7]),
                     w_bits=rng.choice([2, 3, 4]), a_bits=rng.choice([2, 3, 4]),
                     triple_concat=rng.random() < 0.3, name=f"graph{seed}")
