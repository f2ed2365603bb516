"""Sensitivity-driven channel allocation: the greedy plan against hand-solved losses, couplings kept, bad input."""

from __future__ import annotations

import pytest
import torch

from quant_models.compress import CompressError
from quant_models.compress.prune import coupled_layers, prune_to
from quant_models.compress.sensitivity import sensitivity_plan
from quant_models.models import build_model, default_config

SIZE = (32, 32)


def _model(arch: str = "tinydet", width: float = 1.0):
    torch.manual_seed(0)
    return build_model(default_config(arch, 3, width=width, input_size=SIZE)).eval()


def _linear_loss(original: list[int], weights: list[float]):
    """A loss that rises by weights[i] when layer i loses all its channels, linearly: greedy is optimal on it."""
    def loss_fn(model):
        return torch.tensor(sum(w * (o - c.out_ch) / o for w, o, c in zip(weights, original, model.plan)))
    return loss_fn


def test_the_layers_the_loss_needs_keep_their_channels():
    model = _model()
    original = [c.out_ch for c in model.plan]
    assert original == [16, 32, 64, 64, 64]
    # Loss per channel removed: l0 100/16, l1 1/32, l2 1/64, l3 8/64, l4 16/64. Half of 240 channels must go:
    # l2 first (down to 8: 56), then l1 (to 8: 24 more, 80), then l3 (40 more, to 24): 120.
    loss_fn = _linear_loss(original, [100.0, 1.0, 1.0, 8.0, 16.0])
    plan = sensitivity_plan(model, 0.5, calib=torch.rand(4, 3, *SIZE) * 255, loss_fn=loss_fn, round_to=8)
    assert plan == [16, 8, 8, 24, 64]


def test_a_loss_that_saturates_does_not_pile_the_cuts_into_one_layer():
    model = _model()
    original = [c.out_ch for c in model.plan]

    def loss_fn(m):  # the share of each layer removed, summed, capped at 0.3: past the cap every cut looks free
        return torch.tensor(min(0.3, sum((o - c.out_ch) / o for o, c in zip(original, m.plan))))

    # Each layer alone: l0's one slice (8 of 16) rises 0.3 (0.3/8 per channel); l1's slices 0.25, then 0.05, 0
    # (priced 1/32 per channel each: never below the first); l2-l4's 0.125, 0.125, 0.05, 0, ... (1/64 per channel
    # throughout). So l2-l4 share the 120 channels, one slice each in turn: 5 slices of 8 apiece.
    plan = sensitivity_plan(model, 0.5, calib=torch.rand(4, 3, *SIZE) * 255, loss_fn=loss_fn, round_to=8)
    assert plan == [16, 32, 24, 24, 24]


def test_with_layer_costs_the_loss_is_weighed_per_lut_removed():
    model = _model()
    original = [c.out_ch for c in model.plan]
    # Every channel costs the loss the same; LUTs per channel: l0 50, l1 10, l2 100, l3 20, l4 1. So l2 goes first
    # (56 channels), then l0 (8, leaving 8), then l3 (56 more: 120).
    loss_fn = _linear_loss(original, [float(o) for o in original])
    costs = (800.0, 320.0, 6400.0, 1280.0, 64.0)
    plan = sensitivity_plan(model, 0.5, calib=torch.rand(4, 3, *SIZE) * 255, loss_fn=loss_fn, round_to=8,
                            layer_costs=costs)
    assert plan == [8, 32, 8, 8, 64]


def test_coupled_layers_shrink_together_and_the_plan_is_one_prune_to_can_build():
    model = _model("mobiledet")
    original = [c.out_ch for c in model.plan]
    groups = coupled_layers(model)
    assert any(len(g) > 1 for g in groups)  # the depthwise convs share their producer's channels
    loss_fn = _linear_loss(original, [float(i + 1) for i in range(len(original))])
    plan = sensitivity_plan(model, 0.4, calib=torch.rand(2, 3, *SIZE) * 255, loss_fn=loss_fn, round_to=8)
    assert sum(original) - sum(plan) >= 0.4 * sum(original)
    for group in groups:
        assert len({plan[i] for i in group}) == 1, (group, plan)
    assert all(c % 8 == 0 and c >= 8 for c in plan)
    assert [c.out_ch for c in prune_to(model, plan).plan] == plan


def test_bad_ratios_and_plans_that_cannot_remove_enough_are_refused():
    model = _model(width=0.5)  # 8 16 32 32 32
    calib = torch.rand(2, 3, *SIZE) * 255
    loss_fn = _linear_loss([c.out_ch for c in model.plan], [1.0] * len(model.plan))
    with pytest.raises(CompressError, match="--ratio 1.2"):
        sensitivity_plan(model, 1.2, calib=calib, loss_fn=loss_fn, round_to=8)
    with pytest.raises(CompressError, match="no plan keeping multiples of 8 channels removes 0.9"):
        sensitivity_plan(model, 0.9, calib=calib, loss_fn=loss_fn, round_to=8)
    with pytest.raises(CompressError, match="2 layer costs for 5 backbone layers"):
        sensitivity_plan(model, 0.5, calib=calib, loss_fn=loss_fn, round_to=8, layer_costs=(1.0, 2.0))
