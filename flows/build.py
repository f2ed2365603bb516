"""The one owner of a build directory's layout: every path of a build, and typed readers for what is in it.

Every stage (the flow runner and its steps, RTL generation, simulation, synthesis, the Vivado hand-off, reports)
and the CLI reach the build through a :class:`BuildLayout`; no other module spells a build-relative path. Layout::

    BUILD/build.json                 what the build was started with: board, clock, target (written by the runner)
    BUILD/build.log                  what each step did (FINN's prints and warnings go here, not to the console)
    BUILD/time_per_step.json         seconds per step
    BUILD/io_spec.json               the host/FPGA boundary (boards/runtime/io_spec.py)
    BUILD/steps/00_input.onnx        the input model, as loaded and checked
    BUILD/steps/NN_<step>.onnx       the model after step NN (1-based), written atomically
    BUILD/golden/                    inputs.npy, outputs.npy, verify.json: the golden model's frames
    BUILD/report/                    estimates.json, folding.json, finn_setfolding.json, summary.md, estimates.png
    BUILD/rtl/                       the RTL backend's stitched top, kernels, memory files, manifest.json
    BUILD/cpp/                       the C++ backend's HLS top, parameters, kernel headers, manifest.json
    BUILD/sim/                       RTL simulation: result.json, summary.md, sim.log, diagnose.log, run_<simulator>/
    BUILD/sim/cpp/                   C simulation: result.json, summary.md, compile.log, the compiled library, trace
    BUILD/synth/                     yosys: synth.ys, yosys.log, stat.json, top.json, utilization.json
    BUILD/vivado/                    the Vivado hand-off scripts
    BUILD/vitis/                     the Vitis HLS hand-off (C++ backend): run_hls.tcl, testbench data, Vivado project
    BUILD/run/                       `qdet run`: report.json, report.md, detections.json, detections.png, driver.json
    BUILD/finn_tmp/                  FINN's temporary files
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flows.errors import FlowError

# Folders a build keeps; each must be a folder (or absent) before a stage writes into it.
SUBDIRS = ("steps", "golden", "report", "rtl", "cpp", "sim", "synth", "vivado", "vitis", "run", "finn_tmp")
_CHECKPOINT_GLOB = "[0-9][0-9]_*.onnx"


# The step whose checkpoint every backend builds from: the folded graph with its width converters and FIFOs.
HARDWARE_STEP = "stream_links"


def _read_json(path: Path, hint: str) -> dict[str, Any]:
    if not path.is_file():
        raise FlowError(f"{path} does not exist: {hint}")
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise FlowError(f"{path}: cannot read it ({exc}); {hint}") from None
    if not isinstance(data, dict):
        raise FlowError(f"{path}: expected a JSON object; {hint}")
    return data


@dataclass(frozen=True)
class BuildLayout:
    """The paths of one build directory (``root``) and readers for its records.

    Paths are plain attributes computed from ``root``; readers raise :class:`FlowError` naming the file and the
    command that writes it."""

    root: Path

    @classmethod
    def of(cls, build: Path | str | BuildLayout) -> BuildLayout:
        """``build`` as a layout (a layout is returned as is)."""
        return build if isinstance(build, BuildLayout) else cls(Path(build))

    # --- top-level records -------------------------------------------------------------------------------------
    @property
    def record(self) -> Path:
        """``build.json``: board, clock and target the build was started with."""
        return self.root / "build.json"

    @property
    def log(self) -> Path:
        """``build.log``: each step's output and third-party chatter."""
        return self.root / "build.log"

    @property
    def times(self) -> Path:
        """``time_per_step.json``."""
        return self.root / "time_per_step.json"

    @property
    def io_spec(self) -> Path:
        """``io_spec.json``: the host/FPGA boundary."""
        return self.root / "io_spec.json"

    @property
    def finn_tmp(self) -> Path:
        """Where FINN writes its temporary files."""
        return self.root / "finn_tmp"

    # --- step checkpoints --------------------------------------------------------------------------------------
    @property
    def steps_dir(self) -> Path:
        """Where the step checkpoints are."""
        return self.root / "steps"

    def checkpoint(self, index: int, name: str) -> Path:
        """The model after step ``index`` (1-based; 0 is the input model)."""
        return self.steps_dir / f"{index:02d}_{name}.onnx"

    @property
    def input_checkpoint(self) -> Path:
        """The input model as loaded and checked (``steps/00_input.onnx``)."""
        return self.checkpoint(0, "input")

    def checkpoints(self) -> list[Path]:
        """Every step checkpoint, in step order (the input model first)."""
        return sorted(self.steps_dir.glob(_CHECKPOINT_GLOB)) if self.steps_dir.is_dir() else []

    def find_checkpoint(self, step: str) -> Path | None:
        """The checkpoint of ``step``, found by name (step numbers may change), or None."""
        found = [p for p in self.checkpoints() if p.stem[3:] == step]
        return found[-1] if found else None

    def step_checkpoint(self, step: str) -> Path:
        """The checkpoint of ``step``; FlowError naming the build and what to run when it is absent."""
        path = self.find_checkpoint(step)
        if path is None:
            raise FlowError(f"{self.steps_dir} has no checkpoint of step {step!r}: run `qdet build MODEL --out "
                            f"{self.root}` (through its {step} step) first")
        return path

    def has_build(self) -> bool:
        """True when a build has started here (its input checkpoint exists)."""
        return self.input_checkpoint.is_file()

    # --- golden model ------------------------------------------------------------------------------------------
    @property
    def golden_dir(self) -> Path:
        """The golden model's frames and the verification record."""
        return self.root / "golden"

    @property
    def golden_inputs(self) -> Path:
        """``golden/inputs.npy``: what the accelerator's input stream carries, per frame."""
        return self.golden_dir / "inputs.npy"

    @property
    def golden_outputs(self) -> Path:
        """``golden/outputs.npy``: the golden model's integer outputs, per frame."""
        return self.golden_dir / "outputs.npy"

    def golden_output(self, index: int) -> Path:
        """Output port ``index``'s golden frames: ``golden/outputs.npy`` for the first, ``outputs_<index>.npy``
        for the others (a model with several heads)."""
        return self.golden_outputs if index == 0 else self.golden_dir / f"outputs_{index}.npy"

    def golden_output_files(self) -> list[Path]:
        """Every output port's golden frames file present, in port order."""
        files, index = [], 0
        while self.golden_output(index).is_file():
            files.append(self.golden_output(index))
            index += 1
        return files

    @property
    def verify_record(self) -> Path:
        """``golden/verify.json``: what was compared against what, and the computed mismatch count."""
        return self.golden_dir / "verify.json"

    def read_golden(self):
        """(inputs, outputs) of the golden model as numpy arrays (the first output port's)."""
        inputs, outputs = self.read_golden_ports()
        return inputs, outputs[0]

    def read_golden_ports(self):
        """(inputs, [outputs per output port]) of the golden model as numpy arrays."""
        import numpy as np

        for path in (self.golden_inputs, self.golden_outputs):
            if not path.is_file():
                raise FlowError(f"{path} does not exist: the build has no golden frames; rerun `qdet build` with "
                                "--verify N (N >= 1)")
        try:
            return np.load(self.golden_inputs), [np.load(p) for p in self.golden_output_files()]
        except (OSError, ValueError) as exc:
            raise FlowError(f"{self.golden_dir}: the golden frames are unreadable ({exc}); rerun the build from "
                            "its verify step: --from verify") from None

    # --- reports -----------------------------------------------------------------------------------------------
    @property
    def report_dir(self) -> Path:
        """The report step's outputs."""
        return self.root / "report"

    @property
    def estimates(self) -> Path:
        """``report/estimates.json``."""
        return self.report_dir / "estimates.json"

    @property
    def folding(self) -> Path:
        """``report/folding.json``: the chosen PE/SIMD per layer."""
        return self.report_dir / "folding.json"

    @property
    def fifo_sizing(self) -> Path:
        """``report/fifo_sizing.json``: the reconvergent FIFOs' computed depths (flows.transforms.fifo_sizing)."""
        return self.report_dir / "fifo_sizing.json"

    @property
    def finn_setfolding(self) -> Path:
        """``report/finn_setfolding.json``: FINN's SetFolding on the same graph (the comparison row)."""
        return self.report_dir / "finn_setfolding.json"

    @property
    def summary(self) -> Path:
        """``report/summary.md``: the cross-stage summary."""
        return self.report_dir / "summary.md"

    @property
    def estimates_plot(self) -> Path:
        """``report/estimates.png``."""
        return self.report_dir / "estimates.png"

    def has_estimates(self) -> bool:
        """True when the report step has run."""
        return self.estimates.is_file()

    def read_estimates(self) -> dict[str, Any]:
        """The report step's estimates."""
        return _read_json(self.estimates, "run `qdet build` (through its report step) first")

    # --- RTL backend, simulation, synthesis, Vivado ------------------------------------------------------------
    @property
    def rtl_dir(self) -> Path:
        """The RTL backend's output folder."""
        return self.root / "rtl"

    @property
    def manifest(self) -> Path:
        """``rtl/manifest.json``."""
        return self.rtl_dir / "manifest.json"

    def has_rtl(self) -> bool:
        """True when the RTL has been generated."""
        return self.manifest.is_file()

    def rtl_is_stale(self) -> bool:
        """True when the RTL was generated from another hardware graph than the build has now (a build resumed
        with --from re-folded it). RTL without that checkpoint beside it (written by hand) is never stale."""
        import hashlib

        fold = self.find_checkpoint(HARDWARE_STEP)
        if fold is None or not self.has_rtl():
            return False
        return self.read_manifest().get("source_sha256") != hashlib.sha256(fold.read_bytes()).hexdigest()

    def read_manifest(self) -> dict[str, Any]:
        """The generated RTL's manifest."""
        return _read_json(self.manifest, f"generate the RTL with `qdet sim {self.root}` (or `--regenerate`)")

    # --- C++ backend, C simulation, Vitis --------------------------------------------------------------------
    @property
    def cpp_dir(self) -> Path:
        """The C++ backend's output folder."""
        return self.root / "cpp"

    @property
    def cpp_manifest(self) -> Path:
        """``cpp/manifest.json``."""
        return self.cpp_dir / "manifest.json"

    def has_cpp(self) -> bool:
        """True when the C++ has been generated."""
        return self.cpp_manifest.is_file()

    def read_cpp_manifest(self) -> dict[str, Any]:
        """The generated C++'s manifest."""
        return _read_json(self.cpp_manifest, f"generate the C++ with `qdet sim {self.root} --backend cpp`")

    def backend_dir(self, backend: str) -> Path:
        """A backend's output folder (``rtl`` or ``cpp``)."""
        return {"rtl": self.rtl_dir, "cpp": self.cpp_dir}[backend]

    def backend_manifest(self, backend: str) -> Path:
        """A backend's manifest file."""
        return self.backend_dir(backend) / "manifest.json"

    def is_stale(self, backend: str) -> bool:
        """True when a backend's output was generated from another hardware graph than the build has now."""
        import hashlib

        fold = self.find_checkpoint(HARDWARE_STEP)
        manifest = self.backend_manifest(backend)
        if fold is None or not manifest.is_file():
            return False
        recorded = _read_json(manifest, "regenerate it").get("source_sha256")
        return recorded != hashlib.sha256(fold.read_bytes()).hexdigest()

    @property
    def csim_dir(self) -> Path:
        """C simulation outputs (``sim/cpp``)."""
        return self.sim_dir / "cpp"

    @property
    def csim_result(self) -> Path:
        """``sim/cpp/result.json``."""
        return self.csim_dir / "result.json"

    @property
    def csim_summary(self) -> Path:
        """``sim/cpp/summary.md``."""
        return self.csim_dir / "summary.md"

    def csim_file(self, name: str) -> Path:
        """A file of the C simulation (compile log, library, trace)."""
        return self.csim_dir / name

    @property
    def vitis_dir(self) -> Path:
        """The Vitis HLS hand-off of the C++ backend."""
        return self.root / "vitis"

    @property
    def run_dir(self) -> Path:
        """``qdet run``'s outputs: the accelerator's detections, mAP beside torch's, throughput, energy."""
        return self.root / "run"

    def run_file(self, name: str) -> Path:
        """A file of ``qdet run`` (report.json, report.md, detections.json, detections.png, driver.json)."""
        return self.run_dir / name

    def bitstream(self) -> tuple[str, Path] | None:
        """(backend, ``.bit``) of the bitstream Vivado wrote for this build (``vivado/out/qdet.bit`` from the RTL,
        ``vitis/out/qdet.bit`` from the C++; its ``.hwh`` beside it), the newer when both exist; None without one."""
        found = [(b, d / "out" / "qdet.bit") for b, d in (("rtl", self.vivado_dir), ("cpp", self.vitis_dir))]
        found = [(b, p) for b, p in found if p.is_file()]
        return max(found, key=lambda f: f[1].stat().st_mtime_ns) if found else None

    @property
    def sim_dir(self) -> Path:
        """RTL simulation outputs."""
        return self.root / "sim"

    @property
    def sim_result(self) -> Path:
        """``sim/result.json``."""
        return self.sim_dir / "result.json"

    @property
    def sim_summary(self) -> Path:
        """``sim/summary.md``."""
        return self.sim_dir / "summary.md"

    @property
    def sim_log(self) -> Path:
        """``sim/sim.log``: the simulator's compile and run output."""
        return self.sim_dir / "sim.log"

    @property
    def sim_diagnose_log(self) -> Path:
        """``sim/diagnose.log``: the simulator's output of the re-run that dumps every layer after a mismatch."""
        return self.sim_dir / "diagnose.log"

    def sim_run_dir(self, name: str) -> Path:
        """One compiled simulation model (``sim/run_<name>``)."""
        return self.sim_dir / f"run_{name}"

    @property
    def synth_dir(self) -> Path:
        """Synthesis outputs."""
        return self.root / "synth"

    @property
    def synth_result(self) -> Path:
        """``synth/utilization.json``."""
        return self.synth_dir / "utilization.json"

    def synth_file(self, name: str) -> Path:
        """A file of the synthesis run (script, log, yosys' JSON)."""
        return self.synth_dir / name

    @property
    def vivado_dir(self) -> Path:
        """The Vivado hand-off."""
        return self.root / "vivado"

    def read_optional(self, path: Path) -> dict[str, Any] | None:
        """A JSON record of this build, or None when absent (a corrupt one is a FlowError)."""
        return _read_json(path, "rerun the command that wrote it") if path.is_file() else None

    def relative(self, path: Path) -> str:
        """``path`` relative to the build root (for records that must not hold absolute paths)."""
        return Path(os.path.relpath(path, self.root)).as_posix()

    # --- board and clock ---------------------------------------------------------------------------------------
    def read_record(self) -> dict[str, Any]:
        """What the build was started with (``build.json``)."""
        return _read_json(self.record, f"run `qdet build MODEL --out {self.root}` first")

    def target(self):
        """(Board, clock in MHz) of the build: the one place they are read back.

        From ``build.json``; an rtl folder generated elsewhere (no build record) names them in its manifest."""
        from boards.catalogue import UnknownBoardError, get_board

        if self.record.is_file() or not self.manifest.is_file():
            source, rec = self.record, self.read_record()
        else:
            source, rec = self.manifest, self.read_manifest()
        try:
            board = get_board(str(rec["board"]))
            clock = float(rec["clock_mhz"] if rec.get("clock_mhz") is not None else board.clock_mhz)
        except (KeyError, TypeError, ValueError) as exc:
            raise FlowError(f"{source}: no usable board/clock_mhz ({exc}); rerun `qdet build`") from None
        except UnknownBoardError as exc:
            raise FlowError(f"{source}: {exc}") from None
        return board, clock

    def write_record(self, board: str, clock_mhz: float, target: dict[str, Any]) -> None:
        """Record board, clock and target at the start of a build."""
        text = json.dumps({"board": board, "clock_mhz": clock_mhz, "target": target}, indent=2, sort_keys=True)
        self.record.write_text(text + "\n")

    # --- up-front checks ---------------------------------------------------------------------------------------
    def check_writable(self, option: str = "--out") -> None:
        """The build folder and every folder it keeps can be written (nothing is created here)."""
        from quant_models.paths import OutputPathError, check_dir, check_subdirs

        try:
            check_dir(self.root, "build directory", option)
            if self.root.is_dir():
                check_subdirs(self.root, SUBDIRS, "build")
        except OutputPathError as exc:
            raise FlowError(str(exc)) from None

    def check_existing(self, what: str = "build directory") -> None:
        """The build folder exists and holds a build, or at least generated RTL (for commands that read one)."""
        if not self.root.exists():
            raise FlowError(f"{self.root}: no such {what}; run `qdet build MODEL --out {self.root}` first")
        if not self.root.is_dir():
            raise FlowError(f"{self.root}: is a file, not a {what}")
        if not self.has_build() and not self.rtl_dir.is_dir():
            raise FlowError(f"{self.root}: not a qdet build (no {self.relative(self.input_checkpoint)}); run "
                            f"`qdet build MODEL --out {self.root}` first")
        from quant_models.paths import OutputPathError, check_subdirs

        try:
            check_subdirs(self.root, SUBDIRS, "build")
        except OutputPathError as exc:
            raise FlowError(str(exc)) from None
