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


@pytest.fixture(scope="session")
def tie_checkpoint(trained_run, synth_data: Path, tmp_path_factory: pytest.TempPathFactory):
    """The trained tinydet with conv 0's BatchNorm bias of one channel moved so that, on the first val image, an
    activation's exact value lies just below a rounding tie which the model evaluated in float32 rounds up, and the
    head accumulators differ between float32 and float64 evaluation. Returns (checkpoint, image (1, 3, H, W) uint8,
    float32 head accumulators, float64 head accumulators)."""
    import dataclasses

    import numpy as np
    import torch

    from quant_models.checkpoint import load_model, read_checkpoint, save_checkpoint
    from quant_models.data import load_dataset, to_tensors
    from quant_models.float64 import float64_reference

    model, _ = load_model(trained_run.best)
    val = load_dataset(synth_data, "val")
    image = to_tensors(dataclasses.replace(val, samples=val.samples[:1]), tuple(model.cfg.input_size)).images
    nets = {torch.float32: model, torch.float64: float64_reference(model)}
    seen: dict[torch.dtype, torch.Tensor] = {}
    for dtype, net in nets.items():
        net.layers[0].register_forward_pre_hook(lambda _m, inputs, d=dtype: seen.setdefault(d, inputs[0]))
    heads = {}
    for dtype, net in nets.items():
        with torch.no_grad():
            heads[dtype] = net.head_accumulators(net(image.to(dtype)))
    assert torch.equal(heads[torch.float32].double(), heads[torch.float64])
    block = {dtype: net.layers[0] for dtype, net in nets.items()}
    with torch.no_grad():
        convs = {dtype: block[dtype].conv(seen[dtype]) for dtype in nets}  # conv 0 does not change below
    scale = float(block[torch.float32].act.act_quant.scale().detach())

    def stage(dtype) -> tuple[torch.Tensor, torch.Tensor]:  # conv 0's BatchNorm output and its activation levels
        with torch.no_grad():
            x = block[dtype].bn(convs[dtype])
            return x[0], (block[dtype].act(x)[0] / scale).round()

    x64, _ = stage(torch.float64)
    top = 2 ** 4 - 2  # levels below 14: the odd k <= 13 taken below, and its k + 1, stay under the 4-bit clip (15)
    middle = ((x64 / scale >= 1) & (x64 / scale < top)) * x64
    # Candidates: the largest activations (the likeliest to pass conv 0's max pool and reach the head).
    for flat in torch.argsort(middle.flatten(), descending=True)[:16].tolist():
        channel, y, x = np.unravel_index(flat, x64.shape)
        k = int(x64[channel, y, x] / scale) | 1  # odd: half to even rounds the tie k + 1/2 up, to k + 1
        original = float(block[torch.float32].bn.bias.data[channel])
        base = np.float32(original + (k + 0.5) * scale - float(x64[channel, y, x]))
        for step in range(-48, 49):  # float32 biases around the one that puts the exact value on the tie
            for b in block.values():
                b.bn.bias.data[channel] = float(base + step * np.spacing(base))
            exact, level64 = stage(torch.float64)
            _, level32 = stage(torch.float32)
            below = k + 0.5 - float(exact[channel, y, x]) / scale  # > 0: the exact value rounds to k
            if not (below > 1e-9 and level64[channel, y, x] == k and level32[channel, y, x] == k + 1):
                continue
            for dtype, net in nets.items():
                with torch.no_grad():
                    heads[dtype] = net.head_accumulators(net(image.to(dtype)))
            if not torch.equal(heads[torch.float32].double(), heads[torch.float64]):
                ckpt = read_checkpoint(trained_run.best)
                ckpt.pop("format")
                path = tmp_path_factory.mktemp("tie") / "tie.pt"
                save_checkpoint(path, {**ckpt, "model": model.state_dict()})
                return path, image, heads[torch.float32], heads[torch.float64]
        for b in block.values():
            b.bn.bias.data[channel] = original
    raise AssertionError("no BatchNorm bias near a tie made float32 and float64 evaluation differ")
