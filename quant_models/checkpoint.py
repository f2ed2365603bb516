"""Checkpoints: one file holds the model config, weights, optimiser state and training history."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from quant_models.models import DetectorConfig, Model, build_model

FORMAT = "qdet-checkpoint/1"


class CheckpointError(ValueError):
    """A file that is not a usable qdet checkpoint; the message names it and says what to do."""


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """Write atomically (temp file + rename), so an interrupted run never leaves a half-written checkpoint."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save({"format": FORMAT, **payload}, tmp)
    os.replace(tmp, path)


def read_checkpoint(path: Path) -> dict[str, Any]:
    """Load a checkpoint dict (on the CPU), with a clear error for missing or foreign files."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist; train one with `qdet train ... --out RUN`")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # torch raises many types for a corrupt or foreign file
        raise CheckpointError(f"{path} is not a readable checkpoint ({type(exc).__name__}: {exc})") from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a qdet checkpoint (no '{FORMAT}' marker); use RUN/best.pt or "
                              "RUN/last.pt written by `qdet train`")
    return ckpt


def load_model(path: Path) -> tuple[Model, dict[str, Any]]:
    """Rebuild the detector stored in a checkpoint, in eval mode on the CPU; returns (model, checkpoint dict)."""
    ckpt = read_checkpoint(path)
    cfg = DetectorConfig.from_dict(ckpt["model_config"])
    model = build_model(cfg)
    model.load_state_dict(ckpt["model"])
    model.eval()
    return model, ckpt
