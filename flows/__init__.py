"""The compile flow: a trained, exported detector (QONNX) through FINN to a streaming dataflow graph.

A flow is an ordered list of step functions ``(model, cfg) -> model`` over QONNX's ``ModelWrapper``
(:mod:`flows.steps`), run by :func:`flows.runner.run_flow`, which checkpoints the model after every step.
"""
