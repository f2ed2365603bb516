"""Step 5: the stream links. Width converters and FIFOs become nodes of the folded graph, so the checkpoint shows
them, the estimates count them and every backend builds the same graph instead of re-deriving it.

FINN's ``InsertDWC`` puts a width converter wherever a producer's beat differs from its consumer's; qdet's
:class:`~flows.transforms.insert_fifos.InsertFIFOs` puts a FIFO in front of every layer input with the depth its
consumer needs; :mod:`flows.transforms.fifo_sizing` then deepens the FIFOs of reconvergent paths (a skip branch holds
what the long branch delays) and writes what it computed to the build's report folder.
"""

from __future__ import annotations

import json

from flows.config import FlowConfig


def step_stream_links(model, cfg: FlowConfig):
    """Insert width converters and FIFOs, size the reconvergent FIFOs, specialise the new nodes (RTL)."""
    model, record = _linked(model, cfg)
    cfg.layout.report_dir.mkdir(parents=True, exist_ok=True)
    cfg.layout.fifo_sizing.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    return model


def _linked(model, cfg: FlowConfig):
    """(the graph with its width converters and sized FIFOs, the sizing record)."""
    from finn.transformation.fpgadataflow.insert_dwc import InsertDWC
    from finn.transformation.fpgadataflow.specialize_layers import SpecializeLayers
    from qonnx.custom_op.registry import getCustomOp

    from flows.transforms.fifo_sizing import SizeReconvergentFIFOs
    from flows.transforms.insert_fifos import InsertFIFOs, NameStreamNodes

    model = model.transform(InsertDWC()).transform(InsertFIFOs(cfg.fifo_depth))
    for node in model.graph.node:
        if node.op_type in ("StreamingFIFO", "StreamingDataWidthConverter"):
            getCustomOp(node).set_nodeattr("preferred_impl_style", "rtl")
    model = model.transform(SpecializeLayers(cfg.target.part)).transform(NameStreamNodes())
    sizing = SizeReconvergentFIFOs()
    model = model.transform(sizing)
    return model, sizing.record


def link_cost(model, cfg: FlowConfig):
    """What the stream_links step would add to ``model`` (a folded graph), in FINN's estimates: the width
    converters' and FIFOs' LUT, BRAM18, URAM and DSP, priced on a linked copy."""
    import copy

    from boards.catalogue import Resources
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.custom_op.registry import getCustomOp

    from flows.folding import node_estimate
    from flows.transforms.insert_fifos import is_dwc, is_fifo

    linked = _linked(ModelWrapper(copy.deepcopy(model.model)), cfg)[0]
    sums = {"lut": 0.0, "bram18": 0.0, "uram": 0.0, "dsp": 0.0}
    for node in linked.graph.node:
        if is_fifo(node) or is_dwc(node):
            est = node_estimate(getCustomOp(node), cfg.target.part)
            for key in sums:
                sums[key] += est[key]
    return Resources(sums["lut"], 0.0, sums["bram18"], sums["uram"], sums["dsp"])


def set_fifo_depths(layout, depths: dict[str, int]) -> None:
    """Set FIFO depths in a build's ``stream_links`` checkpoint (``{FIFO node name: depth}``): a FIFO sizing measured
    by simulation, or a deliberately short FIFO in a test. The RTL generated from the old checkpoint becomes stale."""
    from qonnx.core.modelwrapper import ModelWrapper

    from flows.build import HARDWARE_STEP
    from flows.config import FlowError
    from flows.runner import save_model
    from flows.transforms.insert_fifos import set_depth

    path = layout.step_checkpoint(HARDWARE_STEP)
    model = ModelWrapper(str(path))
    names = {n.name for n in model.graph.node if n.op_type.startswith("StreamingFIFO")}
    unknown = sorted(set(depths) - names)
    if unknown:
        raise FlowError(f"{path}: no FIFO named {', '.join(unknown)} (FIFOs: {', '.join(sorted(names))})")
    for name, depth in depths.items():
        if depth < 2:
            raise FlowError(f"FIFO {name}: depth {depth} < 2")
        set_depth(model.get_node_from_name(name), depth)
    save_model(model, path)
