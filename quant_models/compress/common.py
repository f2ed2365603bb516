"""What pruning and factorization share: their error type, a model's float twin, and rebuilding a model from a
new plan with its weights."""

from __future__ import annotations

import copy

import torch
from torch import nn

from quant_models.models import DetectorConfig, Model, build_model


class CompressError(ValueError):
    """A compression that cannot be done as asked; the message names the layer or option and what to change."""


def float_twin(model: Model) -> Model:
    """The float twin of ``model`` (same plan, module names and weights, no quantizers), with every module that
    ``model`` uses in two places (tinyyolo's shared activation quantizers) made two modules.

    Why: Torch-Pruning traces the autograd graph, and a Brevitas quantizer's internals (scale division, rounding,
    clamping) hide the channel count from its shape inference, so it cannot follow a quantized model through a
    Concat; a module used twice would also be one node with two places in the graph. The twin has the same
    channel dependencies (convs, BNs, adds, concats, depthwise pairs), and its float weights are the quantized
    model's own (Brevitas keeps float weights), so importance scores are the same."""
    twin = build_model(model.cfg.with_(bits=None))
    result = twin.load_state_dict(model.state_dict(), strict=False)
    if result.missing_keys:  # a float model's keys are a subset of its quantized twin's
        raise CompressError(f"the float twin of {model.cfg.arch} lacks {result.missing_keys[:3]}: not a qdet model")
    seen: dict[int, str] = {}
    for name, module in list(twin.named_modules(remove_duplicate=False)):
        if name and id(module) in seen and seen[id(module)] != name:
            parent, _, attr = name.rpartition(".")
            setattr(twin.get_submodule(parent) if parent else twin, attr, copy.deepcopy(module))
        elif name:
            seen[id(module)] = name
    return twin.train(model.training)


def rebuild(model: Model, cfg: DetectorConfig, state: dict[str, torch.Tensor]) -> Model:
    """A new model of ``cfg`` holding ``state``, completed by ``model``'s own entries for the keys ``state`` lacks
    (quantizer scales, which are per tensor and survive any channel change). Strict: a key that does not fit is
    an error, never silently left at its initial value."""
    new = build_model(cfg)
    full = dict(state)
    full.update({k: v for k, v in model.state_dict().items() if k not in full})
    new.load_state_dict(full, strict=True)
    return new.train(model.training)


def conv_layers(model: Model) -> list[nn.Module]:
    """The backbone conv of each layer of ``model`` (bit-spec order; a factorized layer has none)."""
    return [getattr(block, "conv", None) for block in model.layers]


def recalibrate_bn(model: Model, images: torch.Tensor, batch_size: int = 16) -> Model:
    """Re-estimate every BatchNorm's running statistics on ``images`` (a cumulative average over them), in place.

    Why: removing or factorizing channels changes what every later layer sees, so the statistics its BN kept
    from training are stale; a layer can then sit entirely below its activation's threshold (all zeros) until
    fine-tuning moves it. Re-estimated statistics give fine-tuning (and the hardware) a live network to start from.
    Weights and quantizer scales are not touched."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [bn.momentum for bn in norms]
    was = model.training
    for bn in norms:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative moving average: every image counts the same
    model.train()
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            model(images[start:start + batch_size])
    for bn, momentum in zip(norms, momenta):
        bn.momentum = momentum
    return model.train(was)
