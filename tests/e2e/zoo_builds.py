"""What the zoo members' end-to-end tests share: a short training run exported to QONNX, a verified build, and the
two simulations (bit-exact under backpressure; at the estimated rate without it)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.qdet.cli_helpers import run_qdet


def train_and_export(synth_data: Path, root: Path, model: str, **train_options) -> tuple[Path, Path]:
    """Train ``model`` W4A4 for 2 epochs at batch 16 on the session's synthetic set; (best checkpoint, QONNX)."""
    from quant_models.export import export_checkpoint
    from quant_models.train import TrainConfig, train

    result = train(TrainConfig(data=synth_data, out=root / "run", model=model, bits="w4a4", epochs=2,
                               batch_size=16, progress=False, **train_options))
    onnx = root / f"{model}.onnx"
    export_checkpoint(result.best, onnx, samples=1)
    return result.best, onnx


def build_verified(capsys, onnx: Path, out: Path, board: str, synth_data: Path, checkpoint: Path, verify: int = 4):
    """``qdet build --max-fps`` verified on ``verify`` val images against the Brevitas checkpoint; returns the
    layout after checking that the golden model matched and the estimate fits the board."""
    from flows.build import BuildLayout

    built = run_qdet(capsys, "build", onnx, "--out", out, "--board", board, "--max-fps", "--verify", str(verify),
                     "--verify-data", synth_data, "--checkpoint", checkpoint)
    assert built.code == 0, built.text
    layout = BuildLayout(out)
    verified = json.loads(layout.verify_record.read_text())
    assert verified["mismatches"] == 0 and "Brevitas model" in verified["reference"]
    est = layout.read_estimates()
    assert est["fits"] and est["board"] == board
    return layout


def simulate_both_ways(capsys, layout, frames: int, seed: int) -> None:
    """``qdet sim``: ``frames`` frames bit-exact with backpressure 0.3, then 3 frames without it within 10% of the
    estimated cycles per frame."""
    simulated = run_qdet(capsys, "sim", layout.root, "--images", str(frames), "--backpressure", "0.3", "--seed",
                         str(seed))
    assert simulated.code == 0, simulated.text
    result = json.loads(layout.sim_result.read_text())
    assert result["frames"] == frames and result["mismatches"] == 0, result["message"]
    free = run_qdet(capsys, "sim", layout.root, "--images", "3")
    assert free.code == 0, free.text
    result = json.loads(layout.sim_result.read_text())
    assert result["mismatches"] == 0 and result["ratio_to_estimate"] <= 1.10, result


def map_to_rtl(layout) -> dict:
    """Generate the build's RTL without simulating it: every node maps to a kernel and the top has one output port
    per model output; returns the manifest."""
    from hls.gen import generate_rtl

    generate_rtl(layout)
    manifest = layout.read_manifest()
    outputs = json.loads(layout.io_spec.read_text())["outputs"]
    assert len([p for p in manifest["ports"] if p != "s_axis"]) == len(outputs), manifest["ports"]
    return manifest


C_FRAMES = 16  # golden frames the C simulation of a zoo build streams (all distinct)


def c_simulate(capsys, layout, frames: int = C_FRAMES) -> dict:
    """``qdet sim --backend cpp``: ``frames`` golden frames bit-exact on every output port; returns the result."""
    from tests.tools import require_cxx

    require_cxx()
    done = run_qdet(capsys, "sim", layout.root, "--backend", "cpp", "--images", str(frames))
    assert done.code == 0, done.text
    result = json.loads(layout.csim_result.read_text())
    assert result["status"] == "done" and result["frames"] == frames and result["mismatches"] == 0, result["message"]
    return result


def run_matches_eval(capsys, layout, synth_data: Path, checkpoint: Path, out: Path) -> dict:
    """``qdet run --backend cpp-sim`` over the val split: no integer differs from the torch model's, the detections
    are the torch model's, and mAP@0.5 / mAP@0.5:0.95 are those of ``qdet eval`` of the checkpoint on the same
    images (an independent path: the torch model and its torch decode); returns the report."""
    from quant_models.evaluate import evaluate_checkpoint

    ran = run_qdet(capsys, "run", layout.root, "--data", synth_data, "--backend", "cpp-sim")
    assert ran.code == 0, ran.text
    report = json.loads(layout.run_file("report.json").read_text())
    assert report["int_mismatches"] == 0 and report["detections_identical"] and report["problems"] == []
    ev = evaluate_checkpoint(checkpoint, synth_data, "val", out=out)
    assert (report["map50"], report["map50_95"]) == (ev.result.map50, ev.result.map50_95)
    return report
