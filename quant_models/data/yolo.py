"""YOLO-format detection loader (``images/`` plus ``labels/*.txt`` with ``class cx cy w h`` normalised lines)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from quant_models.data._common import IMAGE_SUFFIXES, BadEntries, check_box, image_size, make_sample
from quant_models.data.types import DatasetError, DetectionSet


def read_class_names(path: Path) -> tuple[str, ...]:
    """Read a ``classes.txt`` (one class name per line; blank lines ignored)."""
    try:
        names = tuple(line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip())
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: cannot read the class list ({exc}); provide one class name per line.") from None
    if not names:
        raise DatasetError(f"{path}: the class list is empty; provide one class name per line.")
    return names


def load_yolo(split_dir: Path, class_names: Sequence[str], skip_bad: bool = False) -> DetectionSet:
    """Load a YOLO split: ``split_dir/images/*`` with ``split_dir/labels/<stem>.txt``.

    An image without a label file is a background sample (no objects), as in the YOLO convention; a label file
    without an image is an error. Samples are sorted by image file name.

    Raises :class:`DatasetError` naming the file and line for malformed input; with ``skip_bad=True``, bad
    lines (and unreadable label or image files) are skipped, counted and reported with a warning.
    """
    split_dir = Path(split_dir)
    names = tuple(class_names)
    if not names:
        raise DatasetError(f"{split_dir}: load_yolo needs a non-empty class_names list.")
    image_dir, label_dir = split_dir / "images", split_dir / "labels"
    for d in (image_dir, label_dir):
        if not d.is_dir():
            raise DatasetError(f"{d}: directory does not exist; a YOLO split needs images/ and labels/.")
    issues = BadEntries("load_yolo", skip_bad)

    images: dict[str, Path] = {}
    for p in sorted(image_dir.iterdir(), key=lambda q: q.name):
        if p.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        if p.stem in images:
            issues.bad(f"{p}: another image ({images[p.stem].name}) has the same stem, so labels are ambiguous.")
            continue
        images[p.stem] = p
    for lbl in sorted(label_dir.glob("*.txt")):
        if lbl.stem not in images:
            issues.bad(f"{lbl}: label file has no image {image_dir}/{lbl.stem}.* ({'/'.join(IMAGE_SUFFIXES)}).")

    samples = []
    for stem, path in images.items():
        size = image_size(path)
        if isinstance(size, str):
            issues.bad(f"{path}: {size}.")
            continue
        width, height = size
        boxes: list[tuple[float, float, float, float]] = []
        labels: list[int] = []
        lbl = label_dir / f"{stem}.txt"
        if lbl.is_file():
            try:
                lines = lbl.read_text(encoding="utf-8").splitlines()
            except (OSError, UnicodeDecodeError) as exc:
                issues.bad(f"{lbl}: cannot be read as text ({exc}).")
                continue
            for n, line in enumerate(lines, start=1):
                parsed = _parse_line(line, len(names), width, height)
                if parsed is None:
                    continue
                if isinstance(parsed, str):
                    issues.bad(f"{lbl}: line {n}: {parsed}.")
                    continue
                boxes.append(parsed[1])
                labels.append(parsed[0])
        samples.append(make_sample(path, width, height, boxes, labels))

    skipped = issues.finish(split_dir)
    return DetectionSet(class_names=names, samples=tuple(samples), root=split_dir, skipped=skipped)


def _parse_line(
    line: str, num_classes: int, width: int, height: int
) -> tuple[int, tuple[float, float, float, float]] | str | None:
    """Parse one label line; None for a blank line, a reason string for a bad one."""
    fields = line.split()
    if not fields:
        return None
    if len(fields) != 5:
        return f"expected 5 fields 'class cx cy w h', got {len(fields)} in {line.strip()!r}"
    try:
        cls = int(fields[0])
        cx, cy, w, h = (float(f) for f in fields[1:])
    except ValueError:
        return f"cannot parse {line.strip()!r} as 'class cx cy w h' (integer class, then numbers)"
    if not 0 <= cls < num_classes:
        return f"class index {cls} is not in 0..{num_classes - 1} (there are {num_classes} classes)"
    if w <= 0 or h <= 0:
        return f"box width/height ({w:g}, {h:g}) must be positive"
    box = check_box((cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height,
                    width, height)
    if isinstance(box, str):
        return box
    return cls, box
