"""The host/FPGA boundary of a build (``io_spec.json``): what goes into the accelerator, what comes out, and what
the host does around it.

After conversion to hardware layers, the few nodes at either end of the graph that are not hardware layers (the
input layout change, the head's per-channel float scale and bias, the output layout change) are cut off the
FPGA-side graph and recorded here as host ops, in order (:mod:`flows.io_spec` reads them off the graph). A
float-input model also has its linear preprocessing and its input quantizer here, so the FPGA side always starts
from integers. ``host_input`` / ``host_output`` replay the ops in numpy float32, the arithmetic Brevitas and QONNX
use, so hardware output + io_spec = the exported model's output; the decode parameters come from the export's
metadata. numpy only: this module ships verbatim in deploy folders and runs on the board.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

ROUNDING_MODES = ("ROUND", "HALF_EVEN", "CEIL", "FLOOR", "UP", "DOWN", "HALF_UP", "HALF_DOWN")
PACKING = ("NHWC stream order: pixels in row-major order, channels innermost. Each AXI-Stream word carries "
           "the elements of one fold, element 0 in the least significant bits, each element its FINN DataType's "
           "width (two's complement for signed types).")


def round_as(mode: str, x: np.ndarray) -> np.ndarray:
    """Round ``x`` as QONNX's ``rounding_mode`` says; ROUND is half to even, as torch.round and Brevitas do.

    >>> round_as("ROUND", np.float32([0.5, 1.5, 2.5, -0.5])).tolist()
    [0.0, 2.0, 2.0, -0.0]
    >>> round_as("HALF_UP", np.float32([0.5, 1.5, -0.5])).tolist()
    [1.0, 2.0, -1.0]
    """
    mode = mode.upper()
    if mode in ("ROUND", "HALF_EVEN"):
        return np.round(x)
    if mode == "CEIL":
        return np.ceil(x)
    if mode == "FLOOR":
        return np.floor(x)
    if mode == "UP":
        return np.sign(x) * np.ceil(np.abs(x))
    if mode == "DOWN":
        return np.fix(x)
    if mode == "HALF_UP":
        return np.sign(x) * np.floor(np.abs(x) + np.float32(0.5))
    if mode == "HALF_DOWN":
        return np.sign(x) * np.ceil(np.abs(x) - np.float32(0.5))
    raise ValueError(f"unknown rounding mode {mode!r} (one of {', '.join(ROUNDING_MODES)})")


def int_range(bit_width: int, signed: bool, narrow: bool) -> tuple[int, int]:
    """The integer range of a quantizer.

    >>> int_range(8, True, False), int_range(8, True, True), int_range(4, False, False)
    ((-128, 127), (-127, 127), (0, 15))
    """
    if signed:
        return -(1 << (bit_width - 1)) + int(narrow), (1 << (bit_width - 1)) - 1
    return 0, (1 << bit_width) - 1 - int(narrow)


@dataclass(frozen=True)
class HostOp:
    """One host-side op.

    - ``Transpose`` (``perm``); ``Reshape``/``Flatten`` (``shape``: the output shape, batch first).
    - ``Mul``, ``Add``, ``Sub``, ``Div`` with a constant (``value`` of ``shape``, broadcast like numpy);
      ``reverse``: the constant is the first operand (``c - x``, ``c / x``).
    - ``Quant``: ``x / scale + zero_point``, rounded by ``rounding_mode``, clamped to the ``bit_width`` /
      ``signed`` / ``narrow`` range: the integer the accelerator's input stream carries (the scale is ``value``).
    - ``TopK`` (``k``, ``axis``, ``largest``; ``output`` 1: the indices, 0: the values, as ONNX TopK's two
      outputs; ties go to the lower index), ``ArgMax`` (``axis``, ``keepdims``).
    """

    op: str
    perm: tuple[int, ...] = ()
    value: list[Any] = field(default_factory=list)
    shape: tuple[int, ...] = ()
    reverse: bool = False
    zero_point: float = 0.0
    bit_width: int = 0
    signed: bool = False
    narrow: bool = False
    rounding_mode: str = ""
    k: int = 0
    axis: int = -1
    largest: bool = True
    keepdims: bool = True
    output: int = 1  # TopK: which output the graph uses (0 values, 1 indices)

    def operand(self) -> np.ndarray:
        """The constant operand (float32, its recorded shape)."""
        return np.asarray(self.value, dtype=np.float32).reshape(self.shape)

    def apply(self, x: np.ndarray) -> np.ndarray:
        """Apply this op to ``x`` in float32 (the arithmetic of the exported model)."""
        if self.op == "Transpose":
            return np.transpose(x, self.perm)
        if self.op in ("Reshape", "Flatten"):
            return np.reshape(x, (x.shape[0], *self.shape[1:]))
        if self.op == "TopK":
            order = np.argsort(-x if self.largest else x, axis=self.axis, kind="stable")
            top = np.take(order, np.arange(self.k), axis=self.axis)
            return np.take_along_axis(x, top, axis=self.axis) if self.output == 0 else top.astype(np.int64)
        if self.op == "ArgMax":
            return np.argmax(x, axis=self.axis, keepdims=self.keepdims).astype(np.int64)
        x = np.asarray(x, dtype=np.float32)
        if self.op == "Quant":
            lo, hi = int_range(self.bit_width, self.signed, self.narrow)
            y = x / self.operand() + np.float32(self.zero_point)
            return np.clip(round_as(self.rounding_mode, y), lo, hi).astype(np.float32)
        c = self.operand()
        a, b = (c, x) if self.reverse else (x, c)
        ops = {"Mul": np.multiply, "Add": np.add, "Sub": np.subtract, "Div": np.divide}
        if self.op not in ops:
            raise ValueError(f"unknown host op {self.op!r}")
        return ops[self.op](a, b).astype(np.float32)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> HostOp:
        """Read one op written by :meth:`IOSpec.save` (older specs lack the newer fields: defaults apply)."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in d.items() if k in known}
        for key in ("perm", "shape"):
            if key in values:
                values[key] = tuple(values[key])
        return cls(**values)


@dataclass(frozen=True)
class Port:
    """One side of the accelerator: tensor name, shape, FINN DataType, layout, the host ops around it, and for an
    output of a multi-head detector its head's decode parameters (stride, grid, anchors: the model config's entry)."""

    name: str
    shape: tuple[int, ...]
    datatype: str
    layout: str
    host_ops: tuple[HostOp, ...] = ()
    decode: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class IOSpec:
    """Input and outputs of the FPGA side, the host ops around each, and the decode parameters.

    A model with several heads has one output port per head, in the order of the exported model's outputs (the
    accelerator's ``m_axis``, ``m1_axis``, ...)."""

    input: Port
    outputs: tuple[Port, ...]
    model_config: dict[str, Any]
    packing: str = PACKING

    @property
    def output(self) -> Port:
        """The first (for most models the only) output port."""
        return self.outputs[0]

    def to_json(self) -> str:
        """Stable JSON (sorted keys), so the same build writes the same bytes."""
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    def save(self, path: Path) -> None:
        """Write the spec to ``path``."""
        path.write_text(self.to_json())

    @classmethod
    def load(cls, path: Path) -> IOSpec:
        """Read a spec written by :meth:`save` (one written before several outputs has a single ``output``)."""
        data = json.loads(Path(path).read_text())

        def port(d: dict[str, Any]) -> Port:
            ops = tuple(HostOp.from_dict(o) for o in d["host_ops"])
            return Port(d["name"], tuple(d["shape"]), d["datatype"], d["layout"], ops, d.get("decode", {}))

        outputs = data["outputs"] if "outputs" in data else [data["output"]]
        return cls(port(data["input"]), tuple(port(o) for o in outputs), data["model_config"], data["packing"])

    def replace_output(self, index: int, **changes: Any) -> IOSpec:
        """This spec with output ``index``'s fields changed."""
        from dataclasses import replace

        outputs = list(self.outputs)
        outputs[index] = replace(outputs[index], **changes)
        return replace(self, outputs=tuple(outputs))

    @property
    def float_input(self) -> bool:
        """True when the model takes float images and the host quantizes them (a ``Quant`` input op)."""
        return any(op.op == "Quant" for op in self.input.host_ops)

    def input_quant(self) -> HostOp | None:
        """The host-side input quantizer, if any."""
        return next((op for op in self.input.host_ops if op.op == "Quant"), None)

    def host_input(self, images: np.ndarray) -> np.ndarray:
        """Images as the model takes them (N, C, H, W) -> what the accelerator's input stream carries."""
        x = images
        for op in self.input.host_ops:
            x = op.apply(x)
        return x

    def host_output(self, hw_out: np.ndarray, index: int = 0) -> np.ndarray:
        """Output ``index`` of the accelerator (integer accumulators) -> the exported model's output ``index``."""
        x = hw_out.astype(np.float32)
        for op in self.outputs[index].host_ops:
            x = op.apply(x)
        return x

    def numeric_output_ops(self, index: int = 0) -> tuple[HostOp, ...]:
        """Output ``index``'s ops up to (not including) a final TopK/ArgMax: what maps accumulators to the model's
        values."""
        ops = self.outputs[index].host_ops
        cut = next((i for i, op in enumerate(ops) if op.op in ("TopK", "ArgMax")), len(ops))
        return ops[:cut]
