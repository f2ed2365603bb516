"""Structured (channel) pruning of qdet detectors with Torch-Pruning's dependency graph.

Torch-Pruning finds the channels that must go together (a conv's outputs with its BN and the next conv's inputs,
the two inputs of a residual Add, a depthwise conv with its producer, a Concat's slices) and slices every tensor
of a group at once. It runs on the model's float twin (:func:`~quant_models.compress.common.float_twin`: same
weights, no Brevitas internals in the traced graph); the pruned twin's tensors, with the quantized model's
per-tensor activation scales, then load strictly into a model rebuilt from the new explicit channel plan
(``DetectorConfig.channels``), so the result is an ordinary checkpoint that ``load_model`` rebuilds.

Brevitas' weight scales here are per output channel *statistics* of the float weights (no stored per-channel
parameters), so slicing the float weights slices the scales with them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch_pruning as tp
from torch import nn

from quant_models.compress.common import CompressError, float_twin, rebuild
from quant_models.models import Model
from quant_models.models.config import CHANNEL_MULTIPLE

IMPORTANCES = ("magnitude", "bn", "taylor")


def _importance(name: str) -> tp.importance.Importance:
    if name == "magnitude":  # L2 norm of every weight a channel group owns
        return tp.importance.GroupMagnitudeImportance(p=2)
    if name == "bn":  # |gamma| of the group's BatchNorms (network slimming)
        return tp.importance.GroupMagnitudeImportance(p=1, target_types=[nn.modules.batchnorm._BatchNorm])
    if name == "taylor":  # |w * dL/dw|: needs a loss, whose gradients are taken on the float twin
        return tp.importance.GroupTaylorImportance()
    raise CompressError(f"--importance {name!r}: choose one of {', '.join(IMPORTANCES)}")


def kept_channels(channels: int, ratio: float, round_to: int) -> int:
    """Channels Torch-Pruning keeps of ``channels`` at ``ratio``: ``int(channels * ratio)`` removed, the rest rounded
    down to a multiple of ``round_to``.

    >>> kept_channels(64, 0.5, 8), kept_channels(48, 0.5, 8), kept_channels(8, 0.5, 8), kept_channels(8, 0.5, 4)
    (32, 24, 0, 4)
    """
    kept = channels - int(channels * ratio)
    return kept - kept % round_to


def check_ratio(ratio: float, option: str = "--ratio") -> None:
    """A pruning ratio is the fraction of channels removed: strictly between 0 and 1."""
    if not 0.0 < ratio < 1.0:
        raise CompressError(f"{option} {ratio:g}: the fraction of channels to remove must be in (0, 1), e.g. 0.5")


def prune_model(model: Model, ratio: float, *, importance: str = "magnitude", round_to: int = CHANNEL_MULTIPLE,
                layer_ratios: dict[int, float] | None = None, example: torch.Tensor | None = None,
                loss_fn: Callable[[Model], torch.Tensor] | None = None) -> Model:
    """One-shot structured pruning: remove ``ratio`` of every backbone layer's output channels (``layer_ratios``
    overrides it per bit-spec layer index), least important first, keeping multiples of ``round_to``
    (:func:`kept_channels`). The heads' outputs (the decode's layout) are never pruned; their inputs shrink with
    the last layers. Channels coupled by an Add or a depthwise conv are one group and keep the most any member
    asks for.

    Returns a new model of the same class whose ``cfg.channels`` is the new plan, in ``model``'s train/eval mode.
    ``example`` is an input batch for tracing (default: one random image); ``loss_fn(twin)`` computes a loss on the
    float twin for the ``taylor`` importance. Raises :class:`CompressError` for a ratio outside (0, 1), a factorized
    model (prune first, then factorize), or a layer that would lose every channel.
    """
    check_ratio(ratio)
    if round_to < 1:
        raise CompressError(f"--round-to must be >= 1, got {round_to}")
    ratios = {i: ratio for i in range(len(model.plan))}
    for index, r in (layer_ratios or {}).items():
        if index not in ratios:
            raise CompressError(f"layer ratio for l{index}: {model.cfg.arch} has backbone layers l0..l"
                                f"{len(ratios) - 1}")
        if not 0.0 <= r < 1.0:
            raise CompressError(f"layer l{index}: ratio {r:g} must be in [0, 1)")
        ratios[index] = r
    targets = []
    for i, conv in enumerate(model.plan):
        kept = kept_channels(conv.out_ch, ratios[i], round_to) if ratios[i] > 0 else conv.out_ch
        if kept < 1:
            raise CompressError(
                f"pruning l{i} ({conv.out_ch} channels) by {ratios[i]:g} would remove every channel of the layer "
                f"(channels are kept in multiples of {round_to}): lower --ratio, or pass --round-to "
                f"{max(1, round_to // 2)}")
        targets.append(kept)
    return prune_to(model, targets, importance=importance, example=example, loss_fn=loss_fn)


def prune_to(model: Model, channels: list[int], *, importance: str = "magnitude",
             example: torch.Tensor | None = None, loss_fn: Callable[[Model], torch.Tensor] | None = None) -> Model:
    """Prune every backbone layer ``i`` of ``model`` to ``channels[i]`` output channels (a coupled group to the
    largest count any member asks), removing the least important channels of each Torch-Pruning group."""
    if model.cfg.factors:
        raise CompressError("the model has low-rank factors: prune it before factorizing (qdet prune, then qdet "
                            "lowrank), not after")
    if len(channels) != len(model.plan) or any(c < 1 for c in channels):
        raise CompressError(f"a channel plan needs {len(model.plan)} counts >= 1, got {channels}")
    twin = float_twin(model).eval()
    example = _example(model, example)
    imp = _importance(importance)
    if importance == "taylor":
        if loss_fn is None:
            raise CompressError("--importance taylor needs a loss (training data) to take gradients of")
        twin.zero_grad()
        loss_fn(twin).backward()
    convs = [block.conv for block in twin.layers]
    for graph, members, group in _groups(twin, example):
        root = convs[members[0]]
        now = root.out_channels
        keep = min(now, max(channels[i] for i in members))
        if keep == now:
            continue
        scores = imp(group)
        if scores is None:  # Torch-Pruning found nothing to score: the group cannot be pruned
            raise CompressError(f"layer l{members[0]} cannot be pruned (no weights to score its channels by)")
        drop = torch.argsort(scores)[:now - keep].tolist()
        graph.get_pruning_group(root, tp.prune_conv_out_channels, idxs=sorted(drop)).prune()
    plan = tuple(conv.out_channels for conv in convs)
    return rebuild(model, model.cfg.with_(channels=plan), twin.state_dict())


def coupled_layers(model: Model, example: torch.Tensor | None = None) -> list[tuple[int, ...]]:
    """The backbone layers whose output channels can only be pruned together (a residual Add's inputs, a depthwise
    conv and its producer), one tuple per Torch-Pruning group, in graph order; a layer that cannot be pruned at all
    is in none."""
    twin = float_twin(model).eval()
    return [tuple(members) for _graph, members, _group in _groups(twin, _example(model, example))]


def _example(model: Model, example: torch.Tensor | None) -> torch.Tensor:
    """The batch Torch-Pruning traces the model with: ``example``, or one random image of the model's size."""
    return torch.rand(1, 3, *model.cfg.input_size) * 255.0 if example is None else example


def _groups(twin: Model, example: torch.Tensor) -> Iterator[tuple[tp.DependencyGraph, list[int], Any]]:
    """Each Torch-Pruning group of ``twin`` that prunes backbone output channels: the graph, the bit-spec indices of
    the layers whose outputs it prunes, and the group."""
    convs = [block.conv for block in twin.layers]
    heads = [twin.head] if hasattr(twin, "head") else list(twin.heads)
    index_of = {conv: i for i, conv in enumerate(convs)}
    graph = tp.DependencyGraph().build_dependency(twin, example_inputs=example)
    for group in graph.get_all_groups(ignored_layers=heads, root_module_types=[nn.Conv2d]):
        members = sorted({index_of[dep.target.module] for dep, _ in group
                          if dep.target.module in index_of and graph.is_out_channel_pruning_fn(dep.handler)})
        if members:
            yield graph, members, group
