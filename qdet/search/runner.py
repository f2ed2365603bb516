"""Running a search: every check first, the feasibility precheck, the teacher, the worker processes, the report.

A worker is a process with one torch thread that loads the study from its storage and calls
``study.optimize``: Optuna's storage gives each worker its next trial, the heartbeat and retry callback take care
of a worker that died, and :class:`optuna.study.MaxTrialsCallback` stops them all at the shared budget.
"""

from __future__ import annotations

import multiprocessing
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from qdet.search.space import SearchError, TrialConfig, sample
from qdet.search.study import (NO_BUILD, PRECHECK_KEY, SearchConfig, context, create_study, inspect_study,
                               make_sampler, make_storage)
from qdet.search.trial import build, constraints_of, infeasible_fold, run_trial, train_config, violated_constraint

TEACHER_ARCH = "tinydet"
Say = Callable[[str], None]


def check_search(cfg: SearchConfig) -> tuple[str, ...]:
    """Every check that needs no training, cheapest first; returns the data set's class names.

    Board name, data set (train and val splits), search folder, the teacher checkpoint (it must fit the students:
    one stride-8 output, the data set's classes, the budget's input size), and each architecture's training
    options. Raises the stages' typed errors or SearchError; writes nothing."""
    from boards.catalogue import get_board
    from quant_models.checkpoint import read_checkpoint
    from quant_models.data import load_dataset
    from quant_models.data.layout import detect_layout
    from quant_models.models import DetectorConfig, default_config
    from quant_models.paths import check_dir
    from quant_models.train import check_train_config

    get_board(cfg.board)
    data = Path(cfg.data)
    missing = [split for split in ("train", "val") if not data.is_dir() or detect_layout(data, split) is None]
    if missing:
        raise SearchError(f"--data {data} is not a data set: no {' and '.join(missing)} split in a COCO, YOLO or "
                          "VOC layout; make one with `qdet data synth --out DIR` or point at a converted set")
    check_dir(cfg.out, "search directory", "--out")
    names = load_dataset(data, "val").class_names
    size = cfg.budget.input_size or default_config(TEACHER_ARCH, 1).input_size
    if cfg.teacher is not None:
        teacher = DetectorConfig.from_dict(read_checkpoint(Path(cfg.teacher))["model_config"])
        wrong = []
        if teacher.head_strides:
            wrong.append(f"it has {len(teacher.head_strides)} outputs, the students one at stride 8")
        if teacher.num_classes != len(names):
            wrong.append(f"it predicts {teacher.num_classes} classes, {data} has {len(names)}")
        if tuple(teacher.input_size) != tuple(size):
            wrong.append(f"it takes {teacher.input_size[0]}x{teacher.input_size[1]} images, the search trains at "
                         f"{size[0]}x{size[1]} (--input-size)")
        if teacher.arch not in ("tinydet", "mobiledet"):
            wrong.append(f"it is a {teacher.arch}, not a stride-8 tinydet or mobiledet")
        if wrong:
            raise SearchError(f"--teacher {cfg.teacher} does not fit this search: {'; '.join(wrong)}. Train one with "
                              f"`qdet train --model tinydet --bits float --data {data} --input-size "
                              f"{size[0]}x{size[1]}`, or leave --teacher out to have the search train it")
    ctx = context(cfg, cfg.teacher)
    for arch in cfg.space.archs:  # bit specs, input size against the stride, writable run folders
        check_train_config(train_config(cfg.space.cheapest(arch), ctx, cfg.layout.trial(0) / "qat", cfg.seed, 1,
                                        None))
    return names


def _at(cfg: SearchConfig) -> str:
    return "at max FPS" if cfg.target_fps is None else f"at {cfg.target_fps:g} FPS"


def precheck(cfg: SearchConfig, class_names: tuple[str, ...], say: Say) -> dict[str, Any]:
    """Build the cheapest corner of each architecture, untrained, through the folder (export + the flow up to its
    fold step, in a temporary folder). SearchError naming the constraint when none of them fits the board."""
    import torch

    from quant_models.chatter import chatter_to
    from quant_models.checkpoint import save_checkpoint
    from quant_models.export import export_checkpoint
    from quant_models.models import build_model, default_config
    from flows.errors import FlowError
    from qdet.search.trial import compress

    record: dict[str, Any] = {}
    ctx = replace(context(cfg, None), budget=replace(cfg.budget, verify_images=0))
    with tempfile.TemporaryDirectory(prefix="qdet-precheck-") as tmp:
        for arch in cfg.space.archs:
            point = cfg.space.cheapest(arch)
            say(f"precheck: building the smallest {arch} of the space ({point.label()}) untrained for {cfg.board} "
                f"{_at(cfg)} ...")
            root = Path(tmp) / arch
            torch.manual_seed(cfg.seed)
            model = build_model(default_config(arch, len(class_names), point.bits, point.width,
                                               class_names=class_names, input_size=cfg.budget.input_size))
            ckpt = root / "model.pt"
            save_checkpoint(ckpt, {"model_config": model.cfg.to_dict(), "model": model.state_dict()})
            with open(Path(tmp) / "precheck.log", "a") as log, chatter_to(log):
                if point.compressed:
                    compress(point, ckpt, root / "compressed.pt", cfg.seed, Path(cfg.data))
                    ckpt = root / "compressed.pt"
                export_checkpoint(ckpt, root / "model.onnx", samples=1, seed=cfg.seed)
                try:
                    build(root / "model.onnx", None, root / "build", ctx, cfg.seed, stop="fold")
                except FlowError as exc:
                    if not infeasible_fold(exc):
                        raise
                    record[arch] = {"config": point.params(), "fits": False, "constraint": violated_constraint(str(exc)),
                                    "message": str(exc)}
                    continue
            record[arch] = {"config": point.params(), "fits": True}
            break  # one architecture whose smallest model fits: the space has feasible points
    if not any(r["fits"] for r in record.values()):
        parts = [f"{arch} ({TrialConfig(**r['config']).label()}): {r['constraint']}: {r['message']}"
                 for arch, r in record.items()]
        raise SearchError(f"no point of the search space fits {cfg.board} {_at(cfg)}: even the smallest model of "
                          f"each architecture does not. {' | '.join(parts)}. Widen the space (fewer bits, narrower "
                          "widths, more pruning), lower --target-fps or choose a larger --board")
    return record


def ensure_teacher(cfg: SearchConfig, say: Say) -> Path:
    """The teacher checkpoint: ``cfg.teacher``, or a float tinydet trained (or resumed) in ``OUT/teacher``."""
    from quant_models.chatter import chatter_to
    from quant_models.run_layout import RunLayout
    from quant_models.train import TrainConfig, train

    if cfg.teacher is not None:
        return Path(cfg.teacher)
    b = cfg.budget
    run = RunLayout(cfg.layout.teacher_dir)
    tcfg = TrainConfig(data=Path(cfg.data), out=run.root, model=TEACHER_ARCH, bits=None, epochs=b.teacher_epochs,
                       batch_size=b.batch_size, lr=b.lr, seed=cfg.seed, device=b.device, input_size=b.input_size,
                       resume=run.last.is_file(), progress=False, eval_every=b.teacher_epochs)
    say(f"teacher: float {TEACHER_ARCH}, {b.teacher_epochs} epochs in {run.root}" +
        (" (resumed)" if tcfg.resume else ""))
    with open(cfg.layout.root / "search.log", "a") as log, chatter_to(log):
        result = train(tcfg)
    say(f"teacher: val mAP@0.5 {result.metrics['map50']:.3f}")
    return result.last


def objectives(outcome, cfg: SearchConfig) -> tuple[float, float, float]:
    """The trial's objective values (mAP@0.5, FPS or LUT, energy per frame); a build the folder refused gets the
    worst values (:data:`NO_BUILD`)."""
    f = outcome.figures
    if "fps" not in f:
        return f["map50"], (0.0 if cfg.target_fps is None else NO_BUILD), NO_BUILD
    return f["map50"], f["fps"] if cfg.target_fps is None else f["lut"], f["energy_uj"]


def _origin(trial) -> int:
    """The number of the trial this one retries (a dead worker's), else its own: the seed follows the point."""
    from optuna.storages import RetryHeartbeatStaleTrialCallback
    from optuna.trial import TrialState

    frozen = [t for t in trial.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
              if t.number == trial.number]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # experimental
        origin = RetryHeartbeatStaleTrialCallback.retried_trial_number(frozen[0]) if frozen else None
    return trial.number if origin is None else origin


def objective(trial, cfg: SearchConfig, teacher: Path, worker: int, say: Say) -> tuple[float, float, float]:
    """One Optuna trial: sample a point, run it (:func:`qdet.search.trial.run_trial`), store every figure."""
    point = sample(trial, cfg.space)
    seed = cfg.seed + _origin(trial)
    tick = time.perf_counter()
    say(f"[worker {worker}] trial {trial.number}: {point.label()} ...")
    outcome = run_trial(point, context(cfg, teacher), cfg.layout.trial(trial.number), seed)
    for key, value in outcome.figures.items():
        trial.set_user_attr(key, value)
    trial.set_user_attr("label", point.label())
    trial.set_user_attr("bits", point.bits)
    trial.set_user_attr("seed", seed)
    trial.set_user_attr("worker", worker)
    trial.set_user_attr("feasible", outcome.feasible)
    trial.set_user_attr("constraint", outcome.constraint)
    trial.set_user_attr("message", outcome.message)
    for name, value in constraints_of(outcome, cfg.target_fps).items():
        trial.set_constraint(name, value)
    values = objectives(outcome, cfg)
    f = outcome.figures
    shown = (f"{f['fps']:,.0f} FPS, {f['lut']:,.0f} LUT, {f['energy_uj']:,.1f} uJ" if "fps" in f
             else f"infeasible: {outcome.constraint}")
    say(f"[worker {worker}] trial {trial.number} done in {time.perf_counter() - tick:.0f} s: mAP@0.5 "
        f"{f['map50']:.3f}, {shown}")
    return values


def _finished(study, trials: int) -> bool:
    from optuna.trial import TrialState

    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.RUNNING))) >= trials


def worker_main(cfg: SearchConfig, teacher: Path, worker: int) -> None:
    """A worker process's entry: :func:`work`, with the traceback of an error kept in ``OUT/worker-<i>.log``."""
    import traceback

    try:
        work(cfg, teacher, worker)
    except BaseException:
        cfg.layout.worker_log(worker).write_text(traceback.format_exc())
        raise


def work(cfg: SearchConfig, teacher: Path, worker: int) -> None:
    """A worker: one torch thread, the shared study, trials until the study has ``cfg.trials`` completed ones."""
    import optuna
    import torch
    from optuna.study import MaxTrialsCallback
    from optuna.trial import TrialState

    from qdet.console import say

    torch.set_num_threads(cfg.threads)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    storage = make_storage(cfg)
    study = optuna.load_study(study_name=cfg.study_name, storage=storage, sampler=make_sampler(cfg, worker))
    optuna.storages.fail_stale_trials(study)  # a dead worker's RUNNING trial: failed now, retried (enqueued)

    def stop_on_failures(study, trial) -> None:  # a point that fails every time must not loop forever
        if len(study.get_trials(deepcopy=False, states=(TrialState.FAIL,))) >= cfg.trials:
            study.stop()

    while not _finished(study, cfg.trials):
        try:
            study.optimize(lambda t: objective(t, cfg, teacher, worker, say), n_trials=1, catch=(Exception,),
                           callbacks=[MaxTrialsCallback(cfg.trials, states=(TrialState.COMPLETE, TrialState.RUNNING)),
                                      stop_on_failures], gc_after_trial=True)
        except (optuna.exceptions.UpdateFinishedTrialError, ValueError) as exc:
            # Its heartbeat came too late (a loaded machine): another worker failed it as a dead worker's, and it
            # runs again as a retry. Not this worker's end. Optuna says so with UpdateFinishedTrialError, or, when
            # the other worker failed it between the objective's end and the tell, "Cannot tell a FAIL trial"
            # (seen with two test workers and a synthesis on 2 cores). The objective's own errors never get here:
            # optimize catches them.
            if isinstance(exc, ValueError) and not str(exc).startswith("Cannot tell a"):
                raise
            say(f"[worker {worker}] {exc}; the trial is retried")
        failed = study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
        if len(failed) >= cfg.trials:
            raise SearchError(f"{len(failed)} trials failed (the last: {failed[-1].system_attrs.get('fail_reason')}); "
                              f"see {cfg.layout.trials_dir}/NNNN/trial.log")


def run_workers(cfg: SearchConfig, teacher: Path, say: Say) -> None:
    """``cfg.workers`` worker processes (spawned; in this process when there is one), until the budget is met."""
    if cfg.workers == 1:
        work(cfg, teacher, 0)
        return
    spawn = multiprocessing.get_context("spawn")
    procs = [spawn.Process(target=worker_main, args=(cfg, teacher, i), name=f"qdet-search-worker-{i}")
             for i in range(cfg.workers)]
    for p in procs:
        p.start()
    say(f"{cfg.workers} workers: pids {', '.join(str(p.pid) for p in procs)}")
    for p in procs:
        p.join()
    bad = [(i, p.exitcode) for i, p in enumerate(procs) if p.exitcode != 0]
    if bad:
        logs = ", ".join(str(cfg.layout.worker_log(i)) for i, _ in bad if cfg.layout.worker_log(i).is_file())
        raise SearchError(f"worker(s) {', '.join(f'{i} (exit code {c})' for i, c in bad)} stopped before the study "
                          f"had {cfg.trials} trials ({'tracebacks in ' + logs if logs else 'killed'}); rerun the "
                          f"same command to continue the study (trial logs in {cfg.layout.trials_dir})")


def run_search(cfg: SearchConfig, say: Say) -> tuple[SearchConfig, Any]:
    """``qdet search``: check, precheck, teacher, workers, report; returns (the config it ran with, the study)."""
    import json

    import optuna

    from qdet.search.report import write_report

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # qdet prints its own progress lines
    cfg, study = inspect_study(cfg)  # another study in --out is refused before anything is trained
    names = check_search(cfg)
    if study is None or study.user_attrs.get(PRECHECK_KEY) is None:
        record = precheck(cfg, names, say) if cfg.precheck else None
        study = create_study(cfg, record) if study is None else study
        if record is not None:
            study.set_user_attr(PRECHECK_KEY, record)
    else:
        done = len([t for t in study.trials if t.state.name == "COMPLETE"])
        say(f"resuming study {cfg.study_name!r}: {done} of {cfg.trials} trials complete")
    cfg.layout.record.write_text(json.dumps({"study_name": cfg.study_name, "storage": cfg.storage or "study.db",
                                             "identity": cfg.identity(), "objectives": cfg.objective_names},
                                            indent=2, sort_keys=True) + "\n")
    teacher = ensure_teacher(cfg, say)
    run_workers(cfg, teacher, say)
    write_report(cfg, study)
    return cfg, study
