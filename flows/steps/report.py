"""The report step: estimates, the folding, FINN's SetFolding beside ours, the summary and its plot (the
build's ``report_dir``, see flows/build.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from flows.build import BuildLayout
from flows.config import FlowConfig
from flows.estimates import SYNTH_RESOURCES, estimate, folding_of, side_by_side
from flows.folding import RESOURCES, with_attrs


def compare(ours: dict[str, Any], finn: dict[str, Any], iso: dict[str, Any] | None) -> dict[str, Any]:
    """Ours against FINN's SetFolding: the bar is at least FINN's FPS with no more LUTs.

    ``iso`` is our folding for FINN's cycles per frame (when those differ from ours): the same throughput, so the
    LUTs compare like for like, also when FINN's folding overshoots the target or the budget."""
    reaching = [c for c in (ours, iso) if c is not None and c["fps"] >= finn["fps"] * (1 - 1e-9)]
    best_lut = min((c["lut"] for c in reaching), default=None)
    parts = []
    if not reaching:
        parts.append(f"{finn['fps'] - ours['fps']:.1f} FPS below FINN")
    elif best_lut > finn["lut"]:
        parts.append(f"{best_lut - finn['lut']:.0f} LUT above FINN at FINN's FPS")
    return {"meets_bar": not parts, "fps_ratio": ours["fps"] / finn["fps"],
            "lut_ratio_same_fps": best_lut / finn["lut"] if best_lut is not None and finn["lut"] else None,
            "verdict": ("at least FINN's FPS, and no more LUTs at FINN's FPS" if not parts
                        else "falls short: " + "; ".join(parts))}


def summary_markdown(est: dict[str, Any], synth: dict[str, Any] | None = None,
                     sim: dict[str, Any] | None = None, csim: dict[str, Any] | None = None) -> str:
    """The human-readable report, the one cross-stage summary: with ``synth`` (utilization.json), ``sim`` (the RTL
    simulation's result.json) and ``csim`` (the C simulation's) also those figures next to the estimate."""
    lines = [f"# Build estimate: {est['board']} ({est['part']}) at {est['clock_mhz']:g} MHz", "",
             f"**{est['fps']:.1f} FPS**, {est['cycles_per_frame']:,} cycles per frame (bottleneck "
             f"`{est['bottleneck']}`), latency {est['latency_us']:.1f} us ({est['latency_cycles']:,} cycles, "
             "upper bound).", "",
             "| layer | op | PE | SIMD | cycles | LUT | BRAM18 | URAM | DSP |", "|---|---|---|---|---|---|---|---|---|"]
    for layer in est["layers"]:
        lines.append(f"| {layer['name']} | {layer['op_type']} | {layer.get('PE', '')} | {layer.get('SIMD', '')} | "
                     f"{layer['cycles']:,} | {layer['lut']:,.0f} | {layer['bram18']:g} | {layer['uram']:g} | "
                     f"{layer['dsp']:g} |")
    lines.append(f"| **total** | | | | | **{est['lut']:,.0f}** | **{est['bram18']:g}** | **{est['uram']:g}** | "
                 f"**{est['dsp']:g}** |")
    lines.append(f"| budget | | | | | {est['budget']['lut']:,.0f} | {est['budget']['bram18']:g} | "
                 f"{est['budget']['uram']:g} | {est['budget']['dsp']:g} |")
    peer = est.get("finn_setfolding")
    if peer and "error" in peer:
        lines += ["", f"## Against FINN's SetFolding (target {peer['target_cycles']:,} cycles per frame)", "",
                  f"No comparison: {peer['error']}. The build uses qdet's folding; FINN's is only a reference."]
    elif peer:
        rows = [("qdet", est), ("FINN SetFolding", peer)]
        if est.get("qdet_at_finn_fps"):
            rows.append(("qdet at FINN's cycles", est["qdet_at_finn_fps"]))
        lines += ["", f"## Against FINN's SetFolding (target {peer['target_cycles']:,} cycles per frame)", "",
                  "| folding | cycles/frame | FPS | LUT | BRAM18 | URAM | DSP | fits budget |",
                  "|---|---|---|---|---|---|---|---|"]
        lines += [f"| {label} | {r['cycles_per_frame']:,} | {r['fps']:.1f} | {r['lut']:,.0f} | {r['bram18']:g} | "
                  f"{r['uram']:g} | {r['dsp']:g} | {'yes' if r['fits'] else 'no'} |" for label, r in rows]
        lines += ["", f"qdet: {est['comparison']['verdict']}."]
    lines += links_markdown(est)
    lines += ["", "Estimates, not synthesis results: cycles are FINN's; LUTs are qdet's yosys-calibrated models of "
              "its MAC lanes (where the folder chose them, flows/mac_costs.py) and of its sliding windows, "
              "paddings, width converters and max pools (flows/stream_costs.py), FINN's models elsewhere; block "
              "RAM, UltraRAM and DSPs FINN's (the MVAUs' widened to their packed words, DSPs counted by the "
              "packing)."]
    if synth is not None or sim is not None or csim is not None:
        lines += measured_markdown(side_by_side(est, synth, sim, csim))
    return "\n".join(lines) + "\n"


def links_markdown(est: dict[str, Any]) -> list[str]:
    """The stream links' share of the estimate, and the reconvergent FIFOs' computed depths and their cost."""
    links = est.get("links")
    if not links:
        return []
    lines = ["", f"Stream links: {links['fifos']} FIFOs and {links['dwcs']} width converters, {links['lut']:,.0f} LUT "
             f"and {links['bram18']:g} BRAM18 of the total above."]
    sized = est.get("fifo_sizing") or []
    if sized:
        lines += ["", "## Reconvergent FIFOs (report/fifo_sizing.json)", "",
                  "| FIFO | join input | fork | deadlock bound | depth built | sim. max occupancy | LUT | BRAM18 |",
                  "|---|---|---|---|---|---|---|---|"]
        lines += [f"| {r['fifo']} | {r['join']} input {r['join_input']} | {r['fork']} | {r['deadlock_depth']} | "
                  f"{r['depth']} | {r.get('sim_max_occupancy', '-')} | {r['lut']:,.0f} | {r['bram18']:g} |"
                  for r in sized]
        lines += ["", "Deadlock bound: the fewest beats that never deadlock (one fewer stops the pipeline); the depth "
                  "built adds the long branch's latency so the join keeps the estimated rate."]
    return lines


def links_record(layout: BuildLayout, est: dict[str, Any]) -> dict[str, Any]:
    """``links`` (count and cost of the FIFOs and width converters) and ``fifo_sizing`` (each sized FIFO with
    its estimate) for the estimates record."""
    layers = {l["name"]: l for l in est["layers"]}
    fifos = [l for l in est["layers"] if l["op_type"].startswith("StreamingFIFO")]
    dwcs = [l for l in est["layers"] if l["op_type"].startswith("StreamingDataWidthConverter")]
    out: dict[str, Any] = {"links": {"fifos": len(fifos), "dwcs": len(dwcs),
                                     "lut": sum(l["lut"] for l in fifos + dwcs),
                                     "bram18": sum(l["bram18"] for l in fifos + dwcs)}}
    sizing = layout.read_optional(layout.fifo_sizing) or {}
    out["fifo_sizing"] = [{"fifo": name, **rec, "lut": layers.get(name, {}).get("lut", 0.0),
                           "bram18": layers.get(name, {}).get("bram18", 0.0)} for name, rec in sorted(sizing.items())]
    return out


def _n(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def measured_markdown(both: dict[str, Any]) -> list[str]:
    """Sections putting synthesis and simulation next to the estimate (``both`` from ``side_by_side``)."""
    lines: list[str] = []
    syn, budget, est = both.get("synthesis"), both["budget"], both["estimate"]
    if syn is not None:
        heads = ("LUT", "FF", "BRAM18", "URAM", "DSP")
        lines += ["", f"## Estimate vs synthesis vs budget ({syn['tool']}, family {syn['family']}, "
                      f"{syn['seconds']:g} s)", "",
                  "| | " + " | ".join(heads) + " |", "|---|" + "---|" * len(heads),
                  "| estimate (FINN models) | " + " | ".join(_n(est.get(r)) for r in SYNTH_RESOURCES) + " |",
                  "| synthesis (yosys) | " + " | ".join(_n(syn["total"][r]) for r in SYNTH_RESOURCES) + " |",
                  "| budget | " + " | ".join(_n(budget[r]) for r in SYNTH_RESOURCES) + " |",
                  "| synthesis / budget | " + " | ".join(_pct(syn["of_budget"][r]) for r in SYNTH_RESOURCES) + " |",
                  "", f"Synthesis {'fits' if syn['fits'] else 'does NOT fit'} the budget; synthesized LUTs are "
                      f"{_pct(syn['lut_vs_estimate'])} of the estimate. Yosys runs 4-30% more LUTs than Vivado on "
                      "the same designs (published Artix-7 comparison): treat these as upper-side estimates.", "",
                  "| layer | op | LUT est | LUT synth | FF synth | BRAM18 est | BRAM18 synth | URAM est | URAM synth | "
                  "DSP est | DSP synth | longest path (cells) |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for row in syn["layers"] + syn["extra"]:
            e, y = row["estimate"] or {}, row["synthesis"] or {}
            lines.append(f"| {row['name']} | {row['op_type']} | {_n(e.get('lut'))} | {_n(y.get('lut'))} | "
                         f"{_n(y.get('ff'))} | {_n(e.get('bram18'))} | {_n(y.get('bram18'))} | {_n(e.get('uram'))} | "
                         f"{_n(y.get('uram'))} | {_n(e.get('dsp'))} | {_n(y.get('dsp'))} | "
                         f"{_n(y.get('longest_path'))} |")
        t = syn["total"]
        lines.append(f"| **total** | | **{_n(est['lut'])}** | **{_n(t['lut'])}** | **{_n(t['ff'])}** | "
                     f"**{_n(est['bram18'])}** | **{_n(t['bram18'])}** | **{_n(est['uram'])}** | **{_n(t['uram'])}** | "
                     f"**{_n(est['dsp'])}** | **{_n(t['dsp'])}** | **{_n(syn.get('longest_path'))}** |")
        lines += ["", "Longest path: mapped cells (LUTs, carry blocks, DSPs) on a layer's longest combinational path "
                      "within one module (yosys `ltp`, cut at flip-flops, block RAMs and submodules), the logic depth "
                      "a pipeline stage has to close timing with; `qdet sim/synth --tree-levels N` registers the MAC "
                      "adder trees every N levels."]
    cs = both.get("c_simulation")
    if cs is not None:
        fps = "-" if cs["frames_per_s"] is None else f"{cs['frames_per_s']:,.1f}"
        lines += ["", "## C simulation of the HLS C++ (g++, `qdet sim --backend cpp`)", "",
                  f"**{cs['status']}**, {cs['frames']} frames, {cs['mismatches']} mismatching outputs, {fps} frames/s: "
                  f"{cs['message']}" + (f"; streams filled to their depth: {', '.join(cs['full_streams'])}"
                                        if cs["full_streams"] else "")]
    sim = both.get("simulation")
    if sim is not None:
        frames = "" if sim["frames"] is None else f", {sim['frames']} frames"
        wrong = "" if sim["mismatches"] is None else f", {sim['mismatches']} mismatching outputs"
        latency = "-" if sim["latency_cycles"] is None else f"{sim['latency_cycles']:,}"
        lines += ["", f"## Simulation ({sim['simulator']}{frames}{wrong})", "",
                  "| | cycles/frame | FPS | latency cycles |", "|---|---|---|---|",
                  f"| estimate | {sim['estimate_cycles_per_frame']:,} | {sim['estimate_fps']:.1f} | |",
                  f"| simulation | {sim['cycles_per_frame']:,} | {sim['fps']:.1f} | {latency} |",
                  "", f"Simulated cycles per frame are {_pct(sim['cycles_vs_estimate'])} of the estimate "
                      f"(at {sim['clock_mhz']:g} MHz)."]
    return lines


def load_measured(build: Path | BuildLayout) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The build's synthesis (``qdet synth``) and simulation (``qdet sim``) results, each None when absent."""
    layout = BuildLayout.of(build)
    return layout.read_optional(layout.synth_result), layout.read_optional(layout.sim_result)


def refresh_summary(build: Path | BuildLayout) -> Path:
    """Rewrite the build's summary.md from its estimates plus whatever synthesis / simulation results it holds
    (``qdet synth``, ``qdet sim`` and ``qdet report`` call this); returns its path."""
    layout = BuildLayout.of(build)
    est = layout.read_estimates()
    sizing = layout.read_optional(layout.fifo_sizing) or {}
    for row in est.get("fifo_sizing") or []:  # qdet sim --size-fifos may have measured and reset them since
        row.update({k: v for k, v in sizing.get(row["fifo"], {}).items() if k in ("depth", "sim_max_occupancy")})
    synth, sim = load_measured(layout)
    layout.summary.write_text(summary_markdown(est, synth, sim, layout.read_optional(layout.csim_result)))
    return layout.summary


def plot(est: dict[str, Any], path) -> None:
    """Per-layer cycles (bottleneck highlighted), and each resource's total against the budget."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5), gridspec_kw={"width_ratios": [3, 1]})
    names = [layer["name"] for layer in est["layers"]]
    cycles = [layer["cycles"] for layer in est["layers"]]
    colours = ["tab:red" if n == est["bottleneck"] else "tab:blue" for n in names]
    left.bar(range(len(names)), cycles, color=colours)
    left.set_xticks(range(len(names)), names, rotation=90, fontsize=7)
    left.set_ylabel("cycles per frame")
    left.set_title(f"{est['fps']:.0f} FPS at {est['clock_mhz']:g} MHz (bottleneck in red)")
    shares = [100 * est["utilisation_of_budget"][r] for r in RESOURCES]
    right.bar([r.upper() for r in RESOURCES], shares, color=["tab:red" if s > 100 else "tab:green" for s in shares])
    right.axhline(100, color="black", linestyle="--", linewidth=1)
    right.set_ylabel("% of the board budget")
    right.set_title(est["board"])
    fig.tight_layout()
    fig.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(fig)


def peer_rows(model, cfg: FlowConfig, peer: dict[str, Any], est: dict[str, Any]) -> dict[str, Any]:
    """The estimate's FINN-comparison entries: FINN's folding, ours at FINN's cycles, and the verdict."""
    keys = ("fps", "cycles_per_frame", *RESOURCES, "fits")
    peer_est = estimate(with_attrs(model, peer["folding"]), cfg.target, cfg.clock)
    rows: dict[str, Any] = {"finn_setfolding": {"target_cycles": peer["target_cycles"],
                                                **{k: peer_est[k] for k in keys}}}
    iso = None
    if "qdet_at_finn_cycles" in peer:
        iso_est = estimate(with_attrs(model, peer["qdet_at_finn_cycles"]), cfg.target, cfg.clock)
        iso = rows["qdet_at_finn_fps"] = {k: iso_est[k] for k in keys}
    rows["comparison"] = compare(est, peer_est, iso)
    return rows


def step_report(model, cfg: FlowConfig):
    """Estimate the folded graph, compare with FINN's SetFolding, write the reports."""
    layout = cfg.layout
    layout.report_dir.mkdir(exist_ok=True)
    est = estimate(model, cfg.target, cfg.clock)
    est.update(links_record(layout, est))
    peer_path = layout.finn_setfolding
    peer = json.loads(peer_path.read_text()) if peer_path.is_file() else None
    if peer is not None and "error" in peer:
        est["finn_setfolding"] = {"target_cycles": peer["target_cycles"], "error": peer["error"]}
    elif peer is not None:
        try:
            est.update(peer_rows(model, cfg, peer, est))
        except Exception as exc:  # the comparison is optional: FINN's estimate failing never fails a build
            est["finn_setfolding"] = {"target_cycles": peer["target_cycles"],
                                      "error": f"FINN's estimate of its own folding failed: {type(exc).__name__}: {exc}"}
    layout.estimates.write_text(json.dumps(est, indent=2, sort_keys=True) + "\n")
    layout.folding.write_text(json.dumps(folding_of(model), indent=2, sort_keys=True) + "\n")
    layout.summary.write_text(summary_markdown(est))
    plot(est, layout.estimates_plot)
    return model
