"""The demo path end to end, on a tiny budget: data -> training -> eval -> export -> summary."""

import json

import numpy as np
import pytest
from rich.console import Console

from flows.build import BuildLayout
from qdet.demo import DemoConfig, DemoPaths, run_demo
from quant_models.export import export_files
from quant_models.run_layout import RunLayout
from tests.tools import require_simulator

pytestmark = pytest.mark.slow


def test_demo_runs_end_to_end(tmp_path):
    console = Console(record=True, width=200)
    # 8 verified val images, all 8 streamed through the generated RTL of the full-width tinydet (issue 4).
    summary = run_demo(DemoConfig(out=tmp_path, images=60, epochs=2, batch_size=16, verify_images=8, sim_images=8,
                                  backpressure=0.3), console)
    text = console.export_text()
    assert "qdet demo finished" in text
    paths = DemoPaths(tmp_path)
    run, build = RunLayout(paths.run), BuildLayout(paths.build)
    export = export_files(paths.onnx)
    for path in (run.last, run.metrics, run.curves, run.eval_report, run.predictions, export.onnx, export.report,
                 build.io_spec, build.golden_outputs, build.summary):
        assert path.is_file(), path
    assert (paths.data / "annotations" / "instances_val.json").is_file()  # the synthetic set, COCO layout
    # Computed counts, not the console's wording: the export check over its 4 samples, the golden model over the
    # 8 verified images (and the golden frames it saved), the RTL over the 8 simulated frames.
    report = json.loads(export.report.read_text())
    assert report["samples"] == 4 and report["accumulator_mismatches"] == 0
    verify = json.loads(build.verify_record.read_text())
    assert verify["images"] == 8 and verify["mismatches"] == 0, verify
    assert len(np.load(build.golden_outputs)) == 8
    assert summary["fps"] == build.read_estimates()["fps"]
    assert summary["map50"] == json.loads(run.eval_report.read_text())["result"]["map50"]
    require_simulator("verilator")  # without it the demo skips its RTL stage
    sim = json.loads(build.sim_result.read_text())
    estimate = build.read_estimates()["cycles_per_frame"]
    assert sim["status"] == "done", sim["message"]
    assert sim["frames"] == 8 and sim["mismatches"] == 0 and sim["mismatched_frames"] == []
    assert sim["backpressure"] == 0.3
    # Issue 4: simulated cycles per frame within 10% of the build's estimate.
    assert abs(sim["cycles_per_frame"] / estimate - 1) <= 0.10, (sim["cycles_per_frame"], estimate)
    # The simulator's compile output went to its log, not to the console.
    assert build.sim_log.stat().st_size > 0 and "verilator" in build.sim_log.read_text().lower()
    assert "%Warning" not in text and "g++" not in text
    # Stage 7: the val split on the accelerator's C simulation, decoded on the host: qdet eval's mAP, exactly.
    acc = json.loads(build.run_file("report.json").read_text())
    evaluated = json.loads(run.eval_report.read_text())["result"]
    assert acc["images"] == 12 and acc["int_mismatches"] == 0 and acc["detections_identical"], acc["problems"]
    assert (acc["map50"], acc["map50_95"]) == (evaluated["map50"], evaluated["map50_95"])
    assert "accelerator run" in text
