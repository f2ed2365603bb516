"""C simulation of the tiny_build fixture's HLS C++ (tinydet W4A4) through the CLI: 16 distinct golden frames
bit-exact, the result and summary files, the cross-stage summary's C-simulation section, and the CLI's refusals of
options that belong to the RTL simulation or to no backend."""

from __future__ import annotations

import json

import pytest

from tests.qdet.cli_helpers import run_qdet
from tests.tools import require_cxx

pytestmark = pytest.mark.slow


def test_tinydet_c_simulates_bit_exact_on_16_frames(capsys, tiny_build):
    require_cxx()
    cfg, _ = tiny_build
    layout = cfg.layout
    done = run_qdet(capsys, "sim", layout.root, "--backend", "cpp", "--images", "16")
    assert done.code == 0, done.text
    result = json.loads(layout.csim_result.read_text())
    assert result["backend"] == "cpp" and result["status"] == "done", result["message"]
    assert result["frames"] == 16 and result["mismatches"] == 0 and result["frames_per_s"] > 0
    golden_in, _ = layout.read_golden()
    assert len(golden_in) == 16  # 16 distinct frames, none repeated
    manifest = layout.read_cpp_manifest()
    assert manifest["ports"] == layout.read_manifest()["ports"] if layout.has_rtl() else True
    assert {s["link"] for s in result["streams"]} == {l["name"] for l in manifest["links"]}
    assert "C simulation" in layout.csim_summary.read_text()
    assert "## C simulation of the HLS C++" in layout.summary.read_text()  # the cross-stage summary has it
    assert "16 frames bit-exact" in done.text


@pytest.mark.parametrize("args, message", [
    (["--backend", "vhdl"], "'vhdl' is not one of rtl, cpp"),
    (["--backend", "cpp", "--backpressure", "0.3"], "--backpressure applies to the rtl backend"),
    (["--backend", "cpp", "--size-fifos"], "--size-fifos applies to the rtl backend"),
    (["--backend", "cpp", "--images", "0"], "--images must be >= 1"),
])
def test_sim_refuses_options_the_backend_does_not_have(capsys, tiny_build, args, message):
    cfg, _ = tiny_build
    result = run_qdet(capsys, "sim", cfg.layout.root, *args)
    assert result.code == 2 and message in result.text, result.text


def test_bitstream_cpp_writes_the_vitis_handoff_and_says_what_to_run(capsys, tiny_build):
    cfg, _ = tiny_build
    result = run_qdet(capsys, "bitstream", cfg.layout.root, "--backend", "cpp", "--no-run")
    assert result.code == 0, result.text
    assert (cfg.layout.vitis_dir / "run_hls.tcl").is_file() and "not running Vitis HLS (--no-run)" in result.text
    assert "vitis/run.sh" in result.text  # what to run where Vitis is installed
    again = run_qdet(capsys, "bitstream", cfg.layout.root, "--cosim", "--no-run")
    assert again.code == 2 and "--cosim" in again.text and "--backend cpp" in again.text
