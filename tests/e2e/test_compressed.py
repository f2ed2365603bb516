"""A pruned and factorized detector end to end: the trained W4A4 tinydet pruned (Torch-Pruning's plan), two of its
convs factorized (an SVD pair and a Tucker-2 triple, signed activations between the factors), exported, built for
pynq-z2, verified against the Brevitas checkpoint, RTL-simulated bit-exact under backpressure and C-simulated."""

from __future__ import annotations

import pytest

from tests.e2e.zoo_builds import build_verified, c_simulate, simulate_both_ways
from tests.tools import require_simulator

pytestmark = pytest.mark.slow
FRAMES = 4  # verified and C-simulated golden frames (the RTL simulation streams 2 under backpressure)


@pytest.mark.rtlsim
def test_pruned_and_factorized_tinydet_builds_and_simulates_bit_exact(capsys, trained_run, synth_data,
                                                                     tmp_path):
    import torch
    from qonnx.core.modelwrapper import ModelWrapper

    from quant_models.checkpoint import load_model, save_checkpoint
    from quant_models.compress import factorize_model, prune_model
    from quant_models.data import load_dataset, to_tensors
    from quant_models.export import export_checkpoint

    model, _ = load_model(trained_run.best)
    pruned = prune_model(model, 0.5, round_to=4)
    assert pruned.cfg.channels == tuple(c.out_ch // 2 for c in model.plan)
    calib = to_tensors(load_dataset(synth_data, "train"), model.cfg.input_size).images[:8].float()
    small = factorize_model(pruned, ranks={3: (6,), 4: (8, 12)}, calib=calib).eval()
    checkpoint = tmp_path / "compressed.pt"
    save_checkpoint(checkpoint, {"model_config": small.cfg.to_dict(), "model": small.state_dict()})
    onnx = tmp_path / "compressed.onnx"
    export_checkpoint(checkpoint, onnx, samples=1)

    layout = build_verified(capsys, onnx, tmp_path / "build", "pynq-z2", synth_data, checkpoint, FRAMES)
    graph = ModelWrapper(str(layout.step_checkpoint("fold"))).graph
    rows = sorted((int(_attr(n, "MH")), int(_attr(n, "MW"))) for n in graph.node if n.op_type.startswith("MVAU"))
    half = [c.out_ch // 2 for c in model.plan]
    # Layer 3: 3x3 (16 -> 6) then 1x1 (6 -> 16); layer 4: 1x1 (16 -> 8), 3x3 (8 -> 12), 1x1 (12 -> 16).
    expected = [(half[0], 27), (half[1], half[0] * 9), (half[2], half[1] * 9), (6, half[2] * 9), (half[3], 6),
                (8, half[3]), (12, 8 * 9), (half[4], 12), (small.cfg.head_channels, half[4])]
    assert rows == sorted(expected)
    require_simulator("verilator")
    simulate_both_ways(capsys, layout, frames=2, seed=4)
    c_simulate(capsys, layout, frames=FRAMES)
    assert torch.equal(load_model(checkpoint)[0].layers[4].convs[1].weight, small.layers[4].convs[1].weight)


def _attr(node, name: str):
    from qonnx.util.basic import get_by_name

    return get_by_name(node.attribute, name).i
