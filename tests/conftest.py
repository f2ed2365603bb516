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


@pytest.fixture(scope="session")
def tiny_onnx(trained_run, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The trained W4A4 tinydet exported by ``qdet export`` (checked against torch on the way)."""
    from quant_models.export import export_checkpoint

    out = tmp_path_factory.mktemp("export") / "tinydet.onnx"
    export_checkpoint(trained_run.best, out, samples=1)
    return out


@pytest.fixture(scope="session")
def tiny_build(tiny_onnx, trained_run, synth_data, tmp_path_factory: pytest.TempPathFactory):
    """A whole default build of that model for pynq-z2, verified on 16 val images against the Brevitas checkpoint."""
    from flows.config import FlowConfig
    from flows.runner import run_flow
    from flows.steps import DEFAULT_STEPS

    cfg = FlowConfig(out=tmp_path_factory.mktemp("build") / "tinydet", board="pynq-z2", verify_images=16,
                     verify_data=synth_data, checkpoint=trained_run.best)
    model = run_flow(tiny_onnx, cfg, DEFAULT_STEPS)
    return cfg, model
