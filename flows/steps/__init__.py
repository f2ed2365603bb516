"""The steps of the compile flow, in order. Each is a function ``(model, cfg) -> model``."""

from flows.steps.finn_dialect import step_qonnx_to_finn
from flows.steps.fold import step_fold, step_specialize
from flows.steps.hardware import step_to_hw_layers
from flows.steps.links import step_stream_links
from flows.steps.report import step_report
from flows.steps.streamline import step_streamline
from flows.steps.verify import step_verify

DEFAULT_STEPS = (step_qonnx_to_finn, step_streamline, step_to_hw_layers, step_verify, step_specialize, step_fold,
                 step_stream_links, step_report)

__all__ = ["DEFAULT_STEPS", "step_fold", "step_qonnx_to_finn", "step_report", "step_specialize", "step_stream_links", "step_streamline",
           "step_to_hw_layers", "step_verify"]
