"""Sensitivity-driven channel allocation: how many channels each backbone layer keeps when ``ratio`` of all of its
channels are removed.

Why: uniform pruning takes the same share from every layer, so a detector's thin high-resolution first layers
(whose few channels carry everything the later layers see, through 4-bit activations) lose as much as its wide late
layers, which can spare far more. The plan here follows the sensitivity analysis of Li et al. (2017, "Pruning
filters for efficient ConvNets"): each prunable group of layers is pruned *alone*, one-shot from the unpruned
weights, to each count its slices allow (BN statistics re-estimated on the calibration images), and the loss on
those images is measured; the counts are then allocated greedily, each time taking the next slice of the group
whose curve rises least per channel removed (per LUT removed, when the layers' hardware costs are given; a slice
never priced below the steepest one before it on its curve), until ``ratio`` of all backbone channels are gone. The
result is a channel plan for :func:`~quant_models.compress.prune.prune_to`; the iterative schedule then prunes to
it with fine-tuning.

Why each group alone, not a joint greedy (NetAdapt without its short fine-tunes): without fine-tuning, the first
deep cut leaves the model's loss near its ceiling, after which every further cut looks free, so a joint greedy
piles the removals into one layer. Measured (bench/README, compression): the joint plan for tinydet, 8 24 48 32 8,
fine-tuned to 0.34 mAP@0.5 where the uniform 8 16 32 32 32 reached 0.84.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable

import torch

from quant_models.compress.common import CompressError, recalibrate_bn
from quant_models.compress.prune import check_ratio, coupled_layers, prune_to
from quant_models.models import Model

SLICE_SHARE = 8  # a slice is about 1/8 of a layer's channels (at least round_to): a few points per curve


def sensitivity_plan(model: Model, ratio: float, *, calib: torch.Tensor, loss_fn: Callable[[Model], torch.Tensor],
                     round_to: int, importance: str = "magnitude", layer_costs: tuple[float, ...] = (),
                     report: Callable[[str], None] | None = None) -> list[int]:
    """The channel plan (one count per backbone layer, multiples of ``round_to``) that removes at least ``ratio`` of
    the backbone's channels where the loss ``loss_fn`` (on ``calib``, model in eval mode) rises least.

    ``layer_costs[i]``: layer ``i``'s hardware cost (LUTs in the unpruned build), making the score loss per cost
    removed, with a channel of layer ``i`` costing ``layer_costs[i] / channels[i]``. ``report`` gets one line per
    group's curve and one for the plan. Raises :class:`CompressError` when ``ratio`` is outside (0, 1) or no plan at
    ``round_to`` removes that much (every layer already at ``round_to`` channels)."""
    check_ratio(ratio)
    original = [c.out_ch for c in model.plan]
    if layer_costs and len(layer_costs) != len(original):
        raise CompressError(f"{len(layer_costs)} layer costs for {len(original)} backbone layers")
    per_channel = [(cost / ch if layer_costs else 1.0) for cost, ch in zip(layer_costs or original, original)]
    goal = math.ceil(ratio * sum(original))

    def loss_of(channels: list[int]) -> float:
        pruned = copy.deepcopy(model) if channels == original else prune_to(model, channels, importance=importance,
                                                                             example=calib[:1], loss_fn=loss_fn)
        recalibrate_bn(pruned, calib).eval()
        with torch.no_grad():
            return float(loss_fn(pruned))

    base = loss_of(original)
    # curves[g]: (count, loss rise) of group g pruned alone, from its full count down, one slice at a time.
    groups = coupled_layers(model, calib[:1])
    curves: list[list[tuple[int, float]]] = []
    for members in groups:
        full = original[members[0]]
        step = max(round_to, full // SLICE_SHARE // round_to * round_to)
        counts = range(full - step, round_to - 1, -step)
        curves.append([(full, 0.0)] + [(n, loss_of([n if i in members else c for i, c in enumerate(original)]) - base)
                                       for n in counts])
        if report is not None:
            report(f"sensitivity: l{'+l'.join(map(str, members))}: "
                   + ", ".join(f"{n} ch {rise:+.4f}" for n, rise in curves[-1][1:]))
    # The price of a group's next slice: its rise per channel (per LUT) removed, never below the steepest slice
    # before it on the same curve: past a cliff the one-shot loss flattens at its ceiling, yet each channel removed
    # still costs capacity that fine-tuning must win back, so a saturated tail must not look free.
    prices: list[list[float]] = []
    for members, curve in zip(groups, curves):
        steepest, price = -math.inf, []
        for (now, rise), (nxt, next_rise) in zip(curve, curve[1:]):
            steepest = max(steepest, (next_rise - rise) / sum((now - nxt) * per_channel[i] for i in members))
            price.append(steepest)
        prices.append(price)
    at = [0] * len(groups)  # each group's point on its curve
    plan = list(original)
    while sum(original) - sum(plan) < goal:
        # Cheapest slice first; on a tie the group with the most channels left, so equal prices spread the cuts.
        open_groups = [g for g in range(len(groups)) if at[g] < len(prices[g])]
        if not open_groups:
            raise CompressError(f"no plan keeping multiples of {round_to} channels removes {ratio:g} of the "
                                f"backbone's {sum(original)} channels (reached {plan}): lower --ratio or --round-to")
        g = min(open_groups, key=lambda g: (prices[g][at[g]], -plan[groups[g][0]], g))
        at[g] += 1
        for i in groups[g]:
            plan[i] = curves[g][at[g]][0]
    if report is not None:
        report(f"sensitivity: plan {' '.join(map(str, plan))} ({sum(original) - sum(plan)} of {goal} channels removed)")
    return plan
