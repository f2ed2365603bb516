"""UltraNet (as published: 160x320, nine convs, W4A4) through the flow for Ultra96-V2, verified against Brevitas on
16 images, and its HLS C++ C-simulated bit-exact on them."""

import json

import pytest

from flows.config import FlowConfig
from flows.runner import run_flow
from flows.steps import DEFAULT_STEPS
from tests.tools import require_cxx

pytestmark = pytest.mark.slow


def test_trained_ultranet_maps_to_hardware_and_matches_brevitas(synth_data, tmp_path):
    from quant_models.export import export_checkpoint
    from quant_models.train import TrainConfig, train

    run = train(TrainConfig(data=synth_data, out=tmp_path / "run", model="ultranet", bits="w4a4", epochs=1,
                            batch_size=16, progress=False))
    onnx_path = tmp_path / "ultranet.onnx"
    export_checkpoint(run.last, onnx_path, samples=1)
    cfg = FlowConfig(out=tmp_path / "build", board="ultra96-v2", verify_images=16, checkpoint=run.last)
    model = run_flow(onnx_path, cfg, DEFAULT_STEPS)
    ops = [n.op_type.rsplit("_", 1)[0] for n in model.graph.node]  # MVAU_hls -> MVAU
    assert all(n.domain.startswith("finn.custom_op.fpgadataflow") for n in model.graph.node)
    assert ops.count("MVAU") == 9 and ops.count("Pool") == 4
    report = json.loads((cfg.layout.verify_record).read_text())
    assert report["images"] == 16 and report["mismatches"] == 0 and "Brevitas" in report["reference"]
    spec = json.loads((cfg.layout.io_spec).read_text())
    head = len(spec["model_config"]["anchors"]) * (5 + spec["model_config"]["num_classes"])
    assert spec["input"]["shape"] == [1, 160, 320, 3] and spec["outputs"][0]["shape"] == [1, 10, 20, head]
    # The HLS C++ of the full-size UltraNet C-simulates bit-exact on the 16 distinct golden frames.
    require_cxx()
    from hls.backend import get_backend

    c = get_backend("cpp").simulate(cfg.layout, images=16)
    assert c.status == "done" and c.frames == 16 and c.mismatches == 0, c.message
