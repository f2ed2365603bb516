"""The folder's cost of each weighted layer of a build: what a hardware-aware compression reads.

One row per MVAU / VVAU of the folded graph, in graph order: its FINN name, LUT and cycle estimate at the
build's folding, and the weight matrix shape that identifies the conv it came from (``rows`` output channels,
``cols`` = input channels / groups x k x k; a VVAU's ``rows`` is its channel count and ``cols`` its k x k)."""

from __future__ import annotations

from typing import Any

from flows.build import HARDWARE_STEP, BuildLayout


def weighted_layer_costs(layout: BuildLayout) -> list[dict[str, Any]]:
    """The MVAU/VVAU rows of a finished build's estimates, with their weight shapes (see the module docstring)."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.custom_op.registry import getCustomOp

    layout.check_existing()
    est = {row["name"]: row for row in layout.read_estimates()["layers"]}
    model = ModelWrapper(str(layout.step_checkpoint(HARDWARE_STEP)))
    rows = []
    for node in model.graph.node:
        if node.name not in est or not node.op_type.startswith(("MVAU", "VVAU")):
            continue
        op = getCustomOp(node)
        if node.op_type.startswith("MVAU"):
            shape = (int(op.get_nodeattr("MH")), int(op.get_nodeattr("MW")))
        else:
            k = [int(v) for v in op.get_nodeattr("Kernel")]
            shape = (int(op.get_nodeattr("Channels")), k[0] * k[1])
        rows.append({"name": node.name, "op_type": node.op_type, "lut": float(est[node.name]["lut"]),
                     "cycles": int(est[node.name]["cycles"]), "rows": shape[0], "cols": shape[1],
                     "depthwise": not node.op_type.startswith("MVAU")})
    return rows
