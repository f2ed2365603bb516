"""A generated Verilog top holding many instances of one kernel, one per parameter set.

Verilator compiles are the slow part of a kernel test (tens of seconds each), so every random parameter set of a
kernel goes into one wrapper and one compile; the cocotb test then drives ``i<n>_<port>`` for each instance.

Multi-port kernels: numbered AXI-Stream ports (``s0_axis_tdata``, ``s1_axis_tvalid``, ``m2_axis_tready``, ...) take
their direction from the name as the plain ones do, and a :class:`Split` port (a packed port of several equal
slices, such as ``qdet_fork``'s ``m_axis_tvalid[N-1:0]``) becomes one top-level port per slice,
``i<n>_<port>_<k>`` for slice k (bits ``[k*width +: width]``), so a testbench drives each slice as its own stream."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import NamedTuple

Param = int | str


class Split(NamedTuple):
    """A packed port of ``parts`` slices of ``width`` bits, wired to top-level ports ``i<n>_<port>_0`` (bits
    ``[width-1:0]``) .. ``i<n>_<port>_<parts-1>``; ``direction`` None takes it from the AXI-Stream naming."""

    parts: int
    width: int
    direction: str | None = None


# A port is its width (direction taken from the AXI-Stream naming), (direction, width), or a Split.
Port = int | tuple[str, int] | Split

# AXI-Stream port names, plain (s_axis_tdata) or numbered (s0_axis_tdata, m1_axis_tready): the signal's direction.
_AXIS = re.compile(r"^([sm])\d*_axis_(tdata|tvalid|tready)$")


def _direction(name: str, port: Port) -> tuple[str, int]:
    if isinstance(port, Split):
        if port.parts < 1:
            raise ValueError(f"port {name}: a Split needs at least one part, not {port.parts}")
        if port.direction is not None:
            return _direction(name, (port.direction, port.width))
        return _direction(name, port.width)
    if isinstance(port, tuple):
        direction, width = port
        if direction not in ("input", "output"):
            raise ValueError(f"port {name}: direction must be 'input' or 'output', not {direction!r}")
        return direction, width
    m = _AXIS.match(name)
    if m is None:
        raise ValueError(f"port {name}: not an AXI-Stream port name; give it as (direction, width)")
    side, signal = m.groups()
    # The slave side receives tdata/tvalid and drives tready; the master side the other way round.
    return ("input" if (side == "s") == (signal != "tready") else "output"), port


def _literal(value: Param) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise TypeError(f"parameter value {value!r}: only int and str are supported")
    if isinstance(value, str):
        if '"' in value or "\\" in value:
            raise ValueError(f"string parameter {value!r} may not contain quotes or backslashes")
        return f'"{value}"'
    return str(value)


def multi_instance_wrapper(module: str, instances: Sequence[tuple[Mapping[str, Param], Mapping[str, Port]]],
                           top: str = "top") -> str:
    """Verilog source of ``top``: one ``module`` instance per ``(params, ports)`` entry.

    ``ap_clk`` and ``ap_rst_n`` are shared; every other port ``p`` of instance ``n`` becomes top-level port
    ``i<n>_<p>`` of the given width (a :class:`Split` port: ``i<n>_<p>_<k>`` per slice).

    >>> src = multi_instance_wrapper("qdet_skid", [({"WIDTH": 4}, {"s_axis_tdata": 4, "s_axis_tvalid": 1})])
    >>> "input wire [3:0] i0_s_axis_tdata" in src and "qdet_skid #(.WIDTH(4)) u0" in src
    True
    >>> src = multi_instance_wrapper("qdet_fork", [({"N": 2}, {"m_axis_tvalid": Split(2, 1)})])
    >>> "output wire [0:0] i0_m_axis_tvalid_1" in src
    True
    >>> ".m_axis_tvalid({i0_m_axis_tvalid_1, i0_m_axis_tvalid_0})" in src
    True
    """
    if not instances:
        raise ValueError("no instances")
    decls = ["    input wire ap_clk", "    input wire ap_rst_n"]
    bodies = []
    for n, (params, ports) in enumerate(instances):
        conns = [".ap_clk(ap_clk)", ".ap_rst_n(ap_rst_n)"]
        for name, port in ports.items():
            direction, width = _direction(name, port)
            if width < 1:
                raise ValueError(f"instance {n} port {name}: width {width} < 1")
            if isinstance(port, Split):
                parts = [f"i{n}_{name}_{k}" for k in range(port.parts)]
                decls.extend(f"    {direction} wire [{width - 1}:0] {p}" for p in parts)
                # A concatenation lists its most significant part first: slice k sits at bits [k*width +: width].
                conns.append(f".{name}({{{', '.join(reversed(parts))}}})")
            else:
                decls.append(f"    {direction} wire [{width - 1}:0] i{n}_{name}")
                conns.append(f".{name}(i{n}_{name})")
        plist = ", ".join(f".{k}({_literal(v)})" for k, v in params.items())
        head = f"{module} #({plist}) u{n}" if plist else f"{module} u{n}"
        bodies.append(f"    {head} (\n        " + ",\n        ".join(conns) + "\n    );")
    return (f"// Generated by sim.wrap: {len(instances)} instances of {module}.\n"
            f"`timescale 1ns/1ps\nmodule {top} (\n" + ",\n".join(decls) + "\n);\n" + "\n".join(bodies) + "\nendmodule\n")
