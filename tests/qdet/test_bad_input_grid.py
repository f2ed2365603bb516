"""Every subcommand over a grid of bad inputs (missing, empty, wrong-type, out-of-range, path-is-a-file, bracketed
names): exit code 2, an ``error:`` line naming the culprit, no traceback, and nothing that existed before changed
(sha256 of every file before and after; no path created either). A new subcommand must add its rows here.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from flows.build import BuildLayout
from qdet.cli import app
from tests.qdet.cli_helpers import fingerprint, run_qdet


@pytest.fixture
def ws(tmp_path: Path, synth_data: Path, trained_run, tiny_onnx: Path) -> Path:
    """A workspace of things to get wrong: a plain file, non-ONNX files, a finished run, builds with files where
    folders belong, a truncated step checkpoint, a malformed data set, a bracketed folder name."""
    (tmp_path / "afile").write_text("not a folder\n")
    (tmp_path / "notonnx.onnx").write_text("garbage")
    (tmp_path / "empty.onnx").write_bytes(b"")
    (tmp_path / "bad[x]coco").mkdir()
    (tmp_path / "adir").mkdir()
    shutil.copytree(synth_data, tmp_path / "data", ignore=shutil.ignore_patterns(".cache"))
    shutil.copytree(trained_run.out, tmp_path / "run")
    shutil.copy(tiny_onnx, tmp_path / "model.onnx")
    from quant_models.checkpoint import save_checkpoint
    from quant_models.models import build_model, default_config

    floating = build_model(default_config("tinydet", 4, bits=None, width=0.5))  # a float checkpoint
    save_checkpoint(tmp_path / "float.pt", {"model_config": floating.cfg.to_dict(), "model": floating.state_dict()})
    # A build whose steps folder is a file; one whose sim folder is a file; one that is only started.
    (tmp_path / "stepsfile").mkdir()
    BuildLayout(tmp_path / "stepsfile").steps_dir.write_text("a file where the checkpoints go\n")
    for name in ("simfile", "started", "truncated"):
        layout = BuildLayout(tmp_path / name)
        layout.steps_dir.mkdir(parents=True)
        shutil.copy(tiny_onnx, layout.input_checkpoint)
        layout.write_record("pynq-z2", 100.0, {})
    BuildLayout(tmp_path / "simfile").sim_dir.write_text("a file where the simulation goes\n")
    truncated = BuildLayout(tmp_path / "truncated").checkpoint(1, "qonnx_to_finn")
    truncated.write_bytes(tiny_onnx.read_bytes()[:200])
    # A built RTL folder (for --mac-style on an existing rtl/).
    started = BuildLayout(tmp_path / "started")
    started.rtl_dir.mkdir()
    started.manifest.write_text(json.dumps({"generator": {"mac_style": "auto"}}))
    # A COCO set whose one annotation points at an image that does not exist.
    bad = tmp_path / "badcoco"
    (bad / "annotations").mkdir(parents=True)
    (bad / "images" / "train").mkdir(parents=True)
    (bad / "annotations" / "instances_train.json").write_text(json.dumps({
        "images": [{"id": 1, "file_name": "gone.png", "width": 64, "height": 64}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 10, 10]}],
        "categories": [{"id": 1, "name": "circle"}]}))
    return tmp_path


MODES = ["--max-fps"]
# (id, arguments ({ws} is the workspace), text the error line must contain)
CASES = [
    # data synth
    ("synth-out-file", ["data", "synth", "--out", "{ws}/afile"], "afile"),
    ("synth-out-under-file", ["data", "synth", "--out", "{ws}/afile/d"], "afile"),
    ("synth-images-0", ["data", "synth", "--out", "{ws}/new", "--images", "0"], "--images"),
    ("synth-size", ["data", "synth", "--out", "{ws}/new", "--size", "big"], "--size"),
    ("synth-format", ["data", "synth", "--out", "{ws}/new", "--format", "xml"], "--format"),
    ("synth-existing", ["data", "synth", "--out", "{ws}/data"], "--overwrite"),
    ("synth-workers", ["data", "synth", "--out", "{ws}/new", "--workers", "0"], "--workers"),
    ("synth-val-fraction", ["data", "synth", "--out", "{ws}/new", "--val-fraction", "1.5"], "--val-fraction"),
    ("synth-not-int", ["data", "synth", "--out", "{ws}/new", "--images", "many"], "--images"),
    # data check
    ("check-bracketed", ["data", "check", "{ws}/bad[x]coco"], "bad[x]coco"),
    ("check-missing", ["data", "check", "{ws}/nowhere"], "nowhere"),
    ("check-split", ["data", "check", "{ws}/data", "--split", "nosuch"], "nosuch"),
    ("check-malformed", ["data", "check", "{ws}/badcoco"], "--skip-bad"),
    # train
    ("train-existing-run", ["train", "--data", "{ws}/data", "--out", "{ws}/run", "--epochs", "1"], "--resume"),
    ("train-out-file", ["train", "--data", "{ws}/data", "--out", "{ws}/afile"], "afile"),
    ("train-device", ["train", "--data", "{ws}/data", "--out", "{ws}/new", "--device", "tpu"], "tpu"),
    ("train-layer-override", ["train", "--data", "{ws}/data", "--out", "{ws}/new", "--bits", "w4a4,l99=w4a4"],
     "l99"),
    ("train-bits", ["train", "--data", "{ws}/data", "--out", "{ws}/new", "--bits", "w9a4"], "w9a4"),
    ("train-epochs", ["train", "--data", "{ws}/data", "--out", "{ws}/new", "--epochs", "0"], "epochs"),
    ("train-kd-weight", ["train", "--data", "{ws}/data", "--out", "{ws}/new", "--kd-weight", "-1"], "--kd-weight"),
    ("train-width", ["train", "--data", "{ws}/data", "--out", "{ws}/new", "--width", "0"], "--width"),
    ("train-model", ["train", "--data", "{ws}/data", "--out", "{ws}/new", "--model", "resnet"], "resnet"),
    ("train-resume-and-overwrite", ["train", "--data", "{ws}/data", "--out", "{ws}/run", "--resume",
                                    "--overwrite"], "--overwrite"),
    ("train-data-missing", ["train", "--data", "{ws}/nowhere", "--out", "{ws}/new"], "nowhere"),
    ("train-resume-nothing", ["train", "--data", "{ws}/data", "--out", "{ws}/new", "--resume"], "--resume"),
    ("train-teacher-missing", ["train", "--data", "{ws}/data", "--out", "{ws}/new", "--teacher", "{ws}/t.pt"],
     "t.pt"),
    ("train-unknown-option", ["train", "--bogus"], "--bogus"),
    ("train-input-size", ["train", "--data", "{ws}/data", "--out", "{ws}/new", "--input-size", "64by64"],
     "--input-size"),
    # eval
    ("eval-missing", ["eval", "{ws}/missing.pt", "--data", "{ws}/data"], "missing.pt"),
    ("eval-not-checkpoint", ["eval", "{ws}/afile", "--data", "{ws}/data"], "afile"),
    ("eval-out-file", ["eval", "{ws}/run/best.pt", "--data", "{ws}/data", "--out", "{ws}/afile"], "afile"),
    ("eval-device", ["eval", "{ws}/run/best.pt", "--data", "{ws}/data", "--device", "tpu"], "tpu"),
    # export
    ("export-missing", ["export", "{ws}/missing.pt", "--out", "{ws}/m.onnx"], "missing.pt"),
    ("export-out-under-file", ["export", "{ws}/run/best.pt", "--out", "{ws}/afile/m.onnx"], "afile"),
    ("export-out-dir", ["export", "{ws}/run/best.pt", "--out", "{ws}/adir"], "adir"),
    ("export-samples", ["export", "{ws}/run/best.pt", "--out", "{ws}/m.onnx", "--samples", "0"], "--samples"),
    ("export-not-checkpoint", ["export", "{ws}/afile", "--out", "{ws}/m.onnx"], "afile"),
    # demo: checked before any image is rendered
    ("demo-epochs", ["demo", "--out", "{ws}/d", "--epochs", "0"], "--epochs"),
    ("demo-images", ["demo", "--out", "{ws}/d", "--images", "0"], "--images"),
    ("demo-device", ["demo", "--out", "{ws}/d", "--device", "tpu"], "tpu"),
    ("demo-out-file", ["demo", "--out", "{ws}/afile"], "afile"),
    # build
    ("build-missing", ["build", "{ws}/missing.onnx", "--out", "{ws}/b", *MODES], "missing.onnx"),
    ("build-not-onnx", ["build", "{ws}/notonnx.onnx", "--out", "{ws}/b", *MODES], "notonnx.onnx"),
    ("build-empty", ["build", "{ws}/empty.onnx", "--out", "{ws}/b", *MODES], "empty.onnx"),
    ("build-out-file", ["build", "{ws}/model.onnx", "--out", "{ws}/afile", *MODES], "afile"),
    ("build-steps-file", ["build", "{ws}/model.onnx", "--out", "{ws}/stepsfile", *MODES], "steps"),
    ("build-existing", ["build", "{ws}/model.onnx", "--out", "{ws}/started", *MODES], "--overwrite"),
    ("build-board", ["build", "{ws}/model.onnx", "--out", "{ws}/b", *MODES, "--board", "zedboard"], "zedboard"),
    ("build-no-mode", ["build", "{ws}/model.onnx", "--out", "{ws}/b"], "--target-fps"),
    ("build-fps-huge", ["build", "{ws}/model.onnx", "--out", "{ws}/b", "--target-fps", "1e9"], "--target-fps"),
    ("build-fps-negative", ["build", "{ws}/model.onnx", "--out", "{ws}/b", "--target-fps", "-5"], "--target-fps"),
    ("build-clock", ["build", "{ws}/model.onnx", "--out", "{ws}/b", *MODES, "--clock-mhz", "5000"], "--clock-mhz"),
    ("build-step", ["build", "{ws}/model.onnx", "--out", "{ws}/b", *MODES, "--from", "nosuchstep"], "nosuchstep"),
    ("build-verify", ["build", "{ws}/model.onnx", "--out", "{ws}/b", *MODES, "--verify", "-1"], "--verify"),
    ("build-fifo-depth", ["build", "{ws}/model.onnx", "--out", "{ws}/b", *MODES, "--fifo-depth", "1"],
     "--fifo-depth"),
    ("build-folding-missing", ["build", "{ws}/model.onnx", "--out", "{ws}/b", "--folding", "{ws}/f.json"],
     "f.json"),
    ("build-checkpoint-missing", ["build", "{ws}/model.onnx", "--out", "{ws}/b", *MODES, "--checkpoint",
                                  "{ws}/c.pt"], "c.pt"),
    ("build-truncated-checkpoint", ["build", "{ws}/model.onnx", "--out", "{ws}/truncated", *MODES, "--from",
                                    "streamline"], "--from qonnx_to_finn"),
    ("build-bracketed", ["build", "{ws}/m[1].onnx", "--out", "{ws}/b", *MODES], "m[1].onnx"),
    # report
    ("report-missing", ["report", "{ws}/nowhere"], "nowhere"),
    ("report-file", ["report", "{ws}/afile"], "afile"),
    ("report-no-estimates", ["report", "{ws}/started"], "report step"),
    ("report-bracketed", ["report", "{ws}/b[2]"], "b[2]"),
    # sim
    ("sim-missing", ["sim", "{ws}/nowhere"], "nowhere"),
    ("sim-mac-style-existing-rtl", ["sim", "{ws}/started", "--mac-style", "banana"], "banana"),
    ("sim-dir-is-file", ["sim", "{ws}/simfile"], "sim"),
    ("sim-images", ["sim", "{ws}/started", "--images", "0"], "--images"),
    ("sim-simulator", ["sim", "{ws}/started", "--simulator", "modelsim"], "modelsim"),
    ("sim-backpressure", ["sim", "{ws}/started", "--backpressure", "2"], "--backpressure"),
    ("sim-no-golden", ["sim", "{ws}/started"], "--verify"),
    ("sim-tree-levels", ["sim", "{ws}/started", "--tree-levels", "9"], "--tree-levels"),
    ("sim-size-fifos-no-golden", ["sim", "{ws}/started", "--size-fifos"], "--verify"),
    ("sim-backend", ["sim", "{ws}/started", "--backend", "vhdl"], "vhdl"),
    ("sim-cpp-no-golden", ["sim", "{ws}/started", "--backend", "cpp"], "--verify"),
    ("sim-cpp-missing", ["sim", "{ws}/nowhere", "--backend", "cpp"], "nowhere"),
    ("sim-cpp-backpressure", ["sim", "{ws}/started", "--backend", "cpp", "--backpressure", "0.5"], "--backpressure"),
    ("sim-cpp-tree-levels", ["sim", "{ws}/started", "--backend", "cpp", "--tree-levels", "1"], "--tree-levels"),
    # synth
    ("synth-missing", ["synth", "{ws}/nowhere"], "nowhere"),
    ("synth-family", ["synth", "{ws}/started", "--family", "ecp5"], "ecp5"),
    ("synth-tree-levels", ["synth", "{ws}/started", "--tree-levels", "-1"], "--tree-levels"),
    ("synth-sim-file", ["synth", "{ws}/simfile"], "sim"),
    ("synth-no-links", ["synth", "{ws}/truncated"], "stream_links"),
    ("synth-timeout", ["synth", "{ws}/started", "--timeout", "0"], "--timeout"),
    # bitstream
    ("bitstream-missing", ["bitstream", "{ws}/nowhere"], "nowhere"),
    ("bitstream-jobs", ["bitstream", "{ws}/started", "--jobs", "0"], "--jobs"),
    ("bitstream-file", ["bitstream", "{ws}/afile"], "afile"),
    ("bitstream-no-links", ["bitstream", "{ws}/truncated"], "stream_links"),
    ("bitstream-backend", ["bitstream", "{ws}/started", "--backend", "verilog"], "verilog"),
    ("bitstream-cpp-no-links", ["bitstream", "{ws}/truncated", "--backend", "cpp"], "stream_links"),
    ("bitstream-cosim-rtl", ["bitstream", "{ws}/started", "--cosim"], "--cosim"),
    # run
    ("run-missing", ["run", "{ws}/nowhere", "--data", "{ws}/data"], "nowhere"),
    ("run-file", ["run", "{ws}/afile", "--data", "{ws}/data"], "afile"),
    ("run-backend", ["run", "{ws}/started", "--data", "{ws}/data", "--backend", "fpga"], "fpga"),
    ("run-images", ["run", "{ws}/started", "--data", "{ws}/data", "--images", "0"], "--images"),
    ("run-batch-size", ["run", "{ws}/started", "--data", "{ws}/data", "--batch-size", "0"], "--batch-size"),
    ("run-data-missing", ["run", "{ws}/started", "--data", "{ws}/nowhere"], "nowhere"),
    ("run-checkpoint-missing", ["run", "{ws}/started", "--data", "{ws}/data", "--checkpoint", "{ws}/c.pt"], "c.pt"),
    ("run-unfinished-build", ["run", "{ws}/started", "--data", "{ws}/data"], "qdet build"),
    ("run-no-data-option", ["run", "{ws}/started"], "--data"),
    # deploy
    ("deploy-missing", ["deploy", "{ws}/nowhere", "--out", "{ws}/dep"], "nowhere"),
    ("deploy-out-file", ["deploy", "{ws}/started", "--out", "{ws}/afile"], "afile"),
    ("deploy-out-not-ours", ["deploy", "{ws}/started", "--out", "{ws}/data"], "not a deploy folder"),
    ("deploy-no-links", ["deploy", "{ws}/truncated", "--out", "{ws}/dep"], "stream_links"),
    # search, search-best: refused before a study, teacher or trial is written
    ("search-board", ["search", "--data", "{ws}/data", "--out", "{ws}/new", "--board", "nosuch"], "nosuch"),
    ("search-workers-0", ["search", "--data", "{ws}/data", "--out", "{ws}/new", "--workers", "0"], "--workers"),
    ("search-trials-0", ["search", "--data", "{ws}/data", "--out", "{ws}/new", "--trials", "0"], "--trials"),
    ("search-data-not-a-set", ["search", "--data", "{ws}/adir", "--out", "{ws}/new"], "adir"),
    ("search-out-file", ["search", "--data", "{ws}/data", "--out", "{ws}/afile"], "afile"),
    ("search-teacher-misfit", ["search", "--data", "{ws}/data", "--out", "{ws}/new", "--input-size", "64x64",
                               "--teacher", "{ws}/run/best.pt"], "--teacher"),
    ("search-empty-widths", ["search", "--data", "{ws}/data", "--out", "{ws}/new", "--widths", ""], "widths"),
    ("search-best-no-search", ["search-best", "{ws}/adir"], "adir"),
    ("search-best-top-0", ["search-best", "{ws}/adir", "--top", "0"], "--top"),
    # prune, lowrank: refused before a data set is read or OUT is created (the run's l0 has 8 channels)
    ("prune-ratio-high", ["prune", "{ws}/run/best.pt", "--data", "{ws}/data", "--out", "{ws}/p", "--ratio", "1.5"],
     "--ratio 1.5"),
    ("prune-ratio-zero", ["prune", "{ws}/run/best.pt", "--data", "{ws}/data", "--out", "{ws}/p", "--ratio", "0"],
     "--ratio 0"),
    ("prune-empties-a-layer", ["prune", "{ws}/run/best.pt", "--data", "{ws}/data", "--out", "{ws}/p"],
     "would remove every channel"),
    ("prune-missing", ["prune", "{ws}/c.pt", "--data", "{ws}/data", "--out", "{ws}/p"], "c.pt"),
    ("prune-data-not-a-set", ["prune", "{ws}/run/best.pt", "--data", "{ws}/adir", "--out", "{ws}/p"], "adir"),
    ("prune-out-file", ["prune", "{ws}/run/best.pt", "--data", "{ws}/data", "--out", "{ws}/afile"], "afile"),
    ("prune-importance", ["prune", "{ws}/run/best.pt", "--data", "{ws}/data", "--out", "{ws}/p", "--importance",
                          "random"], "--importance"),
    ("prune-steps-0", ["prune", "{ws}/run/best.pt", "--data", "{ws}/data", "--out", "{ws}/p", "--steps", "0"],
     "--steps"),
    ("prune-hardware-unbuilt", ["prune", "{ws}/run/best.pt", "--data", "{ws}/data", "--out", "{ws}/p",
                                "--round-to", "4", "--hardware", "{ws}/started"], "estimates"),
    ("lowrank-rank-too-large", ["lowrank", "{ws}/run/best.pt", "--data", "{ws}/data", "--out", "{ws}/l", "--rank",
                                "l3=999"], "larger than the layer allows"),
    ("lowrank-rank-syntax", ["lowrank", "{ws}/run/best.pt", "--data", "{ws}/data", "--out", "{ws}/l", "--rank",
                             "3:8"], "--rank"),
    ("lowrank-no-method", ["lowrank", "{ws}/run/best.pt", "--data", "{ws}/data", "--out", "{ws}/l"], "exactly one of"),
    ("lowrank-energy", ["lowrank", "{ws}/run/best.pt", "--data", "{ws}/data", "--out", "{ws}/l", "--energy", "2"],
     "--energy"),
    ("lowrank-layers", ["lowrank", "{ws}/run/best.pt", "--data", "{ws}/data", "--out", "{ws}/l", "--macs", "0.5",
                        "--layers", "a,b"], "--layers"),
    ("lowrank-float", ["lowrank", "{ws}/float.pt", "--data", "{ws}/data", "--out", "{ws}/l", "--macs", "0.5"],
     "float"),
    # boards
    ("boards-unknown-option", ["boards", "--bogus"], "--bogus"),
]


@pytest.mark.parametrize("args, culprit", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_clear_error_and_changes_nothing(ws, capsys, args, culprit):
    before = fingerprint(ws)
    result = run_qdet(capsys, *(a.format(ws=ws) for a in args))
    assert result.code == 2, result.text
    errors = result.error_lines()
    assert len(errors) == 1, result.err
    assert culprit in errors[0], errors[0]
    assert "Traceback" not in result.out + result.err
    assert fingerprint(ws) == before  # nothing changed, nothing created (a failed build leaves no empty --out)


def test_the_grid_covers_every_subcommand():
    commands = {c.name or c.callback.__name__ for c in app.registered_commands}
    commands |= {f"data {c.name}" for g in app.registered_groups for c in g.typer_instance.registered_commands}
    covered = {" ".join(a[:2]) if a[0] == "data" else a[0] for _, a, _ in CASES}
    assert commands <= covered, commands - covered


def test_the_demo_checks_its_arguments_before_rendering_images(ws, capsys):
    result = run_qdet(capsys, "demo", "--out", ws / "d", "--epochs", "0")
    assert result.code == 2 and not (ws / "d").exists()


def test_the_truncated_checkpoint_hint_is_not_the_export_hint(ws, capsys):
    result = run_qdet(capsys, "build", ws / "model.onnx", "--out", ws / "truncated", "--max-fps",
                      "--from", "streamline")
    assert "rerun the build from the step that wrote it" in result.text
    assert "qdet export" not in result.text


def test_synth_on_a_fresh_build_names_what_to_run(ws, capsys):
    result = run_qdet(capsys, "synth", ws / "truncated")
    assert result.code == 2
    assert "stream_links" in result.error_lines()[0] and "qdet build writes" not in result.text


_TORCHRUN = {"RANK": "0", "WORLD_SIZE": "2", "LOCAL_RANK": "0", "MASTER_ADDR": "localhost", "MASTER_PORT": "29500"}


@pytest.mark.parametrize("env, culprit", [
    ({"WORLD_SIZE": "2"}, "MASTER_ADDR"),
    ({**_TORCHRUN, "RANK": "2"}, "rank 2 of world size 2"),
    ({**_TORCHRUN, "LOCAL_RANK": "one"}, "LOCAL_RANK"),
], ids=["torchrun-vars-missing", "torchrun-rank", "torchrun-local-rank"])
def test_torchrun_variables_that_do_not_fit_are_one_clear_error(tmp_path, capsys, monkeypatch, env, culprit):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = run_qdet(capsys, "train", "--data", tmp_path / "data", "--out", tmp_path / "run")
    assert result.code == 2 and len(result.error_lines()) == 1, result.text
    assert culprit in result.error_lines()[0] and "Traceback" not in result.text
    assert not (tmp_path / "run").exists()
