"""Steps 3 and 4: specialise the hardware layers, then fold them for the board (ours, with FINN's beside it)."""

from __future__ import annotations

import json
from pathlib import Path

from flows.config import FlowConfig, FlowError
from flows.estimates import folding_of
from flows.mac_costs import MAC_KINDS
from flows.folding import (RAM_STYLES, apply_folding, attrs_of, choose, choose_within, enumerate_groups, finn_rejects,
                           fold_fixed, fold_max_fps, fold_target, mac_kinds_for, ram_styles_for, with_attrs)
from boards.runtime.io_spec import IOSpec


def step_specialize(model, cfg: FlowConfig):
    """Pick each layer's implementation (HLS MVAU, RTL sliding window / padding, HLS pool) and narrow the
    accumulators and weights to the widths their values need; the io_spec's output datatype follows.

    The MVAU is specialised to its HLS variant because FINN's RTL MVAU estimates report no LUTs at all (its MACs
    sit on DSPs); the LUT-based HLS model keeps our folding and FINN's comparable. The RTL backend (issue 4)
    chooses DSP or LUT MAC lanes on its own."""
    from finn.transformation.fpgadataflow.minimize_accumulator_width import MinimizeAccumulatorWidth
    from finn.transformation.fpgadataflow.minimize_weight_bit_width import MinimizeWeightBitWidth
    from finn.transformation.fpgadataflow.specialize_layers import SpecializeLayers
    from qonnx.custom_op.registry import getCustomOp
    from qonnx.transformation.general import GiveUniqueNodeNames
    from qonnx.transformation.infer_datatypes import InferDataTypes

    for node in model.graph.node:
        if node.op_type == "MVAU":
            getCustomOp(node).set_nodeattr("preferred_impl_style", "hls")
    model = model.transform(SpecializeLayers(cfg.target.part))
    from flows.transforms.joins import ExactAddDatatype

    model = model.transform(MinimizeWeightBitWidth()).transform(MinimizeAccumulatorWidth())
    model = model.transform(ExactAddDatatype())  # FINN's add type is one bit short for signed + unsigned
    model = model.transform(InferDataTypes()).transform(GiveUniqueNodeNames())
    spec = IOSpec.load(cfg.layout.io_spec)
    for index, out in enumerate(model.graph.output):
        spec = spec.replace_output(index, name=out.name, datatype=model.get_tensor_datatype(out.name).name)
    spec.save(cfg.layout.io_spec)
    return model


def finn_setfolding(model, cycles: int):
    """FINN's own SetFolding for ``cycles`` per frame, applied to a copy of ``model``."""
    from finn.transformation.fpgadataflow.set_folding import SetFolding

    return with_attrs(model, {}).transform(SetFolding(target_cycles_per_frame=cycles))


FILE_RAM_STYLES = ("auto", *RAM_STYLES)  # a user's folding may leave a memory to synthesis


def read_folding(path: Path) -> dict[str, dict[str, int]]:
    """A folding file: ``{node name: {attribute: int}}``; a clear FlowError for anything else."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise FlowError(f"{path}: cannot read the folding file ({exc})") from exc
    def legal(a, x) -> bool:
        return isinstance(a, str) and (type(x) is int or (a == "ram_style" and x in FILE_RAM_STYLES)
                                       or (a == "resType" and x in MAC_KINDS))

    ok = isinstance(data, dict) and all(isinstance(v, dict) and all(legal(a, x) for a, x in v.items())
                                        for v in data.values())
    if not ok:
        raise FlowError(f"{path}: a folding file maps node names to {{attribute: integer}} (and \"ram_style\" to one "
                        f"of {', '.join(FILE_RAM_STYLES)}, \"resType\" to one of {', '.join(MAC_KINDS)}), e.g. "
                        f"{{\"MVAU_hls_0\": {{\"PE\": 16, \"SIMD\": 3}}}}")
    return data


def step_fold(model, cfg: FlowConfig):
    """qdet's folder for ``cfg.target_fps`` (or max FPS in the board budget, or the user's ``cfg.folding``). FINN's
    SetFolding runs on a copy with the same target (ours' cycles when folding for max FPS); when its folding comes
    out at other cycles than ours, ours is also folded for FINN's cycles, so the report can compare LUTs at the same
    throughput (see :func:`peer_comparison`: FINN failing never fails the build)."""
    part, budget = cfg.target.part, cfg.target.budget
    groups = enumerate_groups(model, part, ram_styles_for(budget), mac_kinds_for(budget))
    if cfg.folding is not None:
        options = fold_fixed(groups, read_folding(cfg.folding), budget)
        apply_folding(model, options)
    else:
        options = _fold_with_links(model, groups, cfg)
    achieved = max(o.cycles for o in options)
    peer_target = cfg.target_cycles if cfg.target_cycles is not None else achieved
    record = peer_comparison(model, groups, peer_target, achieved, budget)
    cfg.layout.report_dir.mkdir(exist_ok=True)
    cfg.layout.finn_setfolding.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    return model


LINK_ROUNDS = 3  # re-folds with the stream links' cost reserved; one usually suffices (their cost barely moves)


def _fold_with_links(model, groups, cfg: FlowConfig):
    """Fold for the target or for max FPS with the cost of the width converters and FIFOs the stream_links step
    will add reserved out of the budget: they are priced by FINN's node models on a copy linked the same way, and
    the layers are re-folded within what is left until layers and links fit together."""
    from boards.catalogue import Resources
    from flows.folding import over_budget, total
    from flows.steps.links import link_cost

    budget = cfg.target.budget
    reserve = Resources(0, 0, 0, 0, 0)
    for _ in range(LINK_ROUNDS):
        left = Resources(*(max(0.0, getattr(budget, r) - getattr(reserve, r))
                           for r in ("lut", "ff", "bram18", "uram", "dsp")))
        try:
            options = (fold_max_fps(groups, left) if cfg.target_cycles is None
                       else fold_target(groups, cfg.target_cycles, left, cfg.clock))
        except FlowError:
            if reserve.lut == reserve.bram18 == 0:
                raise
            break  # nothing fits beside the links: keep the last folding; the report says what is over
        apply_folding(model, options)
        cost = link_cost(model, cfg)
        used = total(options)
        both = Resources(*(getattr(used, r) + getattr(cost, r) for r in ("lut", "ff", "bram18", "uram", "dsp")))
        if not over_budget(both, budget):
            break
        reserve = cost
    return options


def peer_comparison(model, groups, peer_target: int, achieved: int, budget) -> dict:
    """FINN's SetFolding for ``peer_target`` cycles, for the report's comparison row; guarded.

    The comparison is optional: when FINN raises, or picks a folding its own node model rejects (e.g. a sliding
    window SIMD its RTL window asserts against), the record says so with FINN's message (``error``) and the build
    goes on with qdet's folding."""
    from qonnx.custom_op.registry import getCustomOp

    record: dict = {"target_cycles": peer_target}
    try:
        peer = finn_setfolding(model, peer_target)
        record["folding"] = folding_of(peer)
        rejected = [(n.name, why) for n in peer.graph.node if (why := finn_rejects(getCustomOp(n)))]
        if rejected:
            name, why = rejected[0]
            record["error"] = f"FINN's SetFolding picked a folding FINN's own node model rejects: {name}: {why}"
            return record
        peer_cycles = max(int(getCustomOp(n).get_exp_cycles()) for n in peer.graph.node)
    except Exception as exc:  # a peer's failure never fails the build: record it
        record["error"] = f"FINN's SetFolding failed: {type(exc).__name__}: {exc}"
        record.pop("folding", None)
        return record
    if peer_cycles != achieved:
        iso = choose_within(groups, peer_cycles, budget) or choose(groups, peer_cycles, budget)
        if iso is not None:
            record["qdet_at_finn_cycles"] = attrs_of(iso)
    return record
