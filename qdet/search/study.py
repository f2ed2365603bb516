"""The search's study: configuration, the search folder, Optuna storage and samplers, workers, resume.

- One Optuna study on an RDB storage (default: SQLite, ``OUT/study.db``) is shared by every worker process
  (``workers``); another machine joins by running the same command against the same ``storage`` URL (PostgreSQL).
  Optuna hands out the trials: there is no scheduler here.
- Heartbeats mark a killed worker's RUNNING trial failed once it is stale, and ``RetryFailedTrialCallback``
  enqueues it again; :class:`optuna.study.MaxTrialsCallback` stops every worker at the shared trial budget.
- The study's identity (space, budget, board, target, data, teacher, seed, sampler) is stored in its user attrs:
  the same command resumes it, a different one is refused unless ``resume_as_is`` (continue it with its stored
  settings) or ``overwrite`` (delete it).
- Before any training, the space's cheapest corner of each architecture is built untrained through the folder: a
  space none of whose corners fits the board is refused, naming the constraint.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from qdet.search.space import SearchError, SearchSpace, fingerprint, zoo_points
from qdet.search.trial import Budget, TrialContext

SAMPLERS = ("tpe", "nsga2")
IDENTITY_KEY = "qdet.identity"
FINGERPRINT_KEY = "qdet.fingerprint"
PRECHECK_KEY = "qdet.precheck"
# Objective value of a trial whose build the folder refused (no FPS, LUT or energy exists for it): worse than any
# real build, finite so that every sampler's non-dominated sorting stays well defined.
NO_BUILD = 1e12


@dataclass(frozen=True)
class SearchConfig:
    """Everything ``qdet search`` depends on."""

    data: Path
    out: Path
    board: str = "pynq-z2"
    target_fps: float | None = None  # None: maximise FPS within the board's budget
    trials: int = 24  # completed trials the study aims at (shared by every worker and machine)
    workers: int = 1
    space: SearchSpace = field(default_factory=SearchSpace)
    budget: Budget = field(default_factory=Budget)
    teacher: Path | None = None  # None: a float tinydet trained at the start, in OUT/teacher
    seed: int = 0
    sampler: str = "tpe"
    storage: str | None = None  # an Optuna RDB URL; None: sqlite:///OUT/study.db
    study_name: str = "qdet-search"
    resume_as_is: bool = False
    overwrite: bool = False
    heartbeat_s: int = 10  # a RUNNING trial without a heartbeat for 3x this is a dead worker's: failed, retried
    threads: int = 1  # torch threads per worker
    precheck: bool = True

    def __post_init__(self) -> None:
        if self.trials < 1:
            raise SearchError(f"--trials must be >= 1, got {self.trials}")
        if self.workers < 1:
            raise SearchError(f"--workers must be >= 1 (worker processes sharing the study), got {self.workers}")
        if self.target_fps is not None and not self.target_fps > 0:
            raise SearchError(f"--target-fps must be > 0, got {self.target_fps:g}")
        if self.sampler not in SAMPLERS:
            raise SearchError(f"--sampler {self.sampler!r}: choose {' or '.join(SAMPLERS)}")
        if self.resume_as_is and self.overwrite:
            raise SearchError("--resume-as-is continues the stored study, --overwrite deletes it: choose one")
        if self.heartbeat_s < 1 or self.threads < 1:
            raise SearchError("the heartbeat interval and the threads per worker must be >= 1")

    @property
    def layout(self) -> SearchLayout:
        return SearchLayout(Path(self.out))

    @property
    def storage_url(self) -> str:
        return self.storage or f"sqlite:///{self.layout.storage.resolve()}"

    @property
    def directions(self) -> list[str]:
        """mAP up; FPS up (max FPS) or LUT down (an FPS target); energy per frame down."""
        return ["maximize", "maximize" if self.target_fps is None else "minimize", "minimize"]

    @property
    def objective_names(self) -> list[str]:
        return ["map50", "fps" if self.target_fps is None else "lut", "energy_uj"]

    def identity(self) -> dict[str, Any]:
        """What makes two searches the same study (everything but workers, trials and how the folder is opened)."""
        return {"space": self.space.to_dict(), "budget": _jsonable(asdict(self.budget)), "board": self.board,
                "target_fps": self.target_fps, "data": str(Path(self.data).resolve()),
                "teacher": None if self.teacher is None else str(Path(self.teacher).resolve()), "seed": self.seed,
                "sampler": self.sampler}

    def with_identity(self, identity: dict[str, Any]) -> SearchConfig:
        """This config with a stored study's identity (``--resume-as-is``)."""
        budget = dict(identity["budget"])
        if budget.get("input_size") is not None:
            budget["input_size"] = tuple(budget["input_size"])
        return replace(self, space=SearchSpace.from_dict(identity["space"]), budget=Budget(**budget),
                       board=identity["board"], target_fps=identity["target_fps"], data=Path(identity["data"]),
                       teacher=None if identity["teacher"] is None else Path(identity["teacher"]),
                       seed=identity["seed"], sampler=identity["sampler"], resume_as_is=False)


def _jsonable(data: Any) -> Any:
    return json.loads(json.dumps(data, default=str))


@dataclass(frozen=True)
class SearchLayout:
    """The paths of a search folder."""

    root: Path

    @property
    def storage(self) -> Path:
        """``study.db``: the default SQLite storage of the study."""
        return self.root / "study.db"

    @property
    def record(self) -> Path:
        """``search.json``: the study's name, fingerprint and identity, for people and ``qdet search-best``."""
        return self.root / "search.json"

    @property
    def teacher_dir(self) -> Path:
        return self.root / "teacher"

    @property
    def precheck_dir(self) -> Path:
        return self.root / "precheck"

    def trial(self, number: int) -> Path:
        """Trial ``number``'s folder: its runs, model, build and log."""
        return self.trials_dir / f"{number:04d}"

    @property
    def trials_dir(self) -> Path:
        return self.root / "trials"

    @property
    def report(self) -> Path:
        return self.root / "report.md"

    @property
    def front(self) -> Path:
        """``front.json``: every trial's figures and the non-dominated ones."""
        return self.root / "front.json"

    @property
    def plots(self) -> Path:
        """``pareto.png``: mAP against FPS, LUT and energy per frame."""
        return self.root / "pareto.png"

    def worker_log(self, worker: int) -> Path:
        """``worker-<i>.log``: the traceback of a worker process that stopped on an error."""
        return self.root / f"worker-{worker}.log"

    def best(self, number: int) -> Path:
        """Where ``qdet search-best`` rebuilds trial ``number``."""
        return self.root / "best" / f"{number:04d}"


def context(cfg: SearchConfig, teacher: Path | None) -> TrialContext:
    """What every trial of the search shares."""
    return TrialContext(data=Path(cfg.data), teacher=teacher, board=cfg.board, target_fps=cfg.target_fps,
                        budget=cfg.budget)


# --- storage, samplers ---------------------------------------------------------------------------------------------
def make_storage(cfg: SearchConfig):
    """The RDB storage with heartbeats and the retry of a dead worker's trial (its RUNNING trial goes stale, is
    failed, and enqueued again with the same parameters)."""
    import warnings

    from optuna.exceptions import ExperimentalWarning
    from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

    with warnings.catch_warnings():  # heartbeats and the retry callback are marked experimental
        warnings.simplefilter("ignore", ExperimentalWarning)
        # SQLite serialises writers: a worker waits for another's transaction (up to a minute on a loaded
        # machine) instead of failing with "database is locked" after sqlite3's default 5 s.
        engine = {"connect_args": {"timeout": 60.0}} if cfg.storage_url.startswith("sqlite") else None
        return RDBStorage(cfg.storage_url, engine_kwargs=engine, heartbeat_interval=cfg.heartbeat_s,
                          grace_period=3 * cfg.heartbeat_s,
                          heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=2))


def make_sampler(cfg: SearchConfig, worker: int):
    """A multi-objective sampler, seeded per worker (two workers must not draw the same points). The board
    constraints reach it through ``trial.set_constraint`` (infeasible trials rank behind every feasible one)."""
    import optuna

    seed = cfg.seed * 1000 + worker
    startup = max(2, min(10, cfg.trials // 3))
    if cfg.sampler == "nsga2":
        return optuna.samplers.NSGAIISampler(population_size=max(4, startup), seed=seed)
    return optuna.samplers.TPESampler(n_startup_trials=startup, seed=seed)


# --- opening the study ---------------------------------------------------------------------------------------------
def _differences(stored: dict[str, Any], mine: dict[str, Any]) -> list[str]:
    return sorted(k for k in set(stored) | set(mine) if stored.get(k) != mine.get(k))


def inspect_study(cfg: SearchConfig) -> tuple[SearchConfig, Any]:
    """The study this search continues, if its storage holds it: (the config it runs with, the study or None).

    Refuses (SearchError) a search folder whose storage holds another study, or this study with other settings,
    unless ``resume_as_is`` (continue the stored one with its own settings) or ``overwrite`` (it is deleted).
    Creates nothing: a folder without ``study.db`` is left as it is."""
    import optuna

    if cfg.storage is None and not cfg.layout.storage.is_file():
        return cfg, None
    storage = make_storage(cfg)
    names = [s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)]
    fix = ("give another --out, pass --resume-as-is to continue the stored study with its own settings, or "
           "--overwrite to delete it")
    if cfg.storage is None:  # the folder's own file: it holds this search's study or nothing
        others = [n for n in names if n != cfg.study_name]
        if others and cfg.overwrite:
            for name in others:
                optuna.delete_study(study_name=name, storage=storage)
        elif others and cfg.resume_as_is and len(names) == 1:
            cfg = replace(cfg, study_name=others[0])
            names = others
        elif others:
            raise SearchError(f"--out {cfg.out}: {cfg.layout.storage} holds another study "
                              f"({', '.join(repr(n) for n in others)}), not {cfg.study_name!r}; {fix}")
    if cfg.study_name not in names:
        return cfg, None
    study = optuna.load_study(study_name=cfg.study_name, storage=storage)
    stored, mine = study.user_attrs.get(IDENTITY_KEY), cfg.identity()
    if study.user_attrs.get(FINGERPRINT_KEY) == fingerprint(mine) and stored == mine:
        return cfg, study
    if cfg.resume_as_is and stored is not None:
        return cfg.with_identity(stored), study
    if not cfg.overwrite:
        what = ("was not written by qdet search" if stored is None
                else f"was started with other settings (differing: {', '.join(_differences(stored, mine))})")
        where = cfg.storage_url if cfg.storage else cfg.layout.storage
        raise SearchError(f"--out {cfg.out}: the study {cfg.study_name!r} in {where} {what}; {fix}")
    optuna.delete_study(study_name=cfg.study_name, storage=storage)
    return cfg, None


def create_study(cfg: SearchConfig, precheck: dict[str, Any] | None):
    """A new study with its identity, the precheck's record and the hand-designed points enqueued first."""
    import optuna

    if cfg.overwrite:  # an earlier study's trials must not sit beside this one's
        for folder in (cfg.layout.trials_dir, cfg.layout.root / "best"):
            shutil.rmtree(folder, ignore_errors=True)
    cfg.layout.root.mkdir(parents=True, exist_ok=True)
    study = optuna.create_study(storage=make_storage(cfg), study_name=cfg.study_name, directions=cfg.directions)
    mine = cfg.identity()
    study.set_user_attr(IDENTITY_KEY, mine)
    study.set_user_attr(FINGERPRINT_KEY, fingerprint(mine))
    study.set_user_attr("qdet.objectives", cfg.objective_names)
    study.set_user_attr(PRECHECK_KEY, precheck)
    for label, point in zoo_points(cfg.space):  # measured first, on the same budget as every other trial
        study.enqueue_trial(point.params(), user_attrs={"zoo": label})
    return study


def load_search(out: Path, storage: str | None = None, study_name: str = "qdet-search"):
    """(config, study) of an existing search folder, for the report and ``qdet search-best``."""
    import optuna

    layout = SearchLayout(Path(out))
    if storage is None and not layout.storage.is_file():
        raise SearchError(f"{out}: no search here (no {layout.storage.name}); run `qdet search --out {out} ...` "
                          "first, or pass the study's --storage")
    probe = SearchConfig(data=Path("."), out=Path(out), storage=storage, study_name=study_name)
    try:
        study = optuna.load_study(study_name=study_name, storage=make_storage(probe))
    except KeyError:
        raise SearchError(f"{probe.storage_url}: no study named {study_name!r}") from None
    identity = study.user_attrs.get(IDENTITY_KEY)
    if identity is None:
        raise SearchError(f"the study {study_name!r} was not written by qdet search (no stored identity)")
    return probe.with_identity(identity), study
