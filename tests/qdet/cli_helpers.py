"""Running ``qdet`` in-process through its real entry point (``qdet.cli.main``: the one error path), and
fingerprinting a folder to prove a failed command changed nothing."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import pytest

from qdet.cli import main


@dataclass(frozen=True)
class Result:
    """Exit code and captured output of one ``qdet`` call."""

    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        """stdout and stderr together, with rich's line wrapping undone."""
        return " ".join((self.out + "\n" + self.err).split())

    def error_lines(self) -> list[str]:
        """The ``error:`` lines on stderr."""
        return [line for line in self.err.splitlines() if line.startswith("error:")]


def run_qdet(capsys: pytest.CaptureFixture, *args: object) -> Result:
    """``qdet ARGS`` through ``main`` (which always ends in SystemExit)."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        main([str(a) for a in args])
    captured = capsys.readouterr()
    return Result(int(stop.value.code or 0), captured.out, captured.err)


def fingerprint(root: Path) -> dict[str, str]:
    """Every path under ``root``: files by their sha256, folders by a marker."""
    prints = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        prints[rel] = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "<dir>"
    return prints
