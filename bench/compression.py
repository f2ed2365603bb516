"""Compression benchmark: tinydet W4A4 pruned and factorized, next to the unpruned model on the same budget, each
built for pynq-z2 at the unpruned model's FPS and synthesized by yosys.

Rows (one run, one data set and seed; the data set is the CPU accuracy bench's, 1200 synthetic 128x128 images):
- ``unpruned``: tinydet W4A4 trained ``--base-epochs`` epochs, the starting point (and distillation teacher) of
  every compression;
- ``unpruned, same budget``: the same model trained from scratch for base + K x E epochs, the budget a compressed
  row has in total (the base epochs, then K fine-tuning steps of E epochs);
- ``half width, same budget``: tinydet at width 0.5 (the uniform plan's 8 16 32 32 32) trained from scratch on the
  same budget, no teacher: whether pruning and distillation beat training the small model directly;
- ``pruned 50%``: ``qdet prune`` by 0.5 in K steps of E epochs, distilled from the unpruned model;
- ``pruned 50%, hardware-aware``: the same with ``--hardware`` (ratios from the unpruned build's LUT estimates);
- ``pruned 50%, sensitivity``: the same with ``--sensitivity`` (each layer's share where the loss rises least);
- ``pruned 50%, sensitivity per LUT``: ``--sensitivity --hardware`` (the loss rise per LUT removed);
- ``low-rank SVD`` / ``low-rank Tucker-2``: ``qdet lowrank --macs M`` (one step of K x E epochs).
Every trained row keeps its best val checkpoint (``best.pt``: compressed steps and the same-budget row alike).
Each row: params, MACs, BOPs, val mAP@0.5 and mAP@0.5:0.95 (``qdet eval``), and its build at ``--target-fps`` the
unpruned build's max FPS: estimated FPS, LUT estimate, yosys LUT / FF / BRAM18 / DSP. The acceptance check: the
pruned row within 2 mAP@0.5 points of the same-budget unpruned one, and >= 35% fewer yosys LUTs.

    python -m bench.compression [--base-epochs 48] [--ft-lr 3e-3] [--steps 2] [--epochs 12] [--macs 0.5] [--batch 32]
                                [--no-synth] [--jobs 2] [--rows NAME ...]
        # --rows: rerun those rows, keep the rest recorded
    python -m bench.compression --part reference   # only the same-budget row (run beside the rest on a 2nd core)
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench.accuracy import RESULTS, _machine
from quant_models.plots import png_figure

DATA_IMAGES, DATA_SEED, DATA_SIZE = 1200, 0, (128, 128)  # the accuracy bench's cpu-arch data set (same bytes)
BASE_BATCH, BASE_LR = 32, 3e-3  # the accuracy bench's cpu-arch batch and learning rate
BOARD = "pynq-z2"
_T0 = time.perf_counter()
ROWS = ("unpruned, same budget", "half width, same budget", "pruned 50%", "pruned 50%, hardware-aware",
        "pruned 50%, sensitivity", "pruned 50%, sensitivity per LUT", "low-rank SVD",
        "low-rank Tucker-2")  # the table's order after unpruned


def log(msg: str) -> None:
    print(f"[{time.perf_counter() - _T0:7.1f} s] {msg}", flush=True)


def build(name: str, ckpt: Path, work: Path, target_fps: float | None, synth: bool, data: Path) -> dict[str, Any]:
    """Export, build (verified on 4 val images), and optionally generate RTL + yosys; the build's figures."""
    from flows.build import BuildLayout
    from flows.config import FlowConfig
    from flows.runner import run_flow
    from flows.steps import DEFAULT_STEPS
    from hls.gen import generate_rtl
    from hls.synth import synth_build
    from quant_models.export import export_checkpoint

    out, onnx = work / "builds" / name, work / "builds" / f"{name}.onnx"
    layout = BuildLayout(out)
    if not layout.has_estimates():
        onnx.parent.mkdir(parents=True, exist_ok=True)
        export_checkpoint(ckpt, onnx)
        log(f"{name}: building for {BOARD} at {'max FPS' if target_fps is None else f'{target_fps:.1f} FPS'}")
        run_flow(onnx, FlowConfig(out=out, board=BOARD, target_fps=target_fps, verify_images=4, verify_data=data,
                                  checkpoint=ckpt, overwrite=True), DEFAULT_STEPS)
    est = layout.read_estimates()
    row: dict[str, Any] = {"build": str(out), "fps": est["fps"], "lut_est": est["lut"], "bram18_est": est["bram18"],
                           "dsp_est": est["dsp"], "fits": est["fits"], "synth": None}
    if synth:
        if not layout.synth_result.is_file():
            log(f"{name}: yosys synthesis")
            generate_rtl(layout)
            synth_build(layout)
        used = json.loads(layout.synth_result.read_text())
        row["synth"] = {k: used["total"].get(k, 0) for k in ("lut", "ff", "bram18", "dsp")}
        row["synth_seconds"] = used.get("seconds")
    return row


def figures(name: str, ckpt: Path, data: Path) -> dict[str, Any]:
    from quant_models.checkpoint import load_model
    from quant_models.complexity import model_complexity
    from quant_models.evaluate import evaluate_checkpoint

    model, _ = load_model(ckpt)
    cost = model_complexity(model)
    report = evaluate_checkpoint(ckpt, data, out=ckpt.parent / "eval")
    return {"name": name, "checkpoint": str(ckpt), "channels": [c.out_ch for c in model.plan],
            "factors": [f.to_dict() for f in model.cfg.factors], "params": cost.params, "macs": cost.macs,
            "bops": cost.bops, "weight_bits": cost.weight_memory_bits, "map50": report.result.map50,
            "map50_95": report.result.map50_95}


def train_tinydet(data: Path, out: Path, epochs: int, width: float = 1.0, batch: int = BASE_BATCH) -> Path:
    """tinydet W4A4 (at ``width``) from scratch on the bench's budget (resumes a killed run); its best val
    checkpoint."""
    from quant_models.run_layout import RunLayout
    from quant_models.train import TrainConfig, train

    run = RunLayout(out)
    if not run.is_finished():
        log(f"{out.name}: training tinydet W4A4 (width {width:g}) {epochs} epochs from scratch")
        train(TrainConfig(data=data, out=out, model="tinydet", bits="w4a4", epochs=epochs, batch_size=batch,
                          lr=BASE_LR, width=width, seed=0, progress=False, resume=run.last.is_file()))
    return run.best


def _build_name(name: str) -> str:
    return "unpruned" if name == "unpruned" else name.replace(" ", "_").replace(",", "").replace("%", "")


def _layer_costs(base: Path, build_dir: Path) -> tuple[float, ...]:
    from flows.build import BuildLayout
    from flows.layer_costs import weighted_layer_costs
    from quant_models.checkpoint import load_model
    from quant_models.compress.schedule import match_layer_costs

    return match_layer_costs(load_model(base)[0], weighted_layer_costs(BuildLayout(build_dir)))


def _train_job(job: tuple[str, Any], threads: int) -> tuple[str, Path]:
    """One row's training in a worker process (resumes a killed one); the row's best checkpoint."""
    import torch

    from quant_models.compress import PruneConfig, lowrank, prune

    torch.set_num_threads(threads)
    name, cfg = job
    if isinstance(cfg, tuple):  # the same-budget reference: trained from scratch
        return name, train_tinydet(*cfg)
    done = Path(cfg.out) / "best.pt"
    if not done.is_file():
        log(f"{name}: compressing")
        (prune if isinstance(cfg, PruneConfig) else lowrank)(cfg)
    return name, done


def _build_job(args: tuple[Any, ...]) -> dict[str, Any]:
    return build(*args)


def main() -> None:
    from quant_models.compress import FineTune, LowRankConfig, PruneConfig
    from quant_models.data import generate_synthetic
    from quant_models.data.layout import detect_layout

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base-epochs", type=int, default=48, help="the unpruned model's training epochs")
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=12, help="fine-tuning epochs per step")
    ap.add_argument("--ft-lr", type=float, default=3e-3, help="fine-tuning learning rate (every compressed row)")
    ap.add_argument("--batch", type=int, default=BASE_BATCH,
                    help="batch size of every training (from scratch and fine-tuning); smaller: more steps per epoch")
    ap.add_argument("--ratio", type=float, default=0.5)
    ap.add_argument("--macs", type=float, default=0.5, help="low-rank rows: the factors' share of a layer's MACs")
    ap.add_argument("--no-synth", action="store_true")
    ap.add_argument("--part", choices=("all", "reference"), default="all",
                    help="reference: only train the same-budget row (the rest trains it last when it is missing)")
    ap.add_argument("--work", type=Path, default=Path("bench/work/compression"))
    ap.add_argument("--jobs", type=int, default=2, help="trainings and builds run at once (one core each)")
    ap.add_argument("--rows", action="append", choices=ROWS, default=None,
                    help="rerun only this row (repeatable); the others are kept from the recorded results, which "
                         "must hold the same unpruned model (its mAP and FPS are checked)")
    args = ap.parse_args()
    work, tick = args.work, time.perf_counter()
    data = work / "data"
    if not all(detect_layout(data, s) for s in ("train", "val")):
        generate_synthetic(data, DATA_IMAGES, DATA_SEED, DATA_SIZE, "coco", 0.2, overwrite=True, workers=2)
    extra = args.steps * args.epochs
    same = work / "unpruned_same_budget"
    if args.part == "reference":
        train_tinydet(data, same, args.base_epochs + extra, 1.0, args.batch)
        return
    base = train_tinydet(data, work / "unpruned", args.base_epochs, 1.0, args.batch)
    ft = FineTune(epochs=args.epochs, batch_size=args.batch, lr=args.ft_lr, progress=False)
    base_build = build("unpruned", base, work, None, False, data)  # the FPS target and layer costs; synth later
    fps = base_build["fps"]
    recorded = _recorded(base, data, fps) if args.rows else None
    costs = _layer_costs(base, Path(base_build["build"]))
    long_ft = FineTune(epochs=extra, batch_size=args.batch, lr=args.ft_lr, progress=False)
    jobs: list[tuple[str, Any]] = [  # the longest first, so the pool's last round is short
        ("unpruned, same budget", (data, same, args.base_epochs + extra, 1.0, args.batch)),
        ("half width, same budget", (data, work / "half_width_same_budget", args.base_epochs + extra, 0.5,
                                      args.batch)),
        ("pruned 50%, sensitivity", PruneConfig(checkpoint=base, data=data, out=work / "pruned_sens",
                                                 ratio=args.ratio, steps=args.steps, sensitivity=True, finetune=ft)),
        ("pruned 50%", PruneConfig(checkpoint=base, data=data, out=work / "pruned", ratio=args.ratio,
                                    steps=args.steps, finetune=ft)),
        ("pruned 50%, sensitivity per LUT", PruneConfig(checkpoint=base, data=data, out=work / "pruned_hw_sens",
                                                         ratio=args.ratio, steps=args.steps, layer_costs=costs,
                                                         sensitivity=True, finetune=ft)),
        ("pruned 50%, hardware-aware", PruneConfig(checkpoint=base, data=data, out=work / "pruned_hw",
                                                    ratio=args.ratio, steps=args.steps, layer_costs=costs,
                                                    finetune=ft)),
        ("low-rank SVD", LowRankConfig(checkpoint=base, data=data, out=work / "lowrank_svd", macs=args.macs,
                                        finetune=long_ft)),
        ("low-rank Tucker-2", LowRankConfig(checkpoint=base, data=data, out=work / "lowrank_tucker", macs=args.macs,
                                            tucker=True, finetune=long_ft))]
    # The trainings are independent single-core runs: args.jobs of them at a time, then the builds likewise.
    if args.rows:
        jobs = [job for job in jobs if job[0] in args.rows]
    with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        ckpts = dict(pool.map(_train_job, jobs, [max(1, (os.cpu_count() or 1) // args.jobs)] * len(jobs)))
        runs = [] if args.rows else [("unpruned", base)]
        runs += [(name, ckpts[name]) for name in ROWS if name in ckpts]
        builds = pool.map(_build_job, [(_build_name(name), ckpt, work, None if name == "unpruned" else fps,
                                        not args.no_synth, data) for name, ckpt in runs])
        rows = []
        for (name, ckpt), built in zip(runs, builds):
            row = figures(name, ckpt, data)
            row.update(built)
            rows.append(row)
            log(f"{name}: mAP@0.5 {row['map50']:.4f}, {row['macs']:,} MACs, {row['fps']:.1f} FPS, "
                f"LUT est {row['lut_est']:,.0f}, yosys {row['synth'] and row['synth']['lut']}")
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    if recorded is not None:  # a partial rerun: the rerun rows replace theirs, the rest stay as recorded
        fresh = {r["name"]: r for r in rows}
        rows = sorted(({r["name"]: r for r in recorded["rows"]} | fresh).values(),
                      key=lambda r: -1 if r["name"] == "unpruned" else ROWS.index(r["name"]))
        record = dict(recorded, rows=rows, checks=checks(rows))
        record["reruns"] = recorded.get("reruns", []) + [
            {"measured": now, "machine": _machine(), "rows": sorted(fresh), "seconds": time.perf_counter() - tick}]
    else:
        record = {"measured": now, "machine": _machine(), "board": BOARD, "target_fps": fps, "steps": args.steps,
                  "epochs": args.epochs, "ratio": args.ratio, "macs": args.macs, "base_epochs": args.base_epochs,
                  "ft_lr": args.ft_lr, "batch": args.batch, "seconds": time.perf_counter() - tick, "rows": rows,
                  "checks": checks(rows)}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "compression.json").write_text(json.dumps(record, indent=2) + "\n")
    (RESULTS / "compression.md").write_text(to_markdown(record))
    plot(record, RESULTS / "compression.png")
    log(f"wrote {RESULTS / 'compression.md'}")


def _recorded(base: Path, data: Path, fps: float) -> dict[str, Any]:
    """The recorded results a partial rerun merges into, when they hold the same unpruned model as ``base``."""
    recorded = json.loads((RESULTS / "compression.json").read_text())
    old = next(r for r in recorded["rows"] if r["name"] == "unpruned")
    new = figures("unpruned", base, data)
    if (new["map50"], new["params"], fps) != (old["map50"], old["params"], recorded["target_fps"]):
        raise SystemExit(f"the unpruned model (mAP@0.5 {new['map50']:.6f}, {fps:.1f} FPS) is not the recorded one "
                         f"({old['map50']:.6f}, {recorded['target_fps']:.1f} FPS): rerun every row, without --rows")
    return recorded


def checks(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The acceptance checks, for each 50%-pruned row (uniform and hardware-aware)."""
    by = {r["name"]: r for r in rows}
    ref, out = by["unpruned, same budget"], []
    for name in [n for n in ROWS if n.startswith("pruned")]:
        pruned = by[name]
        out.append({"check": f"{name} within 2 mAP@0.5 points of the unpruned model on the same budget",
                    "measured": f"{100 * (ref['map50'] - pruned['map50']):.2f} points below",
                    "pass": 100 * (ref["map50"] - pruned["map50"]) <= 2.0})
        if by["unpruned"].get("synth") and pruned.get("synth"):
            base_lut = by["unpruned"]["synth"]["lut"]
            saved = 1 - pruned["synth"]["lut"] / base_lut
            out.append({"check": f"{name} at the unpruned FPS uses >= 35% fewer LUTs (yosys)",
                        "measured": f"{100 * saved:.1f}% fewer ({pruned['synth']['lut']:,} vs {base_lut:,})",
                        "pass": saved >= 0.35})
    return out


def to_markdown(record: dict[str, Any]) -> str:
    lines = ["# Compression: pruning and low-rank factorization of tinydet W4A4", "",
             f"Measured {record['measured']} on {record['machine']}, {record['seconds'] / 60:.1f} min. Data: the "
             f"CPU accuracy bench's synthetic 128x128 set (1200 images, 80/20). The unpruned model trained "
             f"{record['base_epochs']} epochs at batch {record.get('batch', BASE_BATCH)}; every compressed row "
             "starts from it and fine-tunes "
             f"{record['steps']} x {record['epochs']} epochs (lr {record['ft_lr']:g}) with distillation from it "
             "(pruning: "
             f"{record['steps']} steps; low-rank: one step of {record['steps'] * record['epochs']} epochs, factors at "
             f"{record['macs']:g} of each layer's MACs). 'unpruned, same budget' trains from scratch for all "
             f"{record['base_epochs'] + record['steps'] * record['epochs']} epochs. Builds: {record['board']} at "
             f"--target-fps {record['target_fps']:.1f} (the unpruned model's max FPS); LUT est. is FINN's model, "
             "yosys is synth_xilinx. mAP is `qdet eval` on the val split; every trained row is its best val "
             "checkpoint.", "",
             *[line for r in record.get("reruns", []) for line in (
                 f"Rerun {r['measured']} on {r['machine']} ({r['seconds'] / 60:.1f} min), from the same unpruned "
                 f"model retrained (its mAP and FPS checked equal): {', '.join(r['rows'])}.", "")],
             "| model | channels | factors | params | MACs | BOPs | mAP@0.5 | mAP@0.5:0.95 | FPS (est.) | LUT est. | "
             "LUT yosys | FF yosys | BRAM18 yosys | DSP |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in record["rows"]:
        s = r.get("synth") or {}
        factors = ", ".join(f"l{f['layer']}:{'x'.join(map(str, f['ranks']))}" for f in r["factors"]) or "-"
        lines.append(f"| {r['name']} | {' '.join(map(str, r['channels']))} | {factors} | {r['params']:,} | "
                     f"{r['macs']:,} | {r['bops']:,} | {r['map50']:.4f} | {r['map50_95']:.4f} | {r['fps']:.1f} | "
                     f"{r['lut_est']:,.0f} | {s.get('lut', '-'):,} | {s.get('ff', '-'):,} | {s.get('bram18', '-')} | "
                     f"{s.get('dsp', '-')} |")
    lines += ["", "| acceptance check | measured | result |", "|---|---|---|"]
    lines += [f"| {c['check']} | {c['measured']} | {'pass' if c['pass'] else 'FAIL'} |" for c in record["checks"]]
    return "\n".join(lines) + "\n"


def plot(record: dict[str, Any], path: Path) -> None:
    rows = record["rows"]
    with png_figure(path, figsize=(7, 4.5)) as (_fig, ax):
        for r in rows:
            lut = (r.get("synth") or {}).get("lut", r["lut_est"])
            ax.scatter(lut, r["map50"], s=40)
            ax.annotate(r["name"], (lut, r["map50"]), fontsize=7, xytext=(3, 3), textcoords="offset points")
        ax.set_xlabel("LUTs (yosys; FINN estimate where not synthesized)")
        ax.set_ylabel("val mAP@0.5")
        ax.set_title(f"tinydet W4A4 compressed, {record['board']} at {record['target_fps']:.0f} FPS")
        ax.grid(alpha=0.3)


if __name__ == "__main__":
    main()
