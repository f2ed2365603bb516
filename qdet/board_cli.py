"""The CLI's accelerator commands, ``qdet run`` and ``qdet deploy`` (registered on the app by qdet/cli.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from qdet.console import done, note, row, say, show, table, warn

PLATFORMS_HELP = "cpp-sim (C simulation), rtl-sim (Verilator, cycle-accurate), pynq (Zynq board) or xrt (Alveo)."


def run(
    build_dir: Annotated[Path, typer.Argument(help="A build directory written by qdet build.")],
    data: Annotated[Path, typer.Option(help="A data set (COCO, YOLO or VOC layout) whose split is run.")],
    backend: Annotated[str, typer.Option(help=PLATFORMS_HELP)] = "cpp-sim",
    images: Annotated[Optional[int], typer.Option(help="The first N images of the split (default: all).")] = None,
    split: Annotated[str, typer.Option(help="Split of --data.")] = "val",
    checkpoint: Annotated[Optional[Path], typer.Option(help="The torch checkpoint to compare with (default: the "
                                                            "one the build verified against).")] = None,
    batch_size: Annotated[int, typer.Option(help="Frames per DMA transfer.")] = 8,
    simulator: Annotated[str, typer.Option(help="rtl-sim: verilator or icarus.")] = "verilator",
    bitfile: Annotated[Optional[Path], typer.Option(help="pynq/xrt: the bitstream (default: the build's).")] = None,
    timeout: Annotated[float, typer.Option(help="pynq/xrt: seconds a DMA may take before it is an error.")] = 10.0,
    static_power: Annotated[Optional[float], typer.Option(help="Board idle power in W for the energy estimate "
                                                               "(default: the board's assumed figure).")] = None,
) -> None:
    """Run a data set through the build's accelerator (a board, or a simulation of it), decode on the host, and
    score: mAP on the accelerator's outputs beside the torch model's on the same images (they must be equal),
    throughput, latency and energy per frame.

    Writes BUILD/run/report.json, report.md, detections.json, detections.png and driver.json. Exits 2 when the
    accelerator's integers, detections or mAP differ from the torch model's.

    Example: qdet run build/tinydet --data data/synth --backend cpp-sim
    Example: qdet run build/tinydet --data data/synth --backend rtl-sim --images 4
    """
    from boards.runtime.device import platform_name
    from flows.build import BuildLayout
    from qdet.console import progress
    from qdet.run import RunConfig, default_checkpoint, run_build

    platform = platform_name(backend)
    cfg = RunConfig(data=data, platform=platform, images=images, split=split, checkpoint=checkpoint,
                    batch_size=batch_size, simulator=simulator, bitfile=bitfile, timeout_s=timeout,
                    static_power_w=static_power)
    layout = BuildLayout(build_dir)
    layout.check_existing()
    if platform == "rtl-sim":
        from sim.tools import require

        require(simulator)
    ckpt = checkpoint or default_checkpoint(layout)
    with progress(f"running {data} ({split}) on {platform} ...") as update:
        r = run_build(layout, cfg, progress=lambda k, n: update(f"{k}/{n} images on {platform}"))
    if r.resized:
        warn(f"{r.resized} of {r.images} images are not the model's input size: resized (PIL bilinear, as qdet eval "
             "does)")
    t = table(f"{build_dir} on {platform}: {r.images} images", ["figure", "accelerator", "torch model"])
    row(t, "mAP@0.5", f"{r.map50:.4f}", f"{r.torch_map50:.4f}")
    row(t, "mAP@0.5:0.95", f"{r.map50_95:.4f}", f"{r.torch_map50_95:.4f}")
    row(t, "differing integers", str(r.int_mismatches), "")
    row(t, "detections", f"{r.detections} (identical: {r.detections_identical})", "")
    row(t, "FPS", "n/a" if r.fps is None else f"{r.fps:,.1f}", "")
    row(t, "energy per frame (estimate)", f"{r.energy['total_uj']:,.1f} uJ", "")
    show(t)
    say(f"throughput: {r.fps_kind}" + (f"; estimate {r.estimated_fps:,.1f} FPS" if r.estimated_fps else ""))
    if ckpt is not None and checkpoint is None:
        note(f"compared with {ckpt}, the checkpoint the build verified against")
    done("wrote", f"{layout.run_file('report.md')} (and report.json, detections.json, detections.png)")


def deploy(
    build_dir: Annotated[Path, typer.Argument(help="A build directory written by qdet build.")],
    out: Annotated[Path, typer.Option(help="The deploy folder to write (new, empty, or an earlier deploy).")],
) -> None:
    """Write a self-contained folder to copy to a board: the bitstream and .hwh when Vivado made them (else the
    hand-off scripts and a note), driver.json, io_spec.json, the numpy-only driver (qdet_runtime/), run.py, and the
    C simulation library, so `python run.py --platform csim` runs the same driver on any x86 PC.

    Example: qdet deploy build/tinydet --out deploy/tinydet
    """
    from boards.deploy import DeployPlan, write_deploy
    from boards.runtime.io_spec import IOSpec
    from boards.runtime.spec import DriverSpec
    from flows.build import BuildLayout
    from qdet.console import progress
    from sim.csim import compiled_library

    from boards.deploy import check_out

    layout = BuildLayout(build_dir)
    layout.check_existing()
    check_out(out)  # before the C simulation is compiled
    found = layout.bitstream()
    backend = found[0] if found else "cpp"
    with progress("compiling the C simulation library ..."):
        lib, _, cpp_manifest = compiled_library(layout)
    # The RTL's and the C++'s ports are the same (tests/sim/test_csim.py); the RTL manifest is read when it is there.
    manifest = layout.read_manifest() if backend == "rtl" and layout.has_rtl() else cpp_manifest
    bit = found[1] if found else None
    driver = DriverSpec.from_build(manifest, IOSpec.load(layout.io_spec), backend, bit)
    scripts = layout.vitis_dir if layout.vitis_dir.is_dir() else (layout.vivado_dir if layout.vivado_dir.is_dir()
                                                                   else None)
    plan = DeployPlan(out=out, build_name=layout.root.name, board=driver.board, driver_json=driver.to_json(),
                      io_spec=layout.io_spec, library=lib, bitstream=bit, hwh=bit.with_suffix(".hwh") if bit else None,
                      scripts=scripts)
    write_deploy(plan)
    if bit is None:
        note("no bitstream in this build: the folder carries the hand-off scripts and runs --platform csim; rerun "
             "`qdet deploy` after Vivado made out/qdet.bit")
    done("wrote", f"{out}: {', '.join(plan.files)}; try: python {out / 'run.py'} --images IMAGES/ --platform csim")


def register(app: typer.Typer) -> None:
    """Add ``run`` and ``deploy`` to the qdet app."""
    app.command("run")(run)
    app.command("deploy")(deploy)
