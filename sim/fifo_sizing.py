"""FIFO sizing by RTL simulation: the reconvergent FIFOs' computed depths, confirmed (and trimmed or deepened) by the
largest occupancy each reaches in a run where none of them can fill.

The flow's sizing (flows/transforms/fifo_sizing.py) computes, per FIFO in front of a join input, the exact deadlock
bound and a depth for the estimated rate. ``size_fifos`` makes each of those FIFOs ``headroom`` times deeper,
simulates frames back to back without backpressure, reads every FIFO's largest occupancy, and sets the depth to
what the run used (never below the deadlock bound, nor below the depth its consumer needs anyway), rounded up to a
power of two. A FIFO that reached its deepened
depth could not be sized this way (the run stalled on it): the result says so and keeps the larger depth.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from flows.build import BuildLayout


def size_fifos(build: Path | BuildLayout, cfg, headroom: int = 4) -> dict[str, dict]:
    """Measure and set the reconvergent FIFOs' depths of ``build`` (``cfg``: a :class:`sim.network.SimConfig`,
    run without backpressure, at least 2 frames); returns the updated sizing record (also written to the build's
    fifo_sizing.json). A build without reconvergent FIFOs returns {} and changes nothing."""
    from flows.steps.links import set_fifo_depths
    from flows.transforms.insert_fifos import pow2_at_least
    from sim.network import SimError, simulate

    layout = BuildLayout.of(build)
    record = layout.read_optional(layout.fifo_sizing) or {}
    if not record:
        return {}
    deep = {name: pow2_at_least(r["depth"] * headroom) for name, r in record.items()}
    set_fifo_depths(layout, deep)
    result = simulate(layout, replace(cfg, images=max(2, cfg.images), backpressure=0.0, output_stall=None),
                      regenerate=True)
    if result.status != "done" or result.mismatches:
        set_fifo_depths(layout, {name: r["depth"] for name, r in record.items()})
        raise SimError(f"FIFO sizing run with {headroom}x deeper FIFOs did not finish bit-exact: {result.message}")
    seen = {f["fifo"]: f["max_occupancy"] for f in result.fifo_occupancy}
    depths = {}
    for name, r in record.items():
        occupancy = seen.get(name, 0)
        full = occupancy >= deep[name]
        depths[name] = deep[name] if full else pow2_at_least(max(r["deadlock_depth"], occupancy,
                                                                 r.get("base_depth", 2)))
        record[name] = {**r, "sim_max_occupancy": occupancy, "model_depth": r.get("model_depth", r["depth"]),
                        "depth": depths[name], "sized_by": "simulation (filled its deepened FIFO)" if full
                        else "simulation"}
    set_fifo_depths(layout, depths)
    layout.fifo_sizing.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    return record
