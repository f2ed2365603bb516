"""Step: verify the golden model (python execution of the generic hardware-layer graph) against Brevitas.

The reference is the Brevitas model's integer head accumulators when the build knows the checkpoint
(``FlowConfig.checkpoint``), the model evaluated in float64, else an exact (float64) QONNX execution of the
exported graph (:mod:`quant_models.exact_exec`; ``qdet export`` checked the graph against Brevitas before it wrote
the file). Any difference is a bug, never a tolerance: the step fails and names the first step checkpoint whose
output diverges and, with a checkpoint, the first hardware layer whose activations differ from the torch layer's.
The golden inputs and outputs are saved for the RTL and HLS backends.

Why Brevitas in float64 (on its float32 quantizer parameters, :mod:`quant_models.float64`): in float32 an
activation within ~1e-7 of a rounding tie can round to the other level than its exact value, which the hardware
follows.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from flows.config import FlowConfig, FlowError
from boards.runtime.io_spec import IOSpec, int_range
from flows.transforms.host_input_quant import host_input_ops


@dataclass(frozen=True)
class VerifyReport:
    """What was compared and how it went (the build's ``verify_record``)."""

    images: int
    image_source: str
    reference: str
    mismatches: int  # head accumulators that differ, counted over all images
    max_abs_float_diff: float
    mismatched_images: list[int]
    checkpoint: str | None = None  # the Brevitas checkpoint compared with (None: the exported graph)


def _affine_per_element(spec: IOSpec, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """The host's preprocessing in front of the input quantizer as y = a*x + b (per element, float64)."""
    pre = spec.input.host_ops[:next(i for i, op in enumerate(spec.input.host_ops) if op.op == "Quant")]

    def run(x: np.ndarray) -> np.ndarray:
        for op in pre:
            x = op.apply(x)
        return x.astype(np.float64)

    b = run(np.zeros((1, *shape), np.float32))
    return run(np.ones((1, *shape), np.float32)) - b, b


def float_images(spec: IOSpec, shape: tuple[int, ...], n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` float32 inputs (N, *shape) for a model with a host-side input quantizer.

    Drawn so that, after the model's own preprocessing, the quantizer sees its whole range plus a margin on both
    sides (clamping is exercised), and half of the values sit on exact rounding ties ((k + 1/2) * scale) where the
    preprocessing keeps them exact: ties are where a host that rounds differently from Brevitas would show."""
    q = spec.input_quant()
    lo, hi = int_range(q.bit_width, q.signed, q.narrow)
    scale = float(q.operand().reshape(-1)[0])
    a, b = _affine_per_element(spec, shape)
    if np.any(a == 0):
        raise FlowError("the input preprocessing multiplies some input elements by 0: cannot draw test inputs")
    levels = rng.integers(lo - 2, hi + 2, size=(n, *shape)).astype(np.float64) - q.zero_point
    ties = rng.random((n, *shape)) < 0.5
    y = (levels + np.where(ties, 0.5, rng.random((n, *shape)) - 0.5)) * scale
    return ((y - b) / a).astype(np.float32)


def verification_images(cfg: FlowConfig, spec: IOSpec, shape: tuple[int, ...]) -> tuple[np.ndarray, str]:
    """``cfg.verify_images`` inputs (N, *shape) as the model takes them: for an integer (UINT8) image input the
    first images of a data set's val split, or random uint8 images; for a float input (host-side quantizer) random
    floats over the quantizer's range (see :func:`float_images`), or a data set's images scaled to [0, 1]."""
    n = cfg.verify_images
    if cfg.verify_data is not None:
        from quant_models.data import load_dataset, to_tensors

        ds = load_dataset(Path(cfg.verify_data), "val")
        if len(ds.samples) < n:
            raise FlowError(f"{cfg.verify_data}: the val split has {len(ds.samples)} images, --verify asks for {n}")
        ds = dataclasses.replace(ds, samples=ds.samples[:n])
        images = to_tensors(ds, tuple(shape[1:3])).images.numpy()
        if images.shape[1:] != tuple(shape):
            raise FlowError(f"{cfg.verify_data}: its images are {images.shape[1:]} (C, H, W) after resizing, the "
                            f"model takes {tuple(shape)}")
        if spec.float_input:
            return (images.astype(np.float32) / np.float32(255)), f"{cfg.verify_data} (val, first {n}, scaled to [0, 1])"
        return images, f"{cfg.verify_data} (val, first {n})"
    rng = np.random.default_rng(cfg.seed)
    if spec.float_input:
        return float_images(spec, shape, n, rng), f"random floats over the input quantizer's range, half on rounding " \
                                                  f"ties (seed {cfg.seed})"
    return rng.integers(0, 256, (n, *shape), dtype=np.uint8), f"random uint8 (seed {cfg.seed})"


def golden_dtype(datatype: str) -> np.dtype:
    """The numpy dtype golden input frames are saved in: the narrowest one holding the stream's FINN datatype."""
    from qonnx.core.datatype import DataType

    dt = DataType[datatype]
    for candidate in (np.uint8, np.int8, np.uint16, np.int16, np.int32):
        info = np.iinfo(candidate)
        if info.min <= dt.min() and dt.max() <= info.max:
            return np.dtype(candidate)
    return np.dtype(np.int64)


def invert_host_output(ops, out_shape: tuple[int, ...], value: np.ndarray) -> np.ndarray:
    """Undo the host's numeric output ops (Transpose, Reshape/Flatten, Mul, Add, Sub, Div) on ``value``: the model's
    float output -> the accelerator's integer output, rounded (exact when the golden model is)."""
    shapes = [tuple(out_shape)]
    x = np.zeros(out_shape, np.float32)
    for op in ops:
        x = op.apply(x)
        shapes.append(x.shape)
    y = np.asarray(value, dtype=np.float64)
    for op, shape in zip(reversed(ops), reversed(shapes[:-1])):
        if op.op == "Transpose":
            y = np.transpose(y, np.argsort(op.perm))
        elif op.op in ("Reshape", "Flatten"):
            y = y.reshape((y.shape[0], *shape[1:]))
        else:
            c = op.operand().astype(np.float64)
            if op.op == "Mul":
                y = y / c
            elif op.op == "Add":
                y = y - c
            elif op.op == "Sub":
                y = c - y if op.reverse else y + c
            elif op.op == "Div":
                y = c / y if op.reverse else y * c
    return np.round(y)


def _execute(model, x: np.ndarray) -> dict:
    """FINN's golden model: qonnx's python execution of the (float32-container) hardware-layer graph; every
    tensor."""
    from qonnx.core.onnx_exec import execute_onnx

    return execute_onnx(model, {model.graph.input[0].name: x.astype(np.float32)}, return_full_exec_context=True)


def _execute_exact(model, x: np.ndarray) -> dict:
    """The reference's arithmetic (:mod:`quant_models.exact_exec`) on the export or a step checkpoint; every tensor."""
    from quant_models.exact_exec import execute_exact

    return execute_exact(model, {model.graph.input[0].name: x}, return_full_exec_context=True)


def outputs_of(model, x: np.ndarray, exact: bool = False, names: list[str] | None = None) -> list[np.ndarray]:
    """Every graph output (or the tensors ``names``) of the golden model (``exact``: the reference's arithmetic)."""
    ctx = (_execute_exact if exact else _execute)(model, x)
    return [np.asarray(ctx[n]) for n in (names or [o.name for o in model.graph.output])]


def numeric_output(model, index: int = 0) -> str:
    """The tensor a final TopK/ArgMax ranks (the graph output ``index`` itself when there is none)."""
    name = model.graph.output[index].name
    node = model.find_producer(name)
    while node is not None and node.op_type in ("TopK", "ArgMax", "Reshape", "Flatten", "Squeeze"):
        if node.op_type in ("TopK", "ArgMax"):
            return node.input[0]
        node = model.find_producer(node.input[0])
    return name


class _Reference:
    """Integer head accumulators (NHWC) and float outputs of the model the build started from."""

    def __init__(self, cfg: FlowConfig, spec: IOSpec):
        self.spec = spec
        self.torch_model = None
        if cfg.checkpoint is not None:
            from quant_models.checkpoint import load_model
            from quant_models.float64 import float64_reference

            self.torch_model = float64_reference(load_model(Path(cfg.checkpoint))[0])
            self.name = f"Brevitas model {cfg.checkpoint} (in float64)"
        else:
            from qonnx.core.modelwrapper import ModelWrapper

            self.onnx = ModelWrapper(str(cfg.layout.input_checkpoint))
            self.name = ("exact QONNX execution of the exported graph (float64: QONNX's own quantizers, ONNX's "
                         "reference ops; pass --checkpoint to compare with Brevitas itself)")
            # A classifier's final TopK/ArgMax runs on the host; the comparison is on the values it ranks.
            self.numeric_outputs = [numeric_output(self.onnx, i) for i in range(len(self.onnx.graph.output))]

    def float_outputs(self, image: np.ndarray) -> list[np.ndarray]:
        """The model's float outputs, one per output port."""
        if self.torch_model is None:
            return outputs_of(self.onnx, image[None], exact=True, names=self.numeric_outputs)
        import torch

        with torch.no_grad():
            out = self.torch_model(torch.from_numpy(image[None]).double())
        return [o.numpy() for o in (out if isinstance(out, (tuple, list)) else (out,))]

    def accumulators(self, outputs: list[np.ndarray]) -> list[np.ndarray]:
        """Float model outputs (NCHW) -> integer accumulators (NHWC), inverting the host's scale and bias."""
        if self.torch_model is not None:
            import torch

            return [np.transpose(self.torch_model.head_accumulators(torch.from_numpy(o), i).numpy(), (0, 2, 3, 1))
                    for i, o in enumerate(outputs)]
        return [invert_host_output(self.spec.numeric_output_ops(i), self.spec.outputs[i].shape, output)
                for i, output in enumerate(outputs)]

    def layer_activations(self, image: np.ndarray) -> list[np.ndarray]:
        """Integer output of each conv's quantizer (NHWC, before pooling), in execution order: a block's activation,
        after the signed quantizers between its factors where it is low-rank (one per MVAU); torch reference only."""
        import torch

        outs: list[np.ndarray] = []
        hooks = []
        for block in self.torch_model.layers:
            for quant in (*getattr(block, "mids", ()), block.act):
                scale = float(quant.act_quant.scale().detach())
                hooks.append(quant.register_forward_hook(
                    lambda _m, _i, o, s=scale: outs.append(np.round(o.detach().numpy() / s).transpose(0, 2, 3, 1))))
        try:
            with torch.no_grad():
                self.torch_model(torch.from_numpy(image[None]).double())
        finally:
            for h in hooks:
                h.remove()
        return outs


NEAR_TIE = 1e-9  # |x / s - (k + 1/2)| below this, in quantization steps: within float64 noise of a tie


def _near_ties(onnx, image: np.ndarray) -> str:
    """A note on the reference's own ambiguity: its activations that sit within float64 noise of a rounding tie.

    There, exact arithmetic and the integer datapath could still part ways (about 1e-12 of activations); the note
    says where the first one is, so a user can tell that from a bug. It never turns a mismatch into a pass."""
    from flows.transforms.host_input_quant import input_chain

    try:
        host_side = {n.name for n in input_chain(onnx)}
    except FlowError:
        host_side = set()
    ctx = _execute_exact(onnx, image[None])
    first, total = None, 0
    for node in onnx.graph.node:
        # Weight quantizers have constant inputs; the input quantizer runs on the host, exactly (and the float
        # verification images sit on its ties on purpose).
        if node.op_type != "Quant" or onnx.get_initializer(node.input[0]) is not None or node.name in host_side:
            continue
        scale = onnx.get_initializer(node.input[1])
        if scale is None or ctx.get(node.input[0]) is None:
            continue
        y = np.asarray(ctx[node.input[0]], np.float64) / np.asarray(scale, np.float64)
        near = (np.abs(y - np.floor(y) - 0.5) < NEAR_TIE) & (y != np.floor(y) + 0.5)  # exact ties are decided
        total += int(near.sum())
        if near.any() and first is None:
            first = node.name
    if not total:
        return "; the reference has no activation within float64 noise of a rounding tie on this image"
    return (f"; the reference has {total} activations within float64 noise of a rounding tie on this image (first "
            f"before {first}), where exact arithmetic could round the other way")


def _first_divergence(cfg: FlowConfig, ref: _Reference, model, image: np.ndarray, expected: np.ndarray) -> str:
    """Name the first step checkpoint, then the first hardware layer, whose result differs from the reference."""
    from qonnx.core.modelwrapper import ModelWrapper

    where = "the hardware-layer graph"
    for path in cfg.layout.checkpoints()[1:]:
        step = path.stem[3:]
        if step == "to_hw_layers":
            break
        step_model = ModelWrapper(str(path))
        x = image[None]
        for op in host_input_ops(step_model):  # from the first step on, the graph takes the host's integers
            x = op.apply(x)
        names = [numeric_output(step_model, i) for i in range(len(step_model.graph.output))]
        got = ref.accumulators(outputs_of(step_model, x, exact=True, names=names))
        if not all(np.array_equal(g, e) for g, e in zip(got, expected)):
            where = f"step {step!r} ({path})"
            break
    if ref.torch_model is None:
        return f"first diverging: {where}{_near_ties(ref.onnx, image)}"
    if getattr(ref.torch_model, "num_outputs", 1) > 1:
        # A graph detector's blocks share quantizers (a residual add's two inputs): its activation hooks do not map
        # one to one onto the graph's MVAUs, so the by-layer comparison is left to `qdet sim`'s per-link dump.
        return f"first diverging: {where} (a multi-head model: compare by layer with qdet sim's diagnosis)"
    ctx = _execute(model, ref.spec.host_input(image[None]))
    # The torch model's blocks in order: a depthwise block is a VVAU in the graph, every other conv an MVAU.
    mvaus = [n for n in model.graph.node if n.op_type.startswith(("MVAU", "VVAU"))]
    for i, (node, act) in enumerate(zip(mvaus, ref.layer_activations(image))):
        got = ctx[node.output[0]]
        if got.shape == act.shape and not np.array_equal(got, act):
            bad = np.argwhere(got != act)[0].tolist()
            return (f"first diverging: {where}; first differing layer: conv {i} = {node.name} at (n, y, x, c) = "
                    f"{bad}: golden {got[tuple(bad)]:g}, Brevitas {act[tuple(bad)]:g}")
    return f"first diverging: {where} (the conv activations agree; the head differs)"


def step_verify(model, cfg: FlowConfig):
    """Execute the hardware-layer graph on ``cfg.verify_images`` images and require exact integer agreement."""
    layout = cfg.layout
    # A resumed build must not keep an earlier attempt's record or frames beside a model they were not made for.
    for stale in (layout.verify_record, layout.golden_inputs, *layout.golden_output_files()):
        stale.unlink(missing_ok=True)
    if cfg.verify_images == 0:
        return model
    from qonnx.core.modelwrapper import ModelWrapper

    spec = IOSpec.load(cfg.layout.io_spec)
    source_model = ModelWrapper(str(cfg.layout.input_checkpoint))
    shape = tuple(source_model.get_tensor_shape(source_model.graph.input[0].name)[1:])
    images, source = verification_images(cfg, spec, shape)
    ref = _Reference(cfg, spec)
    inputs, outputs, max_diff = [], [[] for _ in spec.outputs], 0.0
    mismatches, bad_images, first_bad = 0, [], None
    for k, image in enumerate(images):
        x = spec.host_input(image[None])
        got = outputs_of(model, x)
        ref_out = ref.float_outputs(image)
        expected = ref.accumulators(ref_out)
        # Counted over every image and output (not stopped at the first), so verify.json records what was measured.
        bad = sum(int((g != e).sum()) if g.shape == e.shape else int(g.size) for g, e in zip(got, expected))
        if bad:
            mismatches += bad
            bad_images.append(k)
            if first_bad is None:
                first_bad = (k, bad, sum(g.size for g in got), _first_divergence(cfg, ref, model, image, expected))
        else:
            max_diff = max(max_diff, *(float(np.abs(spec.host_output(g, i) - r).max())
                                       for i, (g, r) in enumerate(zip(got, ref_out))))
        inputs.append(x)
        for i, g in enumerate(got):
            outputs[i].append(g)
    layout.golden_dir.mkdir(exist_ok=True)
    report = VerifyReport(len(images), source, ref.name, mismatches, max_diff, bad_images,
                          str(Path(cfg.checkpoint).resolve()) if cfg.checkpoint is not None else None)
    layout.verify_record.write_text(json.dumps(asdict(report), indent=2) + "\n")
    if first_bad is not None:
        k, bad, size, where = first_bad
        raise FlowError(f"golden model differs from the reference ({ref.name}) on {len(bad_images)} of "
                        f"{len(images)} verification images ({mismatches} head accumulators in all); first on image "
                        f"{k}: {bad} of {size} differ; {where}")
    np.save(layout.golden_inputs, np.concatenate(inputs).astype(golden_dtype(spec.input.datatype)))
    for i, frames in enumerate(outputs):
        np.save(layout.golden_output(i), np.concatenate(frames).astype(np.int64))
    return model
