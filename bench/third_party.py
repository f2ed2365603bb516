"""Third-party benchmark: two Brevitas example networks through qdet, beside FINN's published figures.

BNN-PYNQ CNV W2A2 (Pynq-Z2) and MobileNet-v1 W4A4 (ZCU104), from the model definitions shipped in the installed
brevitas wheel (``brevitas_examples``; no download): random init with seed 0, BatchNorm statistics calibrated on
random inputs in train mode, exported with ``brevitas.export.export_qonnx``. MobileNet's first conv takes the float
image directly, which no integer accelerator can take, so it is wrapped with an 8-bit input ``QuantIdentity`` (FINN's
own MobileNet-v1 build also feeds the accelerator an 8-bit image). Each is built as ``qdet build MODEL --max-fps
--board B --verify N`` builds it; CNV's RTL is simulated (4 frames, then the same with random backpressure 0.3) and
MobileNet's RTL simulation of one frame is attempted under a hard wall-clock limit (compile included), in a child
process whose phases are logged so that a timeout still says how far it got. Writes
``bench/results/third_party.{json,md,png}``.

    python -m bench.third_party [--work DIR] [--skip-mobilenet-sim] [--mobilenet-sim-timeout 600]

All resource and throughput figures of ours are FINN's estimates (its per-layer cycle and resource models) or
RTL-simulation measurements; FINN's published figures are measured/implemented results cited from
shared/references.md. The weights are random: accuracy is not measured.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench.accuracy import RESULTS, _machine
from quant_models.plots import png_figure

REFERENCES = "shared/references.md"
RESOURCE_KEYS = ("lut", "bram18", "uram", "dsp")
# Cycles of the MobileNet speed probe: enough to time the compiled model, short next to a frame.
PROBE_CYCLES = 50_000


@dataclass(frozen=True)
class Network:
    """One third-party network: where its definition comes from, how it is fed, where it is built."""

    key: str
    title: str
    source: str
    board: str
    verify_images: int
    input_shape: tuple[int, int, int, int]
    # What calibrates BatchNorm: "rand" (an image in [0, 1]) or "randn" (a normalised image).
    calibration: str
    input_note: str


NETWORKS = (
    Network("cnv", "CNV W2A2", 'brevitas_examples.bnn_pynq.models.model_with_cfg("cnv_2w2a", False)', "pynq-z2", 8,
            (1, 3, 32, 32), "rand", "float in [0, 1]; the model's own 2-bit input quantizer (after x -> 2x - 1)"),
    Network("mobilenet", "MobileNet-v1 W4A4",
            'brevitas_examples.imagenet_classification.models.model_with_cfg("quant_mobilenet_v1_4b", None)',
            "zcu104", 2, (1, 3, 224, 224), "randn",
            "normalised float image; wrapped as Sequential(QuantIdentity(bit_width=8), model): the model itself has "
            "no input quantizer"),
)

# FINN's published figures (shared/references.md, "FINN results (published)" and the boards table). Measured on a
# board / implemented, not estimated; None where references.md gives no figure.
PUBLISHED: dict[str, dict[str, Any]] = {
    "cnv": {"what": "BNN-PYNQ CNV W2A2 on Pynq-Z1 (xc7z020, the Pynq-Z2's part) at 100 MHz",
            "source": f"{REFERENCES}, FINN results (published): CNV W2A2 37,302 LUT, 140 BRAM36, 32 DSP, 84.8%",
            "clock_mhz": 100.0, "fps": None, "lut": 37_302, "bram18": 2 * 140, "uram": None, "dsp": 32,
            "accuracy": "84.8% (CIFAR-10)"},
    "mobilenet": {"what": "FINN MobileNet-v1 W4A4 on ZCU104 at 185 MHz",
                  "source": f"{REFERENCES}, FINN results (published): ~450 FPS on ZCU104, 70.4% top-1; boards "
                            "table: 185 MHz (FINN MobileNet)",
                  "clock_mhz": 185.0, "fps": 450.0, "lut": None, "bram18": None, "uram": None, "dsp": None,
                  "accuracy": "70.4% top-1 (ImageNet)"},
}


class Progress:
    """Plain progress lines with the elapsed time (a log file or a terminal alike)."""

    def __init__(self) -> None:
        self.start = time.perf_counter()

    def __call__(self, text: str) -> None:
        m, s = divmod(int(time.perf_counter() - self.start), 60)
        print(f"[{m:02d}:{s:02d}] {text}", flush=True)


# --- export ------------------------------------------------------------------------------------------------------
def make_model(net: Network):
    """The example network with random weights (seed 0), MobileNet wrapped with its 8-bit input quantizer."""
    import torch

    torch.manual_seed(0)
    if net.key == "cnv":
        from brevitas_examples.bnn_pynq.models import model_with_cfg

        model, _ = model_with_cfg("cnv_2w2a", False)
    else:
        from brevitas.nn import QuantIdentity
        from brevitas_examples.imagenet_classification.models import model_with_cfg

        model, _ = model_with_cfg("quant_mobilenet_v1_4b", None)
        model = torch.nn.Sequential(QuantIdentity(bit_width=8), model)
    return model


def calibrate(model, net: Network, batches: int = 4, batch: int = 4) -> None:
    """BatchNorm (and activation-quantizer) statistics from random inputs in train mode, then eval.

    A cumulative average (momentum None) from fresh statistics: with the default momentum a few batches would leave
    the running statistics mostly at their init (mean 0, var 1), and activations of a random net could sit at zero,
    which would make a bit-exact simulation say little."""
    import torch

    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None
    draw = torch.rand if net.calibration == "rand" else torch.randn
    model.train()
    with torch.no_grad():
        for _ in range(batches):
            model(draw(batch, *net.input_shape[1:]))
    model.eval()


def export_network(net: Network, work: Path) -> dict[str, Any]:
    """Build, calibrate and export one network; returns where it went and what it took."""
    import torch
    from brevitas.export import export_qonnx

    from quant_models.chatter import chatter_into

    work.mkdir(parents=True, exist_ok=True)
    tick = time.perf_counter()
    path = work / f"{net.key}.onnx"
    # torch.onnx's and Brevitas' messages go to a log beside the model, as qdet export does.
    with chatter_into(work / "export.log", mode="w"):
        model = make_model(net)
        calibrate(model, net)
        sample = (torch.rand if net.calibration == "rand" else torch.randn)(*net.input_shape)
        export_qonnx(model, sample, str(path))
    return {"onnx": str(path), "params": sum(p.numel() for p in model.parameters()),
            "seconds": round(time.perf_counter() - tick, 1)}


# --- build -------------------------------------------------------------------------------------------------------
# When the golden model's verification fails (a finding, recorded), the build is resumed from its verify step, as the
# error message advises, so that the folding and its estimates can still be compared: first with other verification
# images (golden frames for the RTL simulation), then without verification (estimates only).
FALLBACKS = (("resumed --from verify with verification images of seed 1 (FlowConfig.seed; `qdet build` has no "
              "--seed option)", {"start": "verify", "seed": 1}),
             ("resumed --from verify --verify 0: estimates only, no golden frames (so no RTL simulation)",
              {"start": "verify", "verify_images": 0}))


def build_network(net: Network, onnx: Path, out: Path, say: Progress) -> dict[str, Any]:
    """``qdet build ONNX --out OUT --board B --max-fps --verify N``, then what the build recorded.

    ``attempts`` lists the build as specified and any fallback (see FALLBACKS) with its exact error; ``error`` is
    the last attempt's (None when the build finally went through)."""
    from flows.config import FlowConfig
    from flows.runner import run_flow
    from flows.steps import DEFAULT_STEPS

    attempts = []
    for label, change in (("as specified", {}), *FALLBACKS):
        cfg = FlowConfig(**{"out": out, "board": net.board, "target_fps": None, "verify_images": net.verify_images,
                            "overwrite": True, **change})
        if change:
            say(f"{net.title}: {label}")
        tick = time.perf_counter()
        try:
            run_flow(onnx, cfg, DEFAULT_STEPS,
                     progress=lambda name, i, n: say(f"{net.title}: step {name}"))
            error = None
        except Exception as exc:  # a failing build is a finding: record the exact message
            error = f"{type(exc).__name__}: {exc}"
            say(f"{net.title}: build failed: {error}")
        attempts.append({"label": label, "error": error, "seconds": round(time.perf_counter() - tick, 1)})
        if error is None or "step 'verify' failed" not in error:
            break
    layout = cfg.layout
    return {"error": error, "attempts": attempts, "seconds": round(sum(a["seconds"] for a in attempts), 1),
            "golden": layout.golden_outputs.is_file(), **read_build(layout)}


def read_build(layout) -> dict[str, Any]:
    """Estimates, FINN's SetFolding row, the verdict, the golden verification and step times, through BuildLayout."""
    rec: dict[str, Any] = {"build": str(layout.root),
                           "times": layout.read_optional(layout.times) or {},
                           "verify": layout.read_optional(layout.verify_record)}
    if not layout.has_estimates():  # a build that failed before its report step
        return rec
    est = layout.read_estimates()
    keep = ("fps", "cycles_per_frame", "bottleneck", *RESOURCE_KEYS, "fits", "clock_mhz", "latency_cycles",
            "budget", "utilisation_of_budget", "part")
    rec["estimates"] = {k: est.get(k) for k in keep}
    rec["finn_setfolding"] = est.get("finn_setfolding")
    rec["qdet_at_finn_fps"] = est.get("qdet_at_finn_fps")
    rec["comparison"] = est.get("comparison")
    try:  # the golden outputs' spread: a simulation that matches on all-zero outputs would prove little
        import numpy as np

        _, outputs = layout.read_golden()
        rec["golden_outputs"] = {"frames": int(outputs.shape[0]), "elements_per_frame": int(outputs[0].size),
                                 "distinct_values": int(np.unique(outputs).size),
                                 "nonzero_share": round(float((outputs != 0).mean()), 4)}
    except Exception as exc:  # noqa: BLE001 (informative only)
        rec["golden_outputs"] = {"error": f"{type(exc).__name__}: {exc}"}
    return rec


# --- RTL simulation ----------------------------------------------------------------------------------------------
SIM_KEYS = ("frames", "mismatches", "mismatched_frames", "status", "message", "cycles_per_frame",
            "estimate_cycles_per_frame", "ratio_to_estimate", "latency_cycles", "fps", "clock_mhz", "sim_cycles",
            "sim_wall_s", "sim_cycles_per_s", "compile_s", "backpressure")


def sim_row(label: str, result, wall: float) -> dict[str, Any]:
    """The figures of one SimResult, with the run's own wall time (RTL generation and compile included)."""
    row = {k: getattr(result, k) for k in SIM_KEYS}
    return {"label": label, **row, "wall_s": round(wall, 1), "error": None}


def simulate_cnv(build: Path, frames: int, backpressure: float, say: Progress) -> list[dict[str, Any]]:
    """Two runs of the same compiled model: free-flowing, then with random idle/stall ``backpressure``."""
    from sim.network import SimConfig, simulate

    rows = []
    for bp in (0.0, backpressure):
        label = f"{frames} frames, backpressure {bp:g}"
        say(f"CNV W2A2: RTL simulation, {label}")
        tick = time.perf_counter()
        try:
            result = simulate(build, SimConfig(images=frames, backpressure=bp))
        except Exception as exc:  # noqa: BLE001 (a failing simulation is a finding, recorded with its message)
            rows.append({"label": label, "backpressure": bp, "error": f"{type(exc).__name__}: {exc}",
                         "wall_s": round(time.perf_counter() - tick, 1)})
            continue
        rows.append(sim_row(label, result, time.perf_counter() - tick))
        say(f"CNV W2A2: {result.message}; {result.cycles_per_frame} cycles/frame")
    return rows


def _sim_child(build: str, events: str) -> None:
    """Run in a child process: generate the RTL, time a short probe, then simulate one frame.

    Every phase appends a JSON line to ``events`` the moment it ends, so a parent that kills this process on its
    deadline still knows how far it got."""
    from flows.build import BuildLayout
    from hls.gen import GenConfig, generate_rtl
    from sim.network import SimConfig, simulate

    def event(kind: str, **data) -> None:
        with open(events, "a") as f:
            f.write(json.dumps({"event": kind, "t": round(time.perf_counter() - start, 1), **data}) + "\n")

    start = time.perf_counter()
    layout = BuildLayout(Path(build))
    event("start")
    if not layout.has_rtl() or layout.rtl_is_stale():
        generate_rtl(layout, GenConfig())
    event("rtl", runtime_weights=layout.read_manifest().get("runtime_weights", []))
    # The probe compiles the model the full run reuses (same harness, the cycle limit is a run-time input).
    probe = simulate(layout, SimConfig(images=1, max_cycles=PROBE_CYCLES, diagnose=False, timeout_s=None))
    event("probe", compile_s=probe.compile_s, sim_cycles=probe.sim_cycles, sim_wall_s=probe.sim_wall_s,
          sim_cycles_per_s=probe.sim_cycles_per_s, status=probe.status)
    # diagnose off: its re-run would double the time; `qdet sim BUILD` names the first bad layer afterwards.
    full = simulate(layout, SimConfig(images=1, diagnose=False, timeout_s=None))
    event("done", **{k: getattr(full, k) for k in SIM_KEYS})


def run_with_deadline(command: list[str], timeout_s: float, log: Path) -> tuple[int, bool]:
    """Run ``command`` from the repository root, output to ``log``; kill it and everything it started at the
    deadline. Returns (return code, timed out)."""
    with open(log, "w") as out:
        # Its own process group, so the deadline also ends the compiler and simulator the child started.
        child = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                 cwd=Path(__file__).resolve().parent.parent)
        try:
            return child.wait(timeout=timeout_s), False
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            return child.wait(), True


def simulate_mobilenet(build: Path, timeout_s: float, work: Path, say: Progress) -> dict[str, Any]:
    """One frame of MobileNet's RTL under a hard wall-clock limit (RTL generation and compile included)."""
    events, log = work / "mobilenet_sim_events.jsonl", work / "mobilenet_sim_child.log"
    events.unlink(missing_ok=True)
    code = f"from bench.third_party import _sim_child; _sim_child({str(build)!r}, {str(events)!r})"
    say(f"MobileNet-v1 W4A4: RTL simulation of 1 frame, hard limit {timeout_s:g} s (compile included)")
    tick = time.perf_counter()
    rc, timed_out = run_with_deadline([sys.executable, "-c", code], timeout_s, log)
    wall = round(time.perf_counter() - tick, 1)
    seen = [json.loads(line) for line in events.read_text().splitlines()] if events.is_file() else []
    phases = {e["event"]: e for e in seen}
    outcome = "finished" if "done" in phases else "timed out" if timed_out else "failed"
    rec = {"timeout_s": timeout_s, "wall_s": wall, "outcome": outcome, "returncode": rc, "events": seen,
           "log": str(log)}
    if outcome == "failed":
        tail = log.read_text(errors="replace").strip().splitlines()[-12:] if log.is_file() else []
        rec["error"] = "\n".join(tail)
    say(f"MobileNet-v1 W4A4: RTL simulation {outcome} after {wall:g} s "
        f"(phases done: {', '.join(e['event'] for e in seen) or 'none'})")
    return rec


# --- report ------------------------------------------------------------------------------------------------------
def ratio(ours: float | None, theirs: float | None) -> str:
    """``ours / theirs`` as '0.91x', or '-' where either is missing (or theirs is 0)."""
    return "-" if ours is None or not theirs else f"{ours / theirs:.2f}x"


def _num(v: Any, spec: str = ",.0f") -> str:
    return "-" if v is None else format(v, spec)


def published_cycles(pub: dict[str, Any]) -> float | None:
    """Cycles per frame implied by a published FPS at its clock (derived: clock / FPS)."""
    return pub["clock_mhz"] * 1e6 / pub["fps"] if pub.get("fps") else None


def comparison_rows(net: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(label, figures) rows of one network's estimate table: ours, FINN's SetFolding, ours at FINN's cycles,
    FINN published. Labels say what each row is (estimate, or published measured/implemented)."""
    est, rows = net["estimates"], []
    rows.append((f"qdet --max-fps (FINN-model estimate, {est['clock_mhz']:g} MHz)", est))
    peer = net.get("finn_setfolding") or {}
    if peer and "error" not in peer:
        rows.append((f"FINN SetFolding, target {peer['target_cycles']:,} cycles (estimate)", peer))
    if net.get("qdet_at_finn_fps"):
        rows.append(("qdet at FINN SetFolding's cycles (estimate)", net["qdet_at_finn_fps"]))
    pub = net["published"]
    rows.append((f"FINN published ({pub['what']}; measured/implemented)",
                 {**pub, "cycles_per_frame": published_cycles(pub), "fits": None}))
    return rows


def estimate_table(net: dict[str, Any]) -> list[str]:
    """One network's estimates beside FINN's SetFolding and FINN's published figures, with ratios."""
    lines = ["| row | FPS | cycles/frame | LUT | BRAM18 | URAM | DSP | fits budget |",
             "|---|---|---|---|---|---|---|---|"]
    for label, r in comparison_rows(net):
        fits = "" if r.get("fits") is None else ("yes" if r["fits"] else "no")
        lines.append(f"| {label} | {_num(r.get('fps'), ',.1f')} | {_num(r.get('cycles_per_frame'))} | "
                     f"{_num(r.get('lut'))} | {_num(r.get('bram18'), 'g')} | {_num(r.get('uram'), 'g')} | "
                     f"{_num(r.get('dsp'), 'g')} | {fits} |")
    est, pub = net["estimates"], net["published"]
    lines.append(f"| qdet estimate / FINN published | {ratio(est['fps'], pub.get('fps'))} | "
                 f"{ratio(est['cycles_per_frame'], published_cycles(pub))} | {ratio(est['lut'], pub.get('lut'))} | "
                 f"{ratio(est['bram18'], pub.get('bram18'))} | {ratio(est['uram'], pub.get('uram'))} | "
                 f"{ratio(est['dsp'], pub.get('dsp'))} | |")
    b = est["budget"]
    lines.append(f"| board budget ({net['board']}) | | | {_num(b['lut'])} | {b['bram18']:g} | {b['uram']:g} | "
                 f"{b['dsp']:g} | |")
    return lines


def sim_table(rows: list[dict[str, Any]]) -> list[str]:
    """RTL-simulation rows: mismatches, simulated cycles per frame against the estimate, latency, speed."""
    lines = ["| network | run | status | mismatches | cycles/frame (sim) | estimate | sim/est | latency (cycles) | "
             "FPS (sim) | sim speed (cycles/s) | compile (s) | wall (s) |", "|---|---|---|---|---|---|---|---|---|---|"
             "---|---|"]
    for r in rows:
        if r.get("error"):
            lines.append(f"| {r['network']} | {r['label']} | **failed**: {r['error'].splitlines()[0][:200]} "
                         f"| | | | | | | | | {_num(r.get('wall_s'), '.0f')} |")
            continue
        lines.append(f"| {r['network']} | {r['label']} | {r['status']}, {r['frames']} frames | {r['mismatches']} | "
                     f"{_num(r['cycles_per_frame'])} | {_num(r['estimate_cycles_per_frame'])} | "
                     f"{_num(r['ratio_to_estimate'], '.3f')} | {_num(r['latency_cycles'])} | "
                     f"{_num(r['fps'], ',.1f')} | "
                     f"{_num(r['sim_cycles_per_s'])} | {_num(r['compile_s'], '.0f')} | {_num(r['wall_s'], '.0f')} |")
    return lines


def mobilenet_sim_text(rec: dict[str, Any] | None) -> list[str]:
    """What MobileNet's RTL simulation under its hard limit did, in words."""
    if rec is None:
        return ["MobileNet-v1 RTL simulation: not run (`--skip-mobilenet-sim`, or its build failed or left no golden "
                "frames)."]
    phases = {e["event"]: e for e in rec["events"]}
    lines = [f"MobileNet-v1 RTL simulation of 1 frame under a hard {rec['timeout_s']:g} s limit (RTL generation and "
             f"Verilator compile included): **{rec['outcome']}** after {rec['wall_s']:g} s."]
    if "rtl" in phases:
        rtl = phases["rtl"]
        lines.append(f"- RTL generated after {rtl['t']:g} s; layers whose weights would sit in UltraRAM "
                     f"(written at run time on a board, `runtime_weights`): "
                     f"{', '.join(rtl['runtime_weights']) or 'none'} (simulation reads their .mem files).")
    if "probe" in phases:
        p = phases["probe"]
        lines.append(f"- Verilator compile and start-up {p['compile_s']:.0f} s; a {p['sim_cycles']:,}-cycle probe "
                     f"ran at {p['sim_cycles_per_s']:,.0f} cycles/s (the first cycles, while later layers still "
                     "wait for data, so likely faster than the steady state).")
    elif "rtl" in phases:
        left = rec["wall_s"] - phases["rtl"]["t"]
        lines.append(f"- The Verilator compile did not finish within the limit ({left:.0f} s after RTL generation).")
    if "done" in phases:
        d = phases["done"]
        lines.append(f"- One frame: {d['status']}, {d['mismatches']} mismatching elements ({d['message']}); latency "
                     f"{_num(d['latency_cycles'])} cycles, {d['sim_cycles']:,} cycles in {d['sim_wall_s']:.0f} s "
                     f"({d['sim_cycles_per_s']:,.0f} cycles/s).")
    elif "probe" in phases and phases["probe"]["sim_cycles_per_s"]:
        est = rec.get("estimate_latency_cycles")
        if est:
            lines.append(f"- At the probe's speed, the frame's estimated latency of {est:,} cycles (FINN's upper "
                         f"bound) would need ~{est / phases['probe']['sim_cycles_per_s'] / 60:.0f} minutes of "
                         "simulation.")
    if rec.get("error"):
        lines += ["- It failed; last lines of its log:", "", "```", rec["error"], "```"]
    return lines


def attempts_text(build: dict[str, Any], verify: int) -> list[str]:
    """The build as specified and its fallbacks, each with its exact error; nothing when the first went through."""
    attempts = build.get("attempts") or [{"label": "as specified", "error": build.get("error"),
                                          "seconds": build.get("seconds")}]
    if attempts[0]["error"] is None:
        return []
    lines = []
    for k, a in enumerate(attempts):
        what = f"Build as specified (`--max-fps --verify {verify}`)" if k == 0 else f"Fallback: {a['label']}"
        lines.append(f"- {what}: " + (f"**failed** after {a['seconds']:g} s: `{a['error']}`" if a["error"]
                                     else f"went through ({a['seconds']:g} s)."))
    if build.get("error") is None:
        lines.append(f"- The figures below come from the last fallback ({attempts[-1]['label']}).")
    return lines + [""]


def to_markdown(record: dict[str, Any]) -> str:
    """The report: models, estimates vs published vs SetFolding, RTL simulation, step times."""
    v = record["versions"]
    lines = ["# Third-party Brevitas models through qdet: estimates vs FINN's published figures, RTL simulation", "",
             f"Measured {record['date']} on {record['machine']} (no FPGA tools; other sessions' jobs shared the "
             f"cores, so wall times are contended), brevitas {v.get('brevitas')}, finn-plus {v.get('finn-plus')}, "
             f"torch {v.get('torch')}, Verilator {v.get('verilator')} under cocotb {v.get('cocotb')}. Total wall time "
             f"{record['total_seconds'] / 60:.1f} min.", "",
             "**Weights are random** (seed 0; BatchNorm statistics from random inputs in train mode, then eval): "
             "accuracy is not measured, and the published accuracies are quoted only to name the networks. FINN's "
             "estimates depend on shapes and bit widths, not on weight values; bit-exactness does depend on them.",
             "", "Our figures are **estimates** from FINN's per-layer models (cycles; HLS-MVAU LUT model; BRAM18, "
             "URAM, DSP) or **RTL-simulation measurements**; FINN's published figures are **measured/implemented** "
             f"results, cited from {REFERENCES}. A ratio of an estimate to an implemented figure compares two "
             "different kinds of number.", "", "## Models", "",
             "| network | definition (brevitas wheel) | parameters | input | board | export (s) |",
             "|---|---|---|---|---|---|"]
    for n in record["networks"]:
        e = n.get("export") or {}
        lines.append(f"| {n['title']} | `{n['source']}` | {_num(e.get('params'))} | {n['input_shape']}: "
                     f"{n['input_note']} | {n['board']} | {_num(e.get('seconds'), '.1f')} |")
    for n in record["networks"]:
        lines += ["", f"## {n['title']} on {n['board']}", ""]
        if n.get("export_error"):
            lines += [f"**Export failed**: `{n['export_error']}`"]
            continue
        b = n["build_record"]
        lines += attempts_text(b, n["verify_images"])
        if "estimates" not in b:
            continue
        est = b["estimates"]
        lines += estimate_table({**b, "published": n["published"], "board": n["board"]})
        lines += ["", f"- Bottleneck `{est['bottleneck']}`; latency {est['latency_cycles']:,} cycles (FINN's upper "
                      f"bound); fits the {n['board']} budget: {'yes' if est['fits'] else 'no'}."]
        peer = b.get("finn_setfolding") or {}
        if "error" in peer:
            lines.append(f"- FINN SetFolding (target {peer['target_cycles']:,} cycles): no figures: {peer['error']}.")
        elif b.get("comparison"):
            lines.append(f"- Against FINN SetFolding at the same cycle target: {b['comparison']['verdict']} (FPS ratio "
                         f"{b['comparison']['fps_ratio']:.2f}, LUT ratio at FINN's FPS "
                         f"{_num(b['comparison'].get('lut_ratio_same_fps'), '.2f')}).")
        pub = n["published"]
        lines.append(f"- Published: {pub['source']}.")
        if pub.get("fps"):
            lines.append(f"- The published {pub['fps']:g} FPS at {pub['clock_mhz']:g} MHz implies "
                         f"{published_cycles(pub):,.0f} cycles per frame (derived); our estimate is "
                         f"{est['cycles_per_frame']:,} cycles at {est['clock_mhz']:g} MHz, so the cycles ratio is "
                         "the clock-independent comparison.")
        ver = b.get("verify") or {}
        if ver:
            lines.append(f"- Golden model: {ver.get('images')} images ({ver.get('image_source')}), "
                         f"{ver.get('mismatches')} mismatches against {ver.get('reference')}.")
        g = b.get("golden_outputs") or {}
        if "distinct_values" in g:
            lines.append(f"- Golden outputs: {g['elements_per_frame']:,} integers per frame, {g['distinct_values']:,} "
                         f"distinct values, {100 * g['nonzero_share']:.0f}% non-zero (the simulation compares these).")
    sims = [dict(r, network="CNV W2A2") for r in record.get("cnv_sim") or []]
    lines += ["", "## RTL simulation (Verilator, cocotb; bit-exact against the golden outputs)", ""]
    if sims:
        lines += sim_table(sims) + [""]
    lines += mobilenet_sim_text(record.get("mobilenet_sim"))
    builds = [n.get("build_record") or {} for n in record["networks"]]
    lines += ["", "## Build time per step (s)", "", "| step | " + " | ".join(n["title"] for n in record["networks"])
              + " |", "|---|" + "---|" * len(builds)]
    for step in dict.fromkeys(s for b in builds for s in b.get("times", {})):
        lines.append(f"| {step} | " + " | ".join(_num(b.get("times", {}).get(step), ".1f") for b in builds) + " |")
    lines.append("| **whole build (all attempts)** | " + " | ".join(_num(b.get("seconds"), ".1f") for b in builds)
                 + " |")
    return "\n".join(lines) + "\n"


def plot(record: dict[str, Any], path: Path) -> None:
    """LUT, BRAM18, DSP and FPS per network: qdet's estimate, FINN SetFolding's estimate, FINN's published figure."""
    nets = [n for n in record["networks"] if "estimates" in (n.get("build_record") or {})]
    series = (("qdet (estimate)", lambda n: n["build_record"]["estimates"]),
              ("FINN SetFolding (estimate)", lambda n: n["build_record"].get("finn_setfolding") or {}),
              ("FINN published (measured)", lambda n: n["published"]))
    with png_figure(path, 4, (16, 3.8)) as (fig, axes):
        for ax, key, title in zip(axes, ("lut", "bram18", "dsp", "fps"), ("LUT", "BRAM18", "DSP", "FPS")):
            for j, (label, get) in enumerate(series):
                xs = [i + (j - 1) * 0.27 for i in range(len(nets))]
                vals = [get(n).get(key) for n in nets]
                ax.bar(xs, [v or 0 for v in vals], 0.27, label=label)
                for x, v in zip(xs, vals):
                    if v is None:  # no figure (none published, or FINN's row failed): say so, not a zero bar
                        ax.annotate("n/a", (x, 0), ha="center", va="bottom", fontsize=7)
            ax.set_xticks(range(len(nets)), [n["title"] for n in nets], fontsize=8)
            ax.set_title(title)
        axes[0].legend(fontsize=7)


# --- main --------------------------------------------------------------------------------------------------------
def _versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {}
    for pkg in ("brevitas", "finn-plus", "qonnx", "torch", "verilator", "cocotb"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def run(args: argparse.Namespace, say: Progress) -> dict[str, Any]:
    """Export, build and simulate every network; failures are recorded, never hidden."""
    networks, cnv_sim, mobile_sim = [], None, None
    for net in NETWORKS:
        work = args.work / net.key
        rec: dict[str, Any] = {"key": net.key, "title": net.title, "source": net.source, "board": net.board,
                               "input_shape": list(net.input_shape), "input_note": net.input_note,
                               "verify_images": net.verify_images, "published": PUBLISHED[net.key]}
        networks.append(rec)
        say(f"{net.title}: export")
        try:
            rec["export"] = export_network(net, work)
        except Exception as exc:  # noqa: BLE001 (recorded in the report)
            rec["export_error"] = f"{type(exc).__name__}: {exc}"
            say(f"{net.title}: export failed: {rec['export_error']}")
            continue
        say(f"{net.title}: build for {net.board}, --max-fps, --verify {net.verify_images}")
        build = rec["build_record"] = build_network(net, Path(rec["export"]["onnx"]), work / "build", say)
        if build["error"]:
            continue
        est = build["estimates"]
        say(f"{net.title}: {est['fps']:,.1f} FPS est., {est['lut']:,.0f} LUT, {est['bram18']:g} BRAM18, "
            f"{est['uram']:g} URAM in {build['seconds']:.0f} s")
        if not build["golden"]:
            say(f"{net.title}: no golden frames, so no RTL simulation")
        elif net.key == "cnv":
            cnv_sim = simulate_cnv(work / "build", args.cnv_frames, args.backpressure, say)
        elif not args.skip_mobilenet_sim:
            mobile_sim = simulate_mobilenet(work / "build", args.mobilenet_sim_timeout, work, say)
            mobile_sim["estimate_latency_cycles"] = est["latency_cycles"]
    return {"networks": networks, "cnv_sim": cnv_sim, "mobilenet_sim": mobile_sim}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("bench/work/third_party"))
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--cnv-frames", type=int, default=4)
    parser.add_argument("--backpressure", type=float, default=0.3, help="CNV's second simulation run")
    parser.add_argument("--skip-mobilenet-sim", action="store_true")
    parser.add_argument("--mobilenet-sim-timeout", type=float, default=600.0,
                        help="hard wall-clock limit of MobileNet's RTL simulation, compile included (s)")
    parser.add_argument("--render", type=Path, metavar="JSON",
                        help="only re-render the Markdown and PNG from an earlier run's JSON")
    args = parser.parse_args()
    say = Progress()
    args.results.mkdir(parents=True, exist_ok=True)
    if args.render is not None:
        record = json.loads(args.render.read_text())
    else:
        record = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "machine": _machine(),
                  "versions": _versions(), **run(args, say)}
        record["total_seconds"] = round(time.perf_counter() - say.start, 1)
        (args.results / "third_party.json").write_text(json.dumps(record, indent=2, default=str) + "\n")
    (args.results / "third_party.md").write_text(to_markdown(record))
    plot(record, args.results / "third_party.png")
    say(f"wrote {args.results / 'third_party.md'}")
    print(to_markdown(record))


if __name__ == "__main__":
    main()
