"""Up-front checks of the paths a command will write, shared by the training-run and build layouts.

Every stage checks its output paths before any expensive work starts, so a path that is a file, a folder that
cannot be written, or a finished result that would be replaced is an error naming the path and the flag to use,
never a traceback half-way through (and never a silent overwrite).
"""

from __future__ import annotations

import os
from pathlib import Path


class OutputPathError(ValueError):
    """An output path that cannot be used as asked; the message names it and says what to do."""


def _first_existing(path: Path) -> Path:
    """``path`` or its nearest existing ancestor."""
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return probe


def check_dir(path: Path, what: str, option: str) -> Path:
    """Check that ``path`` can be (or already is) a writable directory; return it.

    ``what`` describes the directory ("run directory"), ``option`` the flag that set it ("--out").
    Nothing is created here: a command that fails its checks leaves no trace."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputPathError(f"{option} {path}: is a file, not a directory; give a {what} path (absent or a "
                              "directory)")
    probe = _first_existing(path)
    if not probe.is_dir():
        raise OutputPathError(f"{option} {path}: {probe} is a file, so the {what} cannot be created under it")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise OutputPathError(f"{option} {path}: {probe} is not writable; choose a {what} you can write")
    return path


def check_file(path: Path, what: str, option: str) -> Path:
    """Check that ``path`` can be written as a file (its folder can be created and written); return it."""
    path = Path(path)
    if path.is_dir():
        raise OutputPathError(f"{option} {path}: is a directory; give the {what} file name (e.g. "
                              f"{path / 'model.onnx'})")
    probe = _first_existing(path.parent)
    if not probe.is_dir():
        raise OutputPathError(f"{option} {path}: {probe} is a file, so the {what} cannot be written under it")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise OutputPathError(f"{option} {path}: {probe} is not writable; choose another {what} path")
    if path.exists() and not os.access(path, os.W_OK):
        raise OutputPathError(f"{option} {path}: the file exists and is not writable")
    return path


def check_subdirs(root: Path, names: tuple[str, ...], what: str) -> None:
    """Inside an existing ``root``, every folder the stage writes must be a folder (or absent)."""
    for name in names:
        sub = Path(root) / name
        if sub.exists() and not sub.is_dir():
            raise OutputPathError(f"{sub} is a file, but the {what} keeps a folder there; move or delete the file")
