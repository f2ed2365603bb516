"""Rendering of bench/third_party.py's record: the Markdown report (estimates beside FINN's published figures and
FINN's SetFolding, the RTL-simulation rows, what failed and why) and the PNG. Pure functions of the record."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from quant_models.plots import png_figure

REFERENCES = "shared/references.md"
RESOURCE_KEYS = ("lut", "bram18", "uram", "dsp")

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
        lines.append(f"| {r['network']} | {r['label']} | {r['status']}, {r['frames']} out | {r['mismatches']} | "
                     f"{_num(r['cycles_per_frame'])} | {_num(r['estimate_cycles_per_frame'])} | "
                     f"{_num(r['ratio_to_estimate'], '.3f')} | {_num(r['latency_cycles'])} | "
                     f"{_num(r['fps'], ',.1f')} | {_num(r['sim_cycles_per_s'])} | {_num(r['compile_s'], '.0f')} | "
                     f"{_num(r['wall_s'], '.0f')} |")
    return lines


def mobilenet_sim_text(rec: dict[str, Any] | None) -> list[str]:
    """What MobileNet's RTL simulation under its hard limit did, in words."""
    if rec is None or "skipped" in rec:
        why = "`--skip-mobilenet-sim`, or its build failed" if rec is None else rec["skipped"]
        return [f"MobileNet-v1 RTL simulation: not run ({why})."]
    phases = {e["event"]: e for e in rec["events"]}
    lines = [f"MobileNet-v1 RTL simulation of 1 frame, then of 2 frames, under one hard {rec['timeout_s']:g} s limit "
             f"(RTL generation and Verilator compile included): the 1-frame run **{rec['outcome']}**; "
             f"{rec['wall_s']:g} s in all."]
    if "rtl" in phases:
        rtl = phases["rtl"]
        lines.append(f"- RTL generated after {rtl['t']:g} s; layers whose weights would sit in UltraRAM "
                     f"(written at run time on a board, `runtime_weights`): "
                     f"{', '.join(rtl['runtime_weights']) or 'none'} (simulation reads their .mem files).")
    if "probe" in phases:
        p = phases["probe"]
        lines.append(f"- Verilator compile and start-up {p['compile_s']:.0f} s; a {p['sim_cycles']:,}-cycle probe "
                     f"(the first cycles of a frame only) ran at {p['sim_cycles_per_s']:,.0f} cycles/s.")
    elif "rtl" in phases:
        left = rec["wall_s"] - phases["rtl"]["t"]
        lines.append(f"- The Verilator compile did not finish within the limit ({left:.0f} s after RTL generation).")
    if "done" in phases:
        lines.append(f"- Its runs are the MobileNet rows of the table above"
                     f"{'' if 'steady' in phases else ' (the two-frame run did not finish within the limit)'}.")
    elif "probe" in phases and phases["probe"]["sim_cycles_per_s"]:
        est = rec.get("estimate_latency_cycles")
        if est:
            lines.append(f"- At the probe's speed, the frame's estimated latency of {est:,} cycles (FINN's upper "
                         f"bound) would need ~{est / phases['probe']['sim_cycles_per_s'] / 60:.0f} minutes of "
                         "simulation.")
    if rec.get("golden_source"):
        lines.append(f"- Golden frames: {rec['golden_source']}.")
    if rec.get("error"):
        lines += ["- It failed; last lines of its log:", "", "```", rec["error"], "```"]
    return lines


def attempts_text(build: dict[str, Any], verify: int) -> list[str]:
    """The build as specified and its fallbacks, each with its exact error; nothing when the first went through."""
    attempts = build.get("attempts") or [{"error": build.get("error"), "seconds": build.get("seconds")}]
    if attempts[0]["error"] is None:
        return []
    names = [f"Build as specified (`--max-fps --verify {verify}`)"] + [f"Fallback: {a['label']}" for a in attempts[1:]]
    lines = [f"- {name}: " + (f"**failed** after {a['seconds']:g} s: `{a['error']}`" if a["error"] else
                              f"went through ({a['seconds']:g} s).") for name, a in zip(names, attempts)]
    if build.get("error") is None:
        lines.append(f"- The figures below come from the last fallback ({attempts[-1]['label']}).")
    return lines + [""]


def code_text(code: dict[str, Any] | None) -> str:
    """Which code the figures come from: the commit, and the uncommitted files the run used."""
    extra = ", ".join(f"`{p}`" for p in (code or {}).get("uncommitted", []))
    return "Code: not recorded." if not code else f"Code: commit {code['commit']}" + (
        f" plus the uncommitted changes (work in progress) in {extra}." if extra else ", clean.")


def to_markdown(record: dict[str, Any]) -> str:
    """The report: models, estimates vs published vs SetFolding, RTL simulation, step times."""
    v = record["versions"]
    lines = ["# Third-party Brevitas models through qdet: estimates vs FINN's published figures, RTL simulation", "",
             f"Measured {record['date']} on {record['machine']} (no FPGA tools; other sessions' jobs shared the "
             f"cores, so wall times are contended), brevitas {v.get('brevitas')}, finn-plus {v.get('finn-plus')}, "
             f"torch {v.get('torch')}, Verilator {v.get('verilator')} under cocotb {v.get('cocotb')}. Total wall time "
             f"{record['total_seconds'] / 60:.1f} min.", "", code_text(record.get("code")), "",
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
        for a in b.get("attempts") or [{"label": "as specified", "verify": b.get("verify")}]:
            ver = a.get("verify")
            if ver:
                lines.append(f"- Golden model ({a['label']}): {ver['images']} images ({ver['image_source']}), "
                             f"{ver['mismatches']} mismatches (images {ver['mismatched_images'] or 'none'}) against "
                             f"{ver['reference']}.")
        x32 = b.get("float32_crosscheck")
        if x32:
            lines.append(f"- Informative: the same golden outputs against a *float32* QONNX execution of the export "
                         f"(onnxruntime): {len(x32['differing_images'])} of {x32['images']} images differ "
                         f"({x32['differing_accumulators']} accumulators; images {x32['differing_images'] or 'none'}). "
                         "float32 rounds each conv sum in an order of its own, so activations near a rounding tie "
                         "land on either level: the exact (float64) execution is the reference.")
            for f in x32.get("first_flips") or []:
                if f.get("layer"):
                    lines.append(f"  - image {f['image']}: float32 first rounds {f['activations']} of {f['of']:,} "
                                 f"activations of `{f['layer']}` differently; their exact distance to a rounding tie "
                                 f"is at most {f['max_distance_to_tie']:.1e} of a step (float32 noise)")
                else:
                    lines.append(f"  - image {f['image']}: no activation level differs; the head's float32 output "
                                 "rounding does")
        xt = b.get("torch_crosscheck")
        if xt:
            lines.append(f"- Informative: against Brevitas' own float32 evaluation (the torch model): "
                         f"{len(xt['differing_images'])} of {xt['images']} images differ "
                         f"({xt['differing_accumulators']} accumulators; images {xt['differing_images'] or 'none'}).")
        g = b.get("golden_outputs") or {}
        if "distinct_values" in g:
            lines.append(f"- Golden outputs: {g['elements_per_frame']:,} integers per frame, {g['distinct_values']:,} "
                         f"distinct values, {100 * g['nonzero_share']:.0f}% non-zero (the simulation compares these).")
    sims = [dict(r, network="CNV W2A2") for r in record.get("cnv_sim") or []]
    sims += [dict(e, network="MobileNet-v1 W4A4", error=None) for e in (record.get("mobilenet_sim") or {}).get(
        "events", []) if e["event"] in ("done", "steady")]
    lines += ["", "## RTL simulation (Verilator, cocotb; bit-exact against the golden outputs)", ""]
    if sims:
        lines += sim_table(sims) + [""]
    lines += mobilenet_sim_text(record.get("mobilenet_sim"))
    builds = [n.get("build_record") or {} for n in record["networks"]]
    lines += ["", "## Build time per step (s)", "", "Steps of the run that went through (a resumed one keeps the "
              "earlier steps' times); the last row adds every attempt.", "",
              "| step | " + " | ".join(n["title"] for n in record["networks"]) + " |", "|---|" + "---|" * len(builds)]
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
