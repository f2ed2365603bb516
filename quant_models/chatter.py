"""Third-party chatter (FINN, QONNX, torch.onnx, Brevitas, cocotb) goes to a log file, not to the console.

One context manager serves the flow runner (each step's output into ``build.log``) and the CLI (export, demo): the
user sees qdet's own result lines, and one pointer to the log where the rest went.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO


@contextlib.contextmanager
def chatter_to(log: TextIO, streams: bool = True) -> Iterator[TextIO]:
    """Send Python warnings and log records (and, with ``streams``, ``print`` output to stdout/stderr) to ``log``.

    ``streams=False`` keeps stdout/stderr as they are, for work whose progress bar writes to stderr (training).
    Output that subprocesses write to the process's file descriptors is not caught here: pass those tools a log
    file of their own."""
    handler = logging.StreamHandler(log)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    root.handlers = [handler]
    with contextlib.ExitStack() as stack, warnings.catch_warnings():
        warnings.simplefilter("default")  # every distinct warning once per location, into the log
        warnings.showwarning = lambda message, category, filename, lineno, file=None, line=None: log.write(
            warnings.formatwarning(message, category, filename, lineno, line))
        if streams:
            stack.enter_context(contextlib.redirect_stdout(log))
            stack.enter_context(contextlib.redirect_stderr(log))
        try:
            yield log
        finally:
            log.flush()
            root.handlers, root.level = saved_handlers, saved_level


@contextlib.contextmanager
def chatter_into(path: Path, streams: bool = True, mode: str = "a") -> Iterator[None]:
    """:func:`chatter_to` a log file that is only written once there is something in it and its folder exists,
    also when the work fails: a command that fails its first checks leaves no log file behind."""
    buffer = io.StringIO()
    try:
        with chatter_to(buffer, streams):
            yield
    finally:
        path = Path(path)
        if buffer.getvalue() and path.parent.is_dir():
            with open(path, mode) as log:
                log.write(buffer.getvalue())
