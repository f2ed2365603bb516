"""The demo path end to end, on a tiny budget: data -> training -> eval -> export -> summary."""

import json

import pytest
from rich.console import Console

from qdet.demo import DemoConfig, run_demo

pytestmark = pytest.mark.slow


def test_demo_runs_end_to_end(tmp_path):
    console = Console(record=True, width=200)
    # 8 verified val images, all 8 streamed through the generated RTL of the full-width tinydet (issue 4).
    summary = run_demo(DemoConfig(out=tmp_path, images=60, epochs=2, batch_size=16, verify_images=8, sim_images=8,
                                  backpressure=0.3), console)
    text = console.export_text()
    assert "qdet demo finished" in text and "head accumulators identical" in text
    for name in ("data/annotations/instances_val.json", "run/last.pt", "run/metrics.json", "run/curves.png",
                 "run/eval.json", "run/predictions.png", "tinydet_w4a4.onnx", "tinydet_w4a4.json",
                 "build/io_spec.json", "build/golden/outputs.npy", "build/report/summary.md"):
        assert (tmp_path / name).is_file(), name
    export = json.loads((tmp_path / "tinydet_w4a4.json").read_text())
    assert export["accumulator_mismatches"] == 0
    assert summary["fps"] == json.loads((tmp_path / "build" / "report" / "estimates.json").read_text())["fps"]
    assert summary["map50"] == json.loads((tmp_path / "run" / "eval.json").read_text())["result"]["map50"]
    from sim.tools import available

    if not available("verilator"):
        pytest.skip("Verilator not installed: the RTL stage was skipped")
    sim = json.loads((tmp_path / "build" / "sim" / "result.json").read_text())
    estimate = json.loads((tmp_path / "build" / "report" / "estimates.json").read_text())["cycles_per_frame"]
    assert sim["frames"] == 8 and sim["mismatches"] == 0 and sim["backpressure"] == 0.3
    # Issue 4: simulated cycles per frame within 10% of the build's estimate.
    assert abs(sim["cycles_per_frame"] / estimate - 1) <= 0.10, (sim["cycles_per_frame"], estimate)
    assert "bit-exact" in text
