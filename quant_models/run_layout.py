"""The layout of a training run: every path ``qdet train`` and ``qdet eval`` write under ``RUN``, and its readers.

This module is the one place that spells a run-relative file name; training, evaluation, the benchmarks and the
CLI ask a :class:`RunLayout` for paths instead. The up-front checks of a run directory live here too, so a run
that would be replaced, or a path that is a file where a folder belongs, is refused before any data is loaded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from quant_models.paths import OutputPathError, check_dir

# File names inside a run directory (the only spelling of them in the project).
LAST = "last.pt"
BEST = "best.pt"
METRICS = "metrics.json"
CURVES = "curves.png"
EVAL_REPORT = "eval.json"
PREDICTIONS = "predictions.png"
LOG = "train.log"
COMPRESS_RECORD = "compress.json"
COMPRESS_REPORT = "compress.md"


class RunLayoutError(ValueError):
    """A run file that exists but cannot be read as what the run keeps there; the message names it."""


@dataclass(frozen=True)
class RunLayout:
    """The paths of one training run rooted at ``root`` (what ``--out`` names)."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @property
    def last(self) -> Path:
        """Checkpoint written after every epoch (what ``--resume`` continues from)."""
        return self.root / LAST

    @property
    def best(self) -> Path:
        """Checkpoint of the epoch with the best val mAP@0.5."""
        return self.root / BEST

    @property
    def metrics(self) -> Path:
        """Per-epoch history and final figures (JSON)."""
        return self.root / METRICS

    @property
    def curves(self) -> Path:
        """Training curves (PNG)."""
        return self.root / CURVES

    @property
    def eval_report(self) -> Path:
        """``qdet eval``'s report (JSON)."""
        return self.root / EVAL_REPORT

    @property
    def predictions(self) -> Path:
        """``qdet eval``'s picture of predictions and ground truth (PNG)."""
        return self.root / PREDICTIONS

    @property
    def log(self) -> Path:
        """Where third-party chatter (library warnings) goes instead of the console."""
        return self.root / LOG

    # A compression run (qdet prune / qdet lowrank): one sub-run per step, each fine-tuning a compressed model.
    def step_run(self, step: int) -> RunLayout:
        """The fine-tuning run of compression step ``step`` (1-based), a training run of its own."""
        return RunLayout(self.root / f"step{step}")

    def compressed(self, step: int) -> Path:
        """The checkpoint of step ``step``'s compressed model before fine-tuning (its ``--init``)."""
        return self.root / f"step{step}" / "compressed.pt"

    @property
    def compress_record(self) -> Path:
        """What a compression run did, step by step: plans, MACs, params, mAP (JSON)."""
        return self.root / COMPRESS_RECORD

    @property
    def compress_report(self) -> Path:
        """The same as a Markdown table."""
        return self.root / COMPRESS_REPORT

    def training_files(self) -> tuple[Path, ...]:
        """Every file ``qdet train`` writes (what ``--overwrite`` removes)."""
        return self.last, self.best, self.metrics, self.curves, self.log

    def eval_files(self) -> tuple[Path, ...]:
        """Every file ``qdet eval`` writes."""
        return self.eval_report, self.predictions

    def has_checkpoint(self) -> bool:
        """Whether a run was (at least partly) trained here: ``last.pt`` or ``best.pt`` exists."""
        return self.last.exists() or self.best.exists()

    def read_metrics(self) -> dict[str, Any]:
        """The parsed ``metrics.json``; :class:`RunLayoutError` when it is missing or not a metrics object."""
        if not self.metrics.is_file():
            raise RunLayoutError(f"{self.metrics} does not exist; `qdet train --out {self.root}` writes it")
        try:
            data = json.loads(self.metrics.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise RunLayoutError(f"{self.metrics} cannot be read ({exc}); rerun the training run") from exc
        if not isinstance(data, dict) or not isinstance(data.get("epochs"), list):
            raise RunLayoutError(f"{self.metrics} is not a qdet metrics file (no per-epoch list)")
        return data

    def epochs_done(self) -> tuple[int, int | None]:
        """(epochs trained, epochs asked for) from ``metrics.json``; (0, None) when it is missing or unreadable."""
        try:
            data = self.read_metrics()
        except RunLayoutError:
            return 0, None
        history = data["epochs"]
        done = int(history[-1].get("epoch", len(history))) if history else 0
        asked = data.get("train_config", {}).get("epochs")
        return done, None if asked is None else int(asked)

    def is_finished(self) -> bool:
        """Whether the run trained every epoch it asked for (per ``metrics.json``) and kept its checkpoint."""
        done, asked = self.epochs_done()
        return self.last.is_file() and asked is not None and done >= asked

    def check_writable(self, option: str = "--out") -> RunLayout:
        """Up-front check that a training run can be written: ``root`` is (or can become) a writable directory
        and no file the run keeps is a directory. Raises :class:`OutputPathError`; creates nothing."""
        return self._check(option, "run directory", (*self.training_files(), *self.eval_files()))

    def check_eval_writable(self, option: str = "--out") -> RunLayout:
        """The same check for what ``qdet eval`` writes (``eval.json``, ``predictions.png``)."""
        return self._check(option, "evaluation output directory", self.eval_files())

    def _check(self, option: str, what: str, files: tuple[Path, ...]) -> RunLayout:
        check_dir(self.root, what, option)
        for path in files:
            if path.is_dir():
                raise OutputPathError(f"{option} {self.root}: {path} is a directory, but a file is written "
                                      "there; move or delete it")
        return self

    def describe(self) -> str:
        """A short description of what is already here, for messages ("a finished run of 10 epochs")."""
        done, asked = self.epochs_done()
        if asked is None:
            return "a run (checkpoints without a readable metrics.json)"
        noun = "epoch" if asked == 1 else "epochs"
        if done >= asked:
            return f"a finished run of {asked} {noun}"
        return f"an unfinished run ({done} of {asked} {noun})"

    def remove_training_files(self) -> None:
        """Delete what an earlier run left (checkpoints, metrics, curves, log, eval outputs), so a replaced run
        can never leave a stale ``best.pt`` behind."""
        for path in (*self.training_files(), *self.eval_files()):
            path.unlink(missing_ok=True)


__all__ = ["RunLayout", "RunLayoutError"]
