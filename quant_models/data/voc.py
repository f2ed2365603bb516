"""Pascal VOC detection loader (``Annotations/*.xml``, ``JPEGImages/``, ``ImageSets/Main/<split>.txt``)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from quant_models.data._common import BadEntries, check_box, image_size, make_sample
from quant_models.data.types import DatasetError, DetectionSet, Sample


def voc_class_names(root: Path) -> tuple[str, ...]:
    """Sorted union of the object names in every ``Annotations/*.xml`` under ``root``.

    All annotation files are scanned, not one split's, so that train and val get the same class indices.
    Unparseable files are passed over here; the loader reports them when they belong to the split.
    """
    names: set[str] = set()
    for xml in sorted((Path(root) / "Annotations").glob("*.xml")):
        try:
            tree = ET.parse(xml)
        except (ET.ParseError, OSError):
            continue
        for obj in tree.getroot().iter("object"):
            name = (obj.findtext("name") or "").strip()
            if name:
                names.add(name)
    return tuple(sorted(names))


def load_voc(
    root: Path, split: str, skip_bad: bool = False, class_names: Sequence[str] | None = None
) -> DetectionSet:
    """Load a Pascal VOC split.

    Without ``class_names``, classes are :func:`voc_class_names` (sorted). VOC pixel coordinates are 1-based and
    inclusive, so ``xmin..xmax`` becomes the half-open ``[xmin - 1, xmax)`` box; a one-pixel-wide object
    (``xmin == xmax``) is one pixel wide. ``difficult`` objects are kept. Samples are sorted by image file name.

    Raises :class:`DatasetError` naming the file and object index for malformed input; with ``skip_bad=True``,
    bad objects (and bad/missing annotation or image files) are skipped, counted and reported with a warning.
    """
    root = Path(root)
    split_file = root / "ImageSets" / "Main" / f"{split}.txt"
    try:
        ids = [line.split()[0] for line in split_file.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{split_file}: cannot read the VOC split list ({exc}); check root and split.") from None
    names = tuple(class_names) if class_names is not None else voc_class_names(root)
    if not names:
        raise DatasetError(f"{root}/Annotations: no object names found; annotate at least one object (the classes are the names used).")
    name_to_label = {n: i for i, n in enumerate(names)}
    issues = BadEntries("load_voc", skip_bad)

    samples: list[Sample] = []
    for image_id in ids:
        sample = _load_one(root, image_id, name_to_label, issues)
        if sample is not None:
            samples.append(sample)
    samples.sort(key=lambda s: s.image_path.name)
    skipped = issues.finish(root)
    return DetectionSet(class_names=names, samples=tuple(samples), root=root, skipped=skipped)


def _load_one(root: Path, image_id: str, name_to_label: dict[str, int], issues: BadEntries) -> Sample | None:
    xml = root / "Annotations" / f"{image_id}.xml"
    if not xml.is_file():
        issues.bad(f"{xml}: annotation file for id {image_id!r} (listed in the split) does not exist.")
        return None
    try:
        ann = ET.parse(xml).getroot()
    except (ET.ParseError, OSError) as exc:
        issues.bad(f"{xml}: not well-formed XML ({exc}).")
        return None
    filename = (ann.findtext("filename") or f"{image_id}.jpg").strip()
    path = root / "JPEGImages" / filename
    size = image_size(path)
    if isinstance(size, str):
        issues.bad(f"{xml}: {size}.")
        return None
    width, height = size
    size_el = ann.find("size")
    if size_el is not None and size_el.findtext("width") is not None:
        try:
            declared = (int(float(size_el.findtext("width", ""))), int(float(size_el.findtext("height", ""))))
        except ValueError:
            issues.bad(f"{xml}: <size> has a non-numeric width/height.")
            return None
        if declared != size:
            issues.bad(f"{xml}: <size> declares {declared[0]}x{declared[1]} but {path.name} is {width}x{height}.")
            return None

    boxes: list[tuple[float, float, float, float]] = []
    labels: list[int] = []
    for k, obj in enumerate(ann.findall("object")):
        name = (obj.findtext("name") or "").strip()
        where = f"{xml}: object {k} ({name!r})"
        if name not in name_to_label:
            issues.bad(f"{where}: class {name!r} is not in the class list {list(name_to_label)}.")
            continue
        bnd = obj.find("bndbox")
        try:
            if bnd is None:
                raise ValueError("missing <bndbox>")
            xmin, ymin, xmax, ymax = (float(bnd.findtext(tag, "")) for tag in ("xmin", "ymin", "xmax", "ymax"))
        except ValueError:
            issues.bad(f"{where}: <bndbox> needs numeric xmin, ymin, xmax, ymax.")
            continue
        box = check_box(xmin - 1.0, ymin - 1.0, xmax, ymax, width, height)
        if isinstance(box, str):
            issues.bad(f"{where}: {box}.")
            continue
        boxes.append(box)
        labels.append(name_to_label[name])
    return make_sample(path, width, height, boxes, labels)
