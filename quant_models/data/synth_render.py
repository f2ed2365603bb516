"""Rendering of one synthetic detection scene: textured background, clutter, and shapes with tight boxes.

Coordinates are continuous pixel-corner coordinates: pixel ``(row i, col j)`` covers ``[j, j+1) x [i, i+1)``,
which is also the convention of the boxes. Shapes are rasterised by supersampled point-in-shape tests, so the
drawn pixels always lie within a pixel of the geometric box computed from the vertices.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

CLASS_NAMES: tuple[str, ...] = ("circle", "square", "triangle", "cross")

# Unit shapes centred on the origin, as unions of convex polygons (circle is handled analytically).
_ARM = 0.3
_UNIT_POLYGONS: dict[str, tuple[np.ndarray, ...]] = {
    "square": (np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], dtype=np.float64),),
    "triangle": (
        np.array([[math.cos(a), math.sin(a)] for a in np.deg2rad([-90.0, 30.0, 150.0])], dtype=np.float64),
    ),
    "cross": (
        np.array([[-1, -_ARM], [1, -_ARM], [1, _ARM], [-1, _ARM]], dtype=np.float64),
        np.array([[-_ARM, -1], [_ARM, -1], [_ARM, 1], [-_ARM, 1]], dtype=np.float64),
    ),
}


@dataclass(frozen=True)
class SceneConfig:
    """Knobs of the synthetic scenes; the defaults are what :func:`generate_synthetic` uses."""

    min_objects: int = 1
    max_objects: int = 8
    min_size_fraction: float = 0.06  # object extent (max of box width, height) relative to the shorter side
    max_size_fraction: float = 0.40
    max_iou: float = 0.5  # reject a placement whose box IoU with an earlier box exceeds this
    max_covered_fraction: float = 0.5  # ... or that covers more than this fraction of an earlier box
    placement_attempts: int = 40
    clutter_range: tuple[int, int] = (3, 10)
    noise_sigma_range: tuple[float, float] = (2.0, 10.0)
    min_colour_distance: float = 80.0  # RGB distance between an object and the background under it
    supersample: int = 4


@dataclass(frozen=True)
class SceneObject:
    """One drawn object: its class index and tight box ``(x1, y1, x2, y2)`` in pixels."""

    label: int
    box: tuple[float, float, float, float]


def render_scene(
    rng: np.random.Generator, height: int, width: int, cfg: SceneConfig
) -> tuple[np.ndarray, list[SceneObject]]:
    """Draw one scene; returns an ``(H, W, 3)`` uint8 image and its objects (in drawing order)."""
    img = _background(rng, height, width)
    img = _clutter(rng, img, cfg)
    objects = _place_objects(rng, height, width, cfg)
    for obj, geom in objects:
        _draw_shape(rng, img, geom, obj.box, cfg)
    sigma = rng.uniform(*cfg.noise_sigma_range)
    img = img + rng.normal(0.0, sigma, size=img.shape)
    out = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    return out, [obj for obj, _ in objects]


def _upsample(grid: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear upsampling of a small ``(gh, gw, C)`` grid to ``(height, width, C)``."""
    gh, gw = grid.shape[:2]
    ys = np.linspace(0.0, gh - 1.0, height)
    xs = np.linspace(0.0, gw - 1.0, width)
    y0 = np.minimum(ys.astype(np.int64), gh - 2)
    x0 = np.minimum(xs.astype(np.int64), gw - 2)
    fy = (ys - y0)[:, None, None]
    fx = (xs - x0)[None, :, None]
    # Separable: interpolate the few grid columns along y first, then along x.
    rows = grid[y0] * (1 - fy) + grid[y0 + 1] * fy  # (height, gw, C)
    return rows[:, x0] * (1 - fx) + rows[:, x0 + 1] * fx


def _background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A random two-colour linear gradient plus low-frequency colour blotches, as float RGB."""
    c0, c1 = rng.uniform(0, 255, size=(2, 3))
    angle = rng.uniform(0, 2 * math.pi)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    proj = xx * math.cos(angle) + yy * math.sin(angle)
    t = (proj - proj.min()) / max(proj.max() - proj.min(), 1e-9)
    img = c0 * (1 - t[..., None]) + c1 * t[..., None]
    grid = rng.normal(0.0, rng.uniform(5.0, 30.0), size=(5, 5, 3))
    return img + _upsample(grid, height, width)


def _clutter(rng: np.random.Generator, img: np.ndarray, cfg: SceneConfig) -> np.ndarray:
    """Distractors that are not a class: line segments, partial arcs and speckles (drawn under the objects)."""
    height, width = img.shape[:2]
    pil = Image.fromarray(np.clip(np.rint(img), 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(pil)
    side = min(height, width)
    for _ in range(int(rng.integers(cfg.clutter_range[0], cfg.clutter_range[1] + 1))):
        colour = tuple(int(v) for v in rng.integers(0, 256, size=3))
        kind = int(rng.integers(0, 3))
        if kind == 0:
            x0, y0 = rng.uniform(0, width), rng.uniform(0, height)
            length, a = rng.uniform(0.1, 0.5) * side, rng.uniform(0, 2 * math.pi)
            pts = [(x0, y0), (x0 + length * math.cos(a), y0 + length * math.sin(a))]
            draw.line(pts, fill=colour, width=int(rng.integers(1, 3)))
        elif kind == 1:
            r = rng.uniform(0.05, 0.25) * side
            cx, cy = rng.uniform(0, width), rng.uniform(0, height)
            start = rng.uniform(0, 360)
            # At most 200 degrees, so an arc never reads as a circle outline.
            draw.arc([cx - r, cy - r, cx + r, cy + r], start, start + rng.uniform(40, 200), fill=colour, width=1)
        else:
            n = int(rng.integers(5, 30))
            xs, ys = rng.integers(0, width, size=n), rng.integers(0, height, size=n)
            for x, y in zip(xs, ys):
                draw.point((int(x), int(y)), fill=colour)
    return np.asarray(pil, dtype=np.float64)


def _shape_geometry(
    rng: np.random.Generator, label: int, extent: float
) -> tuple[tuple[np.ndarray, ...] | float, float, float]:
    """Rotated, scaled shape centred on the origin whose larger box side is ``extent``.

    Returns ``(polygons or circle radius, half box width, half box height)``.
    """
    name = CLASS_NAMES[label]
    if name == "circle":
        r = extent / 2
        return r, r, r
    angle = rng.uniform(0, 2 * math.pi)
    rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    polys = tuple(p @ rot.T for p in _UNIT_POLYGONS[name])
    pts = np.concatenate(polys)
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    # Recentre on the box centre so the box is symmetric around the placement point.
    mid = (lo + hi) / 2
    scale = extent / float(np.max(hi - lo))
    polys = tuple((p - mid) * scale for p in polys)
    half = (hi - lo) * scale / 2
    return polys, float(half[0]), float(half[1])


def _iou_and_cover(box: tuple[float, ...], other: tuple[float, ...]) -> tuple[float, float]:
    """IoU of two boxes, and the fraction of ``other`` covered by ``box``."""
    iw = min(box[2], other[2]) - max(box[0], other[0])
    ih = min(box[3], other[3]) - max(box[1], other[1])
    if iw <= 0 or ih <= 0:
        return 0.0, 0.0
    inter = iw * ih
    a = (box[2] - box[0]) * (box[3] - box[1])
    b = (other[2] - other[0]) * (other[3] - other[1])
    return inter / (a + b - inter), inter / b


def _place_objects(
    rng: np.random.Generator, height: int, width: int, cfg: SceneConfig
) -> list[tuple[SceneObject, tuple[np.ndarray, ...] | tuple[float, float, float]]]:
    """Choose classes, sizes and non-occluding positions; larger objects come first so smaller ones draw on top."""
    side = min(height, width)
    count = int(rng.integers(cfg.min_objects, cfg.max_objects + 1))
    # Log-uniform sizes: as many objects in 6-12 % as in 20-40 %, so small objects are well represented.
    extents = np.exp(rng.uniform(math.log(cfg.min_size_fraction), math.log(cfg.max_size_fraction), size=count)) * side
    labels = rng.integers(0, len(CLASS_NAMES), size=count)
    order = np.argsort(-extents, kind="stable")
    placed: list[tuple[SceneObject, tuple[np.ndarray, ...] | tuple[float, float, float]]] = []
    for idx in order:
        label, extent = int(labels[idx]), float(extents[idx])
        shape, hx, hy = _shape_geometry(rng, label, extent)
        for _ in range(cfg.placement_attempts):
            cx, cy = rng.uniform(hx, width - hx), rng.uniform(hy, height - hy)
            box = (max(cx - hx, 0.0), max(cy - hy, 0.0), min(cx + hx, float(width)), min(cy + hy, float(height)))
            if all(
                iou <= cfg.max_iou and cover <= cfg.max_covered_fraction
                for iou, cover in (_iou_and_cover(box, o.box) for o, _ in placed)
            ):
                break
        else:
            continue  # no room for this one; the scene simply has fewer objects
        geom: tuple[np.ndarray, ...] | tuple[float, float, float]
        if isinstance(shape, float):
            geom = (float(cx), float(cy), shape)
        else:
            geom = tuple(p + np.array([cx, cy]) for p in shape)
        placed.append((SceneObject(label=label, box=box), geom))
    return placed


def _coverage(geom: tuple[np.ndarray, ...] | tuple[float, float, float], xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Boolean inside-mask of the shape at the sample points ``xs`` (columns) x ``ys`` (rows)."""
    px, py = xs[None, :], ys[:, None]
    if isinstance(geom[0], float):
        cx, cy, r = geom  # type: ignore[misc]
        return (px - cx) ** 2 + (py - cy) ** 2 <= r * r
    inside = np.zeros((ys.size, xs.size), dtype=bool)
    for poly in geom:  # type: ignore[union-attr]
        a, b = poly, np.roll(poly, -1, axis=0)
        # Orient counter-clockwise (positive shoelace area) so "inside" is "left of every edge".
        if float(np.sum(a[:, 0] * b[:, 1] - b[:, 0] * a[:, 1])) < 0:
            a, b = b[::-1], a[::-1]
        part = np.ones_like(inside)
        for (ax, ay), (bx, by) in zip(a, b):
            part &= (bx - ax) * (py - ay) - (by - ay) * (px - ax) >= 0
        inside |= part
    return inside


def _draw_shape(
    rng: np.random.Generator,
    img: np.ndarray,
    geom: tuple[np.ndarray, ...] | tuple[float, float, float],
    box: tuple[float, float, float, float],
    cfg: SceneConfig,
) -> None:
    """Alpha-composite an anti-aliased, shaded shape into ``img`` (float, in place)."""
    height, width = img.shape[:2]
    c0, r0 = max(int(math.floor(box[0])), 0), max(int(math.floor(box[1])), 0)
    c1, r1 = min(int(math.ceil(box[2])), width), min(int(math.ceil(box[3])), height)
    s = cfg.supersample
    offsets = (np.arange(s) + 0.5) / s
    xs = (np.arange(c0, c1)[:, None] + offsets[None, :]).ravel()
    ys = (np.arange(r0, r1)[:, None] + offsets[None, :]).ravel()
    inside = _coverage(geom, xs, ys)
    alpha = inside.reshape(r1 - r0, s, c1 - c0, s).mean(axis=(1, 3))[..., None]

    region = img[r0:r1, c0:c1]
    bg_mean = region.mean(axis=(0, 1))
    colour = rng.uniform(0, 255, size=3)
    for _ in range(20):
        if np.linalg.norm(colour - bg_mean) >= cfg.min_colour_distance:
            break
        colour = rng.uniform(0, 255, size=3)
    else:
        colour = 255.0 - bg_mean  # guaranteed far from the background unless it is mid-grey
    # A gentle linear shading across the object, so fills are not flat.
    a = rng.uniform(0, 2 * math.pi)
    yy, xx = np.mgrid[0 : r1 - r0, 0 : c1 - c0].astype(np.float64)
    ramp = xx * math.cos(a) + yy * math.sin(a)
    ramp = (ramp - ramp.mean()) / max(float(np.ptp(ramp)), 1.0)
    fill = np.clip(colour[None, None, :] * (1.0 + rng.uniform(0.0, 0.3) * ramp[..., None]), 0, 255)
    img[r0:r1, c0:c1] = region * (1 - alpha) + fill * alpha
