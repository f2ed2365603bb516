"""Step 1b: streamlining. Float scales and biases move into thresholds; convs lower to Im2Col + MatMul (NHWC).

Beyond FINN's default sequence (which suffices for plain conv chains), the passes FINN's own MobileNet and CNV
builds add: per-channel weight scales move past depthwise convs (``MoveMulPastDWConv``: a depthwise conv is
per-channel, so a per-channel Mul commutes with it) into the next thresholds; the average pool's layout follows
the NHWC graph; the conv-to-FC ``Transpose`` + ``Flatten``/``Reshape`` is absorbed and the remaining scalar scales
move past the fully connected MatMuls into the head's host-side scale.

The graph arrives in float64 containers (step ``qonnx_to_finn``): every fold is done in float64 and the integer-input
thresholds are rounded up to integers there, before the graph returns to float32 (see
:mod:`flows.transforms.precision`).
"""

from __future__ import annotations

from flows.config import FlowConfig
from flows.transforms.identity_thresholds import RemoveIdentityThresholds
from flows.transforms.precision import ToFloat32


def _readable(model):
    from qonnx.transformation.general import GiveReadableTensorNames, GiveUniqueNodeNames
    from qonnx.transformation.infer_datatypes import InferDataTypes

    # FINN names new tensors randomly: readable names keep the same build byte-identical.
    return model.transform(GiveUniqueNodeNames()).transform(GiveReadableTensorNames()).transform(InferDataTypes())


def _is_graph(model) -> bool:
    """True when the graph has a fork, a join of two tensors or a resize (a chain skips the graph passes, so its
    streamlined graph stays what it was)."""
    ops = {n.op_type for n in model.graph.node}
    return bool(ops & {"Concat", "Resize", "Upsample"}) or any(
        model.is_fork_node(n) or (n.op_type == "Add" and all(model.get_initializer(t) is None for t in n.input))
        for n in model.graph.node)


def graph_streamline(model, rounds: int = 6):
    """FINN's passes for forks and joins, to a fixed point: scales and layout changes move past forks (copied into
    each branch) and past the joins whose inputs share them (a residual Add, a Concat), nearest-neighbour resizes
    become NHWC, so that every join sees integers and its common scale ends in the next thresholds.

    The joins' equal scales are checked before (flows.transforms.joins); an Add or Concat left with float inputs
    here is reported by the hardware step, naming the node."""
    import finn.transformation.streamline.absorb as absorb
    import finn.transformation.streamline.reorder as reorder
    from finn.transformation.streamline import Streamline
    from qonnx.transformation.infer_data_layouts import InferDataLayouts

    passes = (reorder.MoveLinearPastFork(), reorder.MoveMulPastJoinAdd(), reorder.MoveLinearPastEltwiseAdd(),
              reorder.MoveMulPastJoinConcat(), reorder.MoveTransposePastFork(), reorder.MoveTransposePastJoinAdd(),
              reorder.MoveTransposePastJoinConcat(), reorder.MakeScaleResizeNHWC(), absorb.AbsorbTransposeIntoResize(),
              absorb.AbsorbMulIntoMultiThreshold(), absorb.AbsorbTransposeIntoMultiThreshold(),
              reorder.MoveTransposePastEltwise(), absorb.AbsorbConsecutiveTransposes(), InferDataLayouts())
    for _ in range(rounds):
        before = model.model.SerializeToString()
        for transform in passes:
            model = model.transform(transform)
        model = _readable(model.transform(Streamline()))
        if model.model.SerializeToString() == before:
            break
    return model


def step_streamline(model, cfg: FlowConfig):
    """FINN's streamlining sequence for conv nets (plus its depthwise/pool/FC passes), then qdet's removal of
    identity thresholds.

    The 8-bit input quantizer passes pixels unchanged (scale 1/255 after a division by 255), so after
    streamlining it is a 255-step threshold that maps every pixel to itself: removing it saves a Thresholding
    layer (255 thresholds per channel) at the head of the pipeline."""
    import finn.transformation.streamline.absorb as absorb
    import finn.transformation.streamline.reorder as reorder
    from finn.transformation.qonnx.infer_quant_avg_pool_2d import AvgPoolAndTruncToQuantAvgPool
    from finn.transformation.streamline import Streamline
    from finn.transformation.streamline.collapse_repeated import CollapseRepeatedMul
    from finn.transformation.streamline.reorder import MakeMaxPoolNHWC
    from finn.transformation.streamline.round_thresholds import RoundAndClipThresholds
    from qonnx.transformation.change_datalayout import ChangeDataLayoutQuantAvgPool2d
    from qonnx.transformation.infer_data_layouts import InferDataLayouts
    from qonnx.transformation.general import RemoveUnusedTensors
    from qonnx.transformation.lower_convs_to_matmul import LowerConvsToMatMul
    from qonnx.transformation.remove import RemoveIdentityOps

    model = model.transform(AvgPoolAndTruncToQuantAvgPool())
    model = model.transform(absorb.AbsorbScalarBiasIntoMultiThreshold())
    model = model.transform(Streamline())
    graph = _is_graph(model)
    if graph:
        model = graph_streamline(model)
    for transform in (reorder.MoveMulPastDWConv(), absorb.AbsorbMulIntoMultiThreshold(),
                      ChangeDataLayoutQuantAvgPool2d(), InferDataLayouts(), reorder.MoveTransposePastScalarMul(),
                      absorb.AbsorbTransposeIntoFlatten(), reorder.MoveFlattenPastAffine(),
                      reorder.MoveFlattenPastTopK(), reorder.MoveScalarMulPastMatMul(), CollapseRepeatedMul(),
                      RemoveIdentityOps()):
        model = _readable(model.transform(transform))
    model = model.transform(LowerConvsToMatMul())
    model = model.transform(MakeMaxPoolNHWC())
    model = model.transform(absorb.AbsorbTransposeIntoMultiThreshold())
    model = model.transform(MakeMaxPoolNHWC())
    model = model.transform(absorb.AbsorbConsecutiveTransposes())
    model = model.transform(Streamline())
    model = model.transform(RemoveIdentityThresholds())
    model = model.transform(absorb.AbsorbConsecutiveTransposes())
    model = model.transform(InferDataLayouts())
    model = model.transform(RemoveUnusedTensors())
    if graph:
        model = graph_streamline(model)
    # Still in float64: integer-input thresholds round up to the integers exact arithmetic gives, then float32.
    model = model.transform(RoundAndClipThresholds()).transform(ToFloat32())
    return _readable(model)
