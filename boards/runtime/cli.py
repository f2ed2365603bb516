"""A deploy folder's ``run.py``: a folder of images through the accelerator, detections printed and written, FPS
and latency, and mAP when COCO annotations are given. numpy only (pynq on a board; pillow and faster-coco-eval
when installed)::

    python run.py --images DIR [--platform pynq|csim|xrt] [--annotations instances.json] [--batch-size 8]

The folder holds ``driver.json`` (the accelerator's ports), ``io_spec.json`` (the host's ops and decode
parameters), the bitstream (``qdet.bit`` + ``qdet.hwh``) when Vivado made one, and ``libqdet_top.so``, the C
simulation of the same accelerator, which ``--platform csim`` runs on any x86-64 Linux PC.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from .accelerator import open_accelerator
from .device import AcceleratorError, platform_name
from .host import class_names, detections_json, input_size, postprocess, preprocess
from .images import ImageError, list_images, load_image
from .io_spec import IOSpec
from .spec import DriverSpec, SpecError

LIBRARY = "libqdet_top.so"
BITFILE = "qdet.bit"


def _options(platform: str, here: Path, args: argparse.Namespace) -> dict:
    if platform == "cpp-sim":
        return {"library": here / LIBRARY}
    if platform in ("pynq", "xrt"):
        return {"bitfile": Path(args.bitfile) if args.bitfile else here / BITFILE, "timeout_s": args.timeout}
    raise AcceleratorError(f"platform {platform} runs only in the qdet repository (`qdet run BUILD --backend "
                           f"{platform}`); a deploy folder runs csim, pynq or xrt")


def _coco_map(annotations: Path, names: list[str], dets: dict, size: tuple[int, int], classes: int) -> str:
    """mAP of ``dets`` against COCO ``annotations`` with faster-coco-eval (a message when it is not installed)."""
    try:
        from faster_coco_eval import COCO, COCOeval_faster
    except ImportError:
        return "mAP: faster-coco-eval is not installed here (pip install faster-coco-eval); detections.json has " \
               "the detections to score elsewhere"
    def quiet(*_a: object, **_k: object) -> None:
        return None

    gt = COCO(str(annotations), print_function=quiet)
    by_name = {Path(img["file_name"]).name: img for img in gt.dataset["images"]}
    results = []
    for name in names:
        img = by_name.get(name)
        if img is None:
            continue
        sx, sy = img["width"] / size[1], img["height"] / size[0]  # model pixels -> annotation pixels
        cats = sorted(c["id"] for c in gt.dataset["categories"])
        if len(cats) != classes:
            return (f"mAP: {annotations} has {len(cats)} categories, the model {classes}: not the same classes, "
                    "not scored")
        d = dets[name]
        for (x1, y1, x2, y2), s, label in zip(d["boxes"], d["scores"], d["labels"]):
            results.append({"image_id": img["id"], "category_id": cats[label], "score": s,
                            "bbox": [x1 * sx, y1 * sy, (x2 - x1) * sx, (y2 - y1) * sy]})
    if not results:
        return "mAP: no detections on annotated images"
    ev = COCOeval_faster(gt, gt.loadRes(results), "bbox", print_function=quiet)
    ev.params.imgIds = [by_name[n]["id"] for n in names if n in by_name]
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    return f"mAP@0.5 {ev.stats[1]:.4f}, mAP@0.5:0.95 {ev.stats[0]:.4f} (faster-coco-eval)"


def main(argv: list[str] | None = None, here: Path | None = None) -> int:
    """Run the deploy folder ``here`` (run.py's folder) over ``--images``; returns the exit code."""
    here = Path(here or Path(sys.argv[0]).resolve().parent)
    ap = argparse.ArgumentParser(description="Run a qdet accelerator over a folder of images.")
    ap.add_argument("--images", required=True, help="folder of images (png, jpg, bmp, npy)")
    ap.add_argument("--platform", default="pynq", help="pynq (a Zynq board), xrt (Alveo) or csim (any x86 PC)")
    ap.add_argument("--annotations", help="COCO instances JSON of those images: prints mAP")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--bitfile", help="bitstream (default: qdet.bit beside run.py)")
    ap.add_argument("--timeout", type=float, default=10.0, help="seconds a DMA may take before it is an error")
    ap.add_argument("--out", default="detections.json", help="where the detections go (JSON)")
    ap.add_argument("--quiet", action="store_true", help="no per-image lines")
    args = ap.parse_args(argv)
    try:
        return _run(here, args)
    except (AcceleratorError, ImageError, SpecError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _load_io_spec(path: Path) -> IOSpec:
    try:
        return IOSpec.load(path)
    except FileNotFoundError:
        raise SpecError(f"{path} does not exist: a deploy folder has it next to run.py (`qdet deploy BUILD`)") \
            from None
    except (OSError, KeyError, TypeError, ValueError) as exc:
        raise SpecError(f"{path} is not a qdet io_spec ({exc}): write the folder again with `qdet deploy`") from None


def _run(here: Path, args: argparse.Namespace) -> int:
    if tuple(int(v) for v in np.__version__.split(".")[:2]) < (1, 17):
        raise AcceleratorError(f"numpy {np.__version__} is too old: the driver needs numpy >= 1.17 (bit packing)")
    platform = platform_name(args.platform)
    if args.batch_size < 1:
        raise AcceleratorError(f"--batch-size must be >= 1, got {args.batch_size}")
    if args.annotations and not Path(args.annotations).is_file():
        raise ImageError(f"--annotations {args.annotations} does not exist (a COCO instances JSON of the images)")
    spec = DriverSpec.load(here / "driver.json")
    io = _load_io_spec(here / "io_spec.json")
    size = input_size(io)
    paths = list_images(Path(args.images))
    dets, wall, done = [], 0.0, 0
    # One batch of images in memory at a time: a board has little (a PYNQ-Z2 512 MB).
    with open_accelerator(platform, spec, batch_size=args.batch_size, **_options(platform, here, args)) as acc:
        for start in range(0, len(paths), args.batch_size):
            images = []
            for path in paths[start:start + args.batch_size]:
                image, warning = load_image(path, size, channels=io.input.shape[-1])
                if warning:
                    print(f"warning: {warning}", file=sys.stderr)
                images.append(image)
            frames = preprocess(np.stack(images), io)
            got = acc.execute(frames)
            dets += postprocess(got if isinstance(got, list) else [got], io)
            wall += acc.last_run.wall_s
            done += len(frames)
            print(f"{done}/{len(paths)} images", file=sys.stderr)
        acc.batch_size = 1
        t0 = time.perf_counter()
        acc.execute(frames[:1])
        latency = time.perf_counter() - t0
    names = [p.name for p in paths]
    result = detections_json(names, dets)
    Path(args.out).write_text(json.dumps(result, sort_keys=True) + "\n")
    labels = class_names(io)
    if not args.quiet:
        for name, d in zip(names, dets):
            best = ", ".join(f"{labels[int(l)]} {s:.2f}" for s, l in zip(d.scores[:3], d.labels[:3]))
            print(f"{name}: {len(d.scores)} detections{': ' + best if best else ''}")
    what = "simulated, not hardware speed" if platform == "cpp-sim" else "DMA in to DMA out"
    print(f"{done} images on {platform}: {done / wall:,.1f} images/s ({what}); "
          f"latency {latency * 1e3:.2f} ms per frame; detections in {args.out}")
    if args.annotations:
        print(_coco_map(Path(args.annotations), names, result, size, len(labels)))
    return 0
