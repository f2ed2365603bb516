"""Shared, session-scoped fixtures: a small synthetic data set and a briefly trained W4A4 tinydet."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def synth_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """80 synthetic 128x128 images (64 train / 16 val), COCO layout."""
    from quant_models.data import generate_synthetic

    root = tmp_path_factory.mktemp("synth") / "data"
    generate_synthetic(root, images=80, seed=3, size=(128, 128), fmt="coco", val_fraction=0.2)
    return root


@pytest.fixture(scope="session")
def trained_run(synth_data: Path, tmp_path_factory: pytest.TempPathFactory):
    """A half-width W4A4 tinydet trained for 2 epochs (seconds on a CPU): real weights, BN statistics, scales."""
    from quant_models.train import TrainConfig, train

    out = tmp_path_factory.mktemp("run") / "w4a4"
    return train(TrainConfig(data=synth_data, out=out, bits="w4a4", epochs=2, batch_size=16, width=0.5,
                             progress=False))
