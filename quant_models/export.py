"""QONNX export: Brevitas ``export_qonnx``, QONNX cleanup, then a check of the graph against torch.

The exported graph takes raw 8-bit pixels (its input is annotated UINT8) and ends at the head's float output
(integer accumulators times a per-channel scale, plus a bias): the scale and bias are host-side work for the
hardware flow, recorded by ``Detector.head_scale_bias``. A multi-scale model (tinyyolo) has one graph output per
head, in the model's output order; the model config in the metadata lists each output's decode parameters
(``heads``: index, stride, grid, anchors, and the ONNX output's name).

The check runs QONNX's own executor on sample images and compares with the torch model twice: the float outputs
(to float tolerance) and the integer head accumulators recovered from them, which must be equal exactly.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from quant_models.checkpoint import load_model
from quant_models.decode import as_outputs
from quant_models.float64 import float64_reference
from quant_models.models import Model

# ONNX ops of an exported qdet detector that the FINN flow maps to hardware (or streamlines away). Resize
# (nearest, x2) and Concat are tinyyolo's neck: FINN has nearest-neighbour upsampling and concat layers.
FINN_MAPPABLE_OPS = frozenset({"Quant", "BipolarQuant", "Conv", "BatchNormalization", "Relu", "MaxPool", "Mul",
                               "Div", "Add", "Resize", "Concat"})


MODEL_CONFIG_KEY = "qdet.model_config"  # ONNX metadata entry holding the detector's config as JSON


class ExportError(RuntimeError):
    """Export refused or its check failed; the message says what and where."""


@dataclass(frozen=True)
class HeadReport:
    """One further output of a multi-head export: its ONNX name, shape, and host-side scale and bias."""

    output: str
    shape: tuple[int, ...]
    scale: list[float]
    bias: list[float]


@dataclass(frozen=True)
class ExportReport:
    """Result of an export and its check. ``output_shape``, ``head_scale`` and ``head_bias`` are output 0's;
    ``more_heads`` has the further outputs of a multi-head model, in order (empty for a single head)."""

    onnx: str
    node_types: dict[str, int]
    samples: int
    max_abs_diff: float
    accumulator_mismatches: int
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    head_scale: list[float]
    head_bias: list[float]
    more_heads: tuple[HeadReport, ...] = ()


@dataclass(frozen=True)
class ExportFiles:
    """What ``qdet export --out MODEL.onnx`` writes: the model, its check report beside it, and a log."""

    onnx: Path
    report: Path
    log: Path


def export_files(out: Path) -> ExportFiles:
    """The files of an export to ``out`` (the one place their names are spelled)."""
    out = Path(out)
    return ExportFiles(onnx=out, report=out.with_suffix(".json"), log=out.with_suffix(".export.log"))


def model_metadata(model: Model, output_names: list[str]) -> dict:
    """The model config written into the ONNX metadata (``MODEL_CONFIG_KEY``): ``cfg.to_dict()``, and for a
    multi-head model each ``heads`` entry also names its ONNX output (``onnx_output``)."""
    data = model.cfg.to_dict()
    if len(output_names) != model.num_outputs:
        raise ExportError(f"the exported graph has {len(output_names)} outputs, {model.cfg.arch} has "
                          f"{model.num_outputs}")
    for head, name in zip(data.get("heads", ()), output_names):
        head["onnx_output"] = name
    return data


def export_model(model: Model, out: Path) -> None:
    """Export ``model`` to QONNX at ``out`` and clean it up (shape inference, constant folding, naming)."""
    from brevitas.export import export_qonnx
    from qonnx.core.datatype import DataType
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.cleanup import cleanup_model

    if not model.is_quantized:
        raise ExportError(f"{model.cfg.arch} is a float model: FINN needs a quantized graph. Train it with a bit "
                          "spec (qdet train --bits w4a4), or fine-tune it from this checkpoint (--init)")
    model = model.cpu().eval()
    out.parent.mkdir(parents=True, exist_ok=True)
    probe = torch.zeros(1, 3, *model.cfg.input_size)
    with torch.no_grad():
        export_qonnx(model, input_t=probe, export_path=str(out))
    wrapped = cleanup_model(ModelWrapper(str(out)))
    wrapped.set_tensor_datatype(wrapped.graph.input[0].name, DataType["UINT8"])  # raw pixels, no scaling
    # The compile flow needs the decode parameters (anchors, classes, input size) to write its io_spec.
    names = [o.name for o in wrapped.graph.output]
    wrapped.set_metadata_prop(MODEL_CONFIG_KEY, json.dumps(model_metadata(model, names), sort_keys=True))
    wrapped.save(str(out))
    # torch's exporter leaves the weights in a side file that the saved (self-contained) model no longer uses.
    out.with_name(out.name + ".data").unlink(missing_ok=True)


def unmappable_nodes(onnx_path: Path) -> list[tuple[str, str]]:
    """(node name, op type) of every node outside ``FINN_MAPPABLE_OPS``."""
    import onnx

    graph = onnx.load(str(onnx_path)).graph
    return [(n.name, n.op_type) for n in graph.node if n.op_type not in FINN_MAPPABLE_OPS]


def check_export(model: Model, onnx_path: Path, samples: torch.Tensor, *, strict: bool = True) -> ExportReport:
    """Execute the QONNX graph on uint8 ``samples`` (N, 3, H, W) and compare with the torch model.

    The graph runs on the exact executor (:mod:`quant_models.exact_exec`: QONNX's own ops, float64 downstream of the
    weight and input quantizers), the reference the compile flow's golden model is held to. Why not onnxruntime in
    float32: it rounds each conv sum in an order of its own, so an activation within float32 noise of a rounding
    tie can land on the other level than torch's (seen on a trained tinydet: x / s = 2.4999997 against torch's
    2.5000042, 1,083 head accumulators off on one image of four), which says nothing about the graph. For the same
    reason the torch reference is the model in float64 on its float32 quantizer parameters
    (:mod:`quant_models.float64`; the head scales reported are the float32 model's): in float32 its own arithmetic
    can round an activation within ~1e-7 of a tie to the other level than its exact value, which the hardware
    follows.

    Every sample is compared, on every output (a multi-head model's graph outputs in the model's output order),
    and the differing head accumulators are counted over all of them; then, if any differ, ExportError names the
    first differing sample, the total and the samples that differ. ``strict=False`` returns the report with that
    count instead of raising."""
    from qonnx.core.modelwrapper import ModelWrapper

    from quant_models.exact_exec import execute_exact

    wrapped = ModelWrapper(str(onnx_path))
    in_name = wrapped.graph.input[0].name
    out_names = [o.name for o in wrapped.graph.output]
    if len(out_names) != model.num_outputs:
        raise ExportError(f"{onnx_path}: {len(out_names)} graph outputs, {model.cfg.arch} has {model.num_outputs}")
    several = len(out_names) > 1
    model = model.cpu().eval()
    reference = float64_reference(model)
    max_diff, mismatches = 0.0, 0
    differing: list[int] = []  # indices of the samples with at least one differing accumulator
    first = ""  # where the first differing sample differs first
    for i, image in enumerate(samples):
        x = image.unsqueeze(0).double()
        with torch.no_grad():
            refs = as_outputs(reference(x))
        results = execute_exact(wrapped, {in_name: x.float().numpy()})
        bad_here = 0
        for head, (name, ref) in enumerate(zip(out_names, refs)):
            got = torch.from_numpy(np.asarray(results[name]))
            if got.shape != ref.shape:
                raise ExportError(f"{onnx_path}: output {name} shape {tuple(got.shape)} != torch {tuple(ref.shape)}")
            max_diff = max(max_diff, float((got - ref).abs().max()))
            acc_ref, acc_got = reference.head_accumulators(ref, head), reference.head_accumulators(got, head)
            bad = int((acc_ref != acc_got).sum())
            if bad and not differing and not bad_here:
                where = tuple(torch.nonzero(acc_ref != acc_got)[0].tolist())
                output = f" of output {head} ({name})" if several else ""
                first = (f"{bad} head accumulators{output} differ, first at (n, channel, row, col) = {list(where)}: "
                         f"torch {int(acc_ref[where])}, QONNX {int(acc_got[where])}")
            bad_here += bad
        mismatches += bad_here
        if bad_here:
            differing.append(i)
    if mismatches and strict:
        raise ExportError(f"{onnx_path}: QONNX execution differs from torch on sample {differing[0]}: {first}; "
                          f"{mismatches} head accumulators differ over all {len(samples)} samples, in samples "
                          f"{differing}")
    heads = []
    for head, name in enumerate(out_names):
        scale, bias = model.head_scale_bias(head)
        heads.append(HeadReport(name, tuple(wrapped.get_tensor_shape(name)), scale.tolist(), bias.tolist()))
    node_types: dict[str, int] = {}
    for node in wrapped.graph.node:
        node_types[node.op_type] = node_types.get(node.op_type, 0) + 1
    return ExportReport(onnx=str(onnx_path), node_types=dict(sorted(node_types.items())), samples=len(samples),
                        max_abs_diff=max_diff, accumulator_mismatches=mismatches,
                        input_shape=tuple(wrapped.get_tensor_shape(in_name)), output_shape=heads[0].shape,
                        head_scale=heads[0].scale, head_bias=heads[0].bias, more_heads=tuple(heads[1:]))


def sample_images(model: Model, count: int, seed: int) -> torch.Tensor:
    """Random uint8 test images, deterministic by seed."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (count, 3, *model.cfg.input_size), generator=gen, dtype=torch.uint8)


def export_checkpoint(ckpt: Path, out: Path, samples: int = 4, seed: int = 0,
                      images: torch.Tensor | None = None) -> ExportReport:
    """``qdet export``: export a checkpoint, check it on random (and given) images, write ``<out>.json``."""
    model, _ = load_model(ckpt)
    out = Path(out)
    export_model(model, out)
    bad = unmappable_nodes(out)
    if bad:
        listing = ", ".join(f"{name} ({op})" for name, op in bad[:10])
        raise ExportError(f"{out} has nodes FINN cannot map: {listing}. Keep the model to conv-BN-quant ReLU-max "
                          "pool blocks, residual adds, nearest upsampling, concats and conv heads (see "
                          "quant_models/models)")
    inputs = sample_images(model, samples, seed)
    if images is not None:
        inputs = torch.cat([inputs, images.to(torch.uint8)])
    report = check_export(model, out, inputs)
    export_files(out).report.write_text(json.dumps(asdict(report), indent=2) + "\n")
    return report
