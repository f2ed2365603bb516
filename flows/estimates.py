"""Per-layer and total estimates of a folded graph (FINN's cycle and resource models), against the board budget."""

from __future__ import annotations

from typing import Any

from boards.catalogue import Board
from flows.folding import RESOURCES, node_estimate


def folding_of(model) -> dict[str, dict[str, int]]:
    """PE/SIMD of every node that has them."""
    from qonnx.custom_op.registry import getCustomOp

    return {node.name: folding_of_node(getCustomOp(node)) for node in model.graph.node}


def estimate(model, board: Board, clock_mhz: float) -> dict[str, Any]:
    """Cycles, initiation interval, FPS, latency and resources per layer and in total.

    The initiation interval of the pipeline is its slowest layer's cycles per frame (the bottleneck). The latency
    is the sum of the layers' cycles: an upper bound for a linear pipeline (each layer may start before its
    predecessor finishes), the same pessimism as FINN's critical-path figure."""
    from qonnx.custom_op.registry import getCustomOp

    part = board.part
    layers = []
    for node in model.graph.node:
        op = getCustomOp(node)
        est = node_estimate(op, part, model)
        layers.append({"name": node.name, "op_type": node.op_type, **folding_of_node(op), **est})
    ii = max(layer["cycles"] for layer in layers)
    bottleneck = next(layer["name"] for layer in layers if layer["cycles"] == ii)
    latency = sum(layer["cycles"] for layer in layers)
    totals = {r: sum(layer[r] for layer in layers) for r in RESOURCES}
    budget = board.budget.as_dict()
    return {
        "board": board.name, "part": part, "clock_mhz": clock_mhz,
        "fps": clock_mhz * 1e6 / ii, "cycles_per_frame": ii, "ii_cycles": ii,
        "latency_cycles": latency, "latency_us": latency / clock_mhz, "bottleneck": bottleneck,
        **totals,
        "budget": {r: budget[r] for r in RESOURCES},
        "utilisation_of_budget": {r: (totals[r] / budget[r] if budget[r] else 0.0) for r in RESOURCES},
        "fits": all(totals[r] <= budget[r] for r in RESOURCES),
        "layers": layers,
    }


FOLDING_ATTRS = ("PE", "SIMD", "parallel_window")


def folding_of_node(op) -> dict[str, int | str]:
    """PE/SIMD (an RTL sliding window's parallel_window mode, a weighted layer's weight memory style) of one node;
    absent keys for layers without them."""
    types = op.get_nodeattr_types()
    out: dict[str, int | str] = {k: int(op.get_nodeattr(k)) for k in FOLDING_ATTRS if k in types}
    if "ram_style" in types and ("MW" in types or "Kernel" in types):  # MVAU, VVAU
        out["ram_style"] = str(op.get_nodeattr("ram_style"))
    if "MW" in types and str(op.get_nodeattr("resType")) in ("lut", "dsp"):  # an MVAU's MAC lanes, when chosen
        out["resType"] = str(op.get_nodeattr("resType"))
    return out


# --- estimate next to synthesis (qdet synth) and simulation (qdet sim) -----------------------------------------

SYNTH_RESOURCES = ("lut", "ff", "bram18", "uram", "dsp")


def _synth_row(row: dict[str, Any]) -> dict[str, Any]:
    """A synthesis row's resources and its longest combinational path (None in records from before ltp)."""
    return {**{r: row[r] for r in SYNTH_RESOURCES}, "longest_path": row.get("longest_path")}


def side_by_side(est: dict[str, Any], synth: dict[str, Any] | None = None,
                 sim: dict[str, Any] | None = None, csim: dict[str, Any] | None = None) -> dict[str, Any]:
    """Estimate (FINN's models), synthesis (yosys) and the board budget, in total and per layer; the simulation's
    cycles per frame and FPS next to the estimated ones.

    Layers join on the FINN node name (the estimate's ``name``, the synthesis row's ``name``); synthesis rows with no
    estimate (FIFOs, width converters, the top's own glue) are listed after the layers. FF has no FINN estimate; its
    budget comes from the board catalogue."""
    from boards.catalogue import get_board

    budget = {**est["budget"], "ff": get_board(est["board"]).budget.ff}
    out: dict[str, Any] = {"board": est["board"], "clock_mhz": est["clock_mhz"], "budget": budget,
                           "estimate": {r: est[r] for r in RESOURCES}}
    if synth is not None:
        total = {r: synth["total"][r] for r in SYNTH_RESOURCES}
        by_name = {row["name"]: row for row in synth["layers"]}
        layers = []
        for layer in est["layers"]:
            row = by_name.pop(layer["name"], None)
            layers.append({"name": layer["name"], "op_type": layer["op_type"],
                           "estimate": {r: layer[r] for r in RESOURCES},
                           "synthesis": None if row is None else _synth_row(row)})
        extra = [{"name": row["name"], "op_type": row["module"], "kind": row["kind"], "estimate": None,
                  "synthesis": _synth_row(row)} for row in by_name.values()]
        glue = synth.get("top_glue", {})
        if any(glue.get(r) for r in SYNTH_RESOURCES):
            extra.append({"name": "(top glue)", "op_type": synth.get("top", ""), "kind": "glue", "estimate": None,
                          "synthesis": {r: glue.get(r, 0) for r in SYNTH_RESOURCES}})
        out["synthesis"] = {
            "total": total, "layers": layers, "extra": extra, "family": synth.get("family"),
            "tool": f"{synth.get('tool', 'yosys')} ({synth.get('yosys_version', '?')})",
            "seconds": synth.get("seconds"),
            "of_budget": {r: (total[r] / budget[r] if budget.get(r) else None) for r in SYNTH_RESOURCES},
            "fits": all(total[r] <= budget[r] for r in SYNTH_RESOURCES),
            "lut_vs_estimate": total["lut"] / est["lut"] if est["lut"] else None,
            "longest_path": synth.get("longest_path"),
        }
    if csim is not None:  # the C++ backend's C simulation (sim/cpp/result.json): exactness, no cycles
        out["c_simulation"] = {k: csim.get(k) for k in ("status", "frames", "mismatches", "frames_per_s", "message")}
        out["c_simulation"]["full_streams"] = [s["link"] for s in csim.get("streams", [])
                                               if s.get("capacity", s["depth"]) == s["depth"] > 2
                                               and s["max_occupancy"] >= s["depth"]]
    if sim is not None and sim.get("cycles_per_frame"):
        clock = sim.get("clock_mhz") or est["clock_mhz"]
        cycles = sim["cycles_per_frame"]
        out["simulation"] = {
            "simulator": sim.get("simulator"), "frames": sim.get("frames"), "mismatches": sim.get("mismatches"),
            "cycles_per_frame": cycles, "fps": sim.get("fps") or clock * 1e6 / cycles,
            "latency_cycles": sim.get("latency_cycles"), "clock_mhz": clock,
            "estimate_cycles_per_frame": est["cycles_per_frame"], "estimate_fps": est["fps"],
            "cycles_vs_estimate": cycles / est["cycles_per_frame"],
        }
    return out
