"""One trial of the co-design search: train (QAT with distillation from the float teacher) -> compress (prune /
factorize, then fine-tune) -> evaluate -> export -> build with qdet's folder -> measure.

Every stage is the project's own: :func:`quant_models.train.train`, :mod:`quant_models.compress`,
:func:`quant_models.evaluate.evaluate_checkpoint`, :func:`quant_models.export.export_checkpoint`,
:func:`flows.runner.run_flow` with the default steps, the build's estimates (:class:`flows.build.BuildLayout`),
:func:`flows.energy.estimate_build_energy` and :func:`quant_models.complexity.model_complexity`. A model the
folder cannot fit on the board (``FlowError`` from the fold step) is an *infeasible* trial, recorded with the
constraint it violates; any other failure is the trial's failure.
"""

from __future__ import annotations

import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qdet.search.space import SearchError, TrialConfig

RESOURCES = ("lut", "bram18", "dsp", "uram")
FOLD_STEP = "fold"


@dataclass(frozen=True)
class Budget:
    """What each trial may spend: the user's training budget and the build's verification images."""

    epochs: int = 2  # QAT epochs (with distillation from the teacher)
    finetune_epochs: int = 1  # after pruning / factorizing
    batch_size: int = 32
    lr: float = 5e-3
    input_size: tuple[int, int] | None = None  # None: the architecture's default (128x128)
    kd_weight: float = 1.0
    device: str = "cpu"
    verify_images: int = 2  # golden-model check of each build (random images)
    teacher_epochs: int = 10  # the float teacher trained at the start when no --teacher is given

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "teacher_epochs"):
            if getattr(self, name) < 1:
                raise SearchError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        for name in ("finetune_epochs", "verify_images"):
            if getattr(self, name) < 0:
                raise SearchError(f"--{name.replace('_', '-')} must be >= 0, got {getattr(self, name)}")
        if self.lr <= 0 or self.kd_weight < 0:
            raise SearchError(f"--lr must be > 0 and --kd-weight >= 0, got {self.lr:g}, {self.kd_weight:g}")


@dataclass(frozen=True)
class TrialContext:
    """What every trial of a study shares: data, teacher, board and target, budget."""

    data: Path
    teacher: Path | None  # None: no distillation (the feasibility precheck builds untrained models)
    board: str
    target_fps: float | None
    budget: Budget


@dataclass(frozen=True)
class TrialPaths:
    """Where one trial keeps its stages' outputs (each stage's own layout owns what is inside)."""

    root: Path

    @property
    def qat(self) -> Path:
        return self.root / "qat"

    @property
    def compressed(self) -> Path:
        return self.root / "compressed.pt"

    @property
    def finetune(self) -> Path:
        return self.root / "finetune"

    @property
    def eval_dir(self) -> Path:
        return self.root / "eval"

    @property
    def onnx(self) -> Path:
        return self.root / "model.onnx"

    @property
    def build(self) -> Path:
        return self.root / "build"

    @property
    def log(self) -> Path:
        return self.root / "trial.log"


@dataclass(frozen=True)
class TrialOutcome:
    """What a trial measured. ``feasible`` False: ``constraint`` names what the board lacks (LUT, BRAM18, DSP,
    URAM or FPS) and ``message`` is the folder's; the figures the build could not give are None."""

    figures: dict[str, Any]
    feasible: bool
    constraint: str | None = None
    message: str | None = None


def violated_constraint(message: str) -> str:
    """The constraint a folder's FlowError names: a resource (LUT, BRAM18, DSP, URAM) or FPS (no folding reaches
    the cycles per frame the target needs)."""
    found = [(m.start(), r) for r in RESOURCES if (m := re.search(rf"\b{r}\b", message, re.IGNORECASE))]
    if found:
        return min(found)[1].upper()
    return "FPS" if "cycles per frame" in message else "board"


def train_config(cfg: TrialConfig, ctx: TrialContext, out: Path, seed: int, epochs: int, init: Path | None):
    """The :class:`TrainConfig` of a trial's QAT run (``init`` None) or its fine-tune of a compressed model."""
    from quant_models.train import TrainConfig

    b = ctx.budget
    return TrainConfig(data=ctx.data, out=out, model=cfg.arch, bits=cfg.bits, epochs=epochs, batch_size=b.batch_size,
                       lr=b.lr, seed=seed, device=b.device, width=cfg.width, input_size=b.input_size,
                       teacher=ctx.teacher, kd_weight=b.kd_weight, init=init, overwrite=True, eval_every=epochs,
                       progress=False)


def compress(cfg: TrialConfig, ckpt: Path, out: Path, seed: int, data: Path) -> str:
    """Prune and/or factorize the QAT model in ``ckpt`` (quant_models.compress) and save it, with its plan, to
    ``out`` for the fine-tune to start from; returns what was done (a factorization that would save nothing on
    this model, e.g. mobiledet's thin stem, is skipped and said so)."""
    import torch

    from quant_models.checkpoint import load_model, save_checkpoint
    from quant_models.compress import CompressError, factorize_model, prune_model, recalibrate_bn
    from quant_models.compress.prune import kept_channels
    from quant_models.compress.schedule import CALIB_IMAGES
    from quant_models.data import load_dataset, to_tensors
    from quant_models.models.config import CHANNEL_MULTIPLE

    model, _ = load_model(ckpt)
    torch.manual_seed(seed)  # the tracing example is drawn from it
    train_images = to_tensors(load_dataset(data, "train"), model.cfg.input_size, cache_dir=data / ".cache").images
    calib = train_images[torch.randperm(len(train_images))[:CALIB_IMAGES]].float()
    done = []
    if cfg.prune > 0:
        # A layer too thin to lose channels in multiples of 8 (l0 at width 0.5 has 8) keeps them all.
        thin = {i: 0.0 for i, conv in enumerate(model.plan)
                if kept_channels(conv.out_ch, cfg.prune, CHANNEL_MULTIPLE) < CHANNEL_MULTIPLE}
        model = prune_model(model, cfg.prune, layer_ratios=thin)
        done.append(f"pruned {cfg.prune:g}" + (f" (not l{', l'.join(map(str, thin))}: too thin)" if thin else ""))
    if cfg.rank_energy < 1.0:
        try:
            model = factorize_model(model, energy=cfg.rank_energy, calib=calib)
            done.append(f"factorized {len(model.cfg.factors)} layer(s) at energy {cfg.rank_energy:g}")
        except CompressError as exc:
            if "no layer would get cheaper" not in str(exc):
                raise
            done.append(f"no layer factorized at energy {cfg.rank_energy:g} (none would get cheaper)")
    # As qdet prune / lowrank do: BN statistics re-estimated for the new plan before fine-tuning starts.
    model = recalibrate_bn(model, calib)
    save_checkpoint(out, {"model_config": model.cfg.to_dict(), "model": model.state_dict()})
    return "; ".join(done)


def train_and_compress(cfg: TrialConfig, ctx: TrialContext, paths: TrialPaths, seed: int) -> tuple[Path, str]:
    """QAT with distillation, then (for a compressed point) prune / factorize and fine-tune; (the final checkpoint,
    what the compression did)."""
    from quant_models.train import train

    result = train(train_config(cfg, ctx, paths.qat, seed, ctx.budget.epochs, None))
    if not cfg.compressed:
        return result.last, ""
    note = compress(cfg, result.last, paths.compressed, seed, ctx.data)
    if ctx.budget.finetune_epochs == 0:
        return paths.compressed, note
    tuned = train(train_config(cfg, ctx, paths.finetune, seed, ctx.budget.finetune_epochs, paths.compressed))
    return tuned.last, note


def build(onnx: Path, ckpt: Path | None, out: Path, ctx: TrialContext, seed: int, stop: str | None = None,
          verify_data: Path | None = None):
    """Build ``onnx`` for the context's board and target (max FPS without one) into ``out``, verified against
    ``ckpt`` on random images (or ``verify_data``'s val images); returns the layout."""
    from flows.config import FlowConfig
    from flows.runner import run_flow
    from flows.steps import DEFAULT_STEPS

    flow = FlowConfig(out=out, board=ctx.board, target_fps=ctx.target_fps, verify_images=ctx.budget.verify_images,
                      checkpoint=ckpt, seed=seed, overwrite=True, stop=stop,
                      verify_data=verify_data)
    run_flow(onnx, flow, DEFAULT_STEPS)
    return flow.layout


def infeasible_fold(exc: Exception) -> bool:
    """Whether a build's FlowError is the folder's "does not fit the board" (an infeasible point), not a failure."""
    return f"step '{FOLD_STEP}' failed" in str(exc)


def measure(layout, ckpt: Path) -> dict[str, Any]:
    """The build's estimates, its energy estimate and the model's complexity, as the trial's figures."""
    from flows.energy import estimate_build_energy

    est = layout.read_estimates()
    energy = estimate_build_energy(layout, float(est["fps"]))
    figures = {k: float(est[k]) for k in ("fps", *RESOURCES)}
    figures.update({"fits": bool(est["fits"]), "cycles_per_frame": int(est["cycles_per_frame"]),
                    "latency_us": float(est["latency_us"]), "budget": {k: float(est["budget"][k]) for k in RESOURCES},
                    "energy_uj": energy.total_uj, "dynamic_uj": energy.dynamic_uj, **model_cost(ckpt)})
    return figures


def run_trial(cfg: TrialConfig, ctx: TrialContext, root: Path, seed: int) -> TrialOutcome:
    """Train, compress, evaluate, export, build and measure ``cfg`` in ``root``; third-party messages go to the
    trial's log. The build folder's FINN temporaries are removed afterwards (the checkpoints stay)."""
    from flows.errors import FlowError
    from quant_models.chatter import chatter_to
    from quant_models.evaluate import evaluate_checkpoint
    from quant_models.export import export_checkpoint

    paths = TrialPaths(Path(root))
    paths.root.mkdir(parents=True, exist_ok=True)
    times: dict[str, float] = {}
    tick = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal tick
        now = time.perf_counter()
        times[name] = round(now - tick, 2)
        tick = now

    with open(paths.log, "a") as log, chatter_to(log):
        ckpt, compressed = train_and_compress(cfg, ctx, paths, seed)
        lap("train")
        rep = evaluate_checkpoint(ckpt, ctx.data, "val", out=paths.eval_dir, device=ctx.budget.device,
                                  num_pictures=2)
        figures: dict[str, Any] = {"map50": float(rep.result.map50), "map50_95": float(rep.result.map50_95),
                                   "checkpoint": str(ckpt), "compression": compressed}
        lap("eval")
        export_checkpoint(ckpt, paths.onnx, samples=1, seed=seed)
        lap("export")
        try:
            layout = build(paths.onnx, ckpt, paths.build, ctx, seed)
        except FlowError as exc:
            if not infeasible_fold(exc):
                raise
            lap("build")
            figures.update(model_cost(ckpt), seconds=times, build=str(paths.build))
            return TrialOutcome(figures, False, violated_constraint(str(exc)), str(exc))
        lap("build")
        figures.update(measure(layout, ckpt), build=str(layout.root))
        shutil.rmtree(layout.finn_tmp, ignore_errors=True)
    figures["seconds"] = times
    feasible = figures["fits"] and (ctx.target_fps is None or figures["fps"] >= ctx.target_fps)
    over = [r.upper() for r in RESOURCES if figures[r] > figures["budget"][r] + 1e-9]
    if ctx.target_fps is not None and figures["fps"] < ctx.target_fps:
        over.append("FPS")
    return TrialOutcome(figures, feasible, None if feasible else (over[0] if over else "board"),
                        None if feasible else f"the build does not fit {ctx.board}: {', '.join(over) or 'fits=false'}")


def model_cost(ckpt: Path) -> dict[str, Any]:
    """The model-side figures of a trial (BOPs, weight bits, MACs, parameters, its compressed plan)."""
    from quant_models.checkpoint import load_model
    from quant_models.complexity import model_complexity

    model, _ = load_model(ckpt)
    cost = model_complexity(model)
    return {"bops": cost.bops, "macs": cost.macs, "params": cost.params, "weight_bits": cost.weight_memory_bits,
            "channels": list(model.cfg.channels), "factors": [f.to_dict() for f in model.cfg.factors]}


def constraints_of(outcome: TrialOutcome, target_fps: float | None) -> dict[str, float]:
    """Optuna constraint values by name (<= 0: satisfied): each resource's use over its budget minus 1, and the
    target FPS over the achieved minus 1; a build the folder refused has 1.0 on the violated constraint."""
    names = [r.upper() for r in RESOURCES] + ["FPS"]
    f = outcome.figures
    if "fps" not in f:  # the folder refused it: only the violated constraint is known
        return {n: 1.0 if n == outcome.constraint else 0.0 for n in {*names, outcome.constraint or "board"}}
    values = {}
    for r in RESOURCES:
        cap = f["budget"][r]
        values[r.upper()] = (f[r] / cap - 1.0) if cap > 0 else (1.0 if f[r] > 0 else -1.0)
    values["FPS"] = (target_fps / f["fps"] - 1.0) if target_fps else -1.0
    if not outcome.feasible and max(values.values()) <= 0:  # fits=false for a reason the figures do not show
        values["LUT"] = max(values["LUT"], 1e-3)
    return values
