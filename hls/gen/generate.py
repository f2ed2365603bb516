"""``generate_rtl``: a qdet build's folded graph -> the build's rtl folder, a self-contained stitched accelerator.

The folder holds ``qdet_top.sv`` (the stitched top), the kernel sources it uses (copied from hls/rtl), one ``.mem``
file per weight or threshold memory, and ``manifest.json`` describing all of it. Nothing in the folder holds an
absolute path or a time stamp: the same build gives the same bytes.

Where the build keeps things is :class:`flows.build.BuildLayout`'s business; this package stays free of project
imports, so it takes any object with the few members of :class:`BuildView`.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from hls.gen.memfiles import mem_text, packed_weight_lines, threshold_lines, weight_lines
from hls.gen.ops import GenerateError, MVAUParams, ThresholdParams, pow2_bytes_width
from hls.gen.stitch import Link, Stage, build_graph, output_port

MANIFEST = "manifest.json"
HARDWARE_STEP = "stream_links"  # the build step whose checkpoint the backends read (flows.build.HARDWARE_STEP)  # inside the generator's own output folder
MAC_STYLES = ("auto", "lut", "dsp")
TOP = "qdet_top"
_HLS = Path(__file__).resolve().parent.parent
KERNELS = _HLS / "rtl"
TEMPLATES = _HLS / "templates"


MAX_TREE_LEVELS = 8  # beyond the depth of any adder tree (clog2 of 256 products): 8 is "one stage"


@dataclass(frozen=True)
class GenConfig:
    """Generator options: the MVAU/VVAU MAC style policy ("auto", "lut", "dsp") and their adder-tree pipelining
    (``tree_levels`` adder levels per register stage, qdet_dot's TREE_LEVELS; 0: products and tree in one
    combinational stage). FIFOs and width converters are nodes of the graph (the flow's stream_links step)."""

    mac_style: str = "auto"
    tree_levels: int = 0

    def __post_init__(self) -> None:
        if self.mac_style not in MAC_STYLES:
            raise GenerateError(f"--mac-style {self.mac_style!r} is not one of {', '.join(MAC_STYLES)}")
        if not 0 <= self.tree_levels <= MAX_TREE_LEVELS:
            raise GenerateError(f"--tree-levels must be 0 (no pipeline) to {MAX_TREE_LEVELS}, got {self.tree_levels}")

    @classmethod
    def of_manifest(cls, manifest: dict) -> GenConfig:
        """The options an existing RTL folder was generated with (its manifest's ``generator``), defaults for the
        ones an older manifest lacks."""
        gen = manifest.get("generator", {}) or {}
        return cls(**{k: gen[k] for k in ("mac_style", "tree_levels") if k in gen})


class BuildView(Protocol):
    """What the generator needs of a build (:class:`flows.build.BuildLayout` has it)."""

    @property
    def rtl_dir(self) -> Path:
        """Where the RTL goes."""

    def step_checkpoint(self, step: str) -> Path:
        """The checkpoint of a step (an error naming what to run when absent)."""

    def relative(self, path: Path) -> str:
        """A path relative to the build root."""

    def target(self) -> tuple[Any, float]:
        """(Board, clock in MHz) of the build."""


def _kernel_sources(kernels: set[str]) -> list[str]:
    """Source files of ``kernels`` and every qdet module they instantiate, sorted."""
    from hls.backend import with_dependencies

    available = {p.stem for p in KERNELS.glob("qdet_*.sv")}
    missing = sorted(k for k in kernels if k not in available)
    if missing:
        raise GenerateError(f"kernels {', '.join(missing)} are not in {KERNELS} yet")

    def instantiated(k: str) -> list[str]:
        # Comments may name other modules; only instantiations (name followed by #( or an instance) count.
        code = re.sub(r"//.*", "", (KERNELS / f"{k}.sv").read_text())
        return re.findall(r"\b(qdet_\w+)\s*(?:#\s*\(|\w+\s*\()", code)

    return with_dependencies(kernels, available, instantiated)


def stage_comment(s: Stage) -> str:
    """What a stage is, and its streams' shapes (the generated tops' comment on each instance)."""
    v = s.view
    what = {"layer": f"{v.name} ({v.op_type})", "dwc": "width converter", "fifo": f"FIFO, depth {v.params().get('DEPTH')}"}
    return (what[s.role] + ": " + " + ".join(f"{i.elems} x {i.bits}" for i in v.in_streams) + " -> " +
            " + ".join(f"{o.elems} x {o.bits}" for o in v.out_streams) + " bits")


def _sv_value(v: int | str) -> str:
    return f'"{v}"' if isinstance(v, str) else str(int(v))


def _connections(stage: Stage) -> list[tuple[str, str]]:
    """(kernel port, top signal) pairs of a stage: one ``s_axis`` (a join's ``s0_axis``, ``s1_axis``, ...) per
    input link, one ``m_axis`` per output link (a fork's outputs packed into its ``m_axis``, output 0 in the LSBs)."""
    conns = []
    for i, link in enumerate(stage.inputs):
        port = "s_axis" if len(stage.inputs) == 1 else f"s{i}_axis"
        conns += [(f"{port}_{sig}", f"{link}_{sig}") for sig in ("tdata", "tvalid", "tready")]
    for sig in ("tdata", "tvalid", "tready"):
        joined = ", ".join(f"{link}_{sig}" for link in reversed(stage.outputs))
        conns.append((f"m_axis_{sig}", joined if len(stage.outputs) == 1 else "{" + joined + "}"))
    return conns


def _port_entry(link: Link, pad: int, signed: bool | None = None) -> dict:
    entry = {"width": pad, "data_bits": link.width, "elems": link.elems, "bits": link.bits,
             "beats_per_frame": link.beats, "link": link.name}
    if signed is None:
        entry["padding"] = f"bits [{pad - 1}:{link.width}] are ignored" if pad > link.width else "none"
    else:
        entry.update(signed=signed, layer=link.layer,
                     padding=f"bits [{pad - 1}:{link.width}] are zero" if pad > link.width else "none")
    return entry


def top_ports(links: list[Link]) -> dict[str, dict]:
    """The top's AXI-Stream ports: ``s_axis`` and one output port per graph output, with widths padded to a
    power-of-two number of bytes for the DMA."""
    ports = {"s_axis": _port_entry(links[0], pow2_bytes_width(links[0].width))}
    index = 0
    while True:
        name = output_port(index)
        link = next((l for l in links if l.consumer == name), None)
        if link is None:
            break
        ports[name] = _port_entry(link, pow2_bytes_width(link.width), link.signed)
        index += 1
    return ports


def _render_top(stages: list[Stage], links: list[Link], ports: dict[str, dict]) -> str:
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), undefined=StrictUndefined, keep_trailing_newline=True)
    rows = []
    for s in stages:
        v = s.view
        rows.append({"kernel": v.kernel, "instance": s.instance, "conns": _connections(s),
                     "params": [(k, _sv_value(p)) for k, p in v.params().items()], "comment": stage_comment(s)})
    outs = [dict(name=name, **p) for name, p in ports.items() if name != "s_axis"]
    return env.get_template("qdet_top.sv.j2").render(stages=rows, links=links, inp=ports["s_axis"], outs=outs)


def _memories(stage: Stage) -> dict[str, str]:
    v = stage.view
    files = {}
    if isinstance(v, MVAUParams) and v.mac_style == "dsp":
        files[f"{v.name}_w.mem"] = mem_text(packed_weight_lines(v.weights, v.pe, v.simd, v.in_bits, v.w_bits,
                                                                v.dsp_lanes, v.w_narrow))
        if v.steps:
            files[f"{v.name}_t.mem"] = mem_text(threshold_lines(v.thresholds, v.pe, v.acc_bits))
    elif isinstance(v, MVAUParams):
        files[f"{v.name}_w.mem"] = mem_text(weight_lines(v.weights, v.pe, v.simd, v.w_bits))
        if v.steps:
            files[f"{v.name}_t.mem"] = mem_text(threshold_lines(v.thresholds, v.pe, v.acc_bits))
    elif isinstance(v, ThresholdParams):
        files[f"{v.name}_t.mem"] = mem_text(threshold_lines(v.thresholds, v.pe, v.in_bits + 1))
    elif v.kernel == "qdet_vvau":  # hls.gen.vvau.VVAUParams
        from hls.gen.memfiles import vvau_weight_lines

        files[f"{v.name}_w.mem"] = mem_text(vvau_weight_lines(v.weights, v.pe, v.simd, v.w_bits))
        if v.steps:  # the MVAU's T_FILE layout: line nf, lane (p, k) in ACC_BITS
            files[f"{v.name}_t.mem"] = mem_text(threshold_lines(v.thresholds, v.pe, v.acc_bits))
    return files


def stage_entry(s: Stage) -> dict:
    """A stage's manifest entry (kernel, parameters, links, streams)."""
    v = s.view
    entry = {"instance": s.instance, "kernel": v.kernel, "role": s.role, "node": v.name, "op_type": v.op_type,
             "parameters": v.params(), "link_in": s.link_in, "link_out": s.link_out, "inputs": list(s.inputs),
             "outputs": list(s.outputs),
             "in_stream": {"elems": v.in_elems, "bits": v.in_bits, "width": v.in_width, "beats_per_frame": v.in_beats},
             "out_stream": {"elems": v.out_elems, "bits": v.out_bits, "width": v.out_width,
                            "beats_per_frame": v.out_beats, "signed": v.out_signed}}
    if isinstance(v, MVAUParams) or v.kernel == "qdet_vvau":
        entry["mac_style"] = v.mac_style
        entry["ram_style"] = v.ram_style
        entry["tree_levels"] = v.tree_levels
        if isinstance(v, MVAUParams) and v.mac_style == "dsp":
            entry["dsp_lanes"] = v.dsp_lanes
    if s.role == "fifo":
        entry["fifo_depth"] = v.params()["DEPTH"]
    return entry


def plan_rtl(build: BuildView, config: GenConfig = GenConfig()):
    """The stitched RTL of ``build`` (its ``stream_links`` checkpoint: the folded graph with its FIFOs and width
    converters) as a :class:`hls.backend.Plan`: the top, the kernel sources, the memory files and the manifest.

    Raises :class:`GenerateError` for a node the backend does not support (naming node and op type), a stream
    whose two ends do not match, or a kernel missing from hls/rtl.
    """
    from qonnx.core.modelwrapper import ModelWrapper

    from hls.backend import with_manifest

    source = build.step_checkpoint(HARDWARE_STEP)
    board, clock = build.target()
    model = ModelWrapper(str(source))
    stages, links = build_graph(model, config.mac_style, board.family.value)
    stages = [replace(s, view=replace(s.view, tree_levels=config.tree_levels)) if hasattr(s.view, "tree_levels")
              else s for s in stages]
    sources = _kernel_sources({s.view.kernel for s in stages})
    ports = top_ports(links)

    files: dict[str, str] = {f"{TOP}.sv": _render_top(stages, links, ports)}
    for s in stages:
        files.update(_memories(s))
    for k in sources:
        files[f"{k}.sv"] = (KERNELS / f"{k}.sv").read_text()

    manifest = {
        "top": TOP,
        **source_entry(build, source, board, clock),
        "generator": {"mac_style": config.mac_style, "tree_levels": config.tree_levels},
        "ports": ports,
        "packing": PACKING,
        "memory_files": "referenced by bare file name: run tools with this folder as the working directory",
        "stages": [stage_entry(s) for s in stages],
        "links": [link_entry(l) for l in links],
        "kernel_sources": [f"{k}.sv" for k in sources],
        # UltraScale+ UltraRAM cannot be initialised by a bitstream: these layers' weights must be written at run time.
        "runtime_weights": [s.view.name for s in stages if getattr(s.view, "ram_style", "") == "ultra"],
    }
    return with_manifest("rtl", files, manifest)


PACKING = ("element i of a beat in bits [i*bits +: bits], two's complement when signed; NHWC, channel fastest; "
           "the outer ports are padded to a power-of-two number of bytes")


def source_entry(build: BuildView, source: Path, board, clock: float) -> dict:
    """The manifest's record of what a backend's folder was generated from: a resumed build that re-folds makes
    it stale (BuildLayout checks ``source_sha256``)."""
    return {"source": build.relative(source), "source_sha256": hashlib.sha256(source.read_bytes()).hexdigest(),
            "board": board.name, "clock_mhz": clock}


def link_entry(l: Link) -> dict:
    """A link's manifest entry."""
    return {"name": l.name, "producer": l.producer, "consumer": l.consumer, "layer": l.layer, "tensor": l.tensor,
            "elems": l.elems, "bits": l.bits, "signed": l.signed, "width": l.width, "beats_per_frame": l.beats}


def plan_backend(build: BuildView, **options):
    """The rtl backend's ``plan`` (:mod:`hls.backend`): :func:`plan_rtl` with :class:`GenConfig`'s fields by
    name."""
    return plan_rtl(build, GenConfig(**options))


def generate_rtl(build: BuildView, config: GenConfig = GenConfig(), out: Path | None = None) -> Path:
    """Write :func:`plan_rtl` of ``build`` to ``out`` (default: the build's rtl folder); returns that folder."""
    return plan_rtl(build, config).write(Path(out) if out is not None else build.rtl_dir)


def load_manifest(rtl: Path) -> dict:
    """Read the manifest of a generated rtl folder."""
    return json.loads((Path(rtl) / MANIFEST).read_text())
