"""Tiny on-disk fixtures for the loader tests."""

from __future__ import annotations

from pathlib import Path

from PIL import Image


def write_image(path: Path, width: int, height: int, colour: tuple[int, int, int] = (10, 20, 30)) -> Path:
    """Write a solid-colour image (format from the suffix) and return its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (width, height), colour).save(path)
    return path
