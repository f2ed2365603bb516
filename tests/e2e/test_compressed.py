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
    from quant_models.compress import factorize_model, prune_model, recalibrate_bn
    from quant_models.data import load_dataset, to_tensors
    from quant_models.export import export_checkpoint

    model, _ = load_model(trained_run.best)
    pruned = prune_model(model, 0.5, round_to=4)
    assert pruned.cfg.channels == tuple(c.out_ch // 2 for c in model.plan)
    calib = to_tensors(load_dataset(synth_data, "train"), model.cfg.input_size).images.float()
    small = factorize_model(recalibrate_bn(pruned, calib), ranks={3: (6,), 4: (8, 12)}, calib=calib)
    small = recalibrate_bn(small, calib).eval()
    # Not a vacuous comparison: every quantizer of the compressed net (the signed ones between factors too) is
    # live on the val images the build verifies on.
    val = to_tensors(load_dataset(synth_data, "val"), model.cfg.input_size).images[:FRAMES].float()
    live = []
    hooks = [q.register_forward_hook(lambda _m, _i, o: live.append(float((o != 0).float().mean())))
             for block in small.layers for q in (*getattr(block, "mids", ()), block.act)]
    with torch.no_grad():
        small(val)
    for h in hooks:
        h.remove()
    assert len(live) == 8 and min(live) > 0.05, live
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
    _a_broken_factor_is_named(layout, onnx, checkpoint, synth_data, tmp_path)
    require_simulator("verilator")
    simulate_both_ways(capsys, layout, frames=2, seed=4)
    c_simulate(capsys, layout, frames=FRAMES)
    assert torch.equal(load_model(checkpoint)[0].layers[4].convs[1].weight, small.layers[4].convs[1].weight)


def _a_broken_factor_is_named(layout, onnx, checkpoint, synth_data, tmp_path) -> None:
    """The golden model's diagnosis pairs every MVAU with its Brevitas quantizer, the signed ones between factors
    included: the first factor of layer 3 (MVAU 3, into a signed quantizer) with its signs flipped is named."""
    import shutil

    from qonnx.core.modelwrapper import ModelWrapper

    from flows.build import BuildLayout
    from flows.config import FlowConfig, FlowError
    from flows.runner import run_flow
    from flows.steps import DEFAULT_STEPS

    broken = BuildLayout(tmp_path / "broken")
    shutil.copytree(layout.steps_dir, broken.steps_dir)
    streamlined = ModelWrapper(str(broken.checkpoint(2, "streamline")))
    matmul = streamlined.get_nodes_by_op_type("MatMul")[3]
    weights = -streamlined.get_initializer(matmul.input[1])
    streamlined.set_initializer(matmul.input[1], weights)
    streamlined.save(str(broken.checkpoint(2, "streamline")))
    cfg = FlowConfig(out=broken.root, board="pynq-z2", verify_images=FRAMES, verify_data=synth_data,
                     checkpoint=checkpoint, start="to_hw_layers")
    with pytest.raises(FlowError) as info:
        run_flow(onnx, cfg, DEFAULT_STEPS)
    assert "first diverging: step 'streamline'" in str(info.value)
    assert "first differing layer: conv 3 = MVAU_3" in str(info.value)


def _attr(node, name: str):
    from qonnx.util.basic import get_by_name

    return get_by_name(node.attribute, name).i
