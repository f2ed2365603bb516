"""Tiny on-disk fixtures for the loader tests."""

from __future__ import annotations

from pathlib import Path

from PIL import Image


def write_image(path: Path, width: int, height: int, colour: tuple[int, int, int] = (10, 20, 30)) -> Path:
    """Write a solid-colour image (format from the suffix) and return its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (width, height), colour).save(path)
    return path


def assert_names_entry(message: str, path: Path, fragments: tuple[str, ...] | list[str], skip_hint: bool = True) -> None:
    """A loader error must name the file, the entry (``fragments``) and, where skipping is possible, how to skip."""
    assert str(path) in message, message
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    if skip_hint:
        assert "--skip-bad" in message, message
