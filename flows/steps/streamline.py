"""Step 1b: streamlining. Float scales and biases move into thresholds; convs lower to Im2Col + MatMul (NHWC)."""

from __future__ import annotations

from flows.config import FlowConfig
from flows.transforms.identity_thresholds import RemoveIdentityThresholds


def step_streamline(model, cfg: FlowConfig):
    """FINN's streamlining sequence for conv nets, then qdet's removal of identity thresholds.

    The 8-bit input quantizer passes pixels unchanged (scale 1/255 after a division by 255), so after
    streamlining it is a 255-step threshold that maps every pixel to itself: removing it saves a Thresholding
    layer (255 thresholds per channel) at the head of the pipeline."""
    import finn.transformation.streamline.absorb as absorb
    from finn.transformation.streamline import Streamline
    from finn.transformation.streamline.reorder import MakeMaxPoolNHWC
    from qonnx.transformation.general import GiveReadableTensorNames, GiveUniqueNodeNames, RemoveUnusedTensors
    from qonnx.transformation.infer_data_layouts import InferDataLayouts
    from qonnx.transformation.lower_convs_to_matmul import LowerConvsToMatMul

    model = model.transform(absorb.AbsorbScalarBiasIntoMultiThreshold())
    model = model.transform(Streamline())
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
    # FINN names new tensors randomly: readable names keep the same build byte-identical.
    return model.transform(GiveUniqueNodeNames()).transform(GiveReadableTensorNames())
