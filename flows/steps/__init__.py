"""The steps of the compile flow, in order. Each is a function ``(model, cfg) -> model``."""

from flows.steps.finn_dialect import step_qonnx_to_finn
from flows.steps.hardware import step_to_hw_layers
from flows.steps.streamline import step_streamline
from flows.steps.verify import step_verify

DEFAULT_STEPS = (step_qonnx_to_finn, step_streamline, step_to_hw_layers, step_verify)

__all__ = ["DEFAULT_STEPS", "step_qonnx_to_finn", "step_streamline", "step_to_hw_layers", "step_verify"]
