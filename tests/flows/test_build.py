"""The default flow on a trained tinydet: hardware layers only, exact golden model, io_spec, resume."""

import filecmp
import json
import shutil
from dataclasses import replace

import numpy as np
import pytest
import torch

from flows.build import BuildLayout
from boards.runtime.io_spec import IOSpec
from flows.runner import run_flow
from flows.steps import DEFAULT_STEPS
from quant_models.checkpoint import load_model
from quant_models.float64 import float64_reference

HW = "finn.custom_op.fpgadataflow"


def test_every_layer_is_a_hardware_layer(tiny_build):
    from qonnx.core.modelwrapper import ModelWrapper

    cfg, final = tiny_build
    assert all(n.domain.startswith(HW) for n in final.graph.node)
    model = ModelWrapper(str(cfg.layout.checkpoint(3, "to_hw_layers")))
    ops = [n.op_type for n in model.graph.node]
    # 6 convs (5 blocks + head) -> 6 MVAUs; 3 max pools; the identity input quantizer is gone (no Thresholding).
    assert ops.count("MVAU") == 6 and ops.count("Pool") == 3 and "Thresholding" not in ops


def test_io_spec_keeps_only_layout_and_head_scale_bias_on_the_host(tiny_build, trained_run):
    cfg, _ = tiny_build
    spec = IOSpec.load(cfg.layout.io_spec)
    assert [op.op for op in spec.input.host_ops] == ["Transpose"]
    assert [op.op for op in spec.output.host_ops] == ["Transpose", "Mul", "Add"]
    assert spec.input.datatype == "UINT8" and spec.input.shape == (1, 128, 128, 3)
    model, _ = load_model(trained_run.best)
    assert spec.output.shape == (1, 16, 16, model.cfg.head_channels)
    assert spec.model_config["anchors"] == [list(a) for a in model.cfg.anchors]
    assert spec.model_config["num_classes"] == model.cfg.num_classes


def test_golden_model_matches_brevitas_exactly_on_16_images(tiny_build, trained_run):
    cfg, _ = tiny_build
    report = json.loads((cfg.layout.verify_record).read_text())
    assert report["images"] == 16 and report["mismatches"] == 0 and "Brevitas" in report["reference"]
    # Independently of the step: the saved golden outputs, through the io_spec's host ops, are torch's output.
    spec = IOSpec.load(cfg.layout.io_spec)
    inputs = np.load(cfg.layout.golden_inputs)
    outputs = np.load(cfg.layout.golden_outputs)
    model = float64_reference(load_model(trained_run.best)[0])  # Brevitas' quantized weights, exact arithmetic
    with torch.no_grad():
        ref = model(torch.from_numpy(inputs.transpose(0, 3, 1, 2)).double())
    assert torch.equal(model.head_accumulators(ref), torch.from_numpy(outputs.transpose(0, 3, 1, 2)).double())
    np.testing.assert_allclose(spec.host_output(outputs), ref.numpy(), rtol=1e-5, atol=1e-5)


def test_build_writes_checkpoints_times_and_log(tiny_build):
    cfg, _ = tiny_build
    layout = cfg.layout
    steps = ["qonnx_to_finn", "streamline", "to_hw_layers", "verify", "specialize", "fold", "stream_links", "report"]
    assert sorted(layout.steps_dir.iterdir()) == [layout.input_checkpoint] + [
        layout.checkpoint(i, s) for i, s in enumerate(steps, 1)]
    times = json.loads((cfg.layout.times).read_text())
    assert list(times) == steps
    log = (cfg.layout.log).read_text()
    assert "--- step 01 qonnx_to_finn" in log and "--- step 04 verify done in" in log


def test_resumed_build_writes_the_same_files(tiny_build, tiny_onnx, tmp_path):
    cfg, _ = tiny_build
    resumed = BuildLayout(tmp_path / "resumed")
    shutil.copytree(cfg.layout.steps_dir, resumed.steps_dir)
    later = [p for p in resumed.checkpoints() if int(p.name[:2]) >= 3]
    for path in later:
        path.unlink()
    run_flow(tiny_onnx, replace(cfg, out=resumed.root, start="to_hw_layers"), DEFAULT_STEPS)

    def outputs(layout: BuildLayout) -> list:
        return [layout.steps_dir / p.name for p in later] + [
            layout.io_spec, layout.golden_inputs, layout.golden_outputs, layout.verify_record, layout.folding,
            layout.summary, layout.finn_setfolding, layout.estimates, layout.estimates_plot]

    for ours, theirs in zip(outputs(cfg.layout), outputs(resumed)):
        assert filecmp.cmp(ours, theirs, shallow=False), ours


def test_a_corrupted_weight_names_the_first_diverging_step_and_layer(tiny_build, tiny_onnx, tmp_path):
    from flows.config import FlowError
    from qonnx.core.modelwrapper import ModelWrapper

    cfg, _ = tiny_build
    broken = BuildLayout(tmp_path / "broken")
    shutil.copytree(cfg.layout.steps_dir, broken.steps_dir)
    streamlined = ModelWrapper(str(broken.checkpoint(2, "streamline")))
    matmul = streamlined.get_nodes_by_op_type("MatMul")[2]
    weights = streamlined.get_initializer(matmul.input[1]).copy()
    weights[:, 0] = -weights[:, 0]  # flip the signs of output channel 0 of conv 2
    streamlined.set_initializer(matmul.input[1], weights)
    streamlined.save(str(broken.checkpoint(2, "streamline")))
    with pytest.raises(FlowError) as info:
        run_flow(tiny_onnx, replace(cfg, out=broken.root, start="to_hw_layers"), DEFAULT_STEPS)
    message = str(info.value)
    assert "step 'verify' failed" in message
    assert "first diverging: step 'streamline'" in message and "first differing layer: conv 2 = MVAU_2" in message
    assert "Resume with --from verify" in message


def test_verify_holds_the_golden_model_to_brevitas_exact_value_at_a_float32_tie(tie_checkpoint, synth_data,
                                                                               tmp_path):
    # Brevitas in float32 rounds one conv-0 activation of this checkpoint up across a tie (over a hundred head
    # accumulators change); the exact value rounds down, and so do the hardware's float64-folded thresholds.
    from flows.config import FlowConfig
    from quant_models.export import export_checkpoint

    path, image, heads32, heads64 = tie_checkpoint
    onnx_path = tmp_path / "tie.onnx"
    export_checkpoint(path, onnx_path, samples=1)
    cfg = FlowConfig(out=tmp_path / "build", board="pynq-z2", verify_images=1, verify_data=synth_data,
                     checkpoint=path)
    run_flow(onnx_path, cfg, DEFAULT_STEPS[:4])  # up to and including verify
    report = json.loads(cfg.layout.verify_record.read_text())
    assert report["mismatches"] == 0 and "float64" in report["reference"]
    assert np.array_equal(np.load(cfg.layout.golden_inputs).transpose(0, 3, 1, 2), image.numpy())
    golden = torch.from_numpy(np.load(cfg.layout.golden_outputs).transpose(0, 3, 1, 2)).double()
    assert torch.equal(golden, heads64) and not torch.equal(golden, heads32.double())
