"""Step: verify the golden model (python execution of the generic hardware-layer graph) against Brevitas.

The reference is the Brevitas model's integer head accumulators when the build knows the checkpoint
(``FlowConfig.checkpoint``), else QONNX execution of the exported graph (which ``qdet export`` checked against
Brevitas before it wrote the file). Any difference is a bug, never a tolerance: the step fails and names the first
step checkpoint whose output diverges and, with a checkpoint, the first hardware layer whose activations differ
from the torch layer's. The golden inputs and outputs are saved for the RTL and HLS backends.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from flows.config import FlowConfig, FlowError
from flows.io_spec import IOSpec


@dataclass(frozen=True)
class VerifyReport:
    """What was compared and how it went (the build's ``verify_record``)."""

    images: int
    image_source: str
    reference: str
    mismatches: int  # head accumulators that differ, counted over all images
    max_abs_float_diff: float
    mismatched_images: list[int]


def verification_images(cfg: FlowConfig, size: tuple[int, int]) -> tuple[np.ndarray, str]:
    """``cfg.verify_images`` uint8 images (N, 3, H, W): the first ones of a data set's val split, or random."""
    n = cfg.verify_images
    if cfg.verify_data is not None:
        from quant_models.data import load_dataset, to_tensors

        ds = load_dataset(Path(cfg.verify_data), "val")
        if len(ds.samples) < n:
            raise FlowError(f"{cfg.verify_data}: the val split has {len(ds.samples)} images, --verify asks for {n}")
        ds = dataclasses.replace(ds, samples=ds.samples[:n])
        return to_tensors(ds, size).images.numpy(), f"{cfg.verify_data} (val, first {n})"
    rng = np.random.default_rng(cfg.seed)
    return rng.integers(0, 256, (n, 3, *size), dtype=np.uint8), f"random uint8 (seed {cfg.seed})"


def _execute(model, x: np.ndarray, full: bool = False):
    from qonnx.core.onnx_exec import execute_onnx

    ctx = execute_onnx(model, {model.graph.input[0].name: x.astype(np.float32)}, return_full_exec_context=full)
    return ctx if full else ctx[model.graph.output[0].name]


class _Reference:
    """Integer head accumulators (NHWC) and float outputs of the model the build started from."""

    def __init__(self, cfg: FlowConfig, spec: IOSpec):
        self.spec = spec
        self.torch_model = None
        if cfg.checkpoint is not None:
            from quant_models.checkpoint import load_model

            self.torch_model, _ = load_model(Path(cfg.checkpoint))
            self.torch_model.eval()
            self.name = f"Brevitas model {cfg.checkpoint}"
        else:
            from qonnx.core.modelwrapper import ModelWrapper

            self.onnx = ModelWrapper(str(cfg.layout.input_checkpoint))
            self.name = "QONNX execution of the exported graph (pass --checkpoint to compare with Brevitas itself)"

    def float_output(self, image: np.ndarray) -> np.ndarray:
        if self.torch_model is None:
            return np.asarray(_execute(self.onnx, image[None]))
        import torch

        with torch.no_grad():
            return self.torch_model(torch.from_numpy(image[None]).float()).numpy()

    def accumulators(self, output: np.ndarray) -> np.ndarray:
        """Float model output (NCHW) -> integer accumulators (NHWC), inverting the host's scale and bias."""
        if self.torch_model is not None:
            import torch

            acc = self.torch_model.head_accumulators(torch.from_numpy(output)).numpy()
        else:
            ops = {op.op: op for op in self.spec.output.host_ops}
            scale = np.asarray(ops["Mul"].value, np.float32).reshape(ops["Mul"].shape)
            bias = np.asarray(ops["Add"].value, np.float32).reshape(ops["Add"].shape) if "Add" in ops else 0.0
            acc = np.round((output - bias) / scale)
        return np.transpose(acc, (0, 2, 3, 1))

    def layer_activations(self, image: np.ndarray) -> list[np.ndarray]:
        """Integer output of each conv block's activation (NHWC, before pooling); torch reference only."""
        import torch

        outs: list[np.ndarray] = []
        hooks = []
        for block in self.torch_model.layers:
            scale = float(block.act.act_quant.scale().detach())
            hooks.append(block.act.register_forward_hook(
                lambda _m, _i, o, s=scale: outs.append(np.round(o.detach().numpy() / s).transpose(0, 2, 3, 1))))
        try:
            with torch.no_grad():
                self.torch_model(torch.from_numpy(image[None]).float())
        finally:
            for h in hooks:
                h.remove()
        return outs


def _first_divergence(cfg: FlowConfig, ref: _Reference, model, image: np.ndarray, expected: np.ndarray) -> str:
    """Name the first step checkpoint, then the first hardware layer, whose result differs from the reference."""
    from qonnx.core.modelwrapper import ModelWrapper

    where = "the hardware-layer graph"
    for path in cfg.layout.checkpoints()[1:]:
        step = path.stem[3:]
        if step == "to_hw_layers":
            break
        got = ref.accumulators(np.asarray(_execute(ModelWrapper(str(path)), image[None])))
        if not np.array_equal(got, expected):
            where = f"step {step!r} ({path})"
            break
    if ref.torch_model is None:
        return f"first diverging: {where}"
    ctx = _execute(model, ref.spec.host_input(image[None]), full=True)
    mvaus = [n for n in model.graph.node if n.op_type.startswith("MVAU")]
    for i, (node, act) in enumerate(zip(mvaus, ref.layer_activations(image))):
        got = ctx[node.output[0]]
        if got.shape == act.shape and not np.array_equal(got, act):
            bad = np.argwhere(got != act)[0].tolist()
            return (f"first diverging: {where}; first differing layer: conv {i} = {node.name} at (n, y, x, c) = "
                    f"{bad}: golden {got[tuple(bad)]:g}, Brevitas {act[tuple(bad)]:g}")
    return f"first diverging: {where} (the conv activations agree; the head differs)"


def step_verify(model, cfg: FlowConfig):
    """Execute the hardware-layer graph on ``cfg.verify_images`` images and require exact integer agreement."""
    if cfg.verify_images == 0:
        return model
    spec = IOSpec.load(cfg.layout.io_spec)
    size = tuple(spec.input.shape[1:3])
    images, source = verification_images(cfg, size)
    ref = _Reference(cfg, spec)
    inputs, outputs, max_diff = [], [], 0.0
    mismatches, bad_images, first_bad = 0, [], None
    for k, image in enumerate(images):
        x = spec.host_input(image[None])
        got = np.asarray(_execute(model, x))
        ref_out = ref.float_output(image)
        expected = ref.accumulators(ref_out)
        # Counted over every image (not stopped at the first), so verify.json records what was measured.
        bad = int((got != expected).sum()) if got.shape == expected.shape else int(got.size)
        if bad:
            mismatches += bad
            bad_images.append(k)
            if first_bad is None:
                first_bad = (k, bad, got.size, _first_divergence(cfg, ref, model, image, expected))
        else:
            max_diff = max(max_diff, float(np.abs(spec.host_output(got) - ref_out).max()))
        inputs.append(x)
        outputs.append(got)
    layout = cfg.layout
    layout.golden_dir.mkdir(exist_ok=True)
    report = VerifyReport(len(images), source, ref.name, mismatches, max_diff, bad_images)
    layout.verify_record.write_text(json.dumps(asdict(report), indent=2) + "\n")
    if first_bad is not None:
        k, bad, size, where = first_bad
        raise FlowError(f"golden model differs from the reference ({ref.name}) on {len(bad_images)} of "
                        f"{len(images)} verification images ({mismatches} head accumulators in all); first on image "
                        f"{k}: {bad} of {size} differ; {where}")
    np.save(layout.golden_inputs, np.concatenate(inputs).astype(np.uint8))
    np.save(layout.golden_outputs, np.concatenate(outputs).astype(np.int64))
    return model
