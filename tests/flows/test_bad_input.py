"""Bad input to a build: each gets a clear FlowError naming what is wrong, and finished steps stay saved."""

from pathlib import Path

import onnx
import pytest
import torch
from onnx import helper

from boards.catalogue import UnknownBoardError
from flows.build import BuildLayout
from flows.config import FlowConfig, FlowError
from flows.runner import run_flow
from flows.steps import DEFAULT_STEPS


def _build(model: Path, out: Path, **kw):
    return run_flow(model, FlowConfig(out=out, verify_images=0, **kw), DEFAULT_STEPS)


def test_float_model_is_refused(tmp_path):
    from quant_models.models import build_model, default_config

    model = build_model(default_config("tinydet", num_classes=2, bits=None, width=0.25)).eval()
    path = tmp_path / "float.onnx"
    torch.onnx.export(model, torch.zeros(1, 3, 128, 128), str(path), dynamo=False)
    with pytest.raises(FlowError, match="float model .*qdet train --bits"):
        _build(path, tmp_path / "b")
    assert BuildLayout(tmp_path / "b").input_checkpoint.is_file()  # the loaded input stays saved


def test_unmappable_op_names_the_node_and_what_to_change(tiny_onnx, tmp_path):
    proto = onnx.load(str(tiny_onnx))
    out = proto.graph.output[0]
    proto.graph.node.append(helper.make_node("Sigmoid", [out.name], ["probs"], name="head_sigmoid"))
    out.name = "probs"
    path = tmp_path / "sigmoid.onnx"
    onnx.save(proto, str(path))
    with pytest.raises(FlowError) as info:
        _build(path, tmp_path / "b")
    message = str(info.value)
    assert "'head_sigmoid' (op Sigmoid)" in message and "on the host" in message
    assert "step 'qonnx_to_finn' failed" in message


def test_dynamic_input_shape_is_refused(tiny_onnx, tmp_path):
    proto = onnx.load(str(tiny_onnx))
    proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param = "batch"
    path = tmp_path / "dynamic.onnx"
    onnx.save(proto, str(path))
    with pytest.raises(FlowError, match="missing or dynamic shape .*batch"):
        _build(path, tmp_path / "b")


@pytest.mark.parametrize("content", [b"", b"not an onnx model at all \x00\x01\x02" * 10])
def test_corrupt_or_non_onnx_file_is_refused(tmp_path, content):
    path = tmp_path / "model.onnx"
    path.write_bytes(content)
    with pytest.raises(FlowError, match=str(path)):
        _build(path, tmp_path / "b")


def test_missing_file_says_how_to_make_one(tmp_path):
    with pytest.raises(FlowError, match="qdet export"):
        _build(tmp_path / "nothing.onnx", tmp_path / "b")


def test_unknown_board_lists_the_known_ones(tmp_path):
    with pytest.raises(UnknownBoardError, match="pynq-z2.*ultra96-v2"):
        FlowConfig(out=tmp_path, board="zedboard")


def test_a_failing_step_keeps_the_finished_ones_and_resume_goes_on(tiny_onnx, tmp_path):
    def step_explode(model, cfg):
        raise ValueError("boom")

    steps = (*DEFAULT_STEPS[:2], step_explode)
    out = tmp_path / "b"
    with pytest.raises(FlowError, match="step 'explode' failed: ValueError: boom.*Resume with --from explode"):
        run_flow(tiny_onnx, FlowConfig(out=out, verify_images=0), steps)
    layout = BuildLayout(out)
    assert layout.checkpoints() == [layout.input_checkpoint, layout.checkpoint(1, "qonnx_to_finn"),
                                    layout.checkpoint(2, "streamline")]
    assert "ValueError: boom" in layout.log.read_text()
    model = run_flow(tiny_onnx, FlowConfig(out=out, verify_images=0, start="to_hw_layers", stop="to_hw_layers"),
                     DEFAULT_STEPS)
    assert all(n.domain.startswith("finn.custom_op.fpgadataflow") for n in model.graph.node)


@pytest.mark.parametrize("kw, message", [
    ({"start": "synthesize"}, "unknown step 'synthesize'"),
    ({"start": "to_hw_layers", "stop": "streamline"}, "comes after"),
    ({"start": "verify"}, "cannot resume at step 'verify'"),
])
def test_bad_start_and_stop(tiny_onnx, tmp_path, kw, message):
    with pytest.raises(FlowError, match=message):
        run_flow(tiny_onnx, FlowConfig(out=tmp_path / "b", **kw), DEFAULT_STEPS)


def test_stop_ends_after_the_named_step(tiny_onnx, tmp_path):
    run_flow(tiny_onnx, FlowConfig(out=tmp_path / "b", stop="qonnx_to_finn"), DEFAULT_STEPS)
    layout = BuildLayout(tmp_path / "b")
    assert layout.checkpoints() == [layout.input_checkpoint, layout.checkpoint(1, "qonnx_to_finn")]
