"""The host/FPGA boundary of a build: what goes into the accelerator, what comes out, and what the host does.

After conversion to hardware layers, the few nodes at either end of the graph that are not hardware layers (the
input layout change, the head's per-channel float scale and bias, the output layout change) are cut off the
FPGA-side graph and recorded here as host ops, in order. ``apply_host_output`` replays them in numpy, so
hardware output + io_spec = the exported model's output; the decode parameters come from the export's metadata.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

HOST_OPS = frozenset({"Transpose", "Mul", "Add"})
PACKING = ("NHWC stream order: pixels in row-major order, channels innermost. Each AXI-Stream word carries "
           "the elements of one fold, element 0 in the least significant bits, each element its FINN DataType's "
           "width (two's complement for signed types).")


@dataclass(frozen=True)
class HostOp:
    """One host-side op: ``Transpose`` (``perm``), ``Mul`` or ``Add`` (``value``, broadcast like numpy)."""

    op: str
    perm: tuple[int, ...] = ()
    value: list[Any] = field(default_factory=list)
    shape: tuple[int, ...] = ()

    def apply(self, x: np.ndarray) -> np.ndarray:
        """Apply this op to ``x``."""
        if self.op == "Transpose":
            return np.transpose(x, self.perm)
        operand = np.asarray(self.value, dtype=np.float32).reshape(self.shape)
        if self.op == "Mul":
            return (x * operand).astype(np.float32)
        if self.op == "Add":
            return (x + operand).astype(np.float32)
        raise ValueError(f"unknown host op {self.op!r}")


@dataclass(frozen=True)
class Port:
    """One side of the accelerator: tensor name, shape, FINN DataType, layout, and the host ops around it."""

    name: str
    shape: tuple[int, ...]
    datatype: str
    layout: str
    host_ops: tuple[HostOp, ...] = ()


@dataclass(frozen=True)
class IOSpec:
    """Input and output of the FPGA side, the host ops that surround it, and the decode parameters."""

    input: Port
    output: Port
    model_config: dict[str, Any]
    packing: str = PACKING

    def to_json(self) -> str:
        """Stable JSON (sorted keys), so the same build writes the same bytes."""
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    def save(self, path: Path) -> None:
        """Write the spec to ``path``."""
        path.write_text(self.to_json())

    @classmethod
    def load(cls, path: Path) -> IOSpec:
        """Read a spec written by :meth:`save`."""
        data = json.loads(Path(path).read_text())

        def port(d: dict[str, Any]) -> Port:
            ops = tuple(HostOp(o["op"], tuple(o["perm"]), o["value"], tuple(o["shape"])) for o in d["host_ops"])
            return Port(d["name"], tuple(d["shape"]), d["datatype"], d["layout"], ops)

        return cls(port(data["input"]), port(data["output"]), data["model_config"], data["packing"])

    def host_input(self, images: np.ndarray) -> np.ndarray:
        """Images as the model takes them (N, C, H, W) -> what the accelerator's input stream carries."""
        x = images
        for op in self.input.host_ops:
            x = op.apply(x)
        return x

    def host_output(self, hw_out: np.ndarray) -> np.ndarray:
        """The accelerator's output (integer accumulators) -> the exported model's float output."""
        x = hw_out.astype(np.float32)
        for op in self.output.host_ops:
            x = op.apply(x)
        return x


def host_op_from_node(model, node) -> HostOp:
    """Describe a Transpose/Mul/Add node as a HostOp (Mul/Add need a constant operand)."""
    from qonnx.util.basic import get_by_name

    if node.op_type == "Transpose":
        perm = get_by_name(node.attribute, "perm")
        return HostOp("Transpose", perm=tuple(int(p) for p in perm.ints))
    values = [model.get_initializer(name) for name in node.input]
    constants = [v for v in values if v is not None]
    if len(constants) != 1:
        raise ValueError(f"host op {node.name} ({node.op_type}) needs exactly one constant operand")
    value = np.asarray(constants[0], dtype=np.float32)
    return HostOp(node.op_type, value=value.reshape(-1).tolist(), shape=tuple(value.shape))
