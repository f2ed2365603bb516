"""The CLI's co-design search commands, ``qdet search`` and ``qdet search-best`` (registered by qdet/cli.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from qdet.console import done, note, row, say, show, table


def _floats(text: str, option: str) -> tuple[float, ...]:
    from qdet.search.space import SearchError

    try:
        return tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise SearchError(f"{option} {text!r}: give comma-separated numbers, e.g. 0.5,0.75,1") from None


def _ints(text: str, option: str) -> tuple[int, ...]:
    values = _floats(text, option)
    if any(v != int(v) for v in values):
        from qdet.search.space import SearchError

        raise SearchError(f"{option} {text!r}: give comma-separated whole numbers, e.g. 2,3,4")
    return tuple(int(v) for v in values)


def _input_size(text: Optional[str]) -> tuple[int, int] | None:
    from qdet.search.space import SearchError

    if text is None:
        return None
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise SearchError(f"--input-size {text!r}: give HxW in pixels, e.g. 64x64")
    return int(parts[0]), int(parts[1])


def search(
    data: Annotated[Path, typer.Option(help="Data set (COCO, YOLO or VOC layout) with train and val splits.")],
    out: Annotated[Path, typer.Option(help="Search folder: study.db, teacher/, trials/, report.md, pareto.png.")],
    board: Annotated[str, typer.Option(help="Target board (see qdet boards).")] = "pynq-z2",
    target_fps: Annotated[Optional[float], typer.Option(help="Fold every trial for this FPS and minimise LUTs "
                                                             "(default: maximise FPS within the board).")] = None,
    trials: Annotated[int, typer.Option(help="Completed trials the study aims at (shared by all workers).")] = 24,
    workers: Annotated[int, typer.Option(help="Worker processes sharing the study (one torch thread each).")] = 1,
    epochs: Annotated[int, typer.Option(help="QAT epochs per trial (with distillation from the teacher).")] = 2,
    finetune_epochs: Annotated[int, typer.Option(help="Fine-tune epochs after pruning / factorizing.")] = 1,
    input_size: Annotated[Optional[str], typer.Option(help="Train and build at HxW (default: 128x128).")] = None,
    batch_size: Annotated[int, typer.Option(help="Batch size.")] = 32,
    lr: Annotated[float, typer.Option(help="Peak learning rate.")] = 5e-3,
    device: Annotated[str, typer.Option(help="cpu, cuda or cuda:N.")] = "cpu",
    teacher: Annotated[Optional[Path], typer.Option(help="Float teacher checkpoint (default: train a float tinydet "
                                                         "in OUT/teacher first).")] = None,
    teacher_epochs: Annotated[int, typer.Option(help="Epochs of the teacher trained when --teacher is absent.")] = 10,
    verify_images: Annotated[int, typer.Option(help="Images each trial's build verifies its golden model on.")] = 2,
    archs: Annotated[str, typer.Option(help="Architectures: tinydet (full 3x3 convs), mobiledet (depthwise).")]
    = "tinydet,mobiledet",
    weight_bits: Annotated[str, typer.Option(help="Body weight bits to choose from.")] = "2,3,4",
    act_bits: Annotated[str, typer.Option(help="Body activation bits to choose from.")] = "2,3,4",
    first_bits: Annotated[str, typer.Option(help="First conv's weight bits to choose from.")] = "4,8",
    last_bits: Annotated[str, typer.Option(help="Head's weight bits to choose from.")] = "4,8",
    widths: Annotated[str, typer.Option(help="Width multipliers to choose from.")] = "0.5,0.75,1",
    prune: Annotated[str, typer.Option(help="Structured pruning ratios to choose from (0: none).")] = "0",
    rank_energy: Annotated[str, typer.Option(help="Low-rank energies to choose from (1: no factorization).")] = "1",
    sampler: Annotated[str, typer.Option(help="tpe (multi-objective TPE) or nsga2 (NSGA-II).")] = "tpe",
    seed: Annotated[int, typer.Option(help="Seed of the sampler and (with the trial number) of each trial.")] = 0,
    storage: Annotated[Optional[str], typer.Option(help="Optuna RDB URL shared across machines, e.g. "
                                                        "postgresql://user@host/db (default: OUT/study.db).")] = None,
    study_name: Annotated[str, typer.Option(help="The study's name in the storage.")] = "qdet-search",
    resume_as_is: Annotated[bool, typer.Option(help="Continue the study stored in OUT with its own settings.")]
    = False,
    overwrite: Annotated[bool, typer.Option(help="Delete the study stored in OUT (and its trials) first.")] = False,
) -> None:
    """Co-design search: per-layer-group weight/activation bits, width, pruning, low-rank and depthwise variants,
    each trial trained briefly (QAT with distillation from a float teacher), evaluated (mAP), built by qdet's folder
    for the board and measured (FPS, LUT, BRAM, DSP, BOPs, weight bits, energy per frame).

    Objectives: mAP@0.5 up, FPS up (or, with --target-fps, LUT down), energy per frame down; a trial that does not
    fit the board is kept as infeasible. The hand-designed tinydet and mobiledet W4A4 run first. Writes
    OUT/report.md (the non-dominated trials), OUT/front.json and OUT/pareto.png. Rerunning the same command
    resumes the study (a killed worker's trial is retried); another machine joins with the same --storage.

    Example: qdet search --data data/synth64 --out search --input-size 64x64 --trials 24 --workers 2
    """
    from qdet.search.runner import run_search
    from qdet.search.space import SearchSpace
    from qdet.search.study import SearchConfig
    from qdet.search.trial import Budget

    space = SearchSpace(archs=tuple(a.strip() for a in archs.split(",") if a.strip()),
                        weight_bits=_ints(weight_bits, "--weight-bits"), act_bits=_ints(act_bits, "--act-bits"),
                        first_bits=_ints(first_bits, "--first-bits"), last_bits=_ints(last_bits, "--last-bits"),
                        widths=_floats(widths, "--widths"), prune_ratios=_floats(prune, "--prune"),
                        rank_energies=_floats(rank_energy, "--rank-energy"))
    budget = Budget(epochs=epochs, finetune_epochs=finetune_epochs, batch_size=batch_size, lr=lr,
                    input_size=_input_size(input_size), device=device, verify_images=verify_images,
                    teacher_epochs=teacher_epochs)
    cfg = SearchConfig(data=data, out=out, board=board, target_fps=target_fps, trials=trials, workers=workers,
                       space=space, budget=budget, teacher=teacher, seed=seed, sampler=sampler, storage=storage,
                       study_name=study_name, resume_as_is=resume_as_is, overwrite=overwrite)
    note(f"search space: {space.size:,} configurations")
    cfg, study = run_search(cfg, say)
    import json

    data_ = json.loads(cfg.layout.front.read_text())
    c = data_["counts"]
    t = table(f"{cfg.study_name}: {c['complete']} trials ({data_['feasible']} feasible), {len(data_['front'])} "
              "non-dominated", ["trial", "model", "mAP@0.5", "FPS", "LUT", "energy uJ"])
    trials_ = {x["number"]: x for x in data_["trials"]}
    for n in data_["front"]:
        x = trials_[n]
        row(t, str(n), x["label"], f"{x['map50']:.3f}", f"{x['fps']:,.0f}", f"{x['lut']:,.0f}",
            f"{x['energy_uj']:,.1f}")
    show(t)
    for label, z in data_["zoo"].items():
        say(f"{label} (trial {z['trial']}): {z['text']}")
    done("wrote", f"{cfg.layout.report}, {cfg.layout.front}, {cfg.layout.plots}")


def search_best(
    out: Annotated[Path, typer.Argument(help="A search folder written by qdet search.")],
    top: Annotated[int, typer.Option(help="Rebuild the front's best N by mAP@0.5.")] = 3,
    trial: Annotated[Optional[list[int]], typer.Option(help="Rebuild this trial (repeatable) instead.")] = None,
    backend: Annotated[str, typer.Option(help="cpp (C simulation, g++), rtl (RTL simulation) or both.")] = "both",
    images: Annotated[int, typer.Option(help="Val images each build is verified on and simulated.")] = 4,
    simulator: Annotated[str, typer.Option(help="rtl: verilator or icarus.")] = "verilator",
    storage: Annotated[Optional[str], typer.Option(help="The study's Optuna RDB URL (default: OUT/study.db).")]
    = None,
    study_name: Annotated[str, typer.Option(help="The study's name in the storage.")] = "qdet-search",
) -> None:
    """Rebuild the best trials of a search from their checkpoints (verified on the data set's val images) into
    OUT/best/NNNN and simulate each build bit-exactly: C simulation and RTL simulation (--backend cpp or rtl for one).

    Example: qdet search-best search --top 2
    Example: qdet search-best search --trial 7 --backend rtl --images 2
    """
    from qdet.search.best import BestConfig, rebuild_best

    cfg = BestConfig(out=out, top=top, trials=tuple(trial or ()), backend=backend, images=images,
                     simulator=simulator, storage=storage, study_name=study_name)
    records = rebuild_best(cfg, say)
    t = table(f"{out}: {len(records)} rebuilt and simulated ({backend})", ["trial", "model", "status", "mismatches",
                                                                             "FPS", "LUT"])
    for r in records:
        row(t, str(r["trial"]), r["label"], r["status"], str(r["mismatches"]), f"{r['fps']:,.0f}", f"{r['lut']:,.0f}")
    show(t)
    done("rebuilt", ", ".join(r["build"] for r in records))


def register(app: typer.Typer) -> None:
    """Add ``search`` and ``search-best`` to the qdet app."""
    app.command("search")(search)
    app.command("search-best")(search_best)
