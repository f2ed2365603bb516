"""``qdet run``: a data set through the accelerator (a board or a simulation of it), decoded on the host, scored.

preprocess (resize as ``qdet eval`` does, the io_spec's host input ops) -> :class:`boards.runtime.Accelerator` on
a platform -> the io_spec's host output ops -> numpy decode + NMS (:mod:`boards.runtime.decode`, the on-board
driver's own code) -> mAP with faster-coco-eval. Beside it, the torch model on the same images: its integer head
accumulators must equal the accelerator's (any difference is an error, named by frame and port), its detections
the accelerator's (same boxes, labels and ranking; the floats agree to float32 rounding, because torch's float
head and the host's ``int * scale + bias`` round differently), and its mAP@0.5 and mAP@0.5:0.95 the accelerator's,
exactly. Throughput is cycle-accurate on rtl-sim, wall-clock on boards; cpp-sim reports its own speed (a
simulation's, not the hardware's) beside the build's estimate. Energy per frame: :mod:`flows.energy`'s analytic
estimate, and on a PYNQ board the rails' measurement. Writes BUILD/run/ (report.json, report.md, detections.json,
detections.png, driver.json).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from boards.runtime.device import platform_name
from flows.build import BuildLayout

BOX_ATOL_PX = 1e-3  # torch's float head vs the host's int * scale + bias: float32 rounding, far below a pixel
SCORE_ATOL = 1e-5


class RunError(RuntimeError):
    """``qdet run`` could not run, or the accelerator's results differ from the torch model's."""


@dataclass(frozen=True)
class RunConfig:
    """One ``qdet run``."""

    data: Path
    platform: str = "cpp-sim"
    images: int | None = None  # the first N images of the split (None: all)
    split: str = "val"
    checkpoint: Path | None = None  # the torch model to compare with (default: the one the build verified against)
    batch_size: int = 8
    simulator: str = "verilator"  # rtl-sim
    bitfile: Path | None = None  # pynq / xrt (default: the build's bitstream)
    timeout_s: float = 10.0
    static_power_w: float | None = None
    pictures: int = 8

    def __post_init__(self) -> None:
        if self.images is not None and self.images < 1:
            raise RunError(f"--images must be >= 1, got {self.images}")
        if self.batch_size < 1:
            raise RunError(f"--batch-size must be >= 1, got {self.batch_size}")


@dataclass
class RunReport:
    """What ``qdet run`` measured (BUILD/run/report.json)."""

    build: str
    platform: str
    backend: str
    images: int
    resized: int
    checkpoint: str
    map50: float
    map50_95: float
    torch_map50: float
    torch_map50_95: float
    int_mismatches: int
    detections: int
    detections_identical: bool
    max_box_diff_px: float
    max_score_diff: float
    max_head_diff: float  # the host's head maps vs qdet eval's (int * scale + bias both): 0 when the scales agree
    fps: float | None  # the hardware's rate (cycle-accurate on rtl-sim, wall-clock on a board); None on cpp-sim
    fps_kind: str
    latency_ms: float | None
    estimated_fps: float | None
    sim_frames_per_s: float | None  # a simulator's own speed
    energy: dict[str, Any]
    measured_energy_uj: float | None
    throughput_test: dict[str, Any]
    problems: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True, default=float) + "\n"


def default_checkpoint(layout: BuildLayout) -> Path | None:
    """The checkpoint the build's verify step compared with (None when it used the exported graph)."""
    record = layout.read_optional(layout.verify_record) or {}
    ckpt = record.get("checkpoint")
    return Path(ckpt) if ckpt else None


def check_inputs(layout: BuildLayout, cfg: RunConfig) -> None:
    """What ``qdet run`` needs before it starts: the data folder, the checkpoint, a finished build."""
    if not Path(cfg.data).is_dir():
        raise RunError(f"--data {cfg.data} is not a folder: give a data set (COCO, YOLO or VOC layout)")
    if cfg.checkpoint is not None and not Path(cfg.checkpoint).is_file():
        raise RunError(f"--checkpoint {cfg.checkpoint} does not exist")
    if not layout.io_spec.is_file() or layout.find_checkpoint("stream_links") is None:
        raise RunError(f"{layout.root} is not a finished build (no io_spec.json or stream_links checkpoint): run "
                       f"`qdet build MODEL --out {layout.root}` to the end first")


def check_model(model, spec, ckpt: Path, layout: BuildLayout) -> None:
    """RunError unless the torch model is the one the build was made from (input size, classes, heads, anchors)."""
    from boards.runtime.host import anchor_sets

    mc = spec.model_config
    mine = {"input size": tuple(model.cfg.input_size), "classes": model.cfg.num_classes,
            "heads": len(model.cfg.anchor_sets), "anchors": [[list(a) for a in s] for s in model.cfg.anchor_sets]}
    built = {"input size": tuple(mc.get("input_size", ())), "classes": mc.get("num_classes"),
             "heads": len(spec.outputs), "anchors": [[list(a) for a in s] for s in anchor_sets(spec)]}
    wrong = [k for k in mine if mine[k] != built[k]]
    if wrong:
        raise RunError(f"{ckpt} is not the model {layout.root} was built from: its {', '.join(wrong)} differ "
                       f"({'; '.join(f'{k} {mine[k]} vs {built[k]}' for k in wrong)}); pass the build's --checkpoint")


def _platform_options(layout: BuildLayout, platform: str, cfg: RunConfig) -> tuple[str, dict[str, Any], Path | None]:
    """(backend whose manifest describes the accelerator, the platform's options, bitstream)."""
    if platform == "cpp-sim":
        from sim.csim import compiled_library

        lib, _, _ = compiled_library(layout)
        return "cpp", {"library": lib}, None
    if platform == "rtl-sim":
        from sim.runtime import ensure_rtl

        ensure_rtl(layout)
        return "rtl", {"build": layout, "simulator": cfg.simulator}, None
    # The driver spec records the SHA-256 of the bitstream Vivado wrote for this build; the platform refuses a
    # --bitfile whose hash differs (a bitstream of another build).
    found = layout.bitstream()
    if found is None:
        raise RunError(f"{layout.root} has no bitstream (vivado/out/qdet.bit or vitis/out/qdet.bit): run "
                       f"`qdet bitstream {layout.root}` where Vivado is installed")
    backend, bit = found
    return backend, {"bitfile": Path(cfg.bitfile or bit), "timeout_s": cfg.timeout_s}, bit


def run_build(build: Path | BuildLayout, cfg: RunConfig,
              progress: Callable[[int, int], None] | None = None) -> RunReport:
    """Run ``cfg.data``'s split through the build's accelerator on ``cfg.platform`` and compare with torch."""
    import torch

    from boards.runtime import host
    from boards.runtime.accelerator import open_accelerator
    from boards.runtime.io_spec import IOSpec
    from boards.runtime.spec import DriverSpec
    from quant_models.checkpoint import load_model
    from quant_models.data import load_dataset, to_tensors
    from quant_models.evaluate import integer_heads, predict_with_heads, targets_of
    from quant_models.float64 import float64_reference
    from quant_models.metrics import detection_map

    layout = BuildLayout.of(build)
    layout.check_existing()
    platform = platform_name(cfg.platform)
    check_inputs(layout, cfg)
    spec = IOSpec.load(layout.io_spec)
    ckpt = cfg.checkpoint or default_checkpoint(layout)
    if ckpt is None:
        raise RunError(f"{layout.root} was verified against its exported graph, not a checkpoint: pass --checkpoint "
                       "CKPT (the torch model whose detections the accelerator's must equal)")
    model, _ = load_model(Path(ckpt))
    model.eval()
    check_model(model, spec, Path(ckpt), layout)
    ds = load_dataset(Path(cfg.data), cfg.split)
    if cfg.images is not None:
        from dataclasses import replace

        ds = replace(ds, samples=ds.samples[:cfg.images])
    if not ds.samples:
        raise RunError(f"{cfg.data}: the {cfg.split} split has no images")
    if len(ds.class_names) != model.cfg.num_classes:
        raise RunError(f"{cfg.data} has {len(ds.class_names)} classes but {ckpt} was trained for "
                       f"{model.cfg.num_classes}")
    h, w = model.cfg.input_size
    resized = sum((s.width, s.height) != (w, h) for s in ds.samples)
    tensors = to_tensors(ds, (h, w))
    images = tensors.images.numpy()
    frames = host.preprocess(images, spec)

    backend, options, bit = _platform_options(layout, platform, cfg)
    manifest = layout.read_cpp_manifest() if backend == "cpp" else layout.read_manifest()
    driver = DriverSpec.from_build(manifest, spec, backend, bit)
    layout.run_dir.mkdir(parents=True, exist_ok=True)
    driver.save(layout.run_file("driver.json"))
    n = len(frames)
    hw: list[list[np.ndarray]] = [[] for _ in spec.outputs]
    walls, intervals, latencies, powers = [], [], [], []
    with open_accelerator(platform, driver, batch_size=cfg.batch_size, **options) as acc:
        for start in range(0, n, cfg.batch_size):
            outs = acc.execute(frames[start:start + cfg.batch_size])
            for p, o in enumerate(outs if isinstance(outs, list) else [outs]):
                hw[p].append(o)
            run = acc.last_run
            walls.append(run.wall_s)
            intervals += [run.interval_cycles] if run.interval_cycles else []
            latencies += [run.latency_cycles] if run.latency_cycles else []
            powers += [run.power_w] if run.power_w is not None else []
            if progress:
                progress(min(n, start + cfg.batch_size), n)
        throughput, board_latency = {}, None
        if platform in ("pynq", "xrt"):
            throughput = acc.throughput_test()  # FINN's figures for one batch of random frames
            acc.batch_size = 1
            acc.execute(frames[:1])  # one frame alone: DMA in to DMA out is its latency
            board_latency = acc.last_run.wall_s * 1e3
    hw_ints = [np.concatenate(p) for p in hw]

    # The torch model on the same images, one forward pass (qdet eval's own code, quant_models.evaluate): its
    # detections, and from its raw heads the integer accumulators and the head maps qdet eval decodes. In float64,
    # as the build verified it: float32 can round an activation within ~1e-7 of a tie the other way than the exact
    # value the hardware's thresholds follow (quant_models.float64).
    model = float64_reference(model)
    torch_dets, raw_heads = predict_with_heads(model, tensors.images)
    torch_ints: list[list[np.ndarray]] = [[] for _ in spec.outputs]
    torch_heads: list[list[np.ndarray]] = [[] for _ in spec.outputs]
    with torch.no_grad():
        for heads in raw_heads:
            for i, (o, e) in enumerate(zip(heads, integer_heads(model, heads))):
                torch_ints[i].append(np.transpose(model.head_accumulators(o, i).numpy(), (0, 2, 3, 1)))
                torch_heads[i].append(e.numpy())
    problems = []
    int_mismatches = 0
    for i, (got, want) in enumerate(zip(hw_ints, (np.concatenate(t) for t in torch_ints))):
        if got.shape != want.shape:  # check_model makes this a bug, not a user's mistake
            raise RunError(f"output {i}: the accelerator gives {got.shape}, the torch model {want.shape}")
        bad = np.nonzero((got != want).reshape(n, -1).any(axis=1))[0]
        int_mismatches += int((got != want).sum())
        if len(bad):
            problems.append(f"output {i} ({driver.outputs[i].name}): the accelerator's integers differ from the torch "
                            f"model's in {len(bad)} of {n} frames, first frame {int(bad[0])} "
                            f"(run `qdet sim {layout.root}` to find the diverging layer)")
    hw_dets = host.postprocess(hw_ints, spec)
    head_diff = max(float(np.abs(spec.host_output(o, i) - np.concatenate(t)).max())
                    for i, (o, t) in enumerate(zip(hw_ints, torch_heads)))
    same, box_diff, score_diff, first = compare_detections(hw_dets, torch_dets)
    if not same:
        problems.append(f"the accelerator's detections differ from the torch model's, first in image {first}")
    targets = targets_of(tensors)
    names = tuple(model.cfg.class_names) or ds.class_names
    hw_map = detection_map(hw_dets, targets, names)
    torch_map = detection_map(torch_dets, targets, names)
    if not (_same_float(hw_map.map50, torch_map.map50) and _same_float(hw_map.map50_95, torch_map.map50_95)):
        problems.append(f"mAP differs: accelerator {hw_map.map50:.6f} / {hw_map.map50_95:.6f}, torch "
                        f"{torch_map.map50:.6f} / {torch_map.map50_95:.6f} (mAP@0.5 / mAP@0.5:0.95)")

    est = layout.read_optional(layout.estimates) or {}
    clock = driver.clock_mhz
    fps, kind, latency_ms, sim_fps = None, "", None, None
    if platform == "rtl-sim":
        latency_ms = float(latencies[0]) / (clock * 1e3) if latencies else None
        sim_fps = n / sum(walls)
        if intervals:
            interval = float(np.median(intervals))
            fps = clock * 1e6 / interval
            kind = f"cycle-accurate (RTL simulation, {interval:,.0f} cycles/frame at {clock:g} MHz)"
        else:  # one frame per batch: a latency, no interval between frames
            kind = "none: every batch held one frame (run 2 or more per batch for the cycle-accurate interval)"
    elif platform == "cpp-sim":
        sim_fps, kind = n / sum(walls), "none: a C simulation has no clock (see the estimate)"
    else:
        fps, kind = n / sum(walls), f"wall-clock on the board (DMA in to DMA out, batches of {cfg.batch_size})"
        latency_ms = board_latency
    from flows.energy import estimate_build_energy

    energy_fps = fps or est.get("fps")
    if not energy_fps:
        raise RunError(f"{layout.estimates} has no FPS estimate: rerun `qdet build` from its report step")
    energy = estimate_build_energy(layout, float(energy_fps), cfg.static_power_w)
    measured = float(np.mean(powers)) * sum(walls) / n * 1e6 if powers else None
    report = RunReport(
        build=str(layout.root), platform=platform, backend=backend, images=n, resized=resized, checkpoint=str(ckpt),
        map50=hw_map.map50, map50_95=hw_map.map50_95, torch_map50=torch_map.map50, torch_map50_95=torch_map.map50_95,
        int_mismatches=int_mismatches, detections=sum(len(d.scores) for d in hw_dets), detections_identical=same,
        max_box_diff_px=box_diff, max_score_diff=score_diff, max_head_diff=head_diff, fps=fps, fps_kind=kind, latency_ms=latency_ms,
        estimated_fps=est.get("fps"), sim_frames_per_s=sim_fps, energy=energy.to_dict(), measured_energy_uj=measured,
        throughput_test=throughput, problems=problems)
    _write(layout, report, host.detections_json([s.image_path.name for s in ds.samples], hw_dets), hw_dets, images,
           targets, names, cfg.pictures)
    if problems:
        raise RunError("; ".join(problems) + f" (report: {layout.run_file('report.md')})")
    return report


def _same_float(a: float, b: float) -> bool:
    return (np.isnan(a) and np.isnan(b)) or a == b


def compare_detections(a: list, b: list) -> tuple[bool, float, float, int | None]:
    """(identical, max box difference in pixels, max score difference, first differing image): identical means the
    same number of detections per image with the same labels in the same order, and boxes and scores equal to
    float32 rounding (:data:`BOX_ATOL_PX`, :data:`SCORE_ATOL`)."""
    box_diff = score_diff = 0.0
    first = None
    for k, (x, y) in enumerate(zip(a, b)):
        xb, yb = np.asarray(x.boxes, np.float64), _np(y.boxes).astype(np.float64)
        xs, ys = np.asarray(x.scores, np.float64), _np(y.scores).astype(np.float64)
        if xb.shape != yb.shape or not np.array_equal(np.asarray(x.labels), _np(y.labels)):
            first = k if first is None else first
            continue
        if len(xb):
            box_diff = max(box_diff, float(np.abs(xb - yb).max()))
            score_diff = max(score_diff, float(np.abs(xs - ys).max()))
            if np.abs(xb - yb).max() > BOX_ATOL_PX or np.abs(xs - ys).max() > SCORE_ATOL:
                first = k if first is None else first
    if len(a) != len(b):
        first = min(len(a), len(b)) if first is None else first
    return first is None, box_diff, score_diff, first


def _np(value: Any) -> np.ndarray:
    return value.detach().cpu().numpy() if hasattr(value, "detach") else np.asarray(value)


def _write(layout: BuildLayout, report: RunReport, dets_json: dict, dets: list, images: np.ndarray, targets: list,
           names: tuple, pictures: int) -> None:
    from quant_models.draw import draw_detections

    layout.run_file("report.json").write_text(report.to_json())
    layout.run_file("report.md").write_text(report_markdown(report))
    layout.run_file("detections.json").write_text(json.dumps(dets_json, sort_keys=True) + "\n")
    k = min(pictures, len(images))
    if k:
        # numpy images are drawn HWC (a CHW array would be read as 3 rows of 128 pixels)
        draw_detections(images[:k].transpose(0, 2, 3, 1), dets[:k], names, layout.run_file("detections.png"),
                        targets=targets[:k], max_images=k)


def report_markdown(r: RunReport) -> str:
    """BUILD/run/report.md."""
    def num(v: float | None, spec: str = ",.1f") -> str:
        return "n/a" if v is None else format(v, spec)

    e = r.energy
    lines = [f"# qdet run of {Path(r.build).name} on {r.platform}", "",
             f"{r.images} images ({r.resized} resized to the model's input), the {r.backend} backend's accelerator, "
             f"compared with {r.checkpoint}.", "",
             "| | accelerator (host decode) | torch model |", "|---|---:|---:|",
             f"| mAP@0.5 | {r.map50:.4f} | {r.torch_map50:.4f} |",
             f"| mAP@0.5:0.95 | {r.map50_95:.4f} | {r.torch_map50_95:.4f} |", "",
             f"- integer head outputs differing from the torch model's: **{r.int_mismatches}**",
             f"- detections: {r.detections}, identical to torch's: **{r.detections_identical}** (largest box "
             f"difference {r.max_box_diff_px:.2e} px, score {r.max_score_diff:.2e}; head maps {r.max_head_diff:.2e})",
             f"- throughput: {num(r.fps)} FPS ({r.fps_kind}); estimate {num(r.estimated_fps)} FPS",
             f"- latency per frame: {num(r.latency_ms, '.3f')} ms",
             f"- simulator speed: {num(r.sim_frames_per_s, ',.2f')} frames/s" if r.sim_frames_per_s else "",
             f"- energy per frame (analytic estimate at {num(e['fps'])} FPS): **{e['total_uj']:,.1f} uJ** = "
             f"dynamic {e['dynamic_uj']:,.2f} uJ (" + ", ".join(f"{k} {v:,.2f}" for k, v in e["parts_uj"].items()) +
             f") + static {e['static_uj']:,.1f} uJ ({e['static_power_w']:g} W assumed idle power)",
             f"- energy per frame measured on the board's rails: {num(r.measured_energy_uj)} uJ", ""]
    if r.problems:
        lines += ["## Problems", ""] + [f"- {p}" for p in r.problems] + [""]
    return "\n".join(lines) + "\n"
