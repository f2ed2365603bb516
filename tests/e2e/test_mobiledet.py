"""mobiledet W4A4 end to end at a small width: train, export, build for pynq-z2 and ultra96-v2 (depthwise convs
become VVAUs), verify against the Brevitas checkpoint, simulate bit-exact in RTL under random backpressure."""

from __future__ import annotations

import json

import pytest

from tests.qdet.cli_helpers import run_qdet
from tests.tools import require_simulator

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def mobiledet(synth_data, tmp_path_factory):
    """A quarter-width mobiledet W4A4 trained for 2 epochs on the session's synthetic set, exported."""
    from quant_models.export import export_checkpoint
    from quant_models.train import TrainConfig, train

    root = tmp_path_factory.mktemp("mobiledet")
    result = train(TrainConfig(data=synth_data, out=root / "run", model="mobiledet", bits="w4a4", epochs=2,
                               batch_size=16, width=0.25, depth=1, progress=False))
    onnx = root / "mobiledet.onnx"
    export_checkpoint(result.best, onnx, samples=1)
    return root, result.best, onnx


@pytest.mark.rtlsim
@pytest.mark.parametrize("board", ["pynq-z2", "ultra96-v2"])
def test_mobiledet_builds_verifies_and_simulates_bit_exact(capsys, mobiledet, synth_data, board):
    from flows.build import BuildLayout
    from qonnx.core.modelwrapper import ModelWrapper

    require_simulator("verilator")
    root, checkpoint, onnx = mobiledet
    out = root / f"build_{board}"
    built = run_qdet(capsys, "build", onnx, "--out", out, "--board", board, "--max-fps", "--verify", "4",
                     "--verify-data", synth_data, "--checkpoint", checkpoint)
    assert built.code == 0, built.text
    layout = BuildLayout(out)
    verified = json.loads(layout.verify_record.read_text())
    assert verified["mismatches"] == 0 and "Brevitas model" in verified["reference"]
    ops = [n.op_type for n in ModelWrapper(str(layout.step_checkpoint("fold"))).graph.node]
    assert ops.count("VVAU_hls") >= 3 and "Pool_hls" not in ops  # strided depthwise convs, no pooling
    est = layout.read_estimates()
    assert est["fits"] and est["board"] == board
    simulated = run_qdet(capsys, "sim", out, "--images", "3", "--backpressure", "0.3", "--seed", "2")
    assert simulated.code == 0, simulated.text
    result = json.loads(layout.sim_result.read_text())
    assert result["frames"] == 3 and result["mismatches"] == 0, result["message"]
    free = run_qdet(capsys, "sim", out, "--images", "3")
    assert free.code == 0, free.text
    result = json.loads(layout.sim_result.read_text())
    assert result["mismatches"] == 0 and result["ratio_to_estimate"] <= 1.10, result
