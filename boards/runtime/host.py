"""The host's side of a detector on the accelerator, in numpy: images -> input frames, output frames -> detections.

Both ``qdet run`` and a deploy folder's ``run.py`` call these two functions, so the board and the repository decode
the accelerator's outputs with the same code. Everything comes from ``io_spec.json``: the input ops (layout change,
and for a float-input model its preprocessing and quantizer), each output's ops (head scale and bias, layout
change) and decode parameters (anchors, grid), the class count and input size.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .decode import DecodeConfig, Detections, decode_heads
from .io_spec import IOSpec


def input_size(spec: IOSpec) -> tuple[int, int]:
    """(H, W) of the model's input images."""
    h, w = spec.model_config["input_size"]
    return int(h), int(w)


def class_names(spec: IOSpec) -> tuple[str, ...]:
    """The class names the model was trained with (``class0`` ... when the export did not record them)."""
    names = spec.model_config.get("class_names") or []
    return tuple(names) or tuple(f"class{k}" for k in range(int(spec.model_config["num_classes"])))


def anchor_sets(spec: IOSpec) -> list[list[list[float]]]:
    """Each output's anchors: its port's decode parameters, or for a single-head model the model's anchors."""
    return [list(o.decode.get("anchors") or spec.model_config["anchors"]) for o in spec.outputs]


def preprocess(images: np.ndarray, spec: IOSpec) -> np.ndarray:
    """uint8 images (N, C, H, W) at the model's size -> the integers the input stream carries (N, H, W, C).

    A float-input model (a host-side quantizer in the spec) takes the images scaled to [0, 1], as its build's
    verification did."""
    x = images.astype(np.float32) / np.float32(255) if spec.float_input else images
    return np.rint(spec.host_input(x)).astype(np.int64)


def postprocess(outputs: Sequence[np.ndarray], spec: IOSpec,
                cfg: DecodeConfig = DecodeConfig()) -> list[Detections]:
    """The accelerator's integer outputs (one (N, h, w, c) array per port) -> detections per image, in pixels of
    the model's input: the spec's output ops give the exported model's head maps, then decode and one NMS."""
    heads = [spec.host_output(np.asarray(o), i) for i, o in enumerate(outputs)]
    return decode_heads(heads, anchor_sets(spec), int(spec.model_config["num_classes"]), input_size(spec), cfg)


def detections_json(names: Sequence[str], dets: Sequence[Detections]) -> dict[str, Any]:
    """``detections.json``: image file name -> its detections (boxes, scores, labels as lists)."""
    return {str(n): d.to_dict() for n, d in zip(names, dets)}
