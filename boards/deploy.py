"""``qdet deploy``: a self-contained folder to copy to a board (or to any x86 PC, for the C simulation).

::

    DIR/run.py               the driver's command line (boards/runtime/cli.py): images -> detections, FPS, mAP
    DIR/qdet_runtime/        boards/runtime, copied byte for byte: numpy only (pynq on a board)
    DIR/driver.json          the accelerator's ports (boards/runtime/spec.py), the bitstream's SHA-256
    DIR/io_spec.json         the host's input and output ops and decode parameters
    DIR/libqdet_top.so       the C simulation of the same accelerator (``python run.py --platform csim``)
    DIR/qdet.bit, qdet.hwh   the bitstream, when Vivado made one; else DIR/scripts/ (the hand-off) and a note
    DIR/README.md            what to copy, what to run, what to expect

Nothing in the folder imports torch, FINN or qdet; the test suite runs ``run.py --platform csim`` in a venv that
has only numpy.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

RUNTIME = Path(__file__).resolve().parent / "runtime"
PACKAGE = "qdet_runtime"
RUN_PY = '''"""Run the accelerator of this deploy folder over a folder of images: python run.py --help"""
import sys
from pathlib import Path

if sys.version_info < (3, 8):
    sys.exit("error: the qdet driver needs Python >= 3.8 (PYNQ 2.6 or newer; on PYNQ 3 run it in the pynq venv)")

sys.path.insert(0, str(Path(__file__).resolve().parent))
from qdet_runtime.cli import main  # noqa: E402

sys.exit(main(here=Path(__file__).resolve().parent))
'''


class DeployError(ValueError):
    """The deploy folder cannot be written (an output folder that is not ours, a missing part)."""


@dataclass(frozen=True)
class DeployPlan:
    """What goes into a deploy folder (paths on this machine)."""

    out: Path
    build_name: str
    board: str
    driver_json: str
    io_spec: Path
    library: Path
    bitstream: Path | None = None
    hwh: Path | None = None
    scripts: Path | None = None  # the vendor hand-off folder, copied when there is no bitstream

    @property
    def files(self) -> list[str]:
        """The folder's top-level entries, in order."""
        names = ["run.py", PACKAGE, "driver.json", "io_spec.json", "libqdet_top.so"]
        names += ["qdet.bit", "qdet.hwh"] if self.bitstream else (["scripts"] if self.scripts else [])
        return names + ["README.md"]


def runtime_sources() -> list[Path]:
    """The runtime package's modules that are copied (every .py of boards/runtime)."""
    return sorted(p for p in RUNTIME.glob("*.py"))


def is_deploy_folder(folder: Path) -> bool:
    """True for a folder ``qdet deploy`` wrote (its run.py, driver.json and runtime package), the one kind of
    non-empty folder it replaces."""
    return all(p.exists() for p in (folder / "run.py", folder / "driver.json", folder / PACKAGE / "cli.py")) and \
        (folder / "run.py").read_text(errors="replace") == RUN_PY


def check_out(out: Path) -> None:
    """DeployError unless ``out`` is absent, empty or an earlier deploy folder (the one kind that is replaced)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise DeployError(f"--out {out} is a file: give a folder")
    if out.is_dir() and any(out.iterdir()) and not is_deploy_folder(out):
        raise DeployError(f"--out {out} is not empty and is not a deploy folder: give a new or empty folder")
    for parent in out.parents:
        if parent.exists() and not parent.is_dir():
            raise DeployError(f"--out {out}: {parent} is a file")


def write_deploy(plan: DeployPlan) -> Path:
    """Write the deploy folder; returns it. An existing folder is replaced only when it is a deploy folder."""
    out = plan.out
    check_out(out)
    if plan.bitstream and not (plan.hwh and plan.hwh.is_file()):
        raise DeployError(f"{plan.bitstream} has no .hwh beside it: pynq needs both (rerun the Vivado hand-off)")
    if out.exists():  # an earlier deploy folder (check_out), replaced only once everything new is known to exist
        shutil.rmtree(out)
    pkg = out / PACKAGE
    pkg.mkdir(parents=True)
    for src in runtime_sources():
        shutil.copyfile(src, pkg / src.name)
    (out / "run.py").write_text(RUN_PY)
    (out / "driver.json").write_text(plan.driver_json)
    shutil.copyfile(plan.io_spec, out / "io_spec.json")
    shutil.copyfile(plan.library, out / "libqdet_top.so")
    if plan.bitstream:
        shutil.copyfile(plan.bitstream, out / "qdet.bit")
        shutil.copyfile(plan.hwh, out / "qdet.hwh")
    elif plan.scripts and plan.scripts.is_dir():
        shutil.copytree(plan.scripts, out / "scripts")
    (out / "README.md").write_text(readme(plan))
    return out


def readme(plan: DeployPlan) -> str:
    """The deploy folder's README."""
    if plan.bitstream:
        board = ("## On the board\n\nCopy this folder to the board (e.g. `scp -r DIR xilinx@pynq:`), then on the board, "
                 "as root (PYNQ needs it to program the FPGA; `sudo -E` keeps PYNQ 3's venv):\n\n"
                 "```\nsudo -E python3 run.py --images IMAGES/ --platform pynq [--annotations instances.json]\n```\n\n"
                 "`driver.json` records the bitstream's SHA-256: a `qdet.bit` of another build is refused.\n")
    else:
        board = ("## No bitstream yet\n\nVivado did not run for this build, so there is no `qdet.bit`. Where Vivado is "
                 "installed run `sh scripts/run.sh` (the hand-off of `qdet bitstream`), then copy `out/qdet.bit` and "
                 "`out/qdet.hwh` here and run `qdet deploy` again (it records the bitstream's hash).\n"
                 if plan.scripts else
                 "## No bitstream yet\n\nRun `qdet bitstream BUILD` where Vivado is installed, then `qdet deploy` "
                 "again.\n")
    return (f"# Deploy folder of {plan.build_name} ({plan.board})\n\n"
            "Needs Python >= 3.8 with numpy >= 1.17 (pynq on a board; pillow to read JPEG/BMP and to resize as `qdet run` does, "
            "faster-coco-eval for mAP); no torch, FINN or qdet.\n\n"
            "## On any x86-64 Linux PC\n\n```\npython3 run.py --images IMAGES/ --platform csim\n```\n\n"
            "runs the C simulation of the same accelerator (`libqdet_top.so`): the same bytes in and out as the "
            "board, at a simulator's speed. Images of another size are resized (with a warning); detections go "
            "to `detections.json` (image name -> boxes in model-input pixels, scores, labels).\n\n" + board +
            "\n## What to expect\n\nOne line per image (its best detections), then images/s and the latency of one "
            "frame; with `--annotations` (COCO JSON of the same images) mAP@0.5 and mAP@0.5:0.95. A DMA that does "
            "not finish within `--timeout` seconds is an error naming the channel, never a hang.\n")
