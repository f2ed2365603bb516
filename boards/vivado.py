"""Vivado hand-off: the build's vivado folder with a Tcl project for the build's board, an XDC clock, a run script, a README.

For a Zynq board (``Shell.ZYNQ``) ``create_project.tcl`` builds a block design - the processing system
(``processing_system7`` on Zynq-7000, ``zynq_ultra_ps_e`` on Zynq UltraScale+), an AXI DMA whose MM2S stream feeds
``qdet_top`` and whose S2MM stream drains it, SmartConnects, a reset block, interrupts, the address map - then runs
synthesis, implementation and ``write_bitstream`` and exports ``qdet.bit``/``qdet.hwh`` (PYNQ) and ``qdet.xsa``.
``ooc_synth.tcl`` synthesizes and implements ``qdet_top`` alone, out of context, at the build's clock (the XDC):
Vivado's own utilization and timing of the accelerator. An Alveo board has no PS; only the out-of-context script
is written, and a note says what a bitstream would need.

Everything is written from templates (``boards/templates``) with paths relative to the scripts, so the output is
byte-identical for the same build and can be copied to a machine with Vivado. Vivado itself is optional: when it
is not on PATH the caller reports :attr:`VivadoPlan.how_to_run`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from boards.catalogue import Board, Shell, UnknownBoardError, get_board

TEMPLATES = Path(__file__).parent / "templates"
VIVADO = "vivado"
HDL_SUFFIXES = (".sv", ".v")
AXIS_WIDTHS = (8, 16, 32, 64, 128, 256, 512, 1024)  # what the AXI DMA's stream ports accept
# Board files (Vivado board store names), used for the PS presets only when installed.
BOARD_PARTS = {
    "pynq-z1": "www.digilentinc.com:pynq-z1:part0:1.0",
    "pynq-z2": "tul.com.tw:pynq-z2:part0:1.0",
    "ultra96-v2": "avnet.com:ultra96v2:part0:1.2",
    "kv260": "xilinx.com:kv260_som:part0:1.3",
    "zcu104": "xilinx.com:zcu104:part0:1.1",
}
ALVEO_PLATFORMS = {"u250": "xilinx_u250_gen3x16_xdma_4_1_202210_1"}


class VivadoError(RuntimeError):
    """The hand-off cannot be written or Vivado failed; the message says what to do."""


class BuildView(Protocol):
    """What the hand-off needs of a build (:class:`flows.build.BuildLayout` has it; this floor imports no flows)."""

    @property
    def root(self) -> Path:
        """The build folder."""

    @property
    def rtl_dir(self) -> Path:
        """The generated RTL."""

    @property
    def manifest(self) -> Path:
        """The RTL's manifest file."""

    @property
    def vivado_dir(self) -> Path:
        """Where the hand-off goes."""

    def read_manifest(self) -> dict[str, Any]:
        """The RTL's manifest (an error naming what to run when absent)."""

    def target(self) -> tuple[Board, float]:
        """(Board, clock in MHz) of the build."""


@dataclass(frozen=True)
class VivadoPlan:
    """What :func:`write_vivado` writes for one build; built by :func:`plan_vivado`."""

    build_dir: Path
    rtl_dir: Path
    out_dir: Path  # the build's vivado folder
    board: Board
    clock_mhz: float
    sources: tuple[str, ...]  # HDL files in BUILD/rtl, top last
    mem_files: tuple[str, ...]  # $readmemh files in BUILD/rtl
    in_width: int  # qdet_top's s_axis_tdata width (a power-of-two number of bytes)
    out_width: int
    in_beats: int  # beats per frame on each port
    out_beats: int
    jobs: int = 2
    notes: tuple[str, ...] = field(default=())

    @property
    def zynq(self) -> bool:
        """True when the board has a PS (and so a block design and a bitstream flow)."""
        return self.board.shell is Shell.ZYNQ

    @property
    def main_script(self) -> str:
        """The script ``run.sh`` runs by default."""
        return "create_project.tcl" if self.zynq else "ooc_synth.tcl"

    @property
    def period_ns(self) -> str:
        """The clock period, formatted for the XDC."""
        return f"{1000.0 / self.clock_mhz:.3f}"

    @property
    def how_to_run(self) -> str:
        """What to do where Vivado is installed."""
        what = ("block design, bitstream and hand-off files in vivado/out/" if self.zynq
                else "qdet_top out of context (utilization and timing)")
        run = Path(os.path.relpath(self.out_dir / "run.sh", self.build_dir)).as_posix()
        return (f"Copy {self.build_dir} (its {self.rtl_dir.name} and {self.out_dir.name} folders are self-contained) "
                f"to a machine with Vivado, source its settings64.sh, and run `sh {run}` ({what}); `sh {run} ooc` "
                f"synthesizes qdet_top alone. Details: {self.out_dir / 'README.md'}")


def _port(manifest: dict[str, Any], name: str, path: Path) -> tuple[int, int]:
    try:
        port = manifest["ports"][name]
        return int(port["width"]), int(port["beats_per_frame"])
    except (KeyError, TypeError, ValueError):
        raise VivadoError(f"{path}: no ports.{name}.width / beats_per_frame: regenerate the RTL") from None


def check_jobs(jobs: int) -> int:
    """``jobs`` if it is a usable number of parallel Vivado jobs, else VivadoError naming the flag."""
    if jobs < 1:
        raise VivadoError(f"--jobs must be >= 1, got {jobs}")
    return jobs


def plan_vivado(build: BuildView, *, board: str | None = None, clock_mhz: float | None = None,
                jobs: int = 2) -> VivadoPlan:
    """Plan the hand-off of ``build``: board and clock from the build (or the arguments), sources and port widths
    from its rtl folder. Raises VivadoError when something is missing."""
    rtl, manifest_path = build.rtl_dir, build.manifest
    if not manifest_path.is_file():
        raise VivadoError(f"{manifest_path} does not exist: generate the RTL first (`qdet bitstream` does it for a "
                          "build that has its fold step)")
    # The layout's error type (FlowError, a RuntimeError) lives on a higher floor than this one.
    try:
        manifest = build.read_manifest()
    except RuntimeError as exc:
        raise VivadoError(str(exc)) from None
    try:
        target, build_clock = build.target()
    except RuntimeError as exc:
        if board is None:
            raise VivadoError(f"cannot tell the board of {build.root}: {exc}") from None
        target, build_clock = None, None
    if board is not None:
        try:
            target = get_board(str(board))
        except UnknownBoardError as exc:
            raise VivadoError(str(exc)) from None
    clock = float(clock_mhz or build_clock or target.clock_mhz)
    runtime = list(manifest.get("runtime_weights", []))
    if runtime:
        raise VivadoError(f"layers {', '.join(runtime)} keep their weights in UltraRAM, which a bitstream cannot "
                          "initialise, and qdet's RTL has no run-time weight-loading port yet. The build simulates "
                          "(qdet sim), but for a bitstream fold it again on a board without UltraRAM or with a "
                          "folding file that sets \"ram_style\": \"auto\" on those layers (qdet build --folding)")
    files = sorted(p.name for p in rtl.iterdir() if p.is_file())
    top = str(manifest.get("top", "qdet_top"))
    hdl = [f for f in files if f.endswith(HDL_SUFFIXES)]
    if f"{top}.sv" not in hdl and f"{top}.v" not in hdl:
        raise VivadoError(f"{rtl} has no {top}.sv: the stitched top is missing")
    sources = tuple([f for f in hdl if Path(f).stem != top] + [f for f in hdl if Path(f).stem == top])
    mems = tuple(f for f in files if f.endswith(".mem"))
    (in_width, in_beats), (out_width, out_beats) = _port(manifest, "s_axis", manifest_path), \
        _port(manifest, "m_axis", manifest_path)
    for port, width in (("s_axis", in_width), ("m_axis", out_width)):
        if width not in AXIS_WIDTHS:
            raise VivadoError(f"qdet_top's {port} is {width} bits wide; the AXI DMA takes {AXIS_WIDTHS}")
    notes = []
    if target.shell is Shell.ALVEO:
        platform = ALVEO_PLATFORMS.get(target.name, "the card's XRT platform")
        notes.append(f"{target.name} ({target.title}) is an Alveo card: it has no Zynq PS, so there is no block design "
                     f"or bitstream here. A bitstream needs qdet_top packaged as a Vitis RTL kernel (.xo) with AXI "
                     f"master or stream ports and linked by v++ against {platform}; qdet does not generate that yet. "
                     "Written: the out-of-context script (ooc_synth.tcl), which gives Vivado's utilization and timing "
                     "of qdet_top on this part")
    check_jobs(jobs)
    return VivadoPlan(build_dir=build.root, rtl_dir=rtl, out_dir=build.vivado_dir, board=target, clock_mhz=clock,
                      sources=sources, mem_files=mems,
                      in_width=in_width, out_width=out_width, in_beats=in_beats, out_beats=out_beats, jobs=jobs,
                      notes=tuple(notes))


def _mhz(value: float) -> str:
    return f"{value:g}"


def template_env():
    """The Jinja environment of ``boards/templates`` (strict: a missing variable is an error)."""
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), undefined=StrictUndefined, keep_trailing_newline=True)
    env.filters["mhz"] = _mhz
    return env


def shell_context(board: Board, clock_mhz: float, in_width: int, out_width: int, jobs: int) -> dict[str, Any]:
    """What ``zynq_project.tcl.j2`` needs for the Zynq PS + AXI DMA shell around qdet_top, whichever backend made
    qdet_top (the HLS path, boards/vitis.py, overrides ``hls``, the extra output DMAs and the interconnect sizes)."""
    xcup = board.family.value == "xcup"
    return {
        "board": board, "family": board.family.value, "clock_mhz": clock_mhz, "jobs": jobs,
        "board_part": BOARD_PARTS.get(board.name, ""), "in_width": in_width, "out_width": out_width,
        # The DMA's memory-mapped side must be at least as wide as its stream side (and at least 32 bits).
        "mm_in_width": max(32, in_width), "mm_out_width": max(32, out_width),
        "addr_width": 64 if xcup else 32, "dma_base": "0xA0000000" if xcup else "0x40400000",
        "ps_ip": "zynq_ultra_ps_e (Zynq UltraScale+ PS)" if xcup else "processing_system7 (Zynq-7000 PS)",
        # The RTL path's qdet_top is a module reference with one output stream and one DMA.
        "hls": False, "out_dmas": (), "ctrl_mi": 1, "mem_si": 2, "irq_ports": 2,
    }


def render(plan: VivadoPlan) -> dict[str, str]:
    """File name -> text of everything :func:`write_vivado` writes (deterministic for a given plan)."""
    env = template_env()
    context = {
        **shell_context(plan.board, plan.clock_mhz, plan.in_width, plan.out_width, plan.jobs),
        "period_ns": plan.period_ns, "sources": plan.sources, "mem_files": plan.mem_files,
        "in_beats": plan.in_beats, "out_beats": plan.out_beats, "in_bytes": plan.in_beats * plan.in_width // 8,
        "out_bytes": plan.out_beats * plan.out_width // 8,
        "count_bits": max(1, (plan.out_beats - 1).bit_length()), "zynq": plan.zynq, "notes": plan.notes,
        "main_script": plan.main_script,
    }
    names = ["ooc_synth.tcl", "qdet_ooc.xdc", "run.sh", "README.md"]
    if plan.zynq:
        names[:0] = ["create_project.tcl", "qdet_axis_shell.v"]
    templates = {"create_project.tcl": "zynq_project.tcl.j2"}
    return {n: env.get_template(templates.get(n, n + ".j2")).render(**context) for n in names}


def write_vivado(plan: VivadoPlan) -> list[Path]:
    """Write the hand-off into the build's vivado folder (see :func:`render`); returns the files written."""
    plan.out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render(plan).items():
        path = plan.out_dir / name
        path.write_text(text)
        written.append(path)
    return written


def find_vivado() -> Path | None:
    """The ``vivado`` executable on PATH, or None."""
    found = shutil.which(VIVADO)
    return Path(found) if found else None


def run_vivado(plan: VivadoPlan, vivado: Path, timeout_s: float | None = None) -> list[Path]:
    """Run the plan's main script in Vivado batch mode (in its vivado folder); returns the hand-off files made.

    Raises VivadoError naming the log when Vivado fails or the expected outputs are missing."""
    log = plan.out_dir / ("vivado.log" if plan.zynq else "vivado_ooc.log")
    cmd = [str(vivado), "-mode", "batch", "-nojournal", "-log", log.name, "-source", plan.main_script]
    try:
        proc = subprocess.run(cmd, cwd=plan.out_dir, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise VivadoError(f"Vivado ran past {timeout_s:g} s; see {log}") from None
    if proc.returncode != 0:
        raise VivadoError(f"Vivado failed (exit {proc.returncode}); see {log}")
    expected = ([plan.out_dir / "out" / n for n in ("qdet.bit", "qdet.hwh", "qdet.xsa")] if plan.zynq
                else [plan.out_dir / "reports" / "ooc_timing.rpt"])
    missing = [str(p) for p in expected if not p.is_file()]
    if missing:
        raise VivadoError(f"Vivado finished but did not write {', '.join(missing)}; see {log}")
    return expected


def handoff(build: BuildView, **options) -> VivadoPlan:
    """The rtl backend's ``scripts`` (:mod:`hls.backend`): plan and write the Vivado hand-off of ``build``
    (``options``: :func:`plan_vivado`'s); returns the plan (its ``how_to_run`` says what to do with it)."""
    plan = plan_vivado(build, **options)
    write_vivado(plan)
    return plan
