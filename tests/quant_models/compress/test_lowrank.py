"""Low-rank factorization: exact at full rank, the rank a threshold or budget asks for, quantized factors that
load back, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from quant_models.checkpoint import load_model, save_checkpoint
from quant_models.complexity import model_complexity
from quant_models.compress import CompressError, factorize_model, prune_model
from quant_models.models import build_model, default_config

SIZE = (64, 64)


def _outputs(model, images):
    with torch.no_grad():
        out = model(images)
    return out if isinstance(out, tuple) else (out,)


@pytest.mark.parametrize("arch,layer", [("tinydet", 3), ("tinyyolo", 4)])
@pytest.mark.parametrize("ranks", ["svd", "tucker"])
def test_full_rank_factors_compute_the_same_function(arch, layer, ranks):
    torch.manual_seed(0)
    model = build_model(default_config(arch, 3, bits=None, input_size=SIZE)).eval()
    conv = model.plan[layer]
    full = (min(conv.out_ch, conv.in_ch * conv.kernel ** 2),) if ranks == "svd" else (conv.in_ch, conv.out_ch)
    factored = factorize_model(model, ranks={layer: full}).eval()
    assert factored.cfg.factor_of(layer).ranks == full
    assert len(factored.layers[layer].convs) == (2 if ranks == "svd" else 3)
    images = torch.rand(2, 3, *SIZE) * 255
    for a, b in zip(_outputs(model, images), _outputs(factored, images)):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-4)


def test_the_energy_threshold_finds_the_rank_of_a_low_rank_weight():
    torch.manual_seed(0)
    model = build_model(default_config("tinydet", 3, bits=None, input_size=SIZE)).eval()
    w = model.layers[3].conv.weight
    out, cols = w.shape[0], w[0].numel()
    rng = np.random.default_rng(0)
    low = rng.standard_normal((out, 5)) @ rng.standard_normal((5, cols)) * 0.05  # rank 5 exactly
    with torch.no_grad():
        w.copy_(torch.from_numpy(low).float().reshape(w.shape))
    factored = factorize_model(model, energy=0.999999, layers=[3]).eval()
    assert factored.cfg.factors[0].ranks == (5,)
    images = torch.rand(2, 3, *SIZE) * 255
    torch.testing.assert_close(_outputs(factored, images)[0], _outputs(model, images)[0], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("tucker", [False, True])
def test_a_mac_budget_is_kept_per_layer(tucker):
    model = build_model(default_config("tinydet", 3, input_size=SIZE)).eval()
    factored = factorize_model(model, macs=0.4, tucker=tucker, layers=[2, 3, 4])
    before = {c.name: c.macs for c in model_complexity(model).layers}
    after = model_complexity(factored).layers
    for i in (2, 3, 4):
        spent = sum(c.macs for c in after if c.name.startswith(f"conv{i}."))
        assert 0 < spent <= 0.4 * before[f"conv{i}"], (i, spent, before[f"conv{i}"])
    assert [c.name for c in after if c.name.startswith("conv3.")] == (
        ["conv3.0", "conv3.1", "conv3.2"] if tucker else ["conv3.0", "conv3.1"])


def test_quantized_factors_calibrate_their_signed_range_and_load_back(trained_run, tmp_path):
    model, _ = load_model(trained_run.best)  # trained: its activations are not all zero
    pruned = prune_model(model, 0.25, round_to=4)
    images = torch.rand(4, 3, *model.cfg.input_size) * 255
    factored = factorize_model(pruned, ranks={3: (8,), 4: (8, 12)}, calib=images).eval()
    mid = factored.layers[3].mids[0]
    seen = []
    hook = mid.register_forward_pre_hook(lambda _m, args: seen.append(float(args[0].abs().max())))
    _outputs(factored, images)
    hook.remove()
    bits = int(mid.act_quant.bit_width())
    assert bits == 4  # the layer's own activation bits, signed
    assert seen[0] > 0
    scale = float(mid.act_quant.scale().detach())
    assert scale * 2 ** (bits - 1) == pytest.approx(seen[0], rel=1e-3)  # -peak is the lowest level, -8 x scale
    path = tmp_path / "lr.pt"
    save_checkpoint(path, {"model_config": factored.cfg.to_dict(), "model": factored.state_dict()})
    loaded, _ = load_model(path)
    assert loaded.cfg.factors == factored.cfg.factors and loaded.cfg.channels == pruned.cfg.channels
    assert torch.equal(_outputs(loaded, images)[0], _outputs(factored, images)[0])


def test_bad_factorizations_are_refused_with_the_layer_named():
    model = build_model(default_config("tinydet", 3, input_size=SIZE))
    conv = model.plan[3]  # 64 -> 64, 3x3
    with pytest.raises(CompressError, match=r"l3 .*rank 65 is larger than the layer allows .*full rank is 64"):
        factorize_model(model, ranks={3: (65,)})
    with pytest.raises(CompressError, match=r"Tucker-2 ranks \(65, 8\) are larger than the layer allows"):
        factorize_model(model, ranks={3: (conv.in_ch + 1, 8)})
    with pytest.raises(CompressError, match="exactly one of"):
        factorize_model(model, energy=0.9, macs=0.5)
    with pytest.raises(CompressError, match=r"--energy 1.5"):
        factorize_model(model, energy=1.5)
    mobile = build_model(default_config("mobiledet", 3, input_size=SIZE))
    with pytest.raises(CompressError, match="l1 .*grouped/depthwise"):
        factorize_model(mobile, ranks={1: (4,)})
    factored = factorize_model(model, ranks={3: (8,)})
    with pytest.raises(CompressError, match="prune it before factorizing"):
        prune_model(factored, 0.5)
    with pytest.raises(CompressError, match="l3 is already factorized"):
        factorize_model(factored, ranks={3: (4,)})
