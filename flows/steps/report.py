"""Step 5: estimates and reports — ``BUILD/report/{estimates.json, folding.json, summary.md, estimates.png}``."""

from __future__ import annotations

import json
from typing import Any

from flows.config import FlowConfig
from flows.estimates import estimate, folding_of
from flows.folding import RESOURCES, with_attrs
from flows.steps.fold import PEER

REPORT = "report"


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


def summary_markdown(est: dict[str, Any]) -> str:
    """The human-readable report."""
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
    if peer:
        rows = [("qdet", est), ("FINN SetFolding", peer)]
        if est.get("qdet_at_finn_fps"):
            rows.append(("qdet at FINN's cycles", est["qdet_at_finn_fps"]))
        lines += ["", f"## Against FINN's SetFolding (target {peer['target_cycles']:,} cycles per frame)", "",
                  "| folding | cycles/frame | FPS | LUT | BRAM18 | URAM | DSP | fits budget |",
                  "|---|---|---|---|---|---|---|---|"]
        lines += [f"| {label} | {r['cycles_per_frame']:,} | {r['fps']:.1f} | {r['lut']:,.0f} | {r['bram18']:g} | "
                  f"{r['uram']:g} | {r['dsp']:g} | {'yes' if r['fits'] else 'no'} |" for label, r in rows]
        lines += ["", f"qdet: {est['comparison']['verdict']}."]
    lines += ["", "Estimates are FINN's per-layer models (HLS MVAU LUT model; RTL sliding windows and padding, HLS "
              "pool), not synthesis results."]
    return "\n".join(lines) + "\n"


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


def step_report(model, cfg: FlowConfig):
    """Estimate the folded graph, compare with FINN's SetFolding, write the reports."""
    out = cfg.out / REPORT
    out.mkdir(exist_ok=True)
    est = estimate(model, cfg.target, cfg.clock)
    peer_path = cfg.out / PEER
    if peer_path.is_file():
        peer = json.loads(peer_path.read_text())
        keys = ("fps", "cycles_per_frame", *RESOURCES, "fits")
        peer_est = estimate(with_attrs(model, peer["folding"]), cfg.target, cfg.clock)
        est["finn_setfolding"] = {"target_cycles": peer["target_cycles"], **{k: peer_est[k] for k in keys}}
        iso = None
        if "qdet_at_finn_cycles" in peer:
            iso_est = estimate(with_attrs(model, peer["qdet_at_finn_cycles"]), cfg.target, cfg.clock)
            iso = est["qdet_at_finn_fps"] = {k: iso_est[k] for k in keys}
        est["comparison"] = compare(est, peer_est, iso)
    (out / "estimates.json").write_text(json.dumps(est, indent=2, sort_keys=True) + "\n")
    (out / "folding.json").write_text(json.dumps(folding_of(model), indent=2, sort_keys=True) + "\n")
    (out / "summary.md").write_text(summary_markdown(est))
    plot(est, out / "estimates.png")
    return model
