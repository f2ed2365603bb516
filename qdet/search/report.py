"""The search's results: every trial's figures, the non-dominated (Pareto) trials, where the hand-designed models
fall, ``report.md``, ``front.json`` and the plots (mAP vs FPS, mAP vs LUT, mAP vs energy per frame).

The front is over the *feasible* completed trials (they fit the board, and reach the FPS target when there is
one) in the study's three objectives; infeasible trials are listed and drawn greyed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def dominates(a: Sequence[float], b: Sequence[float], directions: Sequence[str]) -> bool:
    """Whether ``a`` is at least as good as ``b`` in every objective and better in one (``directions``:
    ``maximize`` / ``minimize`` per objective).

    >>> dominates((0.5, 10), (0.4, 10), ("maximize", "minimize")), dominates((0.5, 11), (0.4, 10), ("maximize", "minimize"))
    (True, False)
    """
    sign = [1.0 if d == "maximize" else -1.0 for d in directions]
    better = [s * x - s * y for s, x, y in zip(sign, a, b)]
    return all(d >= 0 for d in better) and any(d > 0 for d in better)


def non_dominated(points: Sequence[Sequence[float]], directions: Sequence[str]) -> list[int]:
    """Indices of the points no other point dominates (equal points all stay), in input order."""
    return [i for i, p in enumerate(points)
            if not any(dominates(q, p, directions) for j, q in enumerate(points) if j != i)]


@dataclass(frozen=True)
class Row:
    """One completed trial, as the report shows it."""

    number: int
    label: str
    zoo: str | None
    feasible: bool
    values: tuple[float, ...]
    attrs: dict[str, Any]


def rows_of(study) -> list[Row]:
    """The study's completed trials, by number."""
    from optuna.trial import TrialState

    rows = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        rows.append(Row(t.number, t.user_attrs.get("label", str(t.params)), t.user_attrs.get("zoo"),
                        bool(t.user_attrs.get("feasible")), tuple(t.values), dict(t.user_attrs)))
    return sorted(rows, key=lambda r: r.number)


def front_of(rows: list[Row], directions: Sequence[str]) -> list[Row]:
    """The non-dominated feasible rows."""
    feasible = [r for r in rows if r.feasible]
    return [feasible[i] for i in non_dominated([r.values for r in feasible], directions)]


def placement(row: Row, rows: list[Row], directions: Sequence[str]) -> dict[str, Any]:
    """Where ``row`` (a hand-designed point) falls: on the front, or dominated by which feasible trials."""
    if not row.feasible:
        return {"on_front": False, "dominated_by": [], "text": f"infeasible ({row.attrs.get('constraint')})"}
    by = [r.number for r in rows if r.feasible and dominates(r.values, row.values, directions)]
    text = "on the front" if not by else f"dominated by trial{'s' if len(by) > 1 else ''} {', '.join(map(str, by))}"
    return {"on_front": not by, "dominated_by": by, "text": text}


def summary(cfg, study) -> dict[str, Any]:
    """front.json's content: the study's counts, every completed trial, the front and the zoo's placement."""
    from optuna.trial import TrialState

    directions = cfg.directions
    rows = rows_of(study)
    front = front_of(rows, directions)
    counts = {s.name.lower(): len(study.get_trials(deepcopy=False, states=(s,))) for s in TrialState}
    everything = study.get_trials(deepcopy=False)
    retried = {t.system_attrs["failed_trial"]: t.number for t in everything if "failed_trial" in t.system_attrs}
    failed = [{"number": t.number, "retried_as": retried.get(t.number),
               "reason": t.system_attrs.get("fail_reason", "its worker died (heartbeat stale)")}
              for t in everything if t.state == TrialState.FAIL]
    return {"study": cfg.study_name, "board": cfg.board, "target_fps": cfg.target_fps,
            "objectives": cfg.objective_names, "directions": directions, "counts": counts,
            "feasible": sum(r.feasible for r in rows), "front": [r.number for r in front], "failed": failed,
            "zoo": {r.zoo: {"trial": r.number, **placement(r, rows, directions)} for r in rows if r.zoo},
            "trials": [{"number": r.number, "label": r.label, "zoo": r.zoo, "feasible": r.feasible,
                        "values": list(r.values), **{k: v for k, v in r.attrs.items() if k not in ("label", "zoo")}}
                       for r in rows]}


def _n(value: Any, spec: str = ",.0f") -> str:
    return "n/a" if value is None else format(value, spec)


def markdown(cfg, data: dict[str, Any]) -> str:
    """report.md."""
    trials = {t["number"]: t for t in data["trials"]}
    c = data["counts"]
    target = "max FPS" if cfg.target_fps is None else f"{cfg.target_fps:g} FPS"
    lines = [f"# qdet search `{cfg.study_name}`: {cfg.board}, {target}", "",
             f"{c['complete']} trials complete ({data['feasible']} feasible), {c['fail']} failed, {c['running']} "
             f"running. Objectives: {', '.join(f'{o} ({d})' for o, d in zip(data['objectives'], data['directions']))}."
             f" Budget per trial: {cfg.budget.epochs} QAT epoch(s) with distillation"
             f" (+{cfg.budget.finetune_epochs} fine-tune after pruning / factorizing), input "
             f"{'default' if cfg.budget.input_size is None else 'x'.join(map(str, cfg.budget.input_size))}, "
             f"{cfg.budget.device}.", "",
             f"## Non-dominated trials ({len(data['front'])})", "",
             "| trial | model | mAP@0.5 | FPS | LUT | BRAM18 | DSP | energy uJ/frame | GBOPs | weight KiB |",
             "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for n in sorted(data["front"], key=lambda k: -trials[k]["map50"]):
        t = trials[n]
        zoo = f" ({t['zoo']})" if t.get("zoo") else ""
        lines.append(f"| {n} | {t['label']}{zoo} | {t['map50']:.3f} | {_n(t.get('fps'))} | {_n(t.get('lut'))} | "
                     f"{_n(t.get('bram18'))} | {_n(t.get('dsp'))} | {_n(t.get('energy_uj'), ',.1f')} | "
                     f"{t['bops'] / 1e9:.3f} | {t['weight_bits'] / 8 / 1024:.1f} |")
    lines += ["", "## Hand-designed models", ""]
    for label, z in data["zoo"].items():
        t = trials[z["trial"]]
        lines.append(f"- **{label}** (trial {z['trial']}): mAP@0.5 {t['map50']:.3f}, {_n(t.get('fps'))} FPS, "
                     f"{_n(t.get('lut'))} LUT, {_n(t.get('energy_uj'), ',.1f')} uJ: {z['text']}")
    if not data["zoo"]:
        lines.append("- none measured (the space holds neither tinydet nor mobiledet W4A4 at width 1)")
    bad = [t for t in data["trials"] if not t["feasible"]]
    lines += ["", f"## Infeasible trials ({len(bad)})", ""]
    lines += [f"- trial {t['number']} {t['label']}: {t.get('constraint')}: {t.get('message')}" for t in bad] or ["- none"]
    if data["failed"]:
        lines += ["", f"## Failed trials ({len(data['failed'])})", ""]
        lines += [f"- trial {f['number']}: {f['reason']}" + (f"; retried as trial {f['retried_as']}"
                                                            if f["retried_as"] is not None else "")
                  for f in data["failed"]]
    lines += ["", "## All completed trials", "",
              "| trial | model | feasible | mAP@0.5 | FPS | LUT | energy uJ | seconds |", "|---:|---|---|---:|---:|---:|---:|---:|"]
    for t in data["trials"]:
        secs = sum((t.get("seconds") or {}).values())
        lines.append(f"| {t['number']} | {t['label']} | {'yes' if t['feasible'] else 'no'} | {t['map50']:.3f} | "
                     f"{_n(t.get('fps'))} | {_n(t.get('lut'))} | {_n(t.get('energy_uj'), ',.1f')} | {secs:.0f} |")
    lines += ["", f"Rebuild and C-simulate the front: `qdet search-best {cfg.out}`.", ""]
    return "\n".join(lines)


def plot(cfg, data: dict[str, Any], path: Path) -> None:
    """Three panels, mAP against FPS, LUT and energy per frame: feasible trials, the non-dominated ones joined by
    each panel's own 2-D front, infeasible ones greyed (at the panel's edge when the folder refused them), the
    hand-designed models starred and named."""
    from matplotlib.ticker import FuncFormatter

    from quant_models.plots import png_figure

    trials = data["trials"]
    front = set(data["front"])
    panels = (("fps", "FPS (estimate)", "maximize"), ("lut", "LUT (estimate)", "minimize"),
              ("energy_uj", "energy per frame, uJ (estimate)", "minimize"))
    with png_figure(path, 3, (15, 4.2)) as (fig, axes):
        for ax, (key, label, sense) in zip(axes, panels):
            built = [t for t in trials if t.get(key) is not None]
            feasible = [t for t in built if t["feasible"]]
            ax.scatter([t[key] for t in feasible], [t["map50"] for t in feasible], s=18, color="C0",
                       label="feasible trial")
            grey = [t for t in built if not t["feasible"]]
            if grey:
                ax.scatter([t[key] for t in grey], [t["map50"] for t in grey], s=18, color="0.7", marker="x",
                           label="infeasible (does not fit)")
            refused = [t for t in trials if t.get(key) is None]
            if refused and built:
                edge = min(t[key] for t in built) if sense == "maximize" else max(t[key] for t in built)
                ax.scatter([edge] * len(refused), [t["map50"] for t in refused], s=18, color="0.7", marker="|",
                           label="infeasible (folder refused; drawn at the edge)")
            on = [t for t in feasible if t["number"] in front]
            ax.scatter([t[key] for t in on], [t["map50"] for t in on], s=40, facecolors="none", edgecolors="C3",
                       label="non-dominated (3 objectives)")
            pts = [(t[key], t["map50"]) for t in feasible]
            idx = non_dominated(pts, (sense, "maximize"))
            stair = sorted((pts[i] for i in idx), reverse=sense == "maximize")
            ax.plot([p[0] for p in stair], [p[1] for p in stair], color="C3", lw=1, drawstyle="steps-post")
            for t in (t for t in trials if t.get("zoo") and t.get(key) is not None):
                ax.scatter([t[key]], [t["map50"]], s=140, marker="*", color="C2", zorder=3)
                ax.annotate(t["zoo"], (t[key], t["map50"]), textcoords="offset points", xytext=(5, 5), fontsize=8)
            if key == "lut" and built:
                ax.axvline(built[0]["budget"]["lut"], color="0.5", ls="--", lw=1, label="LUT budget")
            if key == "lut":
                ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v / 1000:g}k"))
            else:
                ax.set_xscale("log")
                ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
                ax.xaxis.set_minor_formatter(FuncFormatter(_minor_label))
            ax.set_xlabel(label)
            ax.set_ylabel("val mAP@0.5")
            ax.set_title(f"mAP@0.5 vs {label.split(' (')[0].split(',')[0]}")
        axes[0].legend(fontsize=7, loc="best")
        fig.suptitle(f"qdet search on {cfg.board} ({len(trials)} trials, {len(front)} non-dominated)")


def _minor_label(value: float, _pos: int) -> str:
    """Label the 2x and 5x minor ticks of a log axis (a decade or less of FPS has no major tick in between)."""
    lead = f"{value:.0e}"[0]
    return f"{value:,.0f}" if lead in "25" else ""


def write_report(cfg, study) -> dict[str, Any]:
    """Write front.json, report.md and the plots into the search folder; returns front.json's content."""
    layout = cfg.layout
    data = summary(cfg, study)
    layout.front.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
    layout.report.write_text(markdown(cfg, data))
    if data["trials"]:
        plot(cfg, data, layout.plots)
    return data
