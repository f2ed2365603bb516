"""Structured pruning: dependency-tracked channel removal on every zoo architecture, plans that load back, bad input."""

from __future__ import annotations

import pytest
import torch

from quant_models.checkpoint import load_model, save_checkpoint
from quant_models.compress import CompressError, hardware_ratios, prune_model
from quant_models.models import build_model, default_config

SIZE = (64, 64)

# (architecture, the layer whose channels die, the layers after it that must die with them on the way, the layer
# whose input weights for those channels are zeroed). mobiledet's l2 feeds the depthwise l3 (coupled: the same
# channels leave both) and then the pointwise l4; tinyyolo's l3 (res8.0a) feeds only l4 (res8.0b).
DEAD = [("tinydet", 1, (), 2), ("mobiledet", 2, (3,), 4), ("tinyyolo", 3, (), 4)]


def _kill(model, layer: int, through: tuple[int, ...], reader: int, dead: list[int]) -> None:
    """Make ``dead`` channels of ``layer`` output exactly 0 all the way to ``reader``, which ignores them."""
    with torch.no_grad():
        for index in (layer, *through):
            block = model.layers[index]
            block.conv.weight[dead] = 0.0
            block.bn.weight[dead] = 0.0
            block.bn.bias[dead] = 0.0
            block.bn.running_mean[dead] = 0.0
        model.layers[reader].conv.weight[:, dead] = 0.0


@pytest.mark.parametrize("arch,layer,through,reader", DEAD, ids=[d[0] for d in DEAD])
def test_pruning_dead_channels_removes_exactly_them_and_keeps_the_function(arch, layer, through, reader):
    torch.manual_seed(0)
    model = build_model(default_config(arch, 3, input_size=SIZE)).eval()
    channels = model.plan[layer].out_ch
    dead = list(range(1, channels, 2))  # every other channel: half of them
    _kill(model, layer, through, reader, dead)
    ratios = {i: 0.0 for i in range(len(model.plan))}
    ratios.update({i: 0.5 for i in (layer, *through)})  # a coupled group keeps what its least-pruned member asks
    pruned = prune_model(model, 0.5, layer_ratios=ratios, round_to=1).eval()

    live = [c for c in range(channels) if c not in dead]
    assert pruned.cfg.channels[layer] == len(live)
    for index in (layer, *through):  # the coupled depthwise layer lost the same channels
        assert torch.equal(pruned.layers[index].conv.weight, model.layers[index].conv.weight[live])
    assert torch.equal(pruned.layers[reader].conv.weight, model.layers[reader].conv.weight[:, live])
    others = [i for i in range(len(model.plan)) if i not in (layer, *through)]
    assert [pruned.plan[i].out_ch for i in others] == [model.plan[i].out_ch for i in others]
    images = torch.rand(4, 3, *SIZE) * 255
    with torch.no_grad():
        before, after = model(images), pruned(images)
    for b, a in zip(before if isinstance(before, tuple) else (before,), after if isinstance(after, tuple) else (after,)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("arch", ["tinydet", "mobiledet", "tinyyolo"])
def test_half_the_channels_leave_with_their_couplings_and_the_plan_loads_back(arch, tmp_path):
    torch.manual_seed(1)
    model = build_model(default_config(arch, 3, input_size=SIZE)).eval()
    pruned = prune_model(model, 0.5).eval()
    for before, after in zip(model.plan, pruned.plan):
        assert after.out_ch == max(8, before.out_ch // 2) if before.out_ch >= 16 else after.out_ch == before.out_ch
        assert after.groups in (1, after.in_ch)  # depthwise stays depthwise
    if arch == "tinyyolo":  # the residual trunks keep one width: a block's output is added to its input
        lay = pruned.layout
        for down, pairs in ((lay.down8, lay.res8), (lay.down16, lay.res16)):
            assert all(pruned.plan[b].out_ch == pruned.plan[down].out_ch for _, b in pairs)
        assert pruned.plan[lay.fuse].in_ch == pruned.plan[lay.lateral].out_ch + pruned.plan[lay.down8].out_ch
    path = tmp_path / "pruned.pt"
    save_checkpoint(path, {"model_config": pruned.cfg.to_dict(), "model": pruned.state_dict()})
    loaded, _ = load_model(path)
    assert loaded.cfg == pruned.cfg and loaded.cfg.channels == tuple(c.out_ch for c in pruned.plan)
    images = torch.rand(2, 3, *SIZE) * 255
    with torch.no_grad():
        a, b = pruned(images), loaded(images)
    for x, y in zip(a if isinstance(a, tuple) else (a,), b if isinstance(b, tuple) else (b,)):
        assert torch.equal(x, y)


@pytest.mark.parametrize("ratio", [0.0, 1.0, 1.5, -0.2])
def test_a_ratio_outside_zero_one_is_refused(ratio):
    model = build_model(default_config("tinydet", 3, input_size=SIZE))
    with pytest.raises(CompressError, match=r"must be in \(0, 1\)"):
        prune_model(model, ratio)


def test_pruning_that_would_empty_a_layer_names_it():
    model = build_model(default_config("tinydet", 3, width=0.25, input_size=SIZE))  # l0 has 8 channels
    with pytest.raises(CompressError, match=r"l0 \(8 channels\) by 0.5 would remove every channel.*--round-to 4"):
        prune_model(model, 0.5, round_to=8)
    assert prune_model(model, 0.5, round_to=4).cfg.channels[0] == 4


def test_hardware_ratios_prune_costly_layers_harder_and_the_same_share_in_total():
    channels = [16, 32, 64, 64]
    costs = (10.0, 40.0, 400.0, 150.0)
    ratios = hardware_ratios(channels, costs, 0.5)
    assert ratios[2] > ratios[3] > ratios[1] > ratios[0]
    assert max(ratios.values()) <= 0.9
    removed = sum(ratios[i] * ch for i, ch in enumerate(channels)) / sum(channels)
    assert removed == pytest.approx(0.5, abs=1e-6)


def test_bn_importance_removes_the_smallest_gammas_and_taylor_needs_a_loss():
    torch.manual_seed(3)
    model = build_model(default_config("tinydet", 3, input_size=SIZE)).eval()
    gamma = model.layers[2].bn.weight
    with torch.no_grad():
        gamma.copy_(torch.linspace(1.0, 2.0, len(gamma)))
        gamma[::2] = 1e-3  # the even channels carry (almost) nothing
    ratios = {i: (0.5 if i == 2 else 0.0) for i in range(len(model.plan))}
    pruned = prune_model(model, 0.5, importance="bn", layer_ratios=ratios)
    odd = list(range(1, len(gamma), 2))
    assert torch.equal(pruned.layers[2].bn.weight, gamma[odd])
    with pytest.raises(CompressError, match="taylor needs a loss"):
        prune_model(model, 0.5, importance="taylor")
    images = torch.rand(2, 3, *SIZE) * 255
    taylor = prune_model(model, 0.5, importance="taylor", loss_fn=lambda m: m(images).square().mean())
    assert taylor.cfg.channels == (8, 16, 32, 32, 32)
    with pytest.raises(CompressError, match="--importance 'random'"):
        prune_model(model, 0.5, importance="random")
