"""The demo path end to end, on a tiny budget: data -> training -> eval -> export -> summary."""

import json

import pytest
from rich.console import Console

from qdet.demo import DemoConfig, run_demo

pytestmark = pytest.mark.slow


def test_demo_runs_end_to_end(tmp_path):
    console = Console(record=True, width=200)
    summary = run_demo(DemoConfig(out=tmp_path, images=40, epochs=2, batch_size=16, verify_images=2), console)
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
