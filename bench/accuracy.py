"""Accuracy benchmark: float, W8A8, W4A4, W2A2 and W4A4-with-distillation tinydet on one synthetic split.

Same data, training budget (epochs, batch size, learning rate) and seed for every row; distilled rows learn from
the float row's final checkpoint, and a warm-started row spends the first part of its epochs training the float
twin. Also W2A2 with 8-bit first/last convs, W2A2 distilled + warm-started, and mobiledet (depthwise-separable)
and tinyyolo (residual blocks, FPN neck, two heads) at W4A4 beside tinydet's W4A4. Writes
``bench/results/accuracy.{json,md,png}``.

A *section* is a subset of rows measured apart (another machine, another budget) and stored beside the main table
in the same files, which it leaves as they are: ``--section cpu-arch`` trains tinydet, mobiledet and tinyyolo at
W4A4 only (``--rows tinyyolo-w4a4 --keep`` adds one row to a section measured earlier at the same budget).

    python -m bench.accuracy --device cuda            # the recorded figures (GPU machine)
    python -m bench.accuracy --quick                  # a few minutes on a CPU, to check the bench itself
    python -m bench.accuracy --section cpu-arch --device cpu --images 1200 --epochs 8 --batch-size 32 --workers 2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from quant_models.checkpoint import load_model
from quant_models.complexity import model_complexity
from quant_models.data import generate_synthetic
from quant_models.loss import LossWeights
from quant_models.plots import png_figure
from quant_models.run_layout import RunLayout
from quant_models.train import TrainConfig, TrainResult, train

RESULTS = Path(__file__).resolve().parent / "results"
TITLE = "tinydet accuracy vs precision (synthetic detection set)"
# mobiledet's width multiplier in the bench: parameter (weight-memory) parity with tinydet at width 1 -- 100,392
# against 98,928 weights. All of a FINN design's weights sit on chip, so weight memory is the budget two
# accelerators for one board are compared at; mobiledet then spends ~0.66x tinydet's MACs and ~0.63x its BOPs.
MOBILEDET_WIDTH = 1.35
# tinyyolo at its default width 1: MAC parity with tinydet (0.066 against 0.064 GMAC at 128x128), with 2.9x its
# weights (286,704). Weight parity would be width 0.58 (102,952 weights) at 0.36x the MACs, its stem cut to 8/16
# channels: the row compares the two architectures as designed, at one compute budget.
TINYYOLO_WIDTH = 1.0


@dataclass(frozen=True)
class Row:
    """One training configuration of the benchmark."""

    name: str
    bits: str
    teacher: str | None = None  # name of an earlier row whose final checkpoint this one distils from
    box_weight: float = LossWeights().box
    # Warm start inside the same budget: this share of the epochs trains the float twin, the rest fine-tunes the
    # quantized model from it (QAT), so the row still sees the bench's number of epochs in all.
    float_share: float = 0.0
    arch: str = "tinydet"
    width: float = 1.0


ROWS = (Row("float", "float"), Row("w8a8", "w8a8"), Row("w4a4", "w4a4"), Row("w2a2", "w2a2"),
        Row("w4a4+kd", "w4a4", teacher="float"),
        # The usual practice for very low bit widths: first and last conv at 8 bits (a separate, labelled row).
        Row("w2a2 first/last 8", "w2a2,first=8,last=8"),
        # The best pure-W2A2 recipe of the CPU ablation: distilled from float, first quarter of the epochs in float.
        Row("w2a2+kd warm start", "w2a2", teacher="float", float_share=0.25),
        # Another architecture at tinydet's budget and precision: depthwise-separable, strided depthwise convs.
        Row("mobiledet-w4a4", "w4a4", arch="mobiledet", width=MOBILEDET_WIDTH),
        # A graph-shaped detector: residual blocks, an upsample + concat neck, heads at strides 16 and 8.
        Row("tinyyolo-w4a4", "w4a4", arch="tinyyolo", width=TINYYOLO_WIDTH))

# Sections: name -> (rows, title). Each is measured on its own and stored beside the main table.
SECTIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "cpu-arch": (("w4a4", "mobiledet-w4a4", "tinyyolo-w4a4"),
                 "tinydet vs mobiledet vs tinyyolo at W4A4, same budget and seed, measured on a CPU"),
}


@dataclass(frozen=True)
class BenchConfig:
    """The shared training budget."""

    images: int = 6000
    epochs: int = 24
    batch_size: int = 64
    lr: float = 3e-3
    seed: int = 0
    device: str = "cpu"
    workers: int = 8
    eval_every: int = 6
    work: Path = Path("bench/work/accuracy")


def median_speed(history: list[dict[str, Any]]) -> float:
    """Steady training images/s of a run: the median over its epochs after the first."""
    # The first epoch pays for cuDNN autotuning and allocator warm-up; the median of the rest is the steady rate.
    speeds = [r["images_per_s"] for r in history[1:]] or [history[0]["images_per_s"]]
    return statistics.median(speeds)


def run(cfg: BenchConfig, results: Path, rows_to_run: tuple[Row, ...] = ROWS, name: str = "accuracy",
        title: str = TITLE, keep: tuple[Row, ...] = (), section: str | None = None,
        note: str = "") -> dict[str, Any]:
    """Train every row; rewrite the results files after each one, so a run cut short keeps its finished rows.

    ``keep`` rows are taken from the existing results file (same budget required) instead of being trained: a
    benchmark longer than one device session is measured in parts. With ``section``, the record is stored as that
    section of the results file and its main table is kept as it is; ``note`` is printed under its table.
    Returns the record last written."""
    data = cfg.work / "data"
    tick = time.perf_counter()
    if not (data / "annotations" / "instances_val.json").is_file():
        generate_synthetic(data, cfg.images, cfg.seed, (128, 128), "coco", 0.2, overwrite=True, workers=cfg.workers)
    data_seconds = time.perf_counter() - tick
    rows, earlier_seconds = _kept_rows(cfg, results / f"{name}.json", keep, section)
    record: dict[str, Any] = {}
    for row in rows_to_run:
        start = time.perf_counter()
        result = train_row(cfg, row, data)
        seconds = time.perf_counter() - start
        model, _ = load_model(result.last)
        cost = model_complexity(model)
        m = result.metrics
        rows.append({
            "name": row.name, "bits": row.bits, "teacher": row.teacher, "box_weight": row.box_weight,
            "float_share": row.float_share, "arch": row.arch, "width": row.width,
            "map50": m["map50"], "map50_95": m["map50_95"], "best_map50": m["best_map50"],
            "params": cost.params, "weight_kib": cost.weight_memory_bits / 8 / 1024,
            "weight_bits": cost.weight_memory_bits, "gmacs": cost.macs / 1e9, "gbops": cost.bops / 1e9,
            "train_images_per_s": median_speed(m["epochs"]), "train_seconds": seconds,
        })
        record = _record(cfg, rows, data_seconds, earlier_seconds + time.perf_counter() - tick, title)
        if note:
            record["note"] = note
        save(record, results, name, section)
        print(f"{row.name:8s} mAP@0.5 {m['map50']:.3f}  mAP@0.5:0.95 {m['map50_95']:.3f}  "
              f"{rows[-1]['train_images_per_s']:.0f} img/s  {seconds:.0f} s", flush=True)
    return record


_BUDGET = ("images", "epochs", "batch_size", "lr", "seed")


def _kept_rows(cfg: BenchConfig, path: Path, keep: tuple[Row, ...],
               section: str | None = None) -> tuple[list[dict[str, Any]], float]:
    """The ``keep`` rows of an earlier results file (or of its ``section``), and that run's seconds; refuses a
    different budget."""
    if not keep:
        return [], 0.0
    if not path.is_file():
        raise SystemExit(f"{path}: no earlier results to keep rows {[r.name for r in keep]} from; run them first")
    old = json.loads(path.read_text())
    if section is not None:
        if section not in old.get("sections", {}):
            raise SystemExit(f"{path}: no section {section!r} to keep rows from; run it first")
        old = old["sections"][section]
    new = {k: str(v) for k, v in asdict(cfg).items()}
    diff = [k for k in _BUDGET if old["config"].get(k) != new[k]]
    if diff:
        raise SystemExit(f"{path}: measured with another budget ({', '.join(diff)} differ); rerun every row")
    by = {r["name"]: r for r in old["rows"]}
    missing = [r.name for r in keep if r.name not in by]
    if missing:
        raise SystemExit(f"{path}: has no row {missing}; run it with --rows")
    return [by[r.name] for r in keep], float(old["total_seconds"])


def _row_dir(cfg: BenchConfig, name: str) -> Path:
    return cfg.work / re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def train_row(cfg: BenchConfig, row: Row, data: Path) -> TrainResult:
    """Train one row: optionally a float warm start, then the row's own precision, within ``cfg.epochs``."""
    float_epochs = round(row.float_share * cfg.epochs)
    if not 0 <= float_epochs < cfg.epochs:
        raise ValueError(f"row {row.name!r}: float_share {row.float_share} leaves no quantized epoch of {cfg.epochs}")
    # overwrite: a bench's work folders are scratch, and every invocation measures its rows afresh.
    common = {"data": data, "batch_size": cfg.batch_size, "lr": cfg.lr, "seed": cfg.seed, "device": cfg.device,
              "loss": LossWeights(box=row.box_weight), "progress": False, "overwrite": True, "model": row.arch,
              "width": row.width}
    out = _row_dir(cfg, row.name)
    init = None
    if float_epochs:
        warm = train(TrainConfig(out=out / "float_warm_start", bits=None, epochs=float_epochs,
                                 eval_every=float_epochs, **common))
        init = warm.last
    teacher = RunLayout(_row_dir(cfg, row.teacher)).last if row.teacher else None
    epochs = cfg.epochs - float_epochs
    return train(TrainConfig(out=out, bits=None if row.bits == "float" else row.bits, epochs=epochs, init=init,
                             teacher=teacher, eval_every=min(cfg.eval_every, epochs), **common))


def _record(cfg: BenchConfig, rows: list[dict[str, Any]], data_seconds: float, seconds: float,
            title: str) -> dict[str, Any]:
    device_name = torch.cuda.get_device_name(0) if cfg.device.startswith("cuda") else platform.processor() or "cpu"
    return {"title": title, "config": {k: str(v) for k, v in asdict(cfg).items()}, "rows": rows,
            "device": device_name, "torch": torch.__version__, "cpu_threads": torch.get_num_threads(),
            "machine": _machine(),
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "data_seconds": data_seconds, "total_seconds": seconds, "checks": checks(rows)}


def _machine() -> str:
    """The host in words (CPU model and core count): ``platform.processor()`` is empty on Linux."""
    model = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model or platform.machine()}, {os.cpu_count()} cores, {platform.system()}"


def save(record: dict[str, Any], results: Path, name: str = "accuracy", section: str | None = None) -> None:
    """Write NAME.json, NAME.md and NAME.png.

    Sections already in NAME.json are carried over. With ``section``, ``record`` replaces only that section: the
    main record, its table and NAME.png stay as they are (a CPU comparison never overwrites GPU figures)."""
    results.mkdir(parents=True, exist_ok=True)
    path = results / f"{name}.json"
    old = json.loads(path.read_text()) if path.is_file() else {}
    if section is None:
        full = {**record, **({"sections": old["sections"]} if old.get("sections") else {})}
        plot(record, results / f"{name}.png")
    else:
        full = old
        full.setdefault("sections", {})[section] = record
    path.write_text(json.dumps(full, indent=2) + "\n")
    (results / f"{name}.md").write_text(to_markdown(full))


def checks(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The issue's acceptance figures, computed from the measured rows.

    Each quantized row is compared with the float row trained with the same loss weights (``float`` when there is
    none), so a loss change is not mistaken for a quantization gain."""
    # The bounds are about tinydet's precision ladder: another architecture is compared, not checked.
    rows = [r for r in rows if r.get("arch", "tinydet") == "tinydet"]
    floats = [r for r in rows if r["bits"] == "float"]
    if not floats:
        return []
    out = []
    limits = {"w4a4": 2.0, "w2a2": 6.0}  # the bounds, by base precision
    for r in rows:
        limit = limits.get(r["bits"].split(",")[0])
        if limit is None:
            continue
        ref = next((f for f in floats if f.get("box_weight") == r.get("box_weight")), floats[0])
        gap = 100 * (ref["map50"] - r["map50"])
        label = "float" if ref["name"] == "float" else ref["name"]
        out.append({"check": f"{r['name']} within {limit:g} mAP@0.5 points of {label}", "value": round(gap, 2),
                    "passed": gap <= limit})
    by = {r["name"]: r for r in rows}
    if "w4a4" not in by or "float" not in by:
        return out
    ratio = by["w4a4"]["train_images_per_s"] / by["float"]["train_images_per_s"]
    out.append({"check": "w4a4 training speed >= 1/2.5 of float", "value": round(ratio, 3), "passed": ratio >= 0.4})
    return out


def to_markdown(record: dict[str, Any]) -> str:
    """The results table as Markdown, then one section per entry of ``record["sections"]``."""
    lines = _main_markdown(record) if "rows" in record else [f"# {TITLE}", ""]
    for name, sec in record.get("sections", {}).items():
        lines += _section_markdown(name, sec)
    return "\n".join(lines) + "\n"


def _section_markdown(name: str, sec: dict[str, Any]) -> list[str]:
    """One section: its own heading, when/where/budget, and a table that names each row's architecture."""
    cfg = sec["config"]
    lines = [
        "",
        f"## {sec['title']} (section `{name}`)",
        "",
        f"Measured {sec['date']} on {sec.get('machine', sec['device'])} ({sec['cpu_threads']} torch threads, torch "
        f"{sec['torch']}, device {cfg.get('device')}). Not comparable with the table above: another machine and "
        f"budget. Budget, the same for every row: {cfg['images']} images (80/20 train/val), {cfg['epochs']} epochs, "
        f"batch {cfg['batch_size']}, lr {cfg['lr']}, seed {cfg['seed']}. Data generation {sec['data_seconds']:.0f} s, "
        f"whole section {sec['total_seconds'] / 60:.1f} min. mAP is on the val split after the last epoch.",
        "",
        "| model | arch | width | bits | mAP@0.5 | mAP@0.5:0.95 | best mAP@0.5 | params | weights (KiB) "
        "| weight bits | GMAC | GBOPs | train img/s | train time (s) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in sec["rows"]:
        lines.append(f"| {r['name']} | {r.get('arch', 'tinydet')} | {r.get('width', 1.0):g} | {r['bits']} | "
                     f"{r['map50']:.3f} | {r['map50_95']:.3f} | {r['best_map50']:.3f} | {r['params']:,} | "
                     f"{r['weight_kib']:.1f} | {r['weight_bits']:,} | {r['gmacs']:.3f} | {r['gbops']:.2f} | "
                     f"{r['train_images_per_s']:.0f} | {r['train_seconds']:.0f} |")
    if sec.get("note"):
        lines += ["", sec["note"]]
    return lines


def _main_markdown(record: dict[str, Any]) -> list[str]:
    lines = [
        f"# {record.get('title', TITLE)}",
        "",
        f"Measured {record['date']} on {record['device']} (torch {record['torch']}); "
        f"config: {json.dumps(record['config'])}.",
        f"Data generation {record['data_seconds']:.0f} s, whole benchmark {record['total_seconds'] / 60:.1f} min. "
        "mAP is on the val split after the last epoch (no checkpoint picked on val).",
        "",
        "| model | box w | mAP@0.5 | mAP@0.5:0.95 | best mAP@0.5 | params | weights (KiB) | GMAC | GBOPs "
        "| train img/s | speed vs float | train time (s) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    flt_speed = record["rows"][0]["train_images_per_s"]
    for r in record["rows"]:
        lines.append(f"| {r['name']} | {r.get('box_weight', '')} | {r['map50']:.3f} | {r['map50_95']:.3f} | "
                     f"{r['best_map50']:.3f} | {r['params']:,} | {r['weight_kib']:.1f} | {r['gmacs']:.3f} | {r['gbops']:.2f} | "
                     f"{r['train_images_per_s']:.0f} | {r['train_images_per_s'] / flt_speed:.2f}x | "
                     f"{r['train_seconds']:.0f} |")
    lines += ["", "| acceptance check | measured | result |", "|---|---|---|"]
    for c in record["checks"]:
        lines.append(f"| {c['check']} | {c['value']} | {'pass' if c['passed'] else 'FAIL'} |")
    return lines


def plot(record: dict[str, Any], path: Path) -> None:
    """mAP against weight memory, one point per row."""
    with png_figure(path) as (fig, ax):
        for r in record["rows"]:
            ax.scatter(r["weight_kib"], r["map50"], s=40)
            ax.annotate(r["name"], (r["weight_kib"], r["map50"]), textcoords="offset points", xytext=(5, 5))
        ax.set_xscale("log")
        ax.set_xlabel("weight memory (KiB, log)")
        ax.set_ylabel("val mAP@0.5")
        ax.set_title("tinydet: accuracy vs weight memory")


def cli(doc: str, rows: tuple[Row, ...], name: str, title: str, work: Path,
        sections: dict[str, tuple[tuple[str, ...], str]] | None = None) -> None:
    """Command line shared by the training benchmarks: parse the budget, run ``rows``, print the table.

    ``sections`` (name -> row names, title) are offered as ``--section NAME``."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--images", type=int, default=BenchConfig.images)
    parser.add_argument("--epochs", type=int, default=BenchConfig.epochs)
    parser.add_argument("--batch-size", type=int, default=BenchConfig.batch_size)
    parser.add_argument("--lr", type=float, default=BenchConfig.lr)
    parser.add_argument("--seed", type=int, default=BenchConfig.seed)
    parser.add_argument("--workers", type=int, default=BenchConfig.workers, help="data rendering processes")
    parser.add_argument("--work", type=Path, default=work)
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--name", default=name, help=f"results file stem (default {name})")
    parser.add_argument("--quick", action="store_true", help="600 images, 3 epochs: checks the bench runs")
    parser.add_argument("--rows", help="comma-separated row names to train (default: all)")
    parser.add_argument("--keep", action="store_true",
                        help="take the rows not trained now from the existing results file (same budget)")
    if sections:
        parser.add_argument("--section", choices=sorted(sections),
                            help="measure only this section's rows and store them as a section of the results "
                                 "file, leaving its main table as it is: "
                                 + "; ".join(f"{k}: {', '.join(v[0])}" for k, v in sections.items()))
    parser.add_argument("--note", default="", help="a line printed under the table (e.g. what else ran meanwhile)")
    args = parser.parse_args()
    section = getattr(args, "section", None)
    names = [r.name for r in rows]
    if section is not None:
        section_rows, title = sections[section]
        names = [n for n in names if n in section_rows]
        if args.work == work:  # its own data and runs: a main run's data of another size is never reused
            args.work = work.with_name(f"{work.name}_{section}")
    chosen = args.rows.split(",") if args.rows else names
    unknown = sorted(set(chosen) - set(names))
    if unknown:
        parser.error(f"unknown rows {unknown}; rows are {names}")
    run_rows = tuple(r for r in rows if r.name in chosen)
    keep = tuple(r for r in rows if r.name in names and r.name not in chosen) if args.keep else ()
    cfg = BenchConfig(images=600 if args.quick else args.images, epochs=3 if args.quick else args.epochs,
                      batch_size=args.batch_size, lr=args.lr, seed=args.seed, device=args.device, work=args.work,
                      workers=args.workers)
    torch.backends.cudnn.benchmark = True  # fixed input shapes: let cuDNN pick its fastest kernels
    record = run(cfg, args.results, run_rows, args.name, title, keep, section, args.note)
    print(to_markdown(record if section is None else {"sections": {section: record}}))


def main() -> None:
    cli(__doc__, ROWS, "accuracy", TITLE, BenchConfig.work, SECTIONS)


if __name__ == "__main__":
    main()
