"""Low-rank factorization of a detector's kxk convolutions: a truncated-SVD pair or Tucker-2.

A conv weight ``W`` (out, in, k, k) is a matrix ``M = W.reshape(out, in*k*k)``. SVD keeps its ``r`` largest
singular values, ``M ~ (U_r S_r^1/2)(S_r^1/2 V_r)``: a kxk conv to ``r`` channels, then a 1x1 conv to ``out``.
Tucker-2 compresses both channel modes with the leading singular vectors of the two unfoldings (HOSVD):
1x1 (in -> r1), a kxk core (r1 -> r2), 1x1 (r2 -> out). The rank comes from a kept-energy threshold (the share of
the squared singular values kept) or a MAC budget (the share of the layer's MACs the factors may cost).

The factors are linear, so between them sits a signed activation quantizer (:class:`~quant_models.models.config.
Factor`); its range is calibrated on images at factorization time (the largest magnitude seen), then learned in
fine-tuning. BN, the activation and the pool of the layer are kept as they were.
"""

from __future__ import annotations

import math

import torch
from brevitas.nn import QuantIdentity

from quant_models.compress.common import CompressError
from quant_models.models import Model, build_model
from quant_models.models.config import ConvSpec, Factor, check_factor
from quant_models.models.detector import ConvBlock
from quant_models.quantizers import SIGNED_ACT_QUANTIZERS


def _rank_for_energy(singular: torch.Tensor, energy: float) -> int:
    share = torch.cumsum(singular ** 2, 0) / (singular ** 2).sum()
    return int(torch.searchsorted(share, torch.tensor(energy, dtype=share.dtype)).item()) + 1


def layer_macs(conv: ConvSpec, factor: Factor | None) -> int:
    """MACs per output pixel of the layer's own resolution (its stride's), factorized or not. For Tucker-2 the
    first 1x1 runs at the input resolution, stride^2 times as many pixels."""
    k2, s2 = conv.kernel ** 2, conv.stride ** 2
    if factor is None:
        return conv.in_ch // conv.groups * conv.out_ch * k2
    if factor.kind == "svd":
        r, = factor.ranks
        return r * (conv.in_ch * k2 + conv.out_ch)
    r1, r2 = factor.ranks
    return conv.in_ch * r1 * s2 + r1 * r2 * k2 + r2 * conv.out_ch


def choose_factor(index: int, conv: ConvSpec, weight: torch.Tensor, *, energy: float | None, macs: float | None,
                  tucker: bool, bits: int | None = None) -> Factor | None:
    """The factorization of one layer by kept energy or MAC share; None where it would not save MACs."""
    out, in_ch, k = conv.out_ch, conv.in_ch, conv.kernel
    full = layer_macs(conv, None)
    if not tucker:
        if energy is not None:
            r = _rank_for_energy(torch.linalg.svdvals(weight.reshape(out, -1).double()), energy)
        else:
            r = max(1, math.floor(macs * full / (in_ch * k * k + out)))
        factor = Factor(index, (min(r, out, in_ch * k * k),), bits)
    else:
        if energy is not None:
            r2 = _rank_for_energy(torch.linalg.svdvals(weight.reshape(out, -1).double()), energy)
            r1 = _rank_for_energy(torch.linalg.svdvals(weight.transpose(0, 1).reshape(in_ch, -1).double()), energy)
        else:  # equal shares of in and out: r1 = a * in, r2 = a * out with the MACs at the budget
            s2 = conv.stride ** 2
            a = max(1e-6, _solve_share(in_ch, out, k, s2, macs * full))
            r1, r2 = max(1, math.floor(a * in_ch)), max(1, math.floor(a * out))
        factor = Factor(index, (min(r1, in_ch), min(r2, out)), bits)
    return factor if layer_macs(conv, factor) < full else None


def _solve_share(in_ch: int, out: int, k: int, s2: int, budget: float) -> float:
    # in*(a in)*s2 + (a in)(a out) k^2 + (a out)*out = budget: a quadratic in a.
    qa, qb = in_ch * out * k * k, in_ch * in_ch * s2 + out * out
    return (-qb + math.sqrt(qb * qb + 4 * qa * budget)) / (2 * qa)


def _factor_weights(weight: torch.Tensor, factor: Factor) -> list[torch.Tensor]:
    out, in_ch, k, _ = weight.shape
    w = weight.detach().double()
    if factor.kind == "svd":
        r, = factor.ranks
        u, s, vh = torch.linalg.svd(w.reshape(out, -1), full_matrices=False)
        root = s[:r].sqrt()
        first = (root[:, None] * vh[:r]).reshape(r, in_ch, k, k)
        second = (u[:, :r] * root[None]).reshape(out, r, 1, 1)
        return [first.float(), second.float()]
    r1, r2 = factor.ranks
    u_out = torch.linalg.svd(w.reshape(out, -1), full_matrices=False)[0][:, :r2]
    u_in = torch.linalg.svd(w.transpose(0, 1).reshape(in_ch, -1), full_matrices=False)[0][:, :r1]
    core = torch.einsum("oikl,or,is->rskl", w, u_out, u_in)  # (r2, r1, k, k)
    return [u_in.T.reshape(r1, in_ch, 1, 1).float(), core.float(), u_out.reshape(out, r2, 1, 1).float()]


def factorize_model(model: Model, *, energy: float | None = None, macs: float | None = None,
                    ranks: dict[int, tuple[int, ...]] | None = None, layers: list[int] | None = None,
                    tucker: bool = False, bits: int | None = None, calib: torch.Tensor | None = None) -> Model:
    """Replace kxk convs of ``model`` by low-rank factors; returns a new model (``cfg.factors`` set).

    Exactly one of ``energy`` (kept share of squared singular values, in (0, 1]), ``macs`` (share of a layer's
    MACs the factors may cost, in (0, 1)) or ``ranks`` ({layer: (r,) or (r1, r2)}) chooses the ranks. ``layers``
    limits which backbone layers are considered (default: every full conv with k > 1; with ``energy``/``macs``, a
    layer whose factors would not save MACs is left as it is). ``calib``: images (B, 3, H, W) to calibrate the
    factors' signed quantizers on (default: random images). Raises :class:`CompressError` for a rank larger than
    the layer allows, a depthwise layer, a layer already factorized, or no layer to factorize.
    """
    if sum(x is not None for x in (energy, macs, ranks)) != 1:
        raise CompressError("give exactly one of --energy, --macs and --rank")
    if energy is not None and not 0.0 < energy <= 1.0:
        raise CompressError(f"--energy {energy:g}: the kept share of the spectrum must be in (0, 1]")
    if macs is not None and not 0.0 < macs < 1.0:
        raise CompressError(f"--macs {macs:g}: the factors' share of a layer's MACs must be in (0, 1)")
    cfg, plan = model.cfg, model.plan
    blocks = list(model.layers)
    candidates = layers if layers is not None else sorted(ranks) if ranks else [
        i for i, c in enumerate(plan) if c.groups == 1 and c.kernel > 1]
    factors = []
    for i in candidates:
        if not 0 <= i < len(plan):
            raise CompressError(f"layer l{i}: {cfg.arch} has backbone layers l0..l{len(plan) - 1}")
        if not isinstance(blocks[i], ConvBlock):
            raise CompressError(f"layer l{i} is already factorized")
        if ranks is not None:
            factor = Factor(i, tuple(ranks[i]), bits)
        else:
            factor = choose_factor(i, plan[i], blocks[i].conv.weight, energy=energy, macs=macs, tucker=tucker,
                                   bits=bits)
        if factor is None:
            continue
        try:
            check_factor(factor, plan[i])
        except ValueError as exc:
            raise CompressError(str(exc)) from None
        factors.append(factor)
    if not factors:
        raise CompressError("no layer would get cheaper at these ranks: lower --energy or --macs, or name layers "
                            "and ranks with --rank")
    new = build_model(cfg.with_(factors=tuple(sorted(cfg.factors + tuple(factors), key=lambda f: f.layer))))
    state = {k: v for k, v in model.state_dict().items()}
    own = new.state_dict()
    for factor in factors:
        prefix = f"layers.{factor.layer}."
        weight = state.pop(prefix + "conv.weight")
        for key in [k for k in state if k.startswith(prefix + "conv.")]:
            del state[key]
        for j, w in enumerate(_factor_weights(weight, factor)):
            state[f"{prefix}convs.{j}.weight"] = w
        state.update({k: v for k, v in own.items() if k.startswith(prefix + "mids.")})
    new.load_state_dict(state, strict=True)
    if cfg.bits is not None:
        _calibrate(new, factors, calib if calib is not None else torch.rand(8, 3, *cfg.input_size) * 255.0)
    return new.train(model.training)


def _calibrate(model: Model, factors: list[Factor], images: torch.Tensor) -> None:
    """Set each new signed quantizer's range to the largest magnitude its input reaches on ``images``."""
    peaks: dict[tuple[int, int], float] = {}
    hooks = []
    for factor in factors:
        block = model.layers[factor.layer]
        for j, mid in enumerate(block.mids):
            hooks.append(mid.register_forward_pre_hook(
                lambda _m, args, key=(factor.layer, j): peaks.__setitem__(
                    key, max(peaks.get(key, 0.0), float(args[0].detach().abs().max())))))
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(images)
    finally:
        for h in hooks:
            h.remove()
    for (layer, j), peak in peaks.items():
        block = model.layers[layer]
        bits = int(block.mids[j].act_quant.bit_width())
        block.mids[j] = QuantIdentity(act_quant=SIGNED_ACT_QUANTIZERS[bits], min_val=-max(peak, 1e-3),
                                      max_val=max(peak, 1e-3))
    model.train(was)
