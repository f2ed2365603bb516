"""``qdet run`` benchmark: mAP on the accelerator's outputs against the torch model's, FPS and energy per frame, for
the trained W4A4 tinydet and tinyyolo side by side.

For each model: export its checkpoint (``qdet export``), build it for pynq-z2 verified against that checkpoint on
the val split (``qdet build --checkpoint``), then ``qdet run`` twice: on the C simulation (``cpp-sim``) over N val
images for the mAPs, the integer and detection comparison with torch and the C simulation's own frames/s; on the
RTL simulation (``rtl-sim``, Verilator) over R images for the cycle-accurate FPS and latency at the build's clock,
at which the energy per frame is estimated (:mod:`flows.energy`, analytic: no board here, no measured rails).
``qdet run`` raises when the accelerator's integers, detections or mAP differ from torch's: the bench stops there.
Writes ``bench/results/run.{json,md,png}``; the builds live in ``bench/work/run/<model>`` (reused when complete).

    python -m bench.run [--images 200] [--rtl-images 2] [--rebuild] [--work bench/work/run]

The checkpoints and data are the CPU accuracy bench's (``python -m bench.accuracy --section cpu-arch``: 8 epochs on
its synthetic 128x128 set).
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench.accuracy import RESULTS, _machine
from quant_models.plots import png_figure

ACCURACY_WORK = Path("bench/work/accuracy_cpu-arch")
DATA = ACCURACY_WORK / "data"
# (name, checkpoint): the accuracy bench's cpu-arch rows, both W4A4 at width 1.0.
MODELS = (("tinydet", ACCURACY_WORK / "w4a4" / "best.pt"),
          ("tinyyolo", ACCURACY_WORK / "tinyyolo-w4a4" / "best.pt"))
BOARD = "pynq-z2"
VERIFY_IMAGES = 8

_T0 = time.perf_counter()


def log(msg: str) -> None:
    print(f"[{time.perf_counter() - _T0:7.1f} s] {msg}", flush=True)


def complete(build: Path, ckpt: Path) -> bool:
    """The build in ``build`` finished its report step and verified against ``ckpt`` (golden frames present)."""
    from flows.build import BuildLayout

    layout = BuildLayout(build)
    if not (layout.estimates.is_file() and layout.golden_inputs.is_file() and layout.golden_outputs.is_file()
            and layout.verify_record.is_file()):
        return False
    record = json.loads(layout.verify_record.read_text())
    return Path(record.get("checkpoint") or "").resolve() == ckpt.resolve() and record.get("mismatches") == 0


def build(name: str, ckpt: Path, data: Path, work: Path, rebuild: bool) -> tuple[Path, dict[str, Any]]:
    """Export and build ``ckpt`` into ``work/name`` (reused when complete); (build folder, timings)."""
    from flows.config import FlowConfig
    from flows.runner import run_flow
    from flows.steps import DEFAULT_STEPS
    from quant_models.export import export_checkpoint

    out = work / name
    if not rebuild and complete(out, ckpt):
        log(f"{name}: reusing the complete build {out}")
        return out, {"reused": True}
    work.mkdir(parents=True, exist_ok=True)
    onnx = work / f"{name}.onnx"
    tick = time.perf_counter()
    log(f"{name}: exporting {ckpt} -> {onnx}")
    export_checkpoint(ckpt, onnx)
    export_s = time.perf_counter() - tick
    tick = time.perf_counter()
    log(f"{name}: building for {BOARD} (verify {VERIFY_IMAGES} val images against the checkpoint) -> {out}")
    cfg = FlowConfig(out=out, board=BOARD, verify_images=VERIFY_IMAGES, verify_data=data, checkpoint=ckpt,
                     overwrite=True)
    run_flow(onnx, cfg, DEFAULT_STEPS)
    build_s = time.perf_counter() - tick
    log(f"{name}: built in {build_s:.0f} s")
    return out, {"reused": False, "export_s": export_s, "build_s": build_s}


def run_one(name: str, build_dir: Path, data: Path, platform: str, images: int):
    """``qdet run`` of the build on ``platform``; keeps a copy of BUILD/run as ``work/<name>_<platform>_run``."""
    from qdet.run import RunConfig, run_build

    step = max(8, images // 5)
    last = [0]

    def progress(k: int, n: int) -> None:
        if k >= last[0] + step or k == n:
            last[0] = k
            log(f"{name} {platform}: {k}/{n} images")

    tick = time.perf_counter()
    report = run_build(build_dir, RunConfig(data=data, platform=platform, images=images), progress=progress)
    seconds = time.perf_counter() - tick
    keep = build_dir.parent / f"{build_dir.name}_{platform}_run"
    if keep.exists():
        shutil.rmtree(keep)
    shutil.copytree(build_dir / "run", keep)
    return report, seconds


def measure(name: str, ckpt: Path, data: Path, work: Path, images: int, rtl_images: int,
            rebuild: bool) -> dict[str, Any]:
    """One model: build, cpp-sim run (mAP), rtl-sim run (FPS, latency, energy)."""
    from dataclasses import asdict

    from flows.build import BuildLayout
    from quant_models.checkpoint import load_model

    model, _ = load_model(ckpt)
    arch, width, bits = model.cfg.arch, model.cfg.width, model.cfg.bits
    build_dir, timings = build(name, ckpt, data, work, rebuild)
    est = BuildLayout(build_dir).read_estimates()
    log(f"{name}: cpp-sim run over {images} val images")
    c, c_s = run_one(name, build_dir, data, "cpp-sim", images)
    log(f"{name}: cpp-sim done in {c_s:.0f} s: mAP@0.5 accel {c.map50:.4f} / torch {c.torch_map50:.4f}, "
        f"{c.int_mismatches} differing integers, detections identical {c.detections_identical}")
    log(f"{name}: rtl-sim run over {rtl_images} val images")
    r, r_s = run_one(name, build_dir, data, "rtl-sim", rtl_images)
    log(f"{name}: rtl-sim done in {r_s:.0f} s: {r.fps:,.1f} FPS, latency {r.latency_ms:.3f} ms, "
        f"energy {r.energy['total_uj']:,.1f} uJ/frame")
    timings.update(cpp_run_s=c_s, rtl_run_s=r_s)
    return {
        "name": name, "checkpoint": str(ckpt), "arch": arch, "width": width, "bits": bits,
        "build": str(build_dir), "board": est["board"], "clock_mhz": est["clock_mhz"],
        "images": c.images, "rtl_images": r.images,
        "map50": c.map50, "map50_95": c.map50_95, "torch_map50": c.torch_map50, "torch_map50_95": c.torch_map50_95,
        "map_identical": c.map50 == c.torch_map50 and c.map50_95 == c.torch_map50_95,
        "int_mismatches": c.int_mismatches, "rtl_int_mismatches": r.int_mismatches,
        "detections": c.detections, "detections_identical": c.detections_identical,
        "rtl_detections_identical": r.detections_identical,
        "max_box_diff_px": c.max_box_diff_px, "max_score_diff": c.max_score_diff,
        "fps": r.fps, "fps_kind": r.fps_kind, "estimated_fps": r.estimated_fps, "latency_ms": r.latency_ms,
        "estimated_latency_ms": est["latency_us"] / 1e3, "estimated_cycles_per_frame": est["cycles_per_frame"],
        "energy": r.energy, "measured_energy_uj": r.measured_energy_uj,
        "csim_frames_per_s": c.sim_frames_per_s, "rtl_sim_frames_per_s": r.sim_frames_per_s,
        "lut": est.get("lut"), "bram18": est.get("bram18"), "dsp": est.get("dsp"),
        "timings_s": timings, "cpp_report": asdict(c), "rtl_report": asdict(r),
    }


def _f(v: float | None, spec: str) -> str:
    return "n/a" if v is None else format(v, spec)


def to_markdown(record: dict[str, Any]) -> str:
    """Both models in one table, figures as rows."""
    rows = record["rows"]
    head = "| | " + " | ".join(f"{r['name']} ({r['bits'].upper()}, width {r['width']:g})" for r in rows) + " |"
    lines = ["# qdet run: mAP on the accelerator's outputs vs torch, FPS and energy per frame", "",
             f"Measured {record['date']} on {record['machine']}; whole bench {record['total_seconds'] / 60:.1f} min. "
             f"Checkpoints: the CPU accuracy bench's W4A4 rows (`bench.accuracy --section cpu-arch`, 8 epochs on its "
             f"synthetic 128x128 set), data `{record['data']}` (val split). Each is exported, built for "
             f"{rows[0]['board']} (verified on {VERIFY_IMAGES} val images against the checkpoint) and run with "
             "`qdet run`: the C simulation (cpp-sim) over the first val images for the mAPs and the comparison with "
             "the torch model on the same images, the RTL simulation (rtl-sim, Verilator) for the cycle-accurate "
             "FPS and latency at the build's clock.", "",
             head, "|---|" + "---:|" * len(rows)]

    def line(label: str, fn) -> None:
        lines.append(f"| {label} | " + " | ".join(fn(r) for r in rows) + " |")

    line("board, clock", lambda r: f"{r['board']}, {r['clock_mhz']:g} MHz")
    line("val images (cpp-sim / rtl-sim)", lambda r: f"{r['images']} / {r['rtl_images']}")
    line("mAP@0.5 accelerator / torch", lambda r: f"{r['map50']:.4f} / {r['torch_map50']:.4f}")
    line("mAP@0.5:0.95 accelerator / torch", lambda r: f"{r['map50_95']:.4f} / {r['torch_map50_95']:.4f}")
    line("mAP identical", lambda r: "**yes**" if r["map_identical"] else "**NO**")
    line("differing integers (cpp-sim / rtl-sim)", lambda r: f"{r['int_mismatches']} / {r['rtl_int_mismatches']}")
    line("detections, identical to torch",
         lambda r: f"{r['detections']}, {'yes' if r['detections_identical'] else 'NO'}")
    line("largest box / score difference vs torch",
         lambda r: f"{r['max_box_diff_px']:.1e} px / {r['max_score_diff']:.1e}")
    line("FPS (rtl-sim, cycle-accurate)", lambda r: f"**{_f(r['fps'], ',.1f')}**")
    line("FPS (build estimate)", lambda r: _f(r["estimated_fps"], ",.1f"))
    line("latency (rtl-sim / estimate) ms", lambda r: f"{_f(r['latency_ms'], '.3f')} / {r['estimated_latency_ms']:.3f}")
    line("energy per frame (estimate) uJ", lambda r: f"**{r['energy']['total_uj']:,.1f}**")
    line("  dynamic uJ", lambda r: f"{r['energy']['dynamic_uj']:,.2f}")
    for part in rows[0]["energy"]["parts_uj"]:
        line(f"    {part} uJ", lambda r, p=part: f"{r['energy']['parts_uj'][p]:,.2f}")
    line("  static uJ (idle power W)",
         lambda r: f"{r['energy']['static_uj']:,.1f} ({r['energy']['static_power_w']:g} W)")
    line("MACs per frame", lambda r: f"{r['energy']['macs']:,}")
    line("C simulation frames/s", lambda r: _f(r["csim_frames_per_s"], ",.1f"))
    line("RTL simulation frames/s", lambda r: _f(r["rtl_sim_frames_per_s"], ",.2f"))
    line("LUT / BRAM18 / DSP (estimate)", lambda r: f"{r['lut']:,.0f} / {r['bram18']:g} / {r['dsp']:g}")
    line("build / cpp-sim / rtl-sim wall (s)", lambda r: " / ".join(
        "reused" if k == "build_s" and r["timings_s"].get("reused") else f"{r['timings_s'].get(k, 0):.0f}"
        for k in ("build_s", "cpp_run_s", "rtl_run_s")))
    lines += ["",
              "Energy per frame is an analytic estimate (`flows/energy.py`: FINN's op and weight counts, Horowitz's "
              "45 nm per-operation energies scaled to FPGA fabric, plus the board's **assumed** idle power over the "
              "frame time at the rtl-sim FPS), not a measurement: no board was available, so there are no measured "
              "rails (`qdet run --backend pynq` would add them). The C simulation's and the RTL simulation's "
              "frames/s are the simulators' own speeds on this machine, not the hardware's.", "",
              "The rtl-sim FPS is the clock over the cycles between consecutive frames' last output beats (the median "
              "over the run's batches; the build's RTL with no backpressure); its latency is the first frame's first "
              "input beat to its last output beat. The build's latency estimate is the sum of every layer's cycles, "
              "an upper bound for a pipeline whose layers overlap, hence about 10x the simulated latency. "
              "Detections are the decoder's (score > 0.001, NMS, at most 100 per image): the weaker tinyyolo keeps "
              "100 low-score boxes on every image; they are identical to torch's either way.", ""]
    if record.get("notes"):
        lines += [f"- {n}" for n in record["notes"]] + [""]
    return "\n".join(lines) + "\n"


def plot(record: dict[str, Any], path: Path) -> None:
    """Left: mAP@0.5 and mAP@0.5:0.95, accelerator vs torch. Right: energy per frame, dynamic + static."""
    import numpy as np

    rows = record["rows"]
    names = [r["name"] for r in rows]
    x = np.arange(len(rows))
    with png_figure(path, 2, (10, 3.6)) as (fig, (ax, bx)):
        w = 0.2
        for k, (key, label) in enumerate((("map50", "mAP@0.5 accelerator"), ("torch_map50", "mAP@0.5 torch"),
                                          ("map50_95", "mAP@0.5:0.95 accelerator"),
                                          ("torch_map50_95", "mAP@0.5:0.95 torch"))):
            ax.bar(x + (k - 1.5) * w, [r[key] for r in rows], w, label=label, color=f"C{k // 2}",
                   hatch="//" if "torch" in key else None, edgecolor="white" if "torch" in key else None)
        ax.set_xticks(x, names)
        ax.set_ylabel("val mAP")
        ax.set_title(f"mAP on {rows[0]['images']} val images")
        ax.legend(fontsize=7)
        dyn = [r["energy"]["dynamic_uj"] for r in rows]
        sta = [r["energy"]["static_uj"] for r in rows]
        bx.bar(x, dyn, 0.5, label="dynamic (estimate)")
        bx.bar(x, sta, 0.5, bottom=dyn, label="static (assumed idle power)")
        for i, r in enumerate(rows):
            bx.annotate(f"{r['energy']['total_uj']:,.0f} uJ\n{r['fps']:,.0f} FPS", (i, dyn[i] + sta[i]),
                        ha="center", va="bottom", fontsize=8)
        bx.set_xticks(x, names)
        bx.set_ylabel("energy per frame (uJ)")
        bx.set_title(f"energy per frame at the rtl-sim FPS ({rows[0]['board']})")
        bx.set_ylim(0, 1.25 * max(d + s for d, s in zip(dyn, sta)))
        bx.legend(fontsize=7)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=200, help="val images of the cpp-sim run (mAP)")
    parser.add_argument("--rtl-images", type=int, default=2, help="val images of the rtl-sim run (FPS, latency)")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--models", default=",".join(n for n, _ in MODELS), help="comma-separated subset")
    parser.add_argument("--rebuild", action="store_true", help="rebuild even when a complete build exists")
    parser.add_argument("--work", type=Path, default=Path("bench/work/run"))
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--name", default="run", help="results file stem")
    parser.add_argument("--note", action="append", default=[], help="a line printed under the table")
    args = parser.parse_args()
    chosen = args.models.split(",")
    models = [(n, c) for n, c in MODELS if n in chosen]
    if len(models) != len(chosen):
        parser.error(f"unknown models in {chosen}; models are {[n for n, _ in MODELS]}")
    for _, ckpt in models:
        if not ckpt.is_file():
            raise SystemExit(f"{ckpt}: no checkpoint; run `python -m bench.accuracy --section cpu-arch` first")
    rows = []
    for name, ckpt in models:
        rows.append(measure(name, ckpt, args.data, args.work, args.images, args.rtl_images, args.rebuild))
    record = {"rows": rows, "data": str(args.data), "machine": _machine(), "notes": args.note,
              "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
              "total_seconds": time.perf_counter() - _T0}
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / f"{args.name}.json").write_text(json.dumps(record, indent=2, default=float) + "\n")
    (args.results / f"{args.name}.md").write_text(to_markdown(record))
    plot(record, args.results / f"{args.name}.png")
    print(to_markdown(record))


if __name__ == "__main__":
    main()
