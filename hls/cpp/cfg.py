"""C++ renderings of a kernel's parameters: one ``struct`` per kernel instance, the kernel's template argument.

A struct holds the kernel's parameters as ``static constexpr`` members (the RTL kernels' parameter names, from the
views' ``params()``; strings as ``const char*``), the beats per frame, and its constant arrays (weights,
thresholds) as ``static const`` members of the smallest native integer type that holds them, in the memory files'
line/lane layout (``hls/gen/memfiles.py``). Native types keep g++ fast on large arrays; the kernels cast each
element to the ``ap_int`` width the parameters give.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np


def c_int_type(values: np.ndarray) -> str:
    """The smallest ``<cstdint>`` type holding every value."""
    lo, hi = (int(values.min()), int(values.max())) if values.size else (0, 0)
    for bits in (8, 16, 32):
        if -(1 << (bits - 1)) <= lo and hi < (1 << (bits - 1)):
            return f"int{bits}_t"
    return "int64_t"


def _value(v) -> str:
    if isinstance(v, str):
        return f'"{v}"'
    return str(int(v))


def _array_body(values: np.ndarray) -> str:
    """A C initializer of a 2-D int array: one row per line."""
    rows = np.asarray(values, np.int64)
    if rows.ndim != 2:
        raise ValueError(f"arrays are (lines, lanes), got shape {rows.shape}")
    return "{\n" + ",\n".join("    {" + ", ".join(str(int(x)) for x in row) + "}" for row in rows) + "}"


def cfg_struct(name: str, params: Mapping[str, int | str], arrays: Mapping[str, np.ndarray] = {}) -> str:
    """The struct ``name``: ``params`` as static members, ``arrays`` as static const 2-D arrays (lines, lanes)
    with a ``<array>_t`` typedef each, defined after the struct (C++14 has no inline variables)."""
    lines = [f"struct {name} {{"]
    for k, v in params.items():
        kind = "const char*" if isinstance(v, str) else ("long long" if abs(int(v)) >= 2 ** 31 else "int")
        lines.append(f"  static constexpr {kind} {k} = {_value(v)};")
    defs = []
    for array, values in arrays.items():
        values = np.asarray(values, np.int64)
        if values.ndim != 2 or 0 in values.shape:
            raise ValueError(f"{name}.{array}: arrays must be (lines >= 1, lanes >= 1), got {values.shape}")
        ctype = c_int_type(values)
        lines.append(f"  typedef {ctype} {array}_t;")
        lines.append(f"  static const {ctype} {array}[{values.shape[0]}][{values.shape[1]}];")
        defs.append(f"const {ctype} {name}::{array}[{values.shape[0]}][{values.shape[1]}] = {_array_body(values)};")
    lines.append("};")
    # constexpr static members odr-used (bound to a reference) need a definition before C++17.
    lines += [f"constexpr {'const char*' if isinstance(v, str) else ('long long' if abs(int(v)) >= 2 ** 31 else 'int')}"
              f" {name}::{k};" for k, v in params.items()]
    return "\n".join(lines + defs) + "\n"
