"""qdet's folder: legal values, balanced pipelines, targets reached, budgets filled, limits named.

The folder's choices are also checked against an independent brute force (every combination of options, by
itertools.product) on small random groups, which shares nothing with flows/folding.py but the dataclasses and the
budget test."""

import itertools
import math
import random
from dataclasses import replace

import pytest
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from boards.catalogue import Resources
from flows.build import BuildLayout
from flows.config import FlowError
from flows.folding import (Group, Option, choose, enumerate_groups, fold_fixed, fold_max_fps, fold_target,
                           mac_kinds_for, over_budget, total)
from flows.runner import run_flow
from flows.steps import DEFAULT_STEPS


def _opt(cycles, lut, name="n", pe=1):
    return Option(((name, (("PE", pe),)),), cycles, lut, 0.0, 0.0, 0.0)


BUDGET = Resources(lut=100.0, ff=0.0, bram18=10.0, uram=0.0, dsp=10.0)
# Two layers: a can go from 100 cycles (10 LUT) to 25 cycles (60 LUT); b from 80 (5) to 20 (40).
GROUPS = [Group(("a",), (_opt(100, 10, "a"), _opt(50, 25, "a", 2), _opt(25, 60, "a", 4))),
          Group(("b",), (_opt(80, 5, "b"), _opt(40, 15, "b", 2), _opt(20, 40, "b", 4)))]


def test_choose_takes_the_cheapest_option_per_layer_within_the_cycles():
    assert [o.cycles for o in choose(GROUPS, 60, BUDGET)] == [50, 40]
    assert choose(GROUPS, 24, BUDGET) is None


def test_max_fps_stops_where_the_budget_ends():
    chosen = fold_max_fps(GROUPS, BUDGET)  # 25 cycles needs 60 + 40 = 100 LUT: fits exactly
    assert [o.cycles for o in chosen] == [25, 20] and total(chosen).lut == 100
    tight = replace(BUDGET, lut=80.0)  # 25 cycles is too much now; 40 cycles needs a at 25 + b at 40: 75 LUT
    assert [o.cycles for o in fold_max_fps(GROUPS, tight)] == [25, 40]


def test_target_fold_is_balanced_to_the_bottleneck():
    # 90 cycles: a needs its 50-cycle folding, b gets by with its slowest (80): nothing faster than needed.
    assert [o.cycles for o in fold_target(GROUPS, 90, BUDGET, 100.0)] == [50, 80]


def test_unreachable_target_names_the_layer_and_the_best_reachable_fps():
    with pytest.raises(FlowError, match=r"layer a needs at least 25 cycles.*best reachable .* 4000000.0 FPS"):
        fold_target(GROUPS, 10, BUDGET, 100.0)


def test_target_over_budget_names_the_resource_and_its_largest_user():
    with pytest.raises(FlowError, match=r"needs 100 LUT of a budget of 80 \(largest user: a\).*40 cycles"):
        fold_target(GROUPS, 25, replace(BUDGET, lut=80.0), 100.0)


def test_a_fixed_folding_sets_the_pace_and_the_rest_keep_up_cheaply():
    # a fixed at PE 2 (50 cycles): b takes its cheapest option within 50 cycles (PE 2, 40 cycles), not the fastest.
    chosen = fold_fixed(GROUPS, {"a": {"PE": 2}}, BUDGET)
    assert [(o.cycles, o.lut) for o in chosen] == [(50, 25), (40, 15)]
    with pytest.raises(FlowError, match="not legal for layer a"):
        fold_fixed(GROUPS, {"a": {"PE": 3}}, BUDGET)
    with pytest.raises(FlowError, match="graph does not have: c"):
        fold_fixed(GROUPS, {"c": {"PE": 1}}, BUDGET)


def test_a_bad_folding_file_is_refused_by_name(tmp_path):
    from flows.steps.fold import read_folding

    bad = tmp_path / "f.json"
    bad.write_text('{"MVAU_hls_0": {"PE": "16"}}')
    with pytest.raises(FlowError, match="f.json: a folding file maps node names"):
        read_folding(bad)
    bad.write_text("{")
    with pytest.raises(FlowError, match="cannot read the folding file"):
        read_folding(bad)


# ---- Against a brute force over every combination, on small random instances ----------------------------------

SEEDS = range(150)  # ~1 s: up to 4 groups x 5 options = 625 combinations each


def _random_instance(seed: int, lut_only: bool) -> tuple[list[Group], Resources]:
    """1-4 groups of 1-5 options with shared cycle counts (ties happen) and resources not monotone in cycles, as
    FINN's memory estimates are not; ``lut_only``: no option uses BRAM or DSP."""
    rng = random.Random(seed)
    groups = []
    for g in range(rng.randint(1, 4)):
        options = tuple(Option(((f"g{g}", (("PE", k + 1),)),), rng.choice([10, 20, 25, 40, 50, 80, 100]),
                               float(rng.randint(0, 60)), 0.0 if lut_only else float(rng.randint(0, 6)), 0.0,
                               0.0 if lut_only else float(rng.randint(0, 4)))
                        for k in range(rng.randint(1, 5)))
        groups.append(Group((f"g{g}",), options))
    budget = Resources(lut=float(rng.randint(30, 200)), ff=0.0, bram18=float(rng.randint(2, 15)), uram=0.0,
                       dsp=float(rng.choice([0, 2, 5, 8])))
    return groups, budget


def _combos(groups: list[Group], cycles: float = math.inf) -> list[tuple[Option, ...]]:
    """Every folding whose bottleneck is at most ``cycles``."""
    return [c for c in itertools.product(*(g.options for g in groups)) if max(o.cycles for o in c) <= cycles]


def _fits(combo, budget: Resources) -> bool:
    return not over_budget(total(list(combo)), budget)


def _lut(combo) -> float:
    return sum(o.lut for o in combo)


def _bottleneck(combo) -> int:
    return max(o.cycles for o in combo)


@pytest.mark.parametrize("objective", ["lut", "share"])
def test_choose_is_the_cheapest_folding_within_the_cycles_by_brute_force(objective):
    """choose(): among all foldings with every layer within the cycles, the least total LUT (or budget share)."""
    for seed in SEEDS:
        groups, budget = _random_instance(seed, lut_only=False)
        cost = _lut if objective == "lut" else (lambda c: sum(o.cost(budget) for o in c))
        for cycles in sorted({o.cycles for g in groups for o in g.options} | {5}):
            combos = _combos(groups, cycles)
            got = choose(groups, cycles, budget, objective)
            if not combos:
                assert got is None, (seed, cycles)
                continue
            assert got is not None and all(o.cycles <= cycles for o in got), (seed, cycles)
            assert [o in g.options for o, g in zip(got, groups)] == [True] * len(groups)
            assert cost(got) == pytest.approx(min(cost(c) for c in combos)), (seed, cycles)


@pytest.mark.parametrize("lut_only", [True, False], ids=["LUT only", "LUT+BRAM+DSP"])
def test_max_fps_and_targets_are_optimal_by_brute_force(lut_only):
    """--max-fps reaches the fewest cycles any fitting folding reaches, with the least LUT among those; a target is
    met with the least LUT of any fitting folding; both refuse exactly when no folding fits."""
    for seed in SEEDS:
        groups, budget = _random_instance(seed, lut_only=lut_only)
        fitting = [c for c in _combos(groups) if _fits(c, budget)]
        if not fitting:
            with pytest.raises(FlowError, match="does not fit the budget"):
                fold_max_fps(groups, budget)
            continue
        best = min(_bottleneck(c) for c in fitting)
        got = fold_max_fps(groups, budget)
        assert _fits(got, budget) and _bottleneck(got) == best, (seed, _bottleneck(got), best)
        assert _lut(got) == pytest.approx(min(_lut(c) for c in fitting if _bottleneck(c) <= best)), seed
        for cycles in sorted({o.cycles for g in groups for o in g.options}):
            reach = [c for c in fitting if _bottleneck(c) <= cycles]
            if not reach:
                with pytest.raises(FlowError):
                    fold_target(groups, cycles, budget, 100.0)
                continue
            target = fold_target(groups, cycles, budget, 100.0)
            assert _fits(target, budget) and _bottleneck(target) <= cycles, (seed, cycles)
            assert _lut(target) == pytest.approx(min(_lut(c) for c in reach)), (seed, cycles)


# With more than one binding resource the fitting folding can be a mix of per-layer choices (a knapsack). Smallest
# case: a and b each offer 60 LUT / 0 BRAM or 10 LUT / 8 BRAM at the same speed, budget 100 LUT / 10 BRAM: the
# fewest-LUT choice takes 16 BRAM, the smallest-share choice 120 LUT, and only 60 + 10 LUT with 8 BRAM fits.
def test_max_fps_finds_a_mixed_folding_when_neither_objective_alone_fits():
    def opt(name, lut, bram):
        return Option(((name, (("PE", 1),)),), 10, float(lut), float(bram), 0.0, 0.0)

    groups = [Group((n,), (opt(n, 60, 0), opt(n, 10, 8))) for n in ("a", "b")]
    budget = Resources(lut=100.0, ff=0.0, bram18=10.0, uram=0.0, dsp=0.0)
    got = fold_max_fps(groups, budget)
    assert not over_budget(total(got), budget) and sum(o.lut for o in got) == 70.0


def test_an_integer_program_folding_keeps_free_layers_narrow():
    """When the budget needs the integer program, a layer whose options all cost nothing (FINN prices padding at 0
    LUTs at any SIMD) still takes its fewest lanes: the solver's tie is not left to chance."""
    def opt(name, lut, bram, pe=1):
        return Option(((name, (("PE", pe),)),), 10, float(lut), float(bram), 0.0, 0.0)

    free = Group(("pad",), tuple(opt("pad", 0, 0, pe) for pe in (64, 16, 4, 1, 2, 32, 8)))
    groups = [Group((n,), (opt(n, 60, 0), opt(n, 10, 8))) for n in ("a", "b")] + [free]
    budget = Resources(lut=100.0, ff=0.0, bram18=10.0, uram=0.0, dsp=0.0)
    got = fold_max_fps(groups, budget)
    assert sum(o.lut for o in got) == 70.0
    assert got[2].attrs == (("pad", (("PE", 1),)),)


def _folded(tiny_build):
    cfg, _ = tiny_build
    return cfg, ModelWrapper(str(cfg.layout.step_checkpoint("fold")))


def test_folding_uses_only_legal_values(tiny_build):
    _, model = _folded(tiny_build)
    for node in model.graph.node:
        op = getCustomOp(node)
        kind = node.op_type.rsplit("_", 1)[0]
        if kind == "MVAU":
            assert op.get_nodeattr("MW") % op.get_nodeattr("SIMD") == 0
            assert op.get_nodeattr("MH") % op.get_nodeattr("PE") == 0
            # The memory style the folder costed, never "auto" (which synthesis may turn into LUT logic).
            assert op.get_nodeattr("ram_style") in ("block", "distributed", "ultra"), node.name
        elif kind == "ConvolutionInputGenerator":
            assert op.get_nodeattr("IFMChannels") % op.get_nodeattr("SIMD") == 0
        elif kind == "FMPadding":
            assert op.get_nodeattr("NumChannels") % op.get_nodeattr("SIMD") == 0
        elif kind == "Pool":
            assert op.get_nodeattr("Channels") % op.get_nodeattr("PE") == 0
            producer = getCustomOp(model.find_producer(node.input[0]))
            assert producer.get_nodeattr("SIMD") == op.get_nodeattr("PE")  # depthwise window feeds PE lanes


def test_max_fps_fills_the_budget_and_no_layer_is_faster_than_needed(tiny_build):
    cfg, model = _folded(tiny_build)
    est = cfg.layout.read_estimates()
    budget = cfg.target.budget
    assert est["fits"] and est["cycles_per_frame"] == max(layer["cycles"] for layer in est["layers"])
    # The options the fold step chose among: both MAC lane kinds of every MVAU (LUT and DSP-packed products).
    groups = enumerate_groups(model, cfg.target.part, mac_kinds=mac_kinds_for(budget))
    # Any faster pipeline is impossible or over the budget.
    faster = sorted({o.cycles for g in groups for o in g.options if o.cycles < est["cycles_per_frame"]})
    for cycles in faster[-20:]:
        options = choose(groups, cycles, budget)
        assert options is None or over_budget(total(options), budget)
    # Every group runs the cheapest folding that keeps up with the bottleneck, unless those cheapest foldings
    # together overrun the budget (DSP lanes save LUTs until the DSPs run out): then the folding is the integer
    # program's, within the budget and no group below its cheapest.
    by_name = {layer["name"]: layer for layer in est["layers"]}
    cheapest = choose(groups, est["cycles_per_frame"], budget)
    if not over_budget(total(cheapest), budget):
        for group, option in zip(groups, cheapest):
            assert sum(by_name[n]["lut"] for n in group.nodes) == option.lut
    else:
        assert over_budget(total(cheapest), budget) == ["dsp"]
        for group, option in zip(groups, cheapest):
            assert sum(by_name[n]["lut"] for n in group.nodes) >= option.lut - 1e-6
        assert est["dsp"] <= budget.dsp


def test_ours_beats_or_matches_finn_setfolding(tiny_build):
    cfg, _ = tiny_build
    est = cfg.layout.read_estimates()
    assert {"fps", "cycles_per_frame", "latency_us", "clock_mhz", "lut", "bram18", "uram", "dsp", "bottleneck",
            "layers"} <= set(est)
    assert est["comparison"]["meets_bar"], est["comparison"]["verdict"]
    assert "| FINN SetFolding |" in cfg.layout.summary.read_text()


def test_a_reachable_target_is_reached_with_the_least_hardware(tiny_build, tiny_onnx, tmp_path):
    import shutil

    cfg, _ = tiny_build
    out = BuildLayout(tmp_path / "target")
    shutil.copytree(cfg.layout.steps_dir, out.steps_dir)
    shutil.copy(cfg.layout.io_spec, out.io_spec)
    run_flow(tiny_onnx, replace(cfg, out=out.root, target_fps=500.0, start="fold"), DEFAULT_STEPS)
    est = out.read_estimates()
    assert est["fps"] >= 500.0 and est["fits"]
    max_fps = cfg.layout.read_estimates()
    assert est["lut"] < max_fps["lut"]  # a lower target folds more
    with pytest.raises(FlowError, match="best reachable within the board budget"):
        run_flow(tiny_onnx, replace(cfg, out=out.root, target_fps=1e6, start="fold"), DEFAULT_STEPS)


def test_dsp_lanes_are_offered_only_where_the_product_reaches_a_dsp(tmp_path):
    # A W8 first conv on an 8-bit input and two W2A2 convs, specialized for pynq-z2 (xc7: DSP48E1, 25-bit port).
    # By hand, the whole product is in_bits + 1 + packed word bits, the word (L-1)(in+w-1) + w (narrow weights):
    # 8-bit x W8 at 1 lane is 17 bits (a DSP); 2-bit x W2 at 1 lane is 5 bits and at 2 lanes 8 bits (LUTs, since
    # synthesis maps a multiplier to a DSP from 9 product bits), at 3 lanes 11 bits (a DSP again).
    from flows.config import FlowConfig
    from flows.steps import step_specialize
    from tests.flows.brevitas_nets import Layer, NetSpec, build_net, export

    spec = NetSpec((3, 8, 8), (Layer("conv", 8, w_bits=8, a_bits=2), Layer("conv", 8, w_bits=2, a_bits=2),
                               Layer("head", 4, k=1, pad=0, w_bits=2)), in_bits=8)
    onnx = export(build_net(spec), spec.in_shape, tmp_path / "w2a2.onnx")
    cfg = FlowConfig(out=tmp_path / "build", board="pynq-z2", verify_images=1)
    run_flow(onnx, replace(cfg, stop="specialize"), DEFAULT_STEPS[:DEFAULT_STEPS.index(step_specialize) + 1])
    model = ModelWrapper(str(cfg.layout.step_checkpoint("specialize")))
    groups = enumerate_groups(model, cfg.target.part, mac_kinds=("lut", "dsp"))
    mvaus = [g for g in groups if g.nodes[0].startswith("MVAU")]
    assert len(mvaus) == 3

    def kinds(group, pe):
        return {dict(dict(o.attrs)[group.nodes[0]])["resType"] for o in group.options
                if dict(dict(o.attrs)[group.nodes[0]])["PE"] == pe}

    first, second, _ = mvaus
    assert kinds(first, 1) == {"lut", "dsp"}  # a 17-bit product
    assert kinds(second, 1) == {"lut"} and kinds(second, 2) == {"lut"}  # 5 and 8 bits
    assert kinds(second, 4) == {"lut", "dsp"}  # 4 lanes fit 25 bits (2+3*3 = 11): 14 bits
    for group in mvaus:
        assert all(o.dsp == 0 for o in group.options if dict(dict(o.attrs)[group.nodes[0]])["resType"] == "lut")
        assert all(o.dsp > 0 for o in group.options if dict(dict(o.attrs)[group.nodes[0]])["resType"] == "dsp")
