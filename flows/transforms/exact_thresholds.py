"""Make FINN's activation thresholds round exactly as the quantizer they replace.

FINN converts each activation ``Quant`` (``q = clamp(round(x / s))``, round half to even) into a MultiThreshold
whose j-th threshold is ``(j + 1/2) * s`` (plus an offset) in float32, so the count of ``x >= t`` is the level.
The two agree except within an ulp of a tie: when ``x / s`` rounds to just below ``k + 1/2`` while
``x >= (k + 1/2) * s`` holds (seen in float32: ``x / s = 4.4999995``), or on an exact tie that half to even rounds
down while ``>=`` counts it (power-of-two scales make exact ties common). On a MobileNet-sized net (millions of
activations a frame) that happens on most frames, and the difference cascades.

Here each such threshold is replaced by the smallest ``x`` of the working float type (float64: the graph is
streamlined in float64, see :mod:`flows.transforms.precision`) for which the quantizer itself, evaluated in that
type, reaches the level (found by stepping neighbours from ``(k + 1/2) * s``): since ``round(fl(x / s))`` is
monotonic in ``x``, ``x >= t`` then holds exactly when the quantizer gives at least that level.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.base import Transformation

from boards.runtime.io_spec import int_range, round_as

MAX_STEPS = 64  # neighbours searched on each side; the boundary is within a few ulps of (k + 1/2) * s


@dataclass(frozen=True)
class ActQuant:
    """An activation quantizer: per-channel (or scalar) scale, integer range, rounding mode."""

    scale: np.ndarray  # float32, flattened (1 or C values)
    lo: int
    hi: int
    mode: str


def _attr(node, name: str, default):
    from qonnx.util.basic import get_by_name

    a = get_by_name(node.attribute, name)
    if a is None:
        return default
    return a.s.decode() if a.type == a.STRING else a.i


def collect_act_quants(model: ModelWrapper) -> dict[str, ActQuant]:
    """The activation quantizers of a QONNX graph with a zero zero point, keyed by the tensor FINN's
    MultiThreshold will read (the quantizer's input, or the input of the ReLU in front of it)."""
    found: dict[str, ActQuant] = {}
    for node in model.graph.node:
        if node.op_type != "Quant" or model.get_initializer(node.input[0]) is not None:
            continue
        params = [model.get_initializer(name) for name in node.input[1:4]]
        if any(p is None for p in params) or np.any(np.asarray(params[1]) != 0) or np.asarray(params[2]).size != 1:
            continue
        scale = np.asarray(params[0], dtype=np.float32).reshape(-1)
        lo, hi = int_range(int(np.asarray(params[2]).reshape(-1)[0]), bool(_attr(node, "signed", 1)),
                           bool(_attr(node, "narrow", 0)))
        spec = ActQuant(scale, lo, hi, str(_attr(node, "rounding_mode", "ROUND")))
        found[node.input[0]] = spec
        producer = model.find_producer(node.input[0])
        if producer is not None and producer.op_type == "Relu" and lo == 0:
            found[producer.input[0]] = spec  # q(relu(x)) = q(x) above 0, where every threshold lies
    return found


def _reaches(q: ActQuant, x: np.ndarray, scale: np.ndarray, level: np.ndarray) -> np.ndarray:
    """Whether the quantizer maps ``x`` to at least ``level`` (QONNX's arithmetic in x's type: x / s, round,
    clamp)."""
    y = np.clip(round_as(q.mode, (x / scale).astype(x.dtype)), q.lo, q.hi)
    return y >= level


def exact_thresholds(q: ActQuant, channels: int, dtype=np.float64) -> np.ndarray:
    """(channels or 1, hi - lo) thresholds of ``dtype``: threshold j is the smallest ``dtype`` x the quantizer,
    evaluated in ``dtype``, maps to level lo + j + 1 or above."""
    dtype = np.dtype(dtype)
    rows = q.scale.size if q.scale.size > 1 else 1
    if rows not in (1, channels):
        raise ValueError(f"scale of {q.scale.size} values for {channels} channels")
    level = np.arange(q.lo + 1, q.hi + 1, dtype=np.float64)[None, :]
    scale = q.scale.reshape(rows, 1)
    t = ((level - 0.5) * scale.astype(np.float64)).astype(dtype)
    scale_t = np.broadcast_to(scale, t.shape).astype(dtype)
    up, down = dtype.type(np.inf), dtype.type(-np.inf)
    for _ in range(MAX_STEPS):  # up while the quantizer does not reach the level yet
        low = ~_reaches(q, t, scale_t, level)
        if not low.any():
            break
        t = np.where(low, np.nextafter(t, up), t)
    for _ in range(MAX_STEPS):  # down while the value below still reaches it
        below = np.nextafter(t, down)
        lower = _reaches(q, below, scale_t, level)
        if not lower.any():
            break
        t = np.where(lower, below, t)
    return t


class ExactQuantThresholds(Transformation):
    """Replace the thresholds of MultiThresholds made from the activation quantizers in ``quants`` (see
    :func:`collect_act_quants`, taken from the graph before ConvertQONNXtoFINN) with exact ones; others stay."""

    def __init__(self, quants: dict[str, ActQuant]):
        super().__init__()
        self.quants = quants

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        for node in model.graph.node:
            if node.op_type != "MultiThreshold" or node.input[0] not in self.quants:
                continue
            q = self.quants[node.input[0]]
            old = model.get_initializer(node.input[1])
            if old is None or old.shape[1] != q.hi - q.lo:
                continue  # not the layout FINN's activation handlers write: leave it as it is
            new = exact_thresholds(q, old.shape[0], old.dtype)
            if new.shape[0] != old.shape[0]:
                new = np.broadcast_to(new, old.shape)
            # A sanity bound: the exact boundary is within a few ulps of FINN's; anything else is not this quantizer.
            if not np.allclose(new, old, rtol=1e-5, atol=1e-30):
                continue
            model.set_initializer(node.input[1], np.ascontiguousarray(new, dtype=old.dtype))
        return model, False
