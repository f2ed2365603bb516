"""Compressed models of every zoo graph shape, with random plans, export to QONNX whose execution gives torch's
integers exactly (the check `qdet export` runs), and carry their plan in the graph's metadata."""

from __future__ import annotations

import json
import random

import pytest
import torch

pytestmark = pytest.mark.slow

SIZE = (64, 64)


@pytest.mark.parametrize("arch,seed", [("tinyyolo", 0), ("mobiledet", 1), ("tinydet", 2)])
def test_a_randomly_pruned_and_factorized_model_exports_bit_exact(arch, seed, tmp_path):
    import onnx

    from quant_models.checkpoint import save_checkpoint
    from quant_models.compress import factorize_model, prune_model, recalibrate_bn
    from quant_models.export import MODEL_CONFIG_KEY, export_checkpoint
    from quant_models.models import build_model, default_config

    rng = random.Random(seed)
    torch.manual_seed(seed)
    model = build_model(default_config(arch, 2, bits=rng.choice(["w4a4", "w3a5", "w8a8,first=8"]), width=0.5,
                                       input_size=SIZE))
    images = torch.randint(0, 256, (32, 3, *SIZE)).float()
    ratios = {i: rng.choice([0.0, 0.25, 0.5]) for i in range(len(model.plan))}
    pruned = recalibrate_bn(prune_model(model, 0.5, layer_ratios=ratios, round_to=4), images)
    full = [i for i, c in enumerate(pruned.plan) if c.groups == 1 and i > 0]  # mobiledet: its 1x1 convs
    layer = rng.choice(full)
    conv = pruned.plan[layer]
    ranks = ((rng.randint(1, min(conv.out_ch, conv.in_ch * conv.kernel ** 2) - 1),) if rng.random() < 0.5
             else (rng.randint(1, conv.in_ch), rng.randint(1, conv.out_ch)))
    small = recalibrate_bn(factorize_model(pruned, ranks={layer: ranks}, calib=images), images).eval()
    ckpt = tmp_path / "small.pt"
    save_checkpoint(ckpt, {"model_config": small.cfg.to_dict(), "model": small.state_dict()})
    report = export_checkpoint(ckpt, tmp_path / "small.onnx", samples=2)
    assert report.accumulator_mismatches == 0
    meta = {p.key: p.value for p in onnx.load(str(tmp_path / "small.onnx")).graph.metadata_props}
    config = json.loads(meta[MODEL_CONFIG_KEY])
    assert config["channels"] == list(small.cfg.channels)
    assert config["factors"] == [{"layer": layer, "ranks": list(ranks), "bits": None}]
