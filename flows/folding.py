"""qdet's board-aware folder: PE/SIMD per layer for a target FPS, or the highest FPS that fits the board budget.

Layers whose parallelism is coupled (a pool and the depthwise sliding window feeding it) form one group. For each
group every *legal* folding is enumerated (divisors of the channel / matrix dimensions, stream widths within
FINN's limit) and costed with FINN's own per-node models (expected cycles; LUT, BRAM18, URAM, DSP estimates), so
our folding and FINN's SetFolding are compared by the same estimator.

For a cycle budget ``T`` per frame, each group takes its cheapest folding that needs at most ``T`` cycles (fewest
LUTs): no layer is faster than the pipeline needs. When those per-layer choices overrun the board budget, the
folding with the fewest LUTs that fits is found exactly: a multiple-choice knapsack (one option per group, LUT,
BRAM, URAM and DSP within the budget) solved as a small integer program by HiGHS (``scipy.optimize.milp``), since
with two binding resources the fitting folding can be a mix no per-layer rule finds. Fitting gets easier as ``T``
grows, so ``--max-fps`` bisects the distinct cycle counts for the fewest that fits; the chosen foldings are then
re-balanced to the bottleneck's cycle count, which can only make them cheaper.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

from boards.catalogue import Resources
from flows.config import FlowError

RESOURCES = ("lut", "bram18", "uram", "dsp")


@dataclass(frozen=True)
class Option:
    """One legal folding of a group: attribute values per node, the group's cycles and its resources."""

    attrs: tuple[tuple[str, tuple[tuple[str, int | str], ...]], ...]  # (node name, ((attr, value), ...)) per node
    cycles: int
    lut: float
    bram18: float
    uram: float
    dsp: float

    def cost(self, budget: Resources) -> float:
        """Sum of this option's shares of the budget (a resource with no budget counts only when used)."""
        total = 0.0
        for r in RESOURCES:
            used, have = getattr(self, r), getattr(budget, r)
            total += used / have if have > 0 else (math.inf if used > 0 else 0.0)
        return total

    @property
    def lanes(self) -> int:
        """Product of all parallelism values (tie-break: fewer lanes)."""
        return math.prod(v for _, values in self.attrs for k, v in values if k in ("PE", "SIMD"))


@dataclass(frozen=True)
class Group:
    """Nodes folded together, with every legal option."""

    nodes: tuple[str, ...]
    options: tuple[Option, ...]

    @property
    def fastest(self) -> Option:
        """The option with the fewest cycles (cheapest among those)."""
        best = min(o.cycles for o in self.options)
        return min((o for o in self.options if o.cycles == best), key=lambda o: (o.lut, o.lanes))


def divisors(n: int) -> list[int]:
    """Divisors of ``n`` in increasing order.

    >>> divisors(12)
    [1, 2, 3, 4, 6, 12]
    """
    return [d for d in range(1, n + 1) if n % d == 0]


def _width_ok(op, attrs: dict[str, int]) -> bool:
    """Stream widths must stay within FINN's ap_int limit (weights per cycle for MVAU, input for the rest)."""
    from finn.util.basic import MAX_ALLOWED_AP_INT_W

    if "MW" in op.get_nodeattr_types():
        wbits = op.get_input_datatype(1).bitwidth()
        return attrs["PE"] * attrs["SIMD"] * wbits <= MAX_ALLOWED_AP_INT_W
    return True


# Weight memory styles (FINN's ``ram_style``) the folder chooses from. Never "auto", FINN's default: FINN costs it as
# block RAM, but it leaves the choice to synthesis, and yosys made the shallow, wide weight ROMs of UltraNet's first
# four layers LUT logic (3-192 words of 216-1,536 bits: 0 BRAM18 where 97 were costed, about 10k LUTs more than
# estimated). The folder writes the style it costed, so estimate and netlist agree.
RAM_STYLES = ("block", "distributed", "ultra")


def ram_styles_for(budget: Resources) -> tuple[str, ...]:
    """The weight memory styles a board offers: block RAM and LUTRAM everywhere, UltraRAM where it has some."""
    return RAM_STYLES if budget.uram > 0 else RAM_STYLES[:2]


def _with_memories(cands: list[dict[str, dict[str, int | str]]], name: str, ram_styles: tuple[str, ...]
                   ) -> list[dict[str, dict[str, int | str]]]:
    """Every candidate once per weight memory style (the ``ram_style`` of node ``name``); none added for "auto"
    alone, so a build folded without memory choices keeps its attributes as they were."""
    if tuple(ram_styles) == ("auto",):
        return cands
    return [{**c, name: {**c[name], "ram_style": style}} for c in cands for style in ram_styles]


def mac_kinds_for(budget: Resources) -> tuple[str, ...]:
    """The MVAU MAC lane kinds a board offers (FINN's ``resType``): LUT products everywhere, DSP-packed products
    where the budget has DSP slices."""
    return ("lut", "dsp") if budget.dsp > 0 else ("lut",)


def _candidates(model, node, ram_styles: tuple[str, ...] = ("auto",), mac_kinds: tuple[str, ...] = ("auto",)
                ) -> list[dict[str, dict[str, int | str]]]:
    """Legal attribute assignments for the group led by ``node`` ({node name: {attr: value}}); weighted layers
    also get each of ``ram_styles`` for their weight memory, MVAUs each of ``mac_kinds`` for their MAC lanes
    (none added for "auto" alone: FINN's models and the generator's default then apply)."""
    from qonnx.custom_op.registry import getCustomOp

    op = getCustomOp(node)
    kind = node.op_type.rsplit("_", 1)[0]
    if kind == "MVAU":
        mw, mh = op.get_nodeattr("MW"), op.get_nodeattr("MH")
        out = [{node.name: {"PE": pe, "SIMD": simd}} for pe, simd in itertools.product(divisors(mh), divisors(mw))]
        out = [c for c in out if _width_ok(op, c[node.name])]
        if tuple(mac_kinds) != ("auto",):
            out = [{node.name: {**c[node.name], "resType": k}} for c in out for k in mac_kinds]
        return _with_memories(out, node.name, ram_styles)
    if kind == "VVAU":
        return _with_memories(_depthwise_candidates(model, node, op, kind), node.name, ram_styles)
    if kind == "Pool":
        return _depthwise_candidates(model, node, op, kind)
    if kind == "GlobalAccPool":
        return [{node.name: {"PE": pe}} for pe in divisors(op.get_nodeattr("NumChannels"))]
    if kind == "ConvolutionInputGenerator":
        channels = op.get_nodeattr("IFMChannels")
        out = [{node.name: {"SIMD": s}} for s in divisors(channels)]
        if "parallel_window" in op.get_nodeattr_types():
            # The RTL sliding window can emit a whole window per cycle once SIMD covers all channels.
            out = [{node.name: {**c[node.name], "parallel_window": 0}} for c in out]
            out.append({node.name: {"SIMD": channels, "parallel_window": 1}})
        return out
    if kind == "FMPadding":
        return [{node.name: {"SIMD": s}} for s in divisors(op.get_nodeattr("NumChannels"))]
    if kind in ("Thresholding", "StreamingMaxPool", "DuplicateStreams"):
        return [{node.name: {"PE": pe}} for pe in divisors(op.get_nodeattr("NumChannels"))]
    if kind == "ElementwiseAdd":
        return [{node.name: {"PE": pe}} for pe in divisors(int(op.get_nodeattr("out_shape")[-1]))]
    if kind == "StreamingConcat":
        return [{node.name: {"SIMD": s}} for s in divisors(math.gcd(*op.get_nodeattr("ChannelsPerStream")))]
    if kind == "UpsampleNearestNeighbour":
        return [{node.name: {"SIMD": s}} for s in divisors(op.get_nodeattr("NumChannels"))]
    raise FlowError(f"node {node.name!r} ({node.op_type}): qdet's folder does not know this layer's parallelism "
                    "knobs yet")


def _depthwise_candidates(model, node, op, kind: str) -> list[dict[str, dict[str, int]]]:
    """A Pool or VVAU and the depthwise sliding window feeding it fold together: the window's SIMD is the
    consumer's PE (channels per beat). A VVAU can also take SIMD kernel positions per beat, which FINN's window
    delivers only in its parallel-window mode, with every channel in the beat (PE = channels); FINN's SetFolding
    raises SIMD only once PE is full for the same reason."""
    from qonnx.custom_op.registry import getCustomOp

    channels = op.get_nodeattr("Channels")
    swg = model.find_producer(node.input[0])
    has_swg = swg is not None and swg.op_type.startswith("ConvolutionInputGenerator")
    pw = has_swg and "parallel_window" in getCustomOp(swg).get_nodeattr_types()

    def option(pe: int, simd: int = 1) -> dict[str, dict[str, int]]:
        mine = {"PE": pe, **({"SIMD": simd} if kind == "VVAU" else {})}
        if not has_swg:
            return {node.name: mine}
        window = {"SIMD": pe, **({"parallel_window": int(simd > 1)} if pw else {})}
        return {swg.name: window, node.name: mine}

    out = [option(pe) for pe in divisors(channels)]
    if kind == "VVAU" and pw:
        # SIMD < K kernel positions per beat: a width converter splits the window's beats (the order is kept).
        out += [option(channels, simd) for simd in divisors(int(math.prod(op.get_nodeattr("Kernel"))))[1:]]
    return out


def finn_rejects(op) -> str | None:
    """FINN's own objection to a node's current folding (its shape and stream-width checks, and the RTL sliding
    window's implementation-style assertions), or None when FINN's node model accepts it. The folder offers no
    option FINN rejects, so FINN's code generation and estimates never meet an illegal folding."""
    try:
        op.get_folded_input_shape()
        op.get_folded_output_shape()
        op.get_instream_width()
        op.get_outstream_width()
        op.get_exp_cycles()
        if hasattr(op, "select_impl_style"):
            op.select_impl_style()
    except Exception as exc:  # FINN signals illegal foldings with assertions and assorted exceptions
        return f"{type(exc).__name__}: {exc}"
    return None


def set_attrs(model, attrs: dict[str, dict[str, int]]) -> None:
    """Set node attributes in place: ``{node name: {attr: value}}``."""
    from qonnx.custom_op.registry import getCustomOp

    for name, values in attrs.items():
        op = getCustomOp(model.get_node_from_name(name))
        for key, value in values.items():
            op.set_nodeattr(key, value)


def node_estimate(op, part: str, model=None) -> dict[str, float]:
    """The estimates for one specialized node: cycles, LUT, BRAM18, URAM, DSP. FINN's models, except for an MVAU
    whose MAC lanes the folder chose (``resType`` "lut" or "dsp"): qdet's calibrated model
    (:func:`flows.mac_costs.mvau_estimate`; ``model``, the graph, lets its weights decide the DSP packing), and
    the LUTs of the sliding windows, paddings, width converters and max pools, whose qdet kernels are calibrated
    apart (:func:`flows.stream_costs.stream_luts`)."""
    from flows.mac_costs import mvau_estimate
    from flows.stream_costs import stream_luts

    if op.onnx_node.op_type.startswith("MVAU") and (ours := mvau_estimate(op, part, model)) is not None:
        return ours
    lut = stream_luts(op, model)
    return {"cycles": int(op.get_exp_cycles()), "lut": float(op.lut_estimation(part)) if lut is None else lut,
            "bram18": float(op.bram_estimation(part)), "uram": float(op.uram_estimation(part)),
            "dsp": float(op.dsp_estimation(part))}


def enumerate_groups(model, part: str, ram_styles: tuple[str, ...] = ("auto",),
                     mac_kinds: tuple[str, ...] = ("auto",)) -> list[Group]:
    """Every foldable group of the (specialized) graph with all its legal options, costed by :func:`node_estimate`;
    ``ram_styles`` are the weight memory styles to consider (see :func:`ram_styles_for`), ``mac_kinds`` the MVAU
    MAC lane kinds (see :func:`mac_kinds_for`).

    Leaves the model's attributes as they were."""
    from qonnx.custom_op.registry import getCustomOp

    from flows.mac_costs import dsp_rejects

    grouped: set[str] = set()
    groups: list[Group] = []
    # Pools first, so the depthwise sliding window in front of each one joins its group.
    order = sorted(model.graph.node, key=lambda n: 0 if n.op_type.startswith(("Pool", "VVAU")) else 1)
    for node in order:
        if node.name in grouped:
            continue
        cands = _candidates(model, node, ram_styles, mac_kinds)
        names = tuple(cands[0])
        saved = {n: {k: getCustomOp(model.get_node_from_name(n)).get_nodeattr(k) for k in cands[0][n]} for n in names}
        options, rejected = [], []
        for cand in cands:
            set_attrs(model, cand)
            ops = [getCustomOp(model.get_node_from_name(n)) for n in names]
            why = [w for op in ops if (w := finn_rejects(op) or (dsp_rejects(op, part, model)
                                                              if op.onnx_node.op_type.startswith("MVAU") else None))]
            if why:
                rejected.append(f"{cand}: {why[0]}")
                continue
            ests = [node_estimate(op, part, model) for op in ops]
            options.append(Option(tuple((n, tuple(sorted(cand[n].items()))) for n in names),
                                  max(e["cycles"] for e in ests), *(sum(e[r] for e in ests) for r in RESOURCES)))
        set_attrs(model, saved)
        if not options:
            raise FlowError(f"layer {'/'.join(names)} ({node.op_type}): FINN's node model rejects every folding "
                            f"qdet knows for it, e.g. {rejected[0]}")
        grouped.update(names)
        groups.append(Group(names, tuple(options)))
    order_index = {n.name: i for i, n in enumerate(model.graph.node)}
    return sorted(groups, key=lambda g: min(order_index[n] for n in g.nodes))


OBJECTIVES = ("lut", "share")


def choose(groups: list[Group], cycles: int, budget: Resources, objective: str = "lut") -> list[Option] | None:
    """Each group's cheapest option within ``cycles``; None when some group cannot be that fast.

    ``lut``: fewest LUTs (then the smallest share of the budget): LUTs are what low-bit MVAUs run out of first.
    ``share``: smallest summed share of the budget, which trades LUTs for BRAM/DSP when those are scarcer."""
    if objective == "lut":
        def key(o: Option) -> tuple:
            return (o.lut, o.cost(budget), o.lanes, o.cycles)
    else:
        def key(o: Option) -> tuple:
            return (o.cost(budget), o.lanes, o.cycles)
    chosen = []
    for g in groups:
        fits = [o for o in g.options if o.cycles <= cycles]
        if not fits:
            return None
        chosen.append(min(fits, key=key))
    return chosen


def _fewest_luts_within_budget(groups: list[Group], cycles: int, budget: Resources) -> list[Option] | None:
    """The folding with the fewest LUTs (then the smallest share of the budget) among those within ``cycles``
    whose resources fit ``budget``; None when no folding fits. Exact: an integer program over one binary per
    option (scipy's HiGHS), one option per group, each resource's sum within its budget."""
    import numpy as np
    from scipy.optimize import Bounds, LinearConstraint, milp

    usable = [[o for o in g.options if o.cycles <= cycles and math.isfinite(o.cost(budget))] for g in groups]
    if any(not options for options in usable):
        return None
    flat = [(i, o) for i, options in enumerate(usable) for o in options]
    # LUTs first; the share of the budget only breaks ties (it is < 1e-3 of one LUT per option).
    objective = np.array([o.lut + 1e-4 * o.cost(budget) / max(1, len(flat)) for _, o in flat])
    one_each = np.zeros((len(groups), len(flat)))
    for k, (i, _) in enumerate(flat):
        one_each[i, k] = 1.0
    used = np.array([[getattr(o, r) for _, o in flat] for r in RESOURCES])
    have = np.array([getattr(budget, r) + 1e-9 for r in RESOURCES])
    result = milp(objective, integrality=np.ones(len(flat)), bounds=Bounds(0, 1),
                  constraints=[LinearConstraint(one_each, 1, 1), LinearConstraint(used, -np.inf, have)])
    if result.status != 0 or result.x is None:  # 2: infeasible (no folding fits)
        return None
    picked = {i: o for (i, o), x in zip(flat, result.x) if x > 0.5}
    chosen = [_dominating(usable[i], picked[i], budget) for i in range(len(groups))]
    return chosen if not over_budget(total(chosen), budget) else None


def _dominating(options: list[Option], picked: Option, budget: Resources) -> Option:
    """The best of ``options`` that uses no more of any resource than ``picked`` (fewest LUTs, then budget share,
    then lanes). The solver stops within its relative gap (HiGHS: 1e-4, i.e. several LUTs of a board), so it
    breaks ties between options of equal cost arbitrarily: a padding or sliding window that FINN costs at 0 LUTs
    at every SIMD came out fully parallel, and the width converters around it cost real LUTs."""
    keep = [o for o in options if all(getattr(o, r) <= getattr(picked, r) for r in RESOURCES)]
    return min(keep, key=lambda o: (o.lut, o.cost(budget), o.lanes, o.cycles))


def choose_within(groups: list[Group], cycles: int, budget: Resources) -> list[Option] | None:
    """The fewest-LUT folding within ``cycles`` that fits the budget (None: none fits, or some group is too slow).

    The per-layer cheapest choice when it fits (it is then the optimum), else the exact integer program."""
    options = choose(groups, cycles, budget, "lut")
    if options is None:
        return None
    if not over_budget(total(options), budget):
        return balance(groups, options, budget, "lut")
    return _fewest_luts_within_budget(groups, cycles, budget)


def total(options: list[Option]) -> Resources:
    """Summed resources of a folding."""
    return Resources(lut=sum(o.lut for o in options), ff=0.0, bram18=sum(o.bram18 for o in options),
                     uram=sum(o.uram for o in options), dsp=sum(o.dsp for o in options))


def over_budget(used: Resources, budget: Resources) -> list[str]:
    """Names of the resources that exceed the budget."""
    return [r for r in RESOURCES if getattr(used, r) > getattr(budget, r) + 1e-9]


def balance(groups: list[Group], options: list[Option], budget: Resources, objective: str) -> list[Option]:
    """Re-choose every group for the bottleneck's cycle count: nobody faster than needed, never costlier."""
    rebalanced = choose(groups, max(o.cycles for o in options), budget, objective)
    assert rebalanced is not None  # the current options already meet that cycle count
    return rebalanced


def fold_max_fps(groups: list[Group], budget: Resources) -> list[Option]:
    """The fastest folding whose resources fit ``budget`` (the fewest LUTs among the fastest)."""
    levels = sorted({o.cycles for g in groups for o in g.options})
    if choose_within(groups, levels[-1], budget) is None:
        slowest = [min(g.options, key=lambda o: o.cost(budget)) for g in groups]
        used = total(slowest)
        worst = over_budget(used, budget) or list(RESOURCES)
        raise FlowError(f"even the most folded design does not fit the budget: {', '.join(worst)} "
                        f"{', '.join(f'{getattr(used, r):.0f} > {getattr(budget, r):.0f}' for r in worst)}")
    lo, hi = 0, len(levels) - 1  # fitting is monotone in the cycle count: bisect for the fewest that fits
    while lo < hi:
        mid = (lo + hi) // 2
        if choose_within(groups, levels[mid], budget) is None:
            lo = mid + 1
        else:
            hi = mid
    return choose_within(groups, levels[lo], budget)


def _best_note(groups: list[Group], budget: Resources, clock_mhz: float) -> str:
    best = max(o.cycles for o in fold_max_fps(groups, budget))
    return (f"The best reachable within the board budget is {clock_mhz * 1e6 / best:.1f} FPS ({best} cycles per "
            "frame): use --max-fps, a lower --target-fps, a faster clock or a larger board")


def fold_target(groups: list[Group], cycles: int, budget: Resources, clock_mhz: float) -> list[Option]:
    """The cheapest folding that reaches ``cycles`` per frame; FlowError naming the limit when none fits."""
    fitting = choose_within(groups, cycles, budget)
    if fitting is not None:
        return fitting
    options = choose(groups, cycles, budget)
    if options is None:
        slow = [g for g in groups if g.fastest.cycles > cycles]
        layer = max(slow, key=lambda g: g.fastest.cycles)
        raise FlowError(f"no folding reaches {cycles} cycles per frame: layer {'/'.join(layer.nodes)} needs at "
                        f"least {layer.fastest.cycles} cycles fully unfolded. {_best_note(groups, budget, clock_mhz)}")
    # Both objectives overrun the budget: name the resource the LUT-first folding overruns most, and its user.
    used = total(options)
    over = over_budget(used, budget)
    resource = max(over, key=lambda r: getattr(used, r) / max(getattr(budget, r), 1e-9))
    index = max(range(len(groups)), key=lambda i: getattr(options[i], resource))
    raise FlowError(f"the folding for {cycles} cycles per frame needs {getattr(used, resource):.0f} "
                    f"{resource.upper()} of a budget of {getattr(budget, resource):.0f} (largest user: "
                    f"{'/'.join(groups[index].nodes)}). {_best_note(groups, budget, clock_mhz)}")


def fold_fixed(groups: list[Group], wanted: dict[str, dict[str, int]], budget: Resources) -> list[Option]:
    """A user's folding: ``wanted`` fixes some nodes' attributes (``{node: {attr: value}}``, the format of
    ``report/folding.json``); every other group takes its cheapest option that keeps up with the slowest fixed one.

    A node the graph does not have, or values that are not a legal option of its layer, raise FlowError naming it."""
    names = {n for g in groups for n in g.nodes}
    unknown = sorted(set(wanted) - names)
    if unknown:
        raise FlowError(f"folding names nodes the graph does not have: {', '.join(unknown)} "
                        f"(nodes are {', '.join(sorted(names))})")
    fixed: dict[int, Option] = {}
    for i, group in enumerate(groups):
        asked = {n: wanted[n] for n in group.nodes if n in wanted}
        if not asked:
            continue
        match = [o for o in group.options
                 if all(dict(values).get(k) == v for n, values in o.attrs if n in asked for k, v in asked[n].items())]
        if not match:
            legal = sorted({str(dict(o.attrs)) for o in group.options})[:12]
            raise FlowError(f"folding {asked} is not legal for layer {'/'.join(group.nodes)}; legal options include "
                            f"{'; '.join(legal)}")
        fixed[i] = min(match, key=lambda o: (o.cycles, o.lut, o.lanes))
    if not fixed:
        raise FlowError("the folding file fixes no node")
    ii = max(o.cycles for o in fixed.values())
    rest = choose([g for i, g in enumerate(groups) if i not in fixed], ii, budget)
    if rest is None:  # cannot happen for the fastest options, kept as a guard with a readable message
        raise FlowError(f"some layer cannot keep up with {ii} cycles per frame")
    it = iter(rest)
    return [fixed[i] if i in fixed else next(it) for i in range(len(groups))]


def attrs_of(options: list[Option]) -> dict[str, dict[str, int]]:
    """The chosen options as ``{node name: {attr: value}}``."""
    return {name: dict(values) for option in options for name, values in option.attrs}


def apply_folding(model, options: list[Option]) -> None:
    """Write the chosen PE/SIMD values into the graph."""
    set_attrs(model, attrs_of(options))


def with_attrs(model, attrs: dict[str, dict[str, int]]):
    """A copy of ``model`` with the given node attributes set (the model itself is left as it is)."""
    import copy

    from qonnx.core.modelwrapper import ModelWrapper

    clone = ModelWrapper(copy.deepcopy(model.model))
    set_attrs(clone, attrs)
    return clone
