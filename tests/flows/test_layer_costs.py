"""The folder's per-layer costs that hardware-aware pruning reads: one row per weighted layer, matched to the
checkpoint's layers by weight shape, and steering the pruning ratios."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow


def test_every_weighted_layer_has_its_estimate_and_maps_to_its_conv(tiny_build, trained_run):
    from flows.layer_costs import weighted_layer_costs
    from quant_models.checkpoint import load_model
    from quant_models.compress import CompressError, hardware_ratios
    from quant_models.compress.schedule import match_layer_costs
    from quant_models.models import build_model, default_config

    cfg, _ = tiny_build
    layout = cfg.layout
    rows = weighted_layer_costs(layout)
    model, _ = load_model(trained_run.best)
    assert len(rows) == len(model.plan) + 1  # the backbone convs and the head, each one MVAU
    est = {r["name"]: r for r in layout.read_estimates()["layers"]}
    for row in rows:
        assert row["lut"] == est[row["name"]]["lut"] and row["cycles"] == est[row["name"]]["cycles"]
    shapes = {(r["rows"], r["cols"]) for r in rows}
    for conv in model.plan:
        assert (conv.out_ch, conv.in_ch * conv.kernel ** 2) in shapes
    costs = match_layer_costs(model, rows)
    assert len(costs) == len(model.plan) and all(c > 0 for c in costs)
    ratios = hardware_ratios([c.out_ch for c in model.plan], costs, 0.5)
    costliest = max(range(len(costs)), key=costs.__getitem__)
    cheapest = min(range(len(costs)), key=costs.__getitem__)
    assert ratios[costliest] > ratios[cheapest]
    other = build_model(default_config("tinydet", 4, width=1.0))  # not the model this build was made from
    with pytest.raises(CompressError, match="not built from this checkpoint"):
        match_layer_costs(other, rows)
