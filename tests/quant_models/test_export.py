import json

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

from quant_models.checkpoint import load_model, save_checkpoint
from quant_models.export import FINN_MAPPABLE_OPS, ExportError, check_export, export_checkpoint, sample_images
from quant_models.models import build_model, default_config

pytestmark = pytest.mark.slow


def test_trained_tinydet_exports_and_matches_torch(trained_run, synth_data, tmp_path):
    from qonnx.core.modelwrapper import ModelWrapper

    from quant_models.data import load_dataset, to_tensors

    val = to_tensors(load_dataset(synth_data, "val"), (128, 128))
    out = tmp_path / "tinydet.onnx"
    report = export_checkpoint(trained_run.best, out, samples=3, images=val.images[:3])
    assert report.samples == 6 and report.accumulator_mismatches == 0
    assert report.max_abs_diff < 1e-3
    assert set(report.node_types) <= FINN_MAPPABLE_OPS
    assert {"Quant", "Conv", "MaxPool", "Relu"} <= set(report.node_types)
    assert report.input_shape == (1, 3, 128, 128) and report.output_shape == (1, 27, 16, 16)
    wrapped = ModelWrapper(str(out))
    assert wrapped.get_tensor_datatype(wrapped.graph.input[0].name).name == "UINT8"
    assert json.loads(out.with_suffix(".json").read_text())["accumulator_mismatches"] == 0


def test_ultranet_exports_with_mappable_nodes_only(tmp_path):
    torch.manual_seed(0)
    model = build_model(default_config("ultranet", 1, bits="w4a4"))
    model.train()
    with torch.no_grad():  # give BatchNorm non-trivial statistics, as training would
        for _ in range(3):
            model(torch.randint(0, 256, (4, 3, 160, 320)).float())
    ckpt = tmp_path / "ultranet.pt"
    save_checkpoint(ckpt, {"model_config": model.cfg.to_dict(), "model": model.state_dict()})
    report = export_checkpoint(ckpt, tmp_path / "ultranet.onnx", samples=2)
    assert report.output_shape == (1, 36, 10, 20)
    assert set(report.node_types) <= FINN_MAPPABLE_OPS
    assert report.node_types["Conv"] == 9 and report.node_types["MaxPool"] == 4
    # The detector's config rides along in the ONNX metadata; torch's side file of weights does not stay behind.
    meta = {p.key: p.value for p in onnx.load(str(tmp_path / "ultranet.onnx")).graph.metadata_props}
    assert json.loads(meta["qdet.model_config"]) == json.loads(json.dumps(model.cfg.to_dict()))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ultranet.json", "ultranet.onnx", "ultranet.pt"]


def test_float_model_is_refused(tmp_path):
    model = build_model(default_config("tinydet", 4, bits=None))
    ckpt = tmp_path / "float.pt"
    save_checkpoint(ckpt, {"model_config": model.cfg.to_dict(), "model": model.state_dict()})
    with pytest.raises(ExportError, match="float model"):
        export_checkpoint(ckpt, tmp_path / "float.onnx")
    assert not (tmp_path / "float.onnx").exists()


def test_a_graph_that_differs_from_torch_fails_loudly(trained_run, tmp_path):
    model, _ = load_model(trained_run.best)
    out = tmp_path / "tampered.onnx"
    export_checkpoint(trained_run.best, out, samples=1)
    graph = onnx.load(str(out))
    # Flip the sign of the head's float bias: the graph now disagrees with the torch model.
    head = [n for n in graph.graph.node if n.op_type == "Conv"][-1]
    inits = {i.name: i for i in graph.graph.initializer}
    bias = inits[head.input[2]]
    bias.CopyFrom(numpy_helper.from_array(-numpy_helper.to_array(bias) + np.float32(1.0), bias.name))
    onnx.save(graph, str(out))
    with pytest.raises(ExportError, match="differs from torch on sample 0"):
        check_export(model, out, sample_images(model, 2, seed=0))


def test_exported_graph_converts_to_finn_and_runs_identically(trained_run, tmp_path):
    """FINN (finn-plus, as a library) converts the export to its dialect: every Quant becomes a MultiThreshold or
    folds into weights, and executing the converted graph gives torch's head accumulators exactly."""
    from finn.transformation.qonnx.convert_qonnx_to_finn import ConvertQONNXtoFINN
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.util.cleanup import cleanup_model

    out = tmp_path / "tinydet.onnx"
    export_checkpoint(trained_run.best, out, samples=1)
    finn_model = cleanup_model(ModelWrapper(str(out))).transform(ConvertQONNXtoFINN())
    ops = {n.op_type for n in finn_model.graph.node}
    assert "Quant" not in ops and "MultiThreshold" in ops
    assert ops <= {"Conv", "MultiThreshold", "MaxPool", "Mul", "Add", "BatchNormalization", "Relu", "Div"}, ops
    model, _ = load_model(trained_run.best)
    images = sample_images(model, 2, seed=1)
    for image in images:
        x = image.unsqueeze(0).float()
        with torch.no_grad():
            ref = model(x)
        got = execute_onnx(finn_model, {finn_model.graph.input[0].name: x.numpy()})[finn_model.graph.output[0].name]
        assert torch.equal(model.head_accumulators(torch.from_numpy(got)), model.head_accumulators(ref))


def test_mismatches_are_counted_over_every_sample_before_the_error(trained_run, tiny_onnx, monkeypatch):
    """Corrupt the graph's output on samples 1 and 3 by a known number of accumulators: the check counts them all."""
    import quant_models.exact_exec as exact_exec

    model, _ = load_model(trained_run.best)
    scale = model.head_scale_bias()[0].numpy()
    real = exact_exec.execute_exact
    shifted = {1: 7, 3: 2}  # sample index -> accumulators moved by 3 LSBs
    rng = np.random.default_rng(5)
    calls: list[int] = []

    def tampered(wrapped, inputs, *args, **kwargs):
        out = real(wrapped, inputs, *args, **kwargs)
        name = wrapped.graph.output[0].name
        y = np.array(out[name], dtype=np.float64)
        where = np.unravel_index(rng.choice(y.size, shifted.get(len(calls), 0), replace=False), y.shape)
        y[where] += 3 * scale[where[1]]  # (n, channel, row, col): 3 x the channel's scale is 3 accumulator steps
        calls.append(len(calls))
        return {**out, name: y}

    monkeypatch.setattr(exact_exec, "execute_exact", tampered)
    images = sample_images(model, 5, seed=2)
    with pytest.raises(ExportError, match=r"on sample 1: 7 head accumulators differ.* 9 head accumulators differ "
                                          r"over all 5 samples, in samples \[1, 3\]"):
        check_export(model, tiny_onnx, images)
    assert len(calls) == 5  # every sample was compared before the error
    calls.clear()
    report = check_export(model, tiny_onnx, images, strict=False)
    assert report.accumulator_mismatches == sum(shifted.values())
    assert report.samples == 5 and report.max_abs_diff >= 3 * scale.min() * 0.999


def test_an_activation_float32_rounds_across_a_tie_is_checked_on_its_exact_value(tie_checkpoint, tmp_path):
    # The checkpoint has an activation just below a rounding tie that torch in float32 rounds up (the fixture
    # asserts the levels); here: that this changes the head, so a float32 reference would disagree with any exact
    # execution of the graph.
    path, image, heads32, heads64 = tie_checkpoint
    assert int((heads32.double() != heads64).sum()) > 0
    report = export_checkpoint(path, tmp_path / "tie.onnx", samples=1, images=image)
    assert report.samples == 2 and report.accumulator_mismatches == 0
    # The graph's own (float64) execution gives the float64 torch accumulators, independently of check_export.
    from qonnx.core.modelwrapper import ModelWrapper

    from quant_models.exact_exec import execute_exact
    from quant_models.float64 import float64_reference

    model, _ = load_model(path)
    graph = ModelWrapper(str(tmp_path / "tie.onnx"))
    out = execute_exact(graph, {graph.graph.input[0].name: image.float().numpy()})[graph.graph.output[0].name]
    assert torch.equal(float64_reference(model).head_accumulators(torch.from_numpy(np.asarray(out))), heads64)
