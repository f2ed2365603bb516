"""``qdet search`` benchmark: the co-design search on a small CPU budget, killed mid-way and resumed.

Runs ``qdet search`` (2 workers) on a synthetic 64x64 set for pynq-z2 at max FPS; once ``--kill-after`` trials are
complete, SIGKILLs the whole search (its process group: the main process and both workers, mid-trial), then runs
the same command again, which continues the same study (the dead workers' RUNNING trials go stale, are failed and
retried). Records the study's counts before and after, the front, and where the hand-designed tinydet W4A4 falls.
Writes ``bench/results/search.{json,md,png}``; the search lives in ``bench/work/search/run``.

    python -m bench.search [--trials 24] [--workers 2] [--kill-after 6] [--work bench/work/search]

The GPU run of the same search (not run here: no GPU was lent) is the same command with ``--device cuda``, a real
data set and a realistic budget; ``--gpu-command`` prints it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

RESULTS = Path("bench/results")
BOARD = "pynq-z2"
SPACE = ["--archs", "tinydet,mobiledet", "--weight-bits", "2,3,4", "--act-bits", "2,3,4", "--first-bits", "4,8",
         "--last-bits", "4,8", "--widths", "0.5,0.75,1", "--prune", "0,0.25,0.5", "--rank-energy", "1,0.9"]
# The realistic GPU budget: COCO-sized synthetic set at 128x128, 30 QAT epochs per trial, 100 trials, 4 workers
# sharing one GPU (each trial is small), the default SQLite study in the search folder: it runs as it stands on one
# GPU machine (other machines join with --storage postgresql://..., README "Across machines").
GPU_COMMAND = ("qdet data synth --out data/synth128 --images 20000 --size 128x128 --workers 8 && "
               "qdet search --data data/synth128 --out search-gpu --device cuda --input-size 128x128 "
               "--epochs 30 --finetune-epochs 10 --teacher-epochs 60 --batch-size 64 --trials 100 --workers 4 "
               "--verify-images 8 --prune 0,0.25,0.5 --rank-energy 1,0.9,0.75")

_T0 = time.perf_counter()


def log(msg: str) -> None:
    print(f"[{time.perf_counter() - _T0:7.1f} s] {msg}", flush=True)


def command(work: Path, trials: int, workers: int, epochs: int, teacher_epochs: int) -> list[str]:
    return [sys.executable, "-m", "qdet.cli", "search", "--data", str(work / "data"), "--out", str(work / "run"),
            "--board", BOARD, "--input-size", "64x64", "--epochs", str(epochs), "--finetune-epochs", "1",
            "--teacher-epochs", str(teacher_epochs), "--verify-images", "2", "--trials", str(trials),
            "--workers", str(workers), "--seed", "0", *SPACE]


def counts(db: Path) -> dict[str, Any]:
    """Trial numbers per state in the study's SQLite file (read through Optuna)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if not db.is_file():
        return {}
    try:
        study = optuna.load_study(study_name="qdet-search", storage=f"sqlite:///{db.resolve()}")
    except KeyError:
        return {}
    by: dict[str, list[int]] = {}
    for t in study.get_trials(deepcopy=False):
        by.setdefault(t.state.name.lower(), []).append(t.number)
    return by


def killed_run(cmd: list[str], db: Path, kill_after: int, logfile: Path) -> dict[str, Any]:
    """Start the search in its own process group; SIGKILL the group once ``kill_after`` trials are complete."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with open(logfile, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        while proc.poll() is None and len(counts(db).get("complete", [])) < kill_after:
            time.sleep(5)
        before = counts(db)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # the group this function started: main process and its workers
            proc.wait()
    log(f"killed the search with {len(before.get('complete', []))} trials complete, running "
        f"{before.get('running', [])}")
    return {"at_kill": before, "exit_code": proc.returncode}


def resumed_run(cmd: list[str], logfile: Path) -> int:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with open(logfile, "w") as out:
        return subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, env=env).returncode


def _ranges(numbers: list[int]) -> str:
    """``0-5, 8-25`` for a sorted list of trial numbers."""
    parts, start = [], None
    for i, n in enumerate(numbers):
        start = n if start is None else start
        if i + 1 == len(numbers) or numbers[i + 1] != n + 1:
            parts.append(f"{start}-{n}" if n != start else str(n))
            start = None
    return ", ".join(parts)


def retries(db: Path) -> dict[int, int]:
    """{failed trial: the trial that retried it} (Optuna's ``failed_trial`` system attribute)."""
    import optuna

    study = optuna.load_study(study_name="qdet-search", storage=f"sqlite:///{db.resolve()}")
    return {t.system_attrs["failed_trial"]: t.number for t in study.get_trials(deepcopy=False)
            if "failed_trial" in t.system_attrs}


def to_markdown(record: dict[str, Any]) -> str:
    front = record["front"]
    trials = {t["number"]: t for t in front["trials"]}
    z = front["zoo"].get("tinydet W4A4", {})
    lines = [f"# qdet search on {BOARD} (max FPS), {record['date']}", "",
             f"Machine: {record['machine']}. {record['trials']} trials with {record['workers']} workers on a "
             f"synthetic 64x64 set (800 train / 200 val), {record['epochs']} QAT epochs per trial with "
             f"distillation from a float tinydet trained {record['teacher_epochs']} epochs (+1 fine-tune epoch "
             "after pruning / factorizing), verify 2 images per build. Space: "
             f"{' '.join(SPACE)}. Wall clock {record['minutes']:.1f} min in all (kill and restart included).", "",
             "## Kill and restart", "",
             f"- killed (SIGKILL of the main process and both workers) with {len(record['kill']['at_kill'].get('complete', []))}"
             f" trials complete and trials {record['kill']['at_kill'].get('running', [])} running;",
             f"- the same command again continued the study to {len(record['after'].get('complete', []))} complete "
             f"trials (numbers {_ranges(record['after'].get('complete', []))}); the killed trials "
             f"{record['after'].get('fail', [])} were failed once their heartbeat was stale and retried with the same "
             f"parameters and seed as trials {record.get('retries', {})} (failed -> retry).", "",
             f"## Front ({len(front['front'])} non-dominated of {front['feasible']} feasible)", "",
             "| trial | model | mAP@0.5 | FPS | LUT | BRAM18 | energy uJ | GBOPs |", "|---:|---|---:|---:|---:|---:|---:|---:|"]
    for n in sorted(front["front"], key=lambda k: -trials[k]["map50"]):
        t = trials[n]
        lines.append(f"| {n} | {t['label']} | {t['map50']:.3f} | {t['fps']:,.0f} | {t['lut']:,.0f} | "
                     f"{t['bram18']:,.0f} | {t['energy_uj']:,.1f} | {t['bops'] / 1e9:.3f} |")
    if z:
        t = trials.get(z["trial"]) or next(x for x in front["trials"] if x["number"] == z["trial"])
        lines += ["", f"**tinydet W4A4** (trial {z['trial']}, same budget): mAP@0.5 {t['map50']:.3f}, "
                      f"{t.get('fps', 0):,.0f} FPS, {t.get('lut', 0):,.0f} LUT, {t.get('energy_uj', 0):,.1f} uJ: "
                      f"**{z['text']}**."]
    lines += ["", "## GPU run (not run: no GPU was lent to this session)", "", f"    {GPU_COMMAND}", ""]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path("bench/work/search"))
    ap.add_argument("--trials", type=int, default=24)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--teacher-epochs", type=int, default=15)
    ap.add_argument("--kill-after", type=int, default=6)
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--fresh", action="store_true", help="delete an earlier search in --work first")
    ap.add_argument("--gpu-command", action="store_true", help="print the GPU run's command and exit")
    ap.add_argument("--rewrite", action="store_true", help="rewrite search.md and search.png from search.json and "
                                                            "the search folder (no search is run)")
    args = ap.parse_args()
    if args.gpu_command:
        print(GPU_COMMAND)
        return
    if args.rewrite:
        rewrite(args.work)
        return
    from bench.accuracy import _machine
    from quant_models.data import generate_synthetic
    from quant_models.data.layout import detect_layout

    work = args.work
    if args.fresh:
        shutil.rmtree(work / "run", ignore_errors=True)
    if not all(detect_layout(work / "data", s) for s in ("train", "val")):
        generate_synthetic(work / "data", args.images, 0, (64, 64), "coco", 0.2, overwrite=True, workers=2)
    cmd = command(work, args.trials, args.workers, args.epochs, args.teacher_epochs)
    db = work / "run" / "study.db"
    log(" ".join(cmd))
    kill = (killed_run(cmd, db, args.kill_after, work / "search_killed.log")
            if len(counts(db).get("complete", [])) < args.kill_after else {"at_kill": {}, "exit_code": None})
    code = resumed_run(cmd, work / "search_resumed.log")
    if code != 0:
        raise SystemExit(f"the resumed search failed (exit {code}); see {work / 'search_resumed.log'}")
    after = counts(db)
    log(f"resumed search finished: {json.dumps(after)}")
    front = json.loads((work / "run" / "front.json").read_text())
    record = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "machine": _machine(),
              "trials": args.trials, "workers": args.workers, "epochs": args.epochs,
              "teacher_epochs": args.teacher_epochs, "minutes": (time.perf_counter() - _T0) / 60, "kill": kill,
              "after": after, "retries": retries(db), "front": front, "command": cmd[2:], "gpu_command": GPU_COMMAND}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "search.json").write_text(json.dumps(record, indent=2, sort_keys=True, default=str) + "\n")
    (RESULTS / "search.md").write_text(to_markdown(record))
    shutil.copy(work / "run" / "pareto.png", RESULTS / "search.png")
    log(f"wrote {RESULTS / 'search.md'}")


def rewrite(work: Path) -> None:
    """Regenerate the report files of a finished recorded run (after a change to how they are written)."""
    from qdet.search.report import write_report
    from qdet.search.study import load_search

    record = json.loads((RESULTS / "search.json").read_text())
    cfg, study = load_search(work / "run")
    record["front"] = write_report(cfg, study)
    record["retries"] = retries(work / "run" / "study.db")
    (RESULTS / "search.json").write_text(json.dumps(record, indent=2, sort_keys=True, default=str) + "\n")
    (RESULTS / "search.md").write_text(to_markdown(record))
    shutil.copy(work / "run" / "pareto.png", RESULTS / "search.png")
    log(f"rewrote {RESULTS / 'search.md'}")


if __name__ == "__main__":
    main()
