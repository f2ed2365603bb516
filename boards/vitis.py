"""Vitis HLS / Vivado hand-off of the C++ backend: the build's vitis folder.

``run_hls.tcl`` (for ``vitis_hls -f run_hls.tcl``) makes a Vitis HLS project of the generated C++ (``BUILD/cpp``,
its synthesis sources and headers only), C-simulates it with the testbench ``tb_qdet_top.cpp`` against a few
golden frames (``tb_input.dat``, ``tb_output_<port>.dat``), synthesizes it for the board's part at the build's
clock, optionally runs C/RTL cosimulation (``-tclargs cosim``), and exports ``qdet_top`` as Vivado IP
(:data:`IP_VENDOR`:``hls``:``qdet_top``:``1.0``) into ``qdet_hls/solution1/impl/ip``. For a Zynq board
``create_project.tcl`` then builds the same block design as the RTL path (``zynq_project.tcl.j2``: the PS, an AXI
DMA whose MM2S feeds ``s_axis`` and whose S2MM drains ``m_axis``, one S2MM-only DMA per further output port,
SmartConnects, reset, interrupts) around that IP and runs synthesis, implementation, the bitstream and the
``.hwh``/``.xsa`` export. An Alveo board gets the HLS script only, and a note.

The C simulation shim of the C++ backend (``BUILD/cpp/csim``: qdet's own ``hls_stream.h`` for g++) is never added
to the Vitis project nor put on its include path: Vitis uses its own ``hls_stream.h``, ``ap_int.h`` and
``ap_axi_sdata.h``. Everything is written with paths relative to the scripts, so the output is byte-identical for
the same build and can be copied to a machine with Vitis. Vitis itself is optional: when neither ``vitis_hls``
nor ``vitis-run`` is on PATH the caller reports :attr:`VitisPlan.how_to_run`.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

from boards.catalogue import Board, Shell, UnknownBoardError, get_board
from boards.runtime.stream import pack_words
from boards.vivado import ALVEO_PLATFORMS, AXIS_WIDTHS, VIVADO, find_vivado, shell_context, template_env

VITIS_HLS = "vitis_hls"
VITIS_RUN = "vitis-run"  # Vitis 2023.2+: `vitis-run --mode hls --tcl run_hls.tcl` runs the same script
HLS_PROJECT = "qdet_hls"  # the Vitis HLS project folder, in the vitis folder
SOLUTION = "solution1"
IP_VENDOR = "qdet.org"
IP_LIBRARY = "hls"
IP_VERSION = "1.0"
CFLAGS = "-std=c++14"  # what qdet's C++ is written to (hls/cpp/README.md)
TB_FRAMES = 4  # golden frames in the testbench's data files (at most)
COSIM_FRAMES = 2  # frames cosimulated (two: back-to-back frames and TLAST across a frame boundary)
TESTBENCH = "tb_qdet_top.cpp"
INPUT_DATA = "tb_input.dat"
# Headers Vitis brings itself: never taken from the build (the C++ backend's own are C-simulation shims).
VITIS_HEADERS = ("hls_stream.h", "ap_int.h", "ap_fixed.h", "ap_axi_sdata.h")
MAX_OUTPUTS = 15  # the memory SmartConnect takes 16 slaves: the MM2S channel and one S2MM channel per output


class VitisError(RuntimeError):
    """The hand-off cannot be written or Vitis/Vivado failed; the message says what to do."""


class BuildView(Protocol):
    """What the hand-off needs of a build (:class:`flows.build.BuildLayout` has it; this floor imports no flows)."""

    @property
    def root(self) -> Path:
        """The build folder."""

    @property
    def cpp_dir(self) -> Path:
        """The generated C++."""

    @property
    def cpp_manifest(self) -> Path:
        """The C++'s manifest file."""

    @property
    def vitis_dir(self) -> Path:
        """Where the hand-off goes."""

    def read_cpp_manifest(self) -> dict[str, Any]:
        """The C++'s manifest (an error naming what to run when it is unreadable)."""

    def target(self) -> tuple[Board, float]:
        """(Board, clock in MHz) of the build."""

    def read_golden_ports(self) -> tuple[Any, list[Any]]:
        """(inputs, [outputs per output port]) of the golden model, as numpy arrays."""


@dataclass(frozen=True)
class AxisPort:
    """One AXI-Stream port of the HLS top, as its manifest describes it."""

    name: str  # s_axis, m_axis, m1_axis, ...
    width: int  # TDATA bits (a power-of-two number of bytes)
    beats: int  # beats per frame
    elems: int  # elements per beat
    bits: int  # bits per element
    signed: bool | None  # None: the manifest does not say (the input port); packing is the same either way
    output: bool

    @property
    def data_file(self) -> str:
        """The testbench's data file of this port."""
        return f"tb_output_{self.name}.dat" if self.output else INPUT_DATA


@dataclass(frozen=True)
class VitisPlan:
    """What :func:`write_vitis` writes for one build; built by :func:`plan_vitis`."""

    build_dir: Path
    cpp_dir: Path
    out_dir: Path  # the build's vitis folder
    board: Board
    clock_mhz: float
    top: str
    sources: tuple[str, ...]  # synthesis sources in BUILD/cpp
    headers: tuple[str, ...]  # headers in BUILD/cpp (never the C-simulation shim's)
    ports: tuple[AxisPort, ...]  # s_axis first, then m_axis, m1_axis, ...
    tb_frames: int  # golden frames in the testbench data
    cosim: bool = False  # run_hls.tcl's default for C/RTL cosimulation (`-tclargs cosim` / `nocosim` override)
    jobs: int = 2
    notes: tuple[str, ...] = field(default=())
    csim_dir: str = "csim"  # the C++ backend's C-simulation headers (BUILD/cpp/csim), never given to Vitis
    # The testbench's frames: input first, then each output port's, ``tb_frames`` frames each, in stream order.
    frames: tuple[Any, ...] = field(default=(), compare=False, repr=False)

    @property
    def zynq(self) -> bool:
        """True when the board has a PS (and so a block design and a bitstream flow)."""
        return self.board.shell is Shell.ZYNQ

    @property
    def period_ns(self) -> str:
        """The clock period for ``create_clock``."""
        return f"{1000.0 / self.clock_mhz:.3f}"

    @property
    def project(self) -> str:
        """The Vitis HLS project folder (in the vitis folder)."""
        return HLS_PROJECT

    @property
    def solution(self) -> str:
        """The Vitis HLS solution."""
        return SOLUTION

    @property
    def ip_vendor(self) -> str:
        return IP_VENDOR

    @property
    def ip_library(self) -> str:
        return IP_LIBRARY

    @property
    def ip_version(self) -> str:
        return IP_VERSION

    @property
    def ip_name(self) -> str:
        """The exported IP's name: the top function's."""
        return self.top

    @property
    def ip_vlnv(self) -> str:
        """vendor:library:name:version of the exported IP, as the block design instantiates it."""
        return f"{IP_VENDOR}:{IP_LIBRARY}:{self.ip_name}:{IP_VERSION}"

    @property
    def ip_repo(self) -> str:
        """The IP repository export_design writes, relative to the vitis folder."""
        return f"{HLS_PROJECT}/{SOLUTION}/impl/ip"

    @property
    def input(self) -> AxisPort:
        return self.ports[0]

    @property
    def outputs(self) -> tuple[AxisPort, ...]:
        return self.ports[1:]

    @property
    def cosim_frames(self) -> int:
        """Frames the cosimulation streams (the testbench's first ones)."""
        return min(COSIM_FRAMES, self.tb_frames)

    @property
    def data_files(self) -> tuple[str, ...]:
        """The testbench's data files, input first."""
        return tuple(p.data_file for p in self.ports)

    @property
    def how_to_run(self) -> str:
        """What to do where Vitis HLS (and Vivado) are installed."""
        run = Path(os.path.relpath(self.out_dir / "run.sh", self.build_dir)).as_posix()
        if self.zynq:
            tools, what = "Vitis HLS and Vivado", ("C simulation, C synthesis and IP export, then the Vivado block "
                                                   f"design and bitstream in {self.out_dir.name}/out/")
            more = f", `sh {run} hls` stops after the IP export"
        else:
            tools, what, more = "Vitis HLS", "C simulation, C synthesis and IP export", ""
        return (f"Copy {self.build_dir} (its {self.cpp_dir.name} and {self.out_dir.name} folders are self-contained) "
                f"to a machine with {tools}, source settings64.sh, and run `sh {run}` ({what}); `sh {run} cosim` "
                f"adds C/RTL cosimulation{more}. Details: {self.out_dir / 'README.md'}")


def _manifest_list(manifest: dict[str, Any], key: str, path: Path) -> list[str]:
    value = manifest.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise VitisError(f"{path}: {key} is not a list of file names: regenerate the C++ (qdet sim BUILD --backend "
                         "cpp)")
    return list(value)


def _port(manifest: dict[str, Any], name: str, path: Path, output: bool) -> AxisPort:
    try:
        port = manifest["ports"][name]
        ap = AxisPort(name=name, width=int(port["width"]), beats=int(port["beats_per_frame"]),
                      elems=int(port["elems"]), bits=int(port["bits"]),
                      signed=None if port.get("signed") is None else bool(port["signed"]),
                      output=output)
    except (KeyError, TypeError, ValueError):
        raise VitisError(f"{path}: no ports.{name}.width / beats_per_frame / elems / bits: regenerate the C++ "
                         "(qdet sim BUILD --backend cpp)") from None
    if ap.width not in AXIS_WIDTHS:
        raise VitisError(f"{path}: qdet_top's {name} is {ap.width} bits wide; the AXI DMA takes {AXIS_WIDTHS}")
    if ap.beats < 1 or ap.elems < 1 or ap.bits < 1 or ap.elems * ap.bits > ap.width:
        raise VitisError(f"{path}: ports.{name} ({ap.elems} x {ap.bits} bits in {ap.width}, {ap.beats} beats) is not "
                         "a usable stream: regenerate the C++")
    return ap


def output_port(index: int) -> str:
    """The top's AXI-Stream output port of graph output ``index``: ``m_axis``, ``m1_axis``, ... (as the
    generators name them)."""
    return "m_axis" if index == 0 else f"m{index}_axis"


def _in_csim_dir(name: str, csim_dir: str) -> bool:
    parts = PurePosixPath(name).parts
    return bool(parts) and (parts[0] == csim_dir or PurePosixPath(name).name in VITIS_HEADERS)


def _check_name(name: str, path: Path) -> str:
    p = PurePosixPath(name)
    if p.is_absolute() or ".." in p.parts or not p.parts:
        raise VitisError(f"{path}: {name!r} is not a file name inside the cpp folder: regenerate the C++")
    return p.as_posix()


def _golden_frames(build: BuildView, ports: tuple[AxisPort, ...]) -> tuple[Any, ...]:
    """Up to TB_FRAMES golden frames of every port, checked against the ports, as (frames, beats*elems) int64."""
    import numpy as np

    try:
        golden_in, golden_outs = build.read_golden_ports()
    except RuntimeError as exc:
        raise VitisError(f"the testbench needs the build's golden frames: {exc}") from None
    golden_dir = build.root / "golden"
    if len(golden_outs) != len(ports) - 1:
        raise VitisError(f"{golden_dir} has golden frames for {len(golden_outs)} outputs, the C++ top "
                         f"{len(ports) - 1} output ports: rerun `qdet build` from its verify step (--from verify) "
                         "or regenerate the C++ (qdet sim BUILD --backend cpp)")
    arrays = [np.asarray(golden_in)] + [np.asarray(o) for o in golden_outs]
    frames = min(TB_FRAMES, *(len(a) for a in arrays))
    if frames < 1:
        raise VitisError(f"{golden_dir} holds no golden frames; rerun `qdet build` with --verify N (N >= 1)")
    out = []
    for port, arr in zip(ports, arrays):
        what = f"{golden_dir}: the golden {'output of ' + port.name if port.output else 'input'}"
        flat = arr[:frames].reshape(frames, -1)
        if flat.shape[1] != port.beats * port.elems:
            raise VitisError(f"{what} has {flat.shape[1]} values per frame, qdet_top's {port.name} carries "
                             f"{port.beats} beats x {port.elems}: the C++ was generated from another graph; "
                             "regenerate it (qdet sim BUILD --backend cpp)")
        if not np.issubdtype(flat.dtype, np.integer):
            if not np.all(np.isfinite(flat)) or not np.array_equal(flat, np.round(flat)):
                raise VitisError(f"{what} is not integer-valued; rerun `qdet build` from its verify step")
        ints = flat.astype(np.int64)
        lo = 0 if port.signed is False else -(1 << (port.bits - 1))
        hi = (1 << (port.bits - 1)) - 1 if port.signed else (1 << port.bits) - 1
        if ints.size and (ints.min() < lo or ints.max() > hi):
            kind = {True: "signed ", False: "unsigned ", None: ""}[port.signed]
            raise VitisError(f"{what} has values in [{ints.min()}, {ints.max()}], outside {port.bits}-bit {kind}"
                             f"[{lo}, {hi}]: regenerate the C++")
        ints.setflags(write=False)
        out.append(ints)
    return tuple(out)


def check_jobs(jobs: int) -> int:
    """``jobs`` if it is a usable number of parallel Vivado jobs, else VitisError naming the flag."""
    if jobs < 1:
        raise VitisError(f"--jobs must be >= 1, got {jobs}")
    return jobs


def plan_vitis(build: BuildView, *, board: str | None = None, clock_mhz: float | None = None, cosim: bool = False, jobs: int = 2) -> VitisPlan:
    """Plan the Vitis hand-off of ``build``: board and clock from the build (or the arguments, or the C++'s
    manifest for a cpp folder made elsewhere), sources and ports from its cpp manifest, the testbench's frames from
    its golden frames (packed into beats by :mod:`boards.runtime.stream`). Raises VitisError when something is
    missing."""
    manifest_path = build.cpp_manifest
    if not manifest_path.is_file():
        raise VitisError(f"{manifest_path} does not exist: generate the C++ first: qdet sim {build.root} "
                         "--backend cpp")
    # The layout's error type (FlowError, a RuntimeError) lives on a higher floor than this one.
    try:
        manifest = build.read_cpp_manifest()
    except RuntimeError as exc:
        raise VitisError(str(exc)) from None
    if not isinstance(manifest, dict):
        raise VitisError(f"{manifest_path} is not a JSON object: regenerate the C++ (qdet sim {build.root} "
                         "--backend cpp)")
    try:
        target, build_clock = build.target()
    except RuntimeError as exc:
        target, build_clock = None, None
        if board is None:
            if manifest.get("board") is None:
                raise VitisError(f"cannot tell the board of {build.root}: {exc}") from None
            board = str(manifest["board"])
            build_clock = manifest.get("clock_mhz")
    if board is not None:
        try:
            target = get_board(str(board))
        except UnknownBoardError as exc:
            raise VitisError(str(exc)) from None
    clock = float(clock_mhz or build_clock or target.clock_mhz)
    if not math.isfinite(clock) or clock <= 0:
        raise VitisError(f"the clock must be a positive frequency in MHz, got {clock}")
    check_jobs(jobs)

    top = str(manifest.get("top", "qdet_top"))
    if not top.isidentifier():
        raise VitisError(f"{manifest_path}: top {top!r} is not a C++ function name: regenerate the C++")
    csim_dir = str(manifest.get("csim_dir", "csim"))
    sources = [_check_name(s, manifest_path) for s in _manifest_list(manifest, "synthesis_sources", manifest_path)]
    headers = [_check_name(h, manifest_path) for h in _manifest_list(manifest, "headers", manifest_path)]
    if not sources:
        raise VitisError(f"{manifest_path} lists no synthesis_sources: regenerate the C++ (qdet sim {build.root} "
                         "--backend cpp)")
    shim = [s for s in sources if _in_csim_dir(s, csim_dir)]
    if shim:
        raise VitisError(f"{manifest_path}: synthesis_sources {', '.join(shim)} are C-simulation files ({csim_dir}/), "
                         "which Vitis must not compile: regenerate the C++")
    headers = [h for h in headers if not _in_csim_dir(h, csim_dir)]
    if f"{top}.h" not in headers:
        raise VitisError(f"{manifest_path}: headers do not list {top}.h, which declares the top the testbench calls: "
                         f"regenerate the C++ (qdet sim {build.root} --backend cpp)")
    shadows = [h for h in VITIS_HEADERS if (build.cpp_dir / h).exists()]
    if shadows:
        raise VitisError(f"{build.cpp_dir} holds {', '.join(shadows)}: a quoted #include would take it instead of "
                         f"Vitis HLS' own; qdet's C-simulation headers belong in {csim_dir}/ only: regenerate the C++ "
                         f"(qdet sim {build.root} --backend cpp)")
    missing = [n for n in sources + headers if not (build.cpp_dir / n).is_file()]
    if missing:
        raise VitisError(f"{build.cpp_dir} lacks {', '.join(missing)} (listed in {manifest_path.name}): regenerate "
                         f"the C++ (qdet sim {build.root} --backend cpp)")

    ports = [_port(manifest, "s_axis", manifest_path, output=False)]
    while output_port(len(ports) - 1) in manifest.get("ports", {}):
        ports.append(_port(manifest, output_port(len(ports) - 1), manifest_path, output=True))
    if len(ports) < 2:
        raise VitisError(f"{manifest_path}: no ports.m_axis: regenerate the C++ (qdet sim {build.root} --backend cpp)")
    if len(ports) - 1 > MAX_OUTPUTS:
        raise VitisError(f"qdet_top has {len(ports) - 1} output ports; the block design takes at most {MAX_OUTPUTS} "
                         "(one DMA channel each)")
    frames = _golden_frames(build, tuple(ports))

    notes = []
    if target.shell is Shell.ALVEO:
        platform = ALVEO_PLATFORMS.get(target.name, "the card's XRT platform")
        notes.append(f"{target.name} ({target.title}) is an Alveo card: it has no Zynq PS, so there is no block design "
                     f"or bitstream here. A bitstream needs qdet_top exported as a Vitis kernel (.xo, open_solution "
                     f"-flow_target vitis) with AXI master or stream ports and linked by v++ against {platform}; "
                     "qdet does not generate that yet. Written: the Vitis HLS script (run_hls.tcl: C simulation, C "
                     "synthesis and the IP export for this part; `-tclargs impl` adds Vivado's out-of-context "
                     "utilization and timing of the IP)")
    return VitisPlan(build_dir=build.root, cpp_dir=build.cpp_dir, out_dir=build.vitis_dir, board=target,
                     clock_mhz=clock, top=top, sources=tuple(sources), headers=tuple(headers), ports=tuple(ports),
                     tb_frames=len(frames[0]), cosim=bool(cosim), jobs=jobs, notes=tuple(notes), frames=frames,
                     csim_dir=csim_dir)


def _out_dmas(plan: VitisPlan, dma_base: str) -> list[dict[str, Any]]:
    """The S2MM-only DMAs of the output ports after m_axis, with their SmartConnect ports, interrupt and address."""
    base = int(dma_base, 16)
    return [{"name": f"dma{k}", "port": port.name, "width": port.width, "mm_width": max(32, port.width),
             "ctrl_port": f"M{k:02d}_AXI", "mem_port": f"S{k + 1:02d}_AXI", "irq": k + 1,
             "base": f"0x{base + k * 0x10000:08X}"}
            for k, port in enumerate(plan.outputs) if k > 0]


def context(plan: VitisPlan) -> dict[str, Any]:
    """The templates' variables for ``plan``."""
    shell = shell_context(plan.board, plan.clock_mhz, plan.input.width, plan.outputs[0].width, plan.jobs)
    dmas = _out_dmas(plan, shell["dma_base"])
    n = len(plan.outputs)
    shell.update(hls=True, out_dmas=dmas, ctrl_mi=n, mem_si=1 + n, irq_ports=1 + n, ip_vlnv=plan.ip_vlnv,
                 ip_repo=plan.ip_repo)
    return {
        **shell, "plan": plan, "period_ns": plan.period_ns, "top": plan.top, "sources": plan.sources,
        "headers": plan.headers, "ports": plan.ports, "input": plan.input, "outputs": plan.outputs,
        "tb_frames": plan.tb_frames, "cosim_frames": plan.cosim_frames, "cosim": plan.cosim, "cflags": CFLAGS,
        "project": plan.project, "solution": plan.solution, "ip_vendor": plan.ip_vendor,
        "ip_library": plan.ip_library, "ip_version": plan.ip_version, "ip_name": plan.ip_name,
        "testbench": TESTBENCH, "data_files": plan.data_files, "zynq": plan.zynq, "notes": plan.notes,
        "csim_dir": plan.csim_dir,
        "dma_bases": [shell["dma_base"]] + [d["base"] for d in dmas],
    }


def data_text(port: AxisPort, frames: Any) -> str:
    """A testbench data file: one hex word per beat (``width // 4`` digits), all frames back to back."""
    digits = port.width // 4
    return "".join(w.rjust(digits, "0") + "\n" for w in pack_words(frames.reshape(-1, port.elems), port.bits))


def render(plan: VitisPlan) -> dict[str, str]:
    """File name -> text of everything :func:`write_vitis` writes (deterministic for a given plan)."""
    env = template_env()
    ctx = context(plan)
    files = {
        "run_hls.tcl": env.get_template("vitis_run_hls.tcl.j2").render(**ctx),
        TESTBENCH: env.get_template("vitis_tb.cpp.j2").render(**ctx),
    }
    for port, frames in zip(plan.ports, plan.frames):
        files[port.data_file] = data_text(port, frames)
    if plan.zynq:
        files["create_project.tcl"] = env.get_template("zynq_project.tcl.j2").render(**ctx)
    files["run.sh"] = env.get_template("vitis_run.sh.j2").render(**ctx)
    files["README.md"] = env.get_template("vitis_README.md.j2").render(**ctx)
    return files


def write_vitis(plan: VitisPlan) -> list[Path]:
    """Write the hand-off into the build's vitis folder (see :func:`render`); returns the files written."""
    plan.out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render(plan).items():
        path = plan.out_dir / name
        path.write_text(text)
        written.append(path)
    return written


def handoff(build: BuildView, *, board: str | None = None, clock_mhz: float | None = None, cosim: bool = False, jobs: int = 2) -> VitisPlan:
    """The ``cpp`` backend's hand-off (hls.backend's ``scripts`` entry): plan the
    build's vitis folder and write it; returns the plan (its files: ``plan.out_dir / name`` for every name of
    :func:`render`). Runs no tool."""
    plan = plan_vitis(build, board=board, clock_mhz=clock_mhz, cosim=cosim, jobs=jobs)
    write_vitis(plan)
    return plan


def find_vitis_hls() -> Path | None:
    """``vitis_hls`` on PATH, else ``vitis-run`` (Vitis 2023.2+, which runs the same Tcl in HLS mode), else None."""
    for name in (VITIS_HLS, VITIS_RUN):
        found = shutil.which(name)
        if found:
            return Path(found)
    return None


def hls_command(vitis_hls: Path) -> list[str]:
    """The command line that runs ``run_hls.tcl`` in the vitis folder (C/RTL cosimulation as the plan says: the
    script's default, which ``-tclargs cosim`` / ``nocosim`` override by hand)."""
    if vitis_hls.name.startswith(VITIS_RUN):
        return [str(vitis_hls), "--mode", "hls", "--tcl", "run_hls.tcl"]
    return [str(vitis_hls), "-f", "run_hls.tcl", "-l", "vitis_hls.log"]


def _run(cmd: list[str], cwd: Path, log: Path, what: str, timeout_s: float | None) -> None:
    """Run a tool; its output goes to ``log`` unless the tool writes ``log`` itself (``-l`` / ``-log``)."""
    own_log = log.name in cmd
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise VitisError(f"{what} ran past {timeout_s:g} s; see {log}") from None
    except OSError as exc:
        raise VitisError(f"cannot run {cmd[0]}: {exc}") from None
    if not own_log:
        log.write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        # The testbench's and the scripts' own messages say what failed (a mismatch, a missing IP).
        said = [line.strip() for line in (proc.stdout + proc.stderr).splitlines() if "qdet" in line and
                ("FAIL" in line or "error" in line.lower())]
        hint = f": {said[0]}" if said else ""
        raise VitisError(f"{what} failed (exit {proc.returncode}){hint}; see {log}")


def run_vitis(plan: VitisPlan, vitis_hls: Path | None = None, vivado: Path | None = None, *,
              timeout_s: float | None = None) -> list[Path]:
    """Run ``run_hls.tcl`` in Vitis HLS, then (Zynq boards) ``create_project.tcl`` in Vivado, both in the plan's
    vitis folder; returns the outputs made (the exported IP's component.xml, then out/qdet.bit, .hwh, .xsa).
    ``vitis_hls``/``vivado`` default to :func:`find_vitis_hls` / :func:`boards.vivado.find_vivado`.

    Raises VitisError naming the log when a tool fails or its expected outputs are missing; before running
    anything when a tool is not found (saying what to run instead)."""
    vitis_hls = vitis_hls or find_vitis_hls()
    if vitis_hls is None:
        raise VitisError(f"neither {VITIS_HLS} nor {VITIS_RUN} is on PATH. {plan.how_to_run}")
    out = plan.out_dir
    if plan.zynq:
        vivado = vivado or find_vivado()
        if vivado is None:
            raise VitisError(f"{VIVADO} is not on PATH ({vitis_hls.name} is): source Vivado's settings64.sh too for "
                             f"the bitstream, or run `sh {out / 'run.sh'} hls` for the Vitis HLS part alone")
    if not (out / "run_hls.tcl").is_file():
        raise VitisError(f"{out / 'run_hls.tcl'} does not exist: write the hand-off first (write_vitis)")
    hls_log = out / "vitis_hls.log"
    _run(hls_command(vitis_hls), out, hls_log, "Vitis HLS", timeout_s)
    component = out / plan.ip_repo / "component.xml"
    if not component.is_file():
        raise VitisError(f"Vitis HLS finished but did not export {component}; see {hls_log}")
    outputs = [component]
    if not plan.zynq:
        return outputs
    log = out / "vivado.log"
    _run([str(vivado), "-mode", "batch", "-nojournal", "-log", log.name, "-source", "create_project.tcl"], out,
         log, "Vivado", timeout_s)
    expected = [out / "out" / n for n in ("qdet.bit", "qdet.hwh", "qdet.xsa")]
    missing = [str(p) for p in expected if not p.is_file()]
    if missing:
        raise VitisError(f"Vivado finished but did not write {', '.join(missing)}; see {log}")
    return outputs + expected
