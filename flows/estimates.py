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
        est = node_estimate(op, part)
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


def folding_of_node(op) -> dict[str, int]:
    """PE/SIMD of one node (absent keys for layers without them)."""
    return {k: int(op.get_nodeattr(k)) for k in ("PE", "SIMD") if k in op.get_nodeattr_types()}
