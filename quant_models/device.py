"""Validation of torch device names, shared by training and evaluation (``--device``)."""

from __future__ import annotations

import re

import torch

ACCEPTED = "cpu, cuda or cuda:N (N a CUDA device index)"


class DeviceError(ValueError):
    """A ``--device`` value that cannot be used here; the message names it and the accepted forms."""


def check_device(name: str, option: str = "--device") -> str:
    """Return ``name`` if it is ``cpu``, ``cuda`` or ``cuda:N`` and usable on this machine, else raise
    :class:`DeviceError` naming the value. Checked before any data is loaded, so a typo costs nothing."""
    text = str(name).strip()
    match = re.fullmatch(r"cuda(?::([0-9]+))?", text)
    if text == "cpu":
        return text
    if match is None:
        raise DeviceError(f"{option} {name!r} is not a device name; use {ACCEPTED}")
    # Only now ask torch: cuda.is_available() initialises the driver, which is pointless for 'cpu'.
    if not torch.cuda.is_available():
        raise DeviceError(f"{option} {text} asked for, but torch sees no CUDA device; use {option} cpu")
    count = torch.cuda.device_count()
    if match.group(1) is not None and int(match.group(1)) >= count:
        raise DeviceError(f"{option} {text}: this machine has {count} CUDA device(s), so N must be in "
                          f"0..{count - 1}")
    return text


__all__ = ["ACCEPTED", "DeviceError", "check_device"]
