"""The CLI's one error path: which exceptions are the user's to fix, and how every failure is printed.

A user-facing failure (bad input, a missing file or tool, a build that cannot go on) is one of the typed errors
below; it prints as a plain ``error:`` line and exits with code 2. Anything else is a bug in qdet: one line and
exit code 1, with the traceback behind ``qdet --debug``. The classes are named rather than imported, so that
``qdet --help`` does not import torch or FINN, and an exception can only be one of them if its module is loaded.
"""

from __future__ import annotations

USAGE = 2  # bad input: the message says what to change
BUG = 1  # an unexpected exception

# module.Class of every typed error a stage raises for its user (their subclasses count too).
USER_ERRORS = frozenset({
    "quant_models.paths.OutputPathError",
    "quant_models.run_layout.RunLayoutError",
    "quant_models.quantizers.BitSpecError",
    "quant_models.export.ExportError",
    "quant_models.checkpoint.CheckpointError",
    "quant_models.data.types.DatasetError",
    "quant_models.device.DeviceError",
    "quant_models.train.TrainError",
    "quant_models.distributed.DistError",
    "quant_models.compress.common.CompressError",
    "flows.errors.FlowError",
    "hls.gen.ops.GenerateError",
    "hls.synth.SynthError",
    "hls.backend.BackendError",
    "hls.cpp.csim.CsimError",
    "sim.csim.CsimError",
    "boards.vitis.VitisError",
    "sim.cocotb_run.SimFailure",
    "sim.tools.ToolMissing",
    "sim.network.SimError",
    "boards.vivado.VivadoError",
    "boards.catalogue.UnknownBoardError",
    "qdet.demo.DemoError",
    "qdet.run.RunError",
    "qdet.search.space.SearchError",
    "boards.deploy.DeployError",
    "boards.runtime.device.AcceleratorError",
    "boards.runtime.spec.SpecError",
    "boards.runtime.images.ImageError",
})


def is_user_error(exc: BaseException) -> bool:
    """True when ``exc`` is (a subclass of) one of :data:`USER_ERRORS`."""
    return any(f"{cls.__module__}.{cls.__qualname__}" in USER_ERRORS for cls in type(exc).__mro__)


def message_of(exc: BaseException) -> str:
    """The text of an error (a KeyError's ``str`` would wrap it in quotes)."""
    if isinstance(exc, KeyError) and exc.args:
        return str(exc.args[0])
    return str(exc) or type(exc).__name__
