"""``plan_cpp``: a qdet build's hardware graph -> the build's cpp folder, a self-contained HLS C++ accelerator.

The folder holds ``qdet_top.cpp`` (the dataflow top: one process per kernel instance, one ``hls::stream`` per graph
edge), ``qdet_top.h``, ``qdet_params.h`` (one parameter struct per instance with its weights and thresholds as
constant arrays), the kernel headers it uses (copied from hls/cpp/kernels), and for C simulation only
``qdet_csim_api.cpp`` and ``csim/`` (qdet's own ``hls_stream.h``, which Vitis must never see), plus
``manifest.json``. The graph is walked exactly as the RTL backend walks it (:func:`hls.gen.stitch.build_graph`), so
both backends have the same stages, links, ports and packing; the same build gives the same bytes.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from hls.backend import Plan, with_dependencies, with_manifest
from hls.cpp.cfg import cfg_struct
from hls.cpp.csim import INCLUDE, KERNELS
from hls.gen.generate import (HARDWARE_STEP, PACKING, TOP, BuildView, link_entry, source_entry, stage_comment,
                              stage_entry, top_ports)
from hls.gen.memfiles import threshold_lanes, vvau_weight_lanes, weight_lanes
from hls.gen.ops import GenerateError, MVAUParams, ThresholdParams
from hls.gen.stitch import Link, Stage, build_graph

TEMPLATES = Path(__file__).resolve().parent / "templates"
CSIM_DIR = "csim"  # the C-simulation shim's folder inside the cpp folder
CSIM_HEADERS = ("hls_stream.h", "qdet_csim.h", "ap_axi_sdata.h")
DEFAULT_DEPTH = 2  # every stream that is not a FIFO's output (Vitis' default depth)
# C simulation's capacity of a stream on no reconvergent path (hls/cpp/kernels/qdet_hls.hpp, QDET_CSIM_CAPACITY):
# at most this many beats (or the link's frame) are held, so a chain's processes run in long bursts.
ELASTIC_BEATS = 16384
# Parameters that only the RTL kernels use (their memory files); the C++ kernels get the arrays instead.
_RTL_ONLY = ("W_FILE", "T_FILE")


def struct_name(stage: Stage) -> str:
    """The C++ parameter struct of a stage: its instance name without the ``u_`` prefix."""
    return stage.instance[2:] if stage.instance.startswith("u_") else stage.instance


def stage_params(stage: Stage) -> dict[str, int | str]:
    """The struct's members: the RTL kernel's parameters (but its memory file names) and the frame's beats."""
    v = stage.view
    params = {k: p for k, p in v.params().items() if k not in _RTL_ONLY}
    return {**params, "IN_BEATS": v.in_beats, "OUT_BEATS": v.out_beats}


def stage_arrays(stage: Stage) -> dict[str, np.ndarray]:
    """The struct's constant arrays, in the RTL memory files' line/lane layout."""
    v = stage.view
    if isinstance(v, MVAUParams):
        arrays = {"weights": weight_lanes(v.weights, v.pe, v.simd)}
    elif v.kernel == "qdet_vvau":
        arrays = {"weights": vvau_weight_lanes(v.weights, v.pe, v.simd)}
    elif isinstance(v, ThresholdParams):
        return {"thresholds": threshold_lanes(v.thresholds, v.pe)}
    else:
        return {}
    if v.steps:
        arrays["thresholds"] = threshold_lanes(v.thresholds, v.pe)
    return arrays


def kernel_headers(kernels: set[str]) -> list[str]:
    """Header names (without .hpp) of ``kernels`` and every qdet header they include, sorted."""
    available = {p.stem for p in KERNELS.glob("qdet_*.hpp")}
    missing = sorted(k for k in kernels if k not in available)
    if missing:
        raise GenerateError(f"the C++ backend has no kernel for {', '.join(missing)} yet (hls/cpp/kernels)")
    return with_dependencies(kernels, available,
                             lambda k: re.findall(r'#include "(qdet_\w+)\.hpp"', (KERNELS / f"{k}.hpp").read_text()))


def _streams(stages: list[Stage], links: list[Link]) -> tuple[list[dict], dict[str, int], dict[str, int]]:
    """One declaration per link (a fork's outputs: one array), each link's depth and C-simulation capacity."""
    fifo_out = {s.link_out: s.view.params()["DEPTH"] for s in stages if s.role == "fifo"}
    by_name = {l.name: l for l in links}
    depth = {l.name: fifo_out.get(l.name, DEFAULT_DEPTH) for l in links}
    elastic = bridges(links)
    capacity = {l.name: max(depth[l.name], min(ELASTIC_BEATS, l.beats)) if l.name in elastic else depth[l.name]
                for l in links}
    arrays = {s.outputs: s for s in stages if s.view.kernel == "qdet_fork"}
    decls, done = [], set()
    for l in links:
        if l.name in done:
            continue
        fork = next((s for outs, s in arrays.items() if l.name in outs), None)
        if fork is not None:
            outs = list(fork.outputs)
            depths = {depth[o] for o in outs}
            if len(depths) != 1:
                raise GenerateError(f"{fork.view.name}: a fork's outputs must have one depth, got {sorted(depths)}")
            decls.append({"array": f"{struct_name(fork)}_out", "count": len(outs), "elements": outs,
                          "capacity": {o: capacity[o] for o in outs if capacity[o] != depth[o]},
                          "width": l.width, "depth": depths.pop(),
                          "comment": f"{fork.view.name}'s outputs: " + ", ".join(
                              f"{o} -> {by_name[o].consumer}" for o in outs)})
            done.update(outs)
        else:
            decls.append({"name": l.name, "width": l.width, "depth": depth[l.name],
                          "capacity": capacity[l.name] if capacity[l.name] != depth[l.name] else None,
                          "comment": f"{l.producer} -> {l.consumer}, {l.elems} x {l.bits} bits, "
                                     f"{l.beats} beats a frame"})
            done.add(l.name)
    return decls, depth, capacity


def bridges(links: list[Link]) -> set[str]:
    """Links on no cycle of the graph taken undirected (no fork/join pair has them on a branch): their capacity
    cannot take part in a deadlock. Tarjan's bridge search over links as edges, ports and stages as vertices."""
    adj: dict[str, list[tuple[str, str]]] = {}
    for l in links:
        adj.setdefault(l.producer, []).append((l.consumer, l.name))
        adj.setdefault(l.consumer, []).append((l.producer, l.name))
    order: dict[str, int] = {}
    low: dict[str, int] = {}
    found: set[str] = set()
    for root in adj:
        if root in order:
            continue
        order[root] = low[root] = len(order)
        stack = [(root, None, iter(adj[root]))]
        while stack:  # iterative DFS (graphs of hundreds of stages would pass Python's recursion limit)
            node, via, edges = stack[-1]
            step = next(edges, None)
            if step is None:
                stack.pop()
                if stack:
                    parent = stack[-1][0]
                    low[parent] = min(low[parent], low[node])
                    if low[node] > order[parent]:
                        found.add(via)
                continue
            other, name = step
            if name == via:
                continue
            if other in order:
                low[node] = min(low[node], order[other])
            else:
                order[other] = low[other] = len(order)
                stack.append((other, name, iter(adj[other])))
    return found


def _call(stage: Stage) -> str:
    v = stage.view
    args = list(stage.inputs)
    args += [f"{struct_name(stage)}_out"] if v.kernel == "qdet_fork" else list(stage.outputs)
    return f"{v.kernel}<{struct_name(stage)}>({', '.join(args)})"


def _render(name: str, **context) -> str:
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), undefined=StrictUndefined, keep_trailing_newline=True)
    return env.get_template(name).render(**context)


def plan_cpp(build: BuildView) -> Plan:
    """The HLS C++ of ``build`` (its ``stream_links`` checkpoint) as a :class:`hls.backend.Plan`.

    Raises :class:`GenerateError` for a node no kernel covers (naming node and op type) or a kernel missing from
    hls/cpp/kernels."""
    from qonnx.core.modelwrapper import ModelWrapper

    source = build.step_checkpoint(HARDWARE_STEP)
    board, clock = build.target()
    stages, links = build_graph(ModelWrapper(str(source)), "auto")
    ports = top_ports(links)
    headers = kernel_headers({s.view.kernel for s in stages} | {"qdet_axis"})
    inp = ports["s_axis"]
    outs = [dict(name=n, **p) for n, p in ports.items() if n != "s_axis"]
    decls, depth, capacity = _streams(stages, links)
    context = {"source": build.relative(source), "inp": inp, "outs": outs, "packing": PACKING}
    params = ("// Parameters of every kernel instance of qdet_top, generated by qdet (do not edit; regenerate).\n"
              "// Arrays are in the RTL memory files' layout: [line][lane] (hls/cpp/README.md).\n"
              "#ifndef QDET_PARAMS_H\n#define QDET_PARAMS_H\n\n#include <cstdint>\n\n" +
              "\n".join(cfg_struct(struct_name(s), stage_params(s), stage_arrays(s)) for s in stages) +
              "\n#endif  // QDET_PARAMS_H\n")
    processes = [{"name": s.view.name if s.role == "layer" else struct_name(s), "call": _call(s),
                  "comment": stage_comment(s)} for s in stages]
    files = {
        f"{TOP}.h": _render("qdet_top.h.j2", **context),
        f"{TOP}.cpp": _render("qdet_top.cpp.j2", **context, streams=decls, processes=processes,
                              kernels=[k for k in headers if k not in ("qdet_hls", "qdet_axis")]),
        "qdet_params.h": params,
        "qdet_csim_api.cpp": _render("qdet_csim_api.cpp.j2", **context),
    }
    files.update({f"{k}.hpp": (KERNELS / f"{k}.hpp").read_text() for k in headers})
    files.update({f"{CSIM_DIR}/{h}": (INCLUDE / h).read_text() for h in CSIM_HEADERS})
    manifest = {
        "backend": "cpp",
        "top": TOP,
        **source_entry(build, source, board, clock),
        "ports": ports,
        "packing": PACKING,
        "synthesis_sources": [f"{TOP}.cpp"],
        "headers": [f"{TOP}.h", "qdet_params.h"] + [f"{k}.hpp" for k in headers],
        "csim_sources": ["qdet_csim_api.cpp", f"{TOP}.cpp"],
        "csim_dir": CSIM_DIR,
        # depth: the hardware's (Vitis'); csim_capacity: what C simulation lets the stream hold (larger only on
        # a stream on no reconvergent path, whose capacity cannot decide a deadlock).
        "streams": [{"link": l.name, "producer": l.producer, "consumer": l.consumer, "width": l.width,
                     "depth": depth[l.name], "csim_capacity": capacity[l.name]} for l in links],
        "stages": [stage_entry(s) for s in stages],
        "links": [link_entry(l) for l in links],
    }
    return with_manifest("cpp", files, manifest)


def generate_cpp(build: BuildView, out: Path | None = None) -> Path:
    """Write :func:`plan_cpp` of ``build`` to ``out`` (default: the build's cpp folder); returns that folder."""
    return plan_cpp(build).write(Path(out) if out is not None else build.cpp_dir)
