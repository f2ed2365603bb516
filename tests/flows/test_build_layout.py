"""The build-layout owner: where each file of a build lives (this test spells the layout, as the module's
docstring documents it), the board/clock record, and the up-front checks of a build folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flows.build import BuildLayout
from flows.config import FlowError


def test_paths_are_the_documented_layout(tmp_path):
    b = BuildLayout(tmp_path)
    expected = {
        b.record: "build.json", b.log: "build.log", b.times: "time_per_step.json", b.io_spec: "io_spec.json",
        b.input_checkpoint: "steps/00_input.onnx", b.checkpoint(6, "fold"): "steps/06_fold.onnx",
        b.golden_inputs: "golden/inputs.npy", b.golden_outputs: "golden/outputs.npy",
        b.golden_output(0): "golden/outputs.npy", b.golden_output(2): "golden/outputs_2.npy",
        b.verify_record: "golden/verify.json", b.estimates: "report/estimates.json",
        b.folding: "report/folding.json", b.fifo_sizing: "report/fifo_sizing.json",
        b.finn_setfolding: "report/finn_setfolding.json",
        b.summary: "report/summary.md", b.estimates_plot: "report/estimates.png", b.manifest: "rtl/manifest.json",
        b.sim_result: "sim/result.json", b.sim_summary: "sim/summary.md", b.sim_log: "sim/sim.log",
        b.sim_diagnose_log: "sim/diagnose.log",
        b.sim_run_dir("verilator"): "sim/run_verilator", b.synth_result: "synth/utilization.json",
        b.vivado_dir: "vivado", b.finn_tmp: "finn_tmp",
    }
    for path, rel in expected.items():
        assert path == tmp_path / rel
        assert b.relative(path) == rel


def test_checkpoints_are_found_by_step_name_in_step_order(tmp_path):
    b = BuildLayout(tmp_path)
    b.steps_dir.mkdir()
    for name in ("02_streamline.onnx", "00_input.onnx", "01_qonnx_to_finn.onnx", "notes.txt"):
        (b.steps_dir / name).write_text("x")
    assert [p.name for p in b.checkpoints()] == ["00_input.onnx", "01_qonnx_to_finn.onnx", "02_streamline.onnx"]
    assert b.find_checkpoint("streamline") == tmp_path / "steps" / "02_streamline.onnx"
    assert b.find_checkpoint("fold") is None
    with pytest.raises(FlowError, match="no checkpoint of step 'fold'.*qdet build"):
        b.step_checkpoint("fold")


def test_board_and_clock_come_from_the_build_record_else_the_manifest(tmp_path):
    b = BuildLayout(tmp_path)
    with pytest.raises(FlowError, match="build.json does not exist.*qdet build"):
        b.target()
    b.rtl_dir.mkdir()
    b.manifest.write_text(json.dumps({"board": "kv260", "clock_mhz": None}))
    board, clock = b.target()
    assert board.name == "kv260" and clock == 200.0  # the board's default clock (shared/references.md)
    b.write_record("ultra96-v2", 166.67, {"target_fps": None})
    board, clock = b.target()
    assert board.name == "ultra96-v2" and clock == 166.67
    b.record.write_text(json.dumps({"board": "zedboard", "clock_mhz": 100}))
    with pytest.raises(FlowError, match="build.json.*zedboard"):
        b.target()
    b.record.write_text("{not json")
    with pytest.raises(FlowError, match="build.json: cannot read it"):
        b.target()


def test_writable_checks_name_the_path_and_create_nothing(tmp_path):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(FlowError, match="afile: is a file"):
        BuildLayout(tmp_path / "afile").check_writable()
    with pytest.raises(FlowError, match="afile is a file"):
        BuildLayout(tmp_path / "afile" / "b").check_writable()
    build = tmp_path / "b"
    build.mkdir()
    (build / "report").write_text("x")
    with pytest.raises(FlowError, match=r"b/report is a file"):
        BuildLayout(build).check_writable()
    BuildLayout(tmp_path / "new" / "deeper").check_writable()
    assert not (tmp_path / "new").exists()


def test_existing_build_checks(tmp_path):
    with pytest.raises(FlowError, match="no such build directory"):
        BuildLayout(tmp_path / "nowhere").check_existing()
    with pytest.raises(FlowError, match="not a qdet build"):
        BuildLayout(tmp_path).check_existing()
    b = BuildLayout(tmp_path)
    b.steps_dir.mkdir()
    b.input_checkpoint.write_text("x")
    b.check_existing()
    b.sim_dir.write_text("x")
    with pytest.raises(FlowError, match=r"sim is a file"):
        b.check_existing()


def test_readers_name_the_file_and_the_command_that_writes_it(tmp_path):
    b = BuildLayout(tmp_path)
    with pytest.raises(FlowError, match="estimates.json does not exist.*report step"):
        b.read_estimates()
    with pytest.raises(FlowError, match="manifest.json does not exist.*qdet sim"):
        b.read_manifest()
    with pytest.raises(FlowError, match="no golden frames.*--verify"):
        b.read_golden()
    assert b.read_optional(b.sim_result) is None
    b.sim_dir.mkdir()
    b.sim_result.write_text("[1, 2]")
    with pytest.raises(FlowError, match="expected a JSON object"):
        b.read_optional(b.sim_result)


def test_of_keeps_a_layout_and_wraps_a_path(tmp_path):
    b = BuildLayout(tmp_path)
    assert BuildLayout.of(b) is b
    assert BuildLayout.of(str(tmp_path)) == b and BuildLayout.of(Path(tmp_path)) == b


def test_rtl_is_stale_when_the_hardware_graph_changed(tmp_path):
    import hashlib

    b = BuildLayout(tmp_path)
    b.rtl_dir.mkdir()
    b.manifest.write_text(json.dumps({"top": "qdet_top"}))
    assert not b.rtl_is_stale()  # RTL without the checkpoint it is built from (written by hand) is kept
    b.steps_dir.mkdir()
    b.checkpoint(7, "stream_links").write_bytes(b"first folding")
    b.manifest.write_text(json.dumps({"source_sha256": hashlib.sha256(b"first folding").hexdigest()}))
    assert not b.rtl_is_stale()
    b.checkpoint(7, "stream_links").write_bytes(b"a resumed build folded again")
    assert b.rtl_is_stale()
