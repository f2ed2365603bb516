"""``qdet search``: the Pareto logic on hand-made points, the space, a small search with two workers, a killed
search that resumes, the rebuild of the best trial, and the bad inputs (no feasible point, another study)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from qdet.search.report import dominates, non_dominated
from qdet.search.space import SearchError, SearchSpace, TrialConfig, sample, zoo_points
from tests.qdet.cli_helpers import run_qdet

MAX_FPS = ("maximize", "maximize", "minimize")  # mAP, FPS, energy


def test_front_of_hand_made_points():
    points = [(0.50, 1000.0, 100.0),  # 0: best mAP
              (0.40, 3000.0, 80.0),  # 1: fastest and lowest energy
              (0.40, 2000.0, 90.0),  # 2: dominated by 1
              (0.50, 1000.0, 100.0),  # 3: equal to 0: neither dominates the other
              (0.45, 2500.0, 120.0),  # 4: a trade-off (mAP between, FPS between): on the front
              (0.30, 500.0, 200.0)]  # 5: dominated by everything above
    assert non_dominated(points, MAX_FPS) == [0, 1, 3, 4]
    assert dominates(points[1], points[2], MAX_FPS) and not dominates(points[2], points[1], MAX_FPS)
    assert not dominates(points[0], points[3], MAX_FPS)
    # Minimising the second objective instead (LUT under an FPS target) turns the order around.
    assert non_dominated([(0.5, 30000.0, 1.0), (0.5, 20000.0, 1.0)], ("maximize", "minimize", "minimize")) == [1]


def test_space_samples_its_own_choices_and_knows_its_corner():
    import optuna

    space = SearchSpace(archs=("tinydet", "mobiledet"), weight_bits=(2, 4), act_bits=(3,), first_bits=(8,),
                        last_bits=(4, 8), widths=(0.5, 1.0), prune_ratios=(0.0, 0.5), rank_energies=(1.0, 0.9))
    assert space.size == 2 * 2 * 1 * 1 * 2 * 2 * 2 * 2
    params = {"arch": "mobiledet", "weight_bits": 2, "act_bits": 3, "first_bits": 8, "last_bits": 4, "width": 0.5,
              "prune": 0.5, "rank_energy": 0.9}
    point = sample(optuna.trial.FixedTrial(params), space)
    assert point == TrialConfig(**params) and point.compressed
    assert point.bits == "w2a3,first=8,last=4"
    corner = space.cheapest("tinydet")
    assert (corner.weight_bits, corner.act_bits, corner.width, corner.prune, corner.rank_energy) == (2, 3, 0.5, 0.5,
                                                                                                     0.9)
    assert zoo_points(space) == []  # W4A4 with 4-bit ends is not in this space
    full = SearchSpace()
    assert [label for label, _ in zoo_points(full)] == ["tinydet W4A4", "mobiledet W4A4"]
    assert zoo_points(full)[0][1].bits == "w4a4"


def test_space_refuses_empty_and_unsearchable_dimensions():
    with pytest.raises(SearchError, match="widths"):
        SearchSpace(widths=())
    with pytest.raises(SearchError, match="tinyyolo"):
        SearchSpace(archs=("tinyyolo",))
    with pytest.raises(SearchError, match="prune"):
        SearchSpace(prune_ratios=(1.0,))


# --- searches on a tiny set --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny64(tmp_path_factory) -> Path:
    """40 synthetic 64x64 images (32 train / 8 val)."""
    from quant_models.data import generate_synthetic

    root = tmp_path_factory.mktemp("search") / "data"
    generate_synthetic(root, images=40, seed=5, size=(64, 64), fmt="coco", val_fraction=0.2)
    return root


def tiny_config(data: Path, out: Path, **changes):
    from qdet.search.study import SearchConfig
    from qdet.search.trial import Budget

    space = SearchSpace(archs=("tinydet",), weight_bits=(4,), act_bits=(4,), first_bits=(4,), last_bits=(4,),
                        widths=(0.5, 1.0))
    budget = Budget(epochs=1, finetune_epochs=0, batch_size=16, input_size=(64, 64), verify_images=1,
                    teacher_epochs=1)
    base = dict(data=data, out=out, trials=2, workers=2, space=space, budget=budget, precheck=False)
    return SearchConfig(**{**base, **changes})


@pytest.fixture(scope="module")
def finished(tiny64, tmp_path_factory):
    """A 2-trial search with 2 worker processes: (config, study)."""
    from qdet.search.runner import run_search

    cfg = tiny_config(tiny64, tmp_path_factory.mktemp("search") / "s")
    return run_search(cfg, lambda text: None)


@pytest.mark.slow
def test_two_workers_finish_a_small_search(finished):
    from optuna.trial import TrialState

    cfg, study = finished
    done = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(done) >= 2
    assert len({t.number for t in study.trials}) == len(study.trials)
    assert all("fps" in t.user_attrs and t.user_attrs["worker"] in (0, 1) for t in done)
    zoo = [t for t in done if t.user_attrs.get("zoo") == "tinydet W4A4"]
    assert len(zoo) == 1 and zoo[0].params["width"] == 1.0  # the enqueued hand-designed point ran as itself
    for t in done:
        assert t.values[0] == t.user_attrs["map50"] and t.values[1] == t.user_attrs["fps"]
        assert t.values[2] == t.user_attrs["energy_uj"] and t.user_attrs["lut"] > 0 and t.user_attrs["bops"] > 0
    layout = cfg.layout
    assert layout.report.is_file() and layout.plots.is_file() and layout.plots.stat().st_size > 10_000
    import json

    data = json.loads(layout.front.read_text())
    values = {t["number"]: t["values"] for t in data["trials"] if t["feasible"]}
    front = data["front"]
    assert front
    for n in front:  # nothing dominates a front point, and every other feasible point is dominated by one
        assert not any(dominates(values[m], values[n], cfg.directions) for m in values if m != n)
    for n in set(values) - set(front):
        assert any(dominates(values[m], values[n], cfg.directions) for m in front)
    # Optuna's own front (with the board constraints) is the same set.
    assert sorted(t.number for t in study.best_trials) == sorted(front)
    report = layout.report.read_text()
    assert "Non-dominated trials" in report and "tinydet W4A4" in report


@pytest.mark.slow
def test_a_killed_search_resumes_the_same_study(finished, tmp_path):
    from optuna.trial import TrialState

    from qdet.search.runner import run_search

    cfg, _ = finished
    out = tmp_path / "s"
    shutil.copytree(cfg.layout.root, out)
    args = [sys.executable, "-m", "qdet.cli", "search", "--data", str(cfg.data), "--out", str(out), "--trials", "3",
            "--workers", "1", "--archs", "tinydet", "--weight-bits", "4", "--act-bits", "4", "--first-bits", "4",
            "--last-bits", "4", "--widths", "0.5,1", "--epochs", "1", "--finetune-epochs", "0", "--batch-size",
            "16", "--input-size", "64x64", "--verify-images", "1", "--teacher-epochs", "1"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    resumed = tiny_config(cfg.data, out, trials=3, workers=1, heartbeat_s=1)
    from qdet.search.study import inspect_study

    running: list[int] = []
    deadline = time.monotonic() + 120
    while not running and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.5)
        _, study = inspect_study(resumed)  # the same study: the fingerprints match
        running = [t.number for t in study.get_trials(states=(TrialState.RUNNING,))]
    assert running, "the search never started a trial"
    proc.send_signal(signal.SIGKILL)  # the worker dies mid-trial: its trial stays RUNNING in the storage
    proc.wait()
    numbers_before = {t.number for t in study.get_trials()}
    time.sleep(3.5)  # past the grace period (3 x the 1 s heartbeat) of the restarted search
    _, study = run_search(resumed, lambda text: None)
    trials = study.get_trials()
    numbers = [t.number for t in trials]
    assert len(numbers) == len(set(numbers)) and set(numbers) > numbers_before
    stale = next(t for t in trials if t.number == running[0])
    assert stale.state == TrialState.FAIL
    retries = [t for t in trials if t.system_attrs.get("failed_trial") == running[0]]
    assert len(retries) == 1 and retries[0].state == TrialState.COMPLETE
    assert retries[0].params == stale.params and retries[0].user_attrs["seed"] == resumed.seed + running[0]
    assert len(study.get_trials(states=(TrialState.COMPLETE,))) >= 3


@pytest.mark.slow
def test_the_best_trial_rebuilds_and_csimulates(finished, capsys):
    cfg, _ = finished
    result = run_qdet(capsys, "search-best", cfg.layout.root, "--top", "1", "--images", "1")
    assert result.code == 0, result.text
    rebuilt = list((cfg.layout.root / "best").iterdir())
    assert len(rebuilt) == 1
    import json

    from flows.build import BuildLayout

    sim = json.loads(BuildLayout(rebuilt[0]).csim_result.read_text())
    assert sim["status"] == "done" and sim["mismatches"] == 0


# --- bad input ---------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_a_space_with_no_feasible_point_is_refused_naming_the_constraint(tiny64, tmp_path, capsys):
    out = tmp_path / "s"
    result = run_qdet(capsys, "search", "--data", tiny64, "--out", out, "--input-size", "64x64", "--archs", "tinydet",
                      "--widths", "0.5", "--target-fps", "1000000")
    assert result.code == 2, result.text
    line = result.error_lines()[0]
    assert "no point of the search space fits pynq-z2 at 1e+06 FPS" in line and ": FPS:" in line
    assert not out.exists()  # refused before any study, teacher or trial was written


def test_a_folder_holding_another_study_is_refused(tiny64, tmp_path, capsys):
    import optuna

    out = tmp_path / "s"
    out.mkdir()
    optuna.create_study(study_name="someone-else", storage=f"sqlite:///{out / 'study.db'}")
    result = run_qdet(capsys, "search", "--data", tiny64, "--out", out, "--input-size", "64x64")
    assert result.code == 2, result.text
    line = result.error_lines()[0]
    assert "another study ('someone-else')" in line and "--overwrite" in line and "another --out" in line
    assert sorted(p.name for p in out.iterdir()) == ["study.db"]


def test_the_same_study_with_other_settings_is_refused(tiny64, tmp_path, capsys):
    import optuna

    from qdet.search.space import fingerprint
    from qdet.search.study import FINGERPRINT_KEY, IDENTITY_KEY

    cfg = tiny_config(tiny64, tmp_path / "s")
    cfg.layout.root.mkdir()
    study = optuna.create_study(study_name=cfg.study_name, storage=cfg.storage_url, directions=cfg.directions)
    other = {**cfg.identity(), "board": "zcu104"}
    study.set_user_attr(IDENTITY_KEY, other)
    study.set_user_attr(FINGERPRINT_KEY, fingerprint(other))
    result = run_qdet(capsys, "search", "--data", tiny64, "--out", cfg.out, "--input-size", "64x64")
    assert result.code == 2, result.text
    line = result.error_lines()[0]
    assert "other settings" in line and "board" in line and "--resume-as-is" in line


def test_the_folder_message_names_the_violated_constraint():
    from qdet.search.trial import TrialOutcome, constraints_of, violated_constraint

    assert violated_constraint("step 'fold' failed: even the most folded design does not fit the budget: bram18 "
                               "312 > 280") == "BRAM18"
    assert violated_constraint("step 'fold' failed: the folding for 100 cycles per frame needs 50000 LUT of a budget "
                               "of 37240 (largest user: MVAU_hls_0)") == "LUT"
    assert violated_constraint("step 'fold' failed: no folding reaches 100 cycles per frame: layer "
                               "ConvolutionInputGenerator_rtl_0 needs at least 4096 cycles") == "FPS"
    refused = TrialOutcome({"map50": 0.1}, False, "BRAM18", "...")
    assert constraints_of(refused, None) == {"LUT": 0.0, "BRAM18": 1.0, "DSP": 0.0, "URAM": 0.0, "FPS": 0.0}
    budget = {"lut": 1000.0, "bram18": 100.0, "dsp": 10.0, "uram": 0.0}
    built = TrialOutcome({"map50": 0.1, "fps": 500.0, "lut": 500.0, "bram18": 150.0, "dsp": 0.0, "uram": 0.0,
                          "budget": budget}, False, "BRAM18")
    c = constraints_of(built, 1000.0)
    assert c["LUT"] == -0.5 and c["BRAM18"] == 0.5 and c["DSP"] == -1.0 and c["URAM"] == -1.0 and c["FPS"] == 1.0
