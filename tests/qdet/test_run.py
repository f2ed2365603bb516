"""``qdet run`` and ``qdet deploy`` on the tiny_build fixture (tinydet W4A4, pynq-z2, trained, verified against its
checkpoint): detections on the accelerator's outputs equal to the torch model's and mAP equal to ``qdet eval``'s;
rtl-sim's bytes equal cpp-sim's; the deploy folder's run.py under an interpreter that can import nothing but the
standard library and numpy reproduces ``qdet run``'s detections; and the bad inputs of the issue, each refused with
a message naming what to do."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.qdet.cli_helpers import run_qdet
from tests.tools import require_cxx, require_simulator

pytestmark = pytest.mark.slow

# Runs a script with only the standard library and numpy importable: every other top-level import fails, so a
# deploy folder that reached for torch, PIL, FINN or qdet (quant_models, flows, hls, sim, boards) would break here.
NUMPY_ONLY = r'''
import sys, runpy
allowed = set(sys.stdlib_module_names) | {"numpy", "qdet_runtime"}
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] not in allowed:
            raise ImportError(f"{name} is not importable on the board (numpy only)")
        return None
sys.meta_path.insert(0, Block())
sys.path = [p for p in sys.path if "site-packages" in p or p.endswith(("lib-dynload", ".zip")) or "/lib/python" in p]
script = sys.argv[1]
sys.argv = sys.argv[1:]
runpy.run_path(script, run_name="__main__")
'''


def _val_images(data: Path) -> list[Path]:
    ann = json.loads((data / "annotations" / "instances_val.json").read_text())
    return [data / "images" / "val" / img["file_name"] for img in ann["images"]]


def test_run_on_cpp_sim_gives_the_torch_models_detections_and_qdet_evals_map(capsys, tiny_build, synth_data,
                                                                            tmp_path):
    from quant_models.evaluate import evaluate_checkpoint

    require_cxx()
    cfg, _ = tiny_build
    layout = cfg.layout
    result = run_qdet(capsys, "run", layout.root, "--data", synth_data, "--backend", "cpp-sim")
    assert result.code == 0, result.text
    report = json.loads(layout.run_file("report.json").read_text())
    assert report["images"] == 16 and report["platform"] == "cpp-sim" and report["problems"] == []
    assert report["int_mismatches"] == 0 and report["detections_identical"] is True and report["detections"] > 0
    assert report["max_head_diff"] == 0.0  # the host's head maps are qdet eval's, bit for bit
    # qdet eval of the same checkpoint on the same images: an independent path (torch model, torch decode).
    ev = evaluate_checkpoint(cfg.checkpoint, synth_data, "val", out=tmp_path / "eval")
    assert report["map50"] == ev.result.map50 and report["map50_95"] == ev.result.map50_95
    dets = json.loads(layout.run_file("detections.json").read_text())
    assert sorted(dets) == sorted(p.name for p in _val_images(synth_data))
    assert layout.run_file("detections.png").stat().st_size > 1000
    md = layout.run_file("report.md").read_text()
    assert "mAP@0.5" in md and "energy per frame" in md and "assumed idle power" in md
    e = report["energy"]
    assert e["total_uj"] == pytest.approx(e["dynamic_uj"] + e["static_uj"]) and e["macs"] > 0
    assert "C simulation has no clock" in report["fps_kind"] and report["fps"] is None


def test_rtl_sim_moves_the_same_bytes_as_cpp_sim_with_cycles(capsys, tiny_build):
    from boards.runtime.accelerator import open_accelerator
    from boards.runtime.io_spec import IOSpec
    from boards.runtime.spec import DriverSpec
    from sim.csim import compiled_library

    require_cxx()
    require_simulator("verilator")
    cfg, _ = tiny_build
    layout = cfg.layout
    golden_in, golden_outs = layout.read_golden_ports()
    frames = golden_in[:3].astype(np.int64)
    lib, _, manifest = compiled_library(layout)
    spec = DriverSpec.from_build(manifest, IOSpec.load(layout.io_spec), "cpp")
    with open_accelerator("cpp-sim", spec, batch_size=3, library=lib) as acc:
        c_out = acc.execute(frames)
        c_bytes = acc.execute_packed(acc.pack_input(acc.fold_input(frames)))
    with open_accelerator("rtl-sim", spec, batch_size=3, build=layout) as acc:
        r_bytes = acc.execute_packed(acc.pack_input(acc.fold_input(frames)))
        stats = acc.last_run
        r_out = acc.unfold_output(acc.unpack_output(r_bytes[0]))
    assert [b.tobytes() for b in r_bytes] == [b.tobytes() for b in c_bytes]  # the same bytes, port by port
    assert np.array_equal(r_out, c_out) and np.array_equal(c_out.reshape(3, -1), golden_outs[0][:3].reshape(3, -1))
    est = layout.read_estimates()["cycles_per_frame"]
    assert stats.interval_cycles == pytest.approx(est, rel=0.1)  # cycle-accurate: the estimate, within 10%
    # qdet sim's own reading of the same harness on the same 3 golden frames: the same cycles.
    from sim.network import SimConfig, simulate

    sim = simulate(layout, SimConfig(images=3, diagnose=False))
    assert (stats.latency_cycles, stats.interval_cycles) == (sim.latency_cycles, sim.cycles_per_frame)
    # Through the CLI: the report's FPS is the cycle-accurate one.
    result = run_qdet(capsys, "run", layout.root, "--data", cfg.verify_data, "--backend", "rtl-sim", "--images", "2")
    assert result.code == 0, result.text
    report = json.loads(layout.run_file("report.json").read_text())
    assert report["int_mismatches"] == 0 and report["detections_identical"] and "cycle-accurate" in report["fps_kind"]
    assert report["fps"] == pytest.approx(spec.clock_mhz * 1e6 / est, rel=0.1)
    # One frame per batch has no interval between frames: no FPS is claimed, the latency is.
    one = run_qdet(capsys, "run", layout.root, "--data", cfg.verify_data, "--backend", "rtl-sim", "--images", "1")
    assert one.code == 0, one.text
    report = json.loads(layout.run_file("report.json").read_text())
    assert report["fps"] is None and "every batch held one frame" in report["fps_kind"] and report["latency_ms"] > 0


def test_deploy_folder_runs_on_numpy_alone_and_reproduces_qdet_run(capsys, tiny_build, synth_data, tmp_path):
    require_cxx()
    cfg, _ = tiny_build
    layout = cfg.layout
    ran = run_qdet(capsys, "run", layout.root, "--data", synth_data, "--backend", "cpp-sim")
    assert ran.code == 0, ran.text
    out = tmp_path / "deploy"
    result = run_qdet(capsys, "deploy", layout.root, "--out", out)
    assert result.code == 0, result.text
    for name in ("run.py", "driver.json", "io_spec.json", "libqdet_top.so", "README.md", "qdet_runtime/cli.py"):
        assert (out / name).is_file(), name
    assert "no bitstream" in result.text and "No bitstream yet" in (out / "README.md").read_text()
    # The runtime is copied byte for byte, not rewritten.
    for src in sorted(Path("boards/runtime").glob("*.py")):
        assert (out / "qdet_runtime" / src.name).read_bytes() == src.read_bytes(), src.name
    images = tmp_path / "images"
    images.mkdir()
    for p in _val_images(synth_data):
        (images / p.name).write_bytes(p.read_bytes())
    script = tmp_path / "numpy_only.py"
    script.write_text(NUMPY_ONLY)
    run = subprocess.run([sys.executable, str(script), str(out / "run.py"), "--images", str(images), "--platform",
                          "csim", "--out", str(tmp_path / "board.json")], capture_output=True, text=True,
                         cwd=tmp_path, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "16 images on cpp-sim" in run.stdout and "images/s" in run.stdout and "latency" in run.stdout
    board = json.loads((tmp_path / "board.json").read_text())
    assert board == json.loads(layout.run_file("detections.json").read_text())  # the same detections, exactly
    # Without faster-coco-eval (numpy only), --annotations says how to get mAP instead of failing.
    ann = synth_data / "annotations" / "instances_val.json"
    again = subprocess.run([sys.executable, str(script), str(out / "run.py"), "--images", str(images), "--platform",
                            "csim", "--quiet", "--annotations", str(ann), "--out", str(tmp_path / "b2.json")],
                           capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert again.returncode == 0 and "faster-coco-eval is not installed" in again.stdout, again.stderr
    # With this repo's Python (faster-coco-eval installed) the deploy run prints the mAP qdet run measured.
    scored = subprocess.run([sys.executable, str(out / "run.py"), "--images", str(images), "--platform", "csim",
                             "--quiet", "--annotations", str(ann), "--out", str(tmp_path / "b3.json")],
                            capture_output=True, text=True, cwd=tmp_path, timeout=300)
    report = json.loads(layout.run_file("report.json").read_text())
    assert scored.returncode == 0, scored.stderr
    assert f"mAP@0.5 {report['map50']:.4f}, mAP@0.5:0.95 {report['map50_95']:.4f}" in scored.stdout


def test_driver_bad_images_wrong_size_channels_empty_folder(capsys, tiny_build, tmp_path):
    require_cxx()
    cfg, _ = tiny_build
    out = tmp_path / "deploy"
    assert run_qdet(capsys, "deploy", cfg.layout.root, "--out", out).code == 0
    script = tmp_path / "numpy_only.py"
    script.write_text(NUMPY_ONLY)

    def board_run(folder: Path) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, str(script), str(out / "run.py"), "--images", str(folder),
                               "--platform", "csim", "--out", str(tmp_path / "d.json")], capture_output=True,
                              text=True, cwd=tmp_path, timeout=300)

    empty = tmp_path / "empty"
    empty.mkdir()
    r = board_run(empty)
    assert r.returncode == 2 and str(empty) in r.stderr and "no image" in r.stderr, r.stderr
    odd = tmp_path / "odd"
    odd.mkdir()
    np.save(odd / "small.npy", np.full((3, 40, 56), 7, np.uint8))  # CHW, not the model's 128x128
    r = board_run(odd)
    assert r.returncode == 0 and "small.npy" in r.stderr and "resized" in r.stderr, r.stderr
    np.save(odd / "two.npy", np.zeros((40, 56, 2), np.uint8))  # 2 channels for a 3-channel model
    r = board_run(odd)
    assert r.returncode == 2 and "two.npy" in r.stderr and "2" in r.stderr, r.stderr


def test_run_refuses_what_it_cannot_do(capsys, tiny_build, synth_data, tmp_path):
    cfg, _ = tiny_build
    root = cfg.layout.root
    bad = run_qdet(capsys, "run", root, "--data", synth_data, "--backend", "fpga")
    assert bad.code == 2 and "'fpga' is not one of cpp-sim, rtl-sim, pynq, xrt" in bad.text
    no_bit = run_qdet(capsys, "run", root, "--data", synth_data, "--backend", "pynq")
    assert no_bit.code == 2 and "has no bitstream" in no_bit.text and "qdet bitstream" in no_bit.text
    zero = run_qdet(capsys, "run", root, "--data", synth_data, "--images", "0")
    assert zero.code == 2 and "--images must be >= 1" in zero.text
    missing = run_qdet(capsys, "run", tmp_path / "nothing", "--data", synth_data)
    assert missing.code == 2 and "nothing" in missing.text
    # A checkpoint of another model (other anchors) is refused before anything runs.
    import torch

    from quant_models.checkpoint import read_checkpoint, save_checkpoint

    ckpt = read_checkpoint(cfg.checkpoint)
    ckpt["model_config"] = {**ckpt["model_config"], "anchors": [[0.5, 0.5], [0.6, 0.6], [0.7, 0.7]]}
    other = tmp_path / "other.pt"
    save_checkpoint(other, {k: v for k, v in ckpt.items() if k != "format"})
    assert isinstance(torch.load(other, weights_only=False), dict)
    wrong = run_qdet(capsys, "run", root, "--data", synth_data, "--checkpoint", other)
    assert wrong.code == 2 and "is not the model" in wrong.text and "anchors" in wrong.text, wrong.text


def test_deploy_carries_the_bitstream_and_its_hash(capsys, tiny_build, tmp_path):
    import shutil

    require_cxx()
    cfg, _ = tiny_build
    layout = cfg.layout
    bit_dir = layout.vivado_dir / "out"
    bit_dir.mkdir(parents=True, exist_ok=True)
    try:
        (bit_dir / "qdet.bit").write_bytes(b"\x00\x09\x0f\xf0" * 64)  # stands in for Vivado's output
        (bit_dir / "qdet.hwh").write_text("<hwh/>")
        out = tmp_path / "deploy"
        result = run_qdet(capsys, "deploy", layout.root, "--out", out)
        assert result.code == 0, result.text
        driver = json.loads((out / "driver.json").read_text())
        assert driver["bitstream_sha256"] == hashlib.sha256((bit_dir / "qdet.bit").read_bytes()).hexdigest()
        assert driver["backend"] == "rtl" and (out / "qdet.hwh").read_text() == "<hwh/>"
        assert "On the board" in (out / "README.md").read_text()
        # A bitstream of another build is refused by its hash (before pynq is even looked for).
        foreign = tmp_path / "foreign.bit"
        foreign.write_bytes(b"another build")
        foreign.with_suffix(".hwh").write_text("<hwh/>")
        refused_bit = run_qdet(capsys, "run", layout.root, "--data", cfg.verify_data, "--backend", "pynq",
                               "--bitfile", foreign)
        assert refused_bit.code == 2 and "does not match the build" in refused_bit.text, refused_bit.text
        # The build's own bitstream passes its check; without pynq (not a board) the error says where it runs.
        no_pynq = run_qdet(capsys, "run", layout.root, "--data", cfg.verify_data, "--backend", "pynq")
        assert no_pynq.code == 2 and "pynq is not installed" in no_pynq.text and "csim" in no_pynq.text, \
            no_pynq.text
        # A deploy folder over a folder that is not one is refused, and nothing in it is touched.
        other = tmp_path / "other"
        other.mkdir()
        (other / "keep.txt").write_text("mine")
        refused = run_qdet(capsys, "deploy", layout.root, "--out", other)
        assert refused.code == 2 and "not a deploy folder" in refused.text and (other / "keep.txt").is_file()
    finally:
        shutil.rmtree(layout.vivado_dir / "out")
