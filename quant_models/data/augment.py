"""Batched, device-agnostic detection augmentation: flip, scale/translate, colour jitter.

Everything is vectorised over the batch and every random number comes from the caller's ``torch.Generator``
(which must live on the images' device), so a seeded generator reproduces a batch exactly on a given device.

Geometry works in normalised image coordinates ``p`` in [0, 1]. The forward map of one sample is
``p' = s * (f(p) - 0.5) + 0.5 + t`` where ``f`` mirrors x (``x -> 1 - x``) when flipped, ``s`` is the scale and
``t`` the translation. Boxes go through this map directly; images are resampled with its inverse.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class AugmentConfig:
    """Augmentation strengths; setting a jitter to 0 (or a range to one value) disables that randomness."""

    hflip_p: float = 0.5
    scale_range: tuple[float, float] = (0.75, 1.25)
    translate: float = 0.1  # max shift as a fraction of the image size, per axis
    brightness: float = 0.2  # multiplicative factor drawn from [1 - b, 1 + b]
    contrast: float = 0.2  # blend towards the image's mean grey level
    saturation: float = 0.2  # blend towards each pixel's grey level
    channel_gain: float = 0.05  # independent per-channel gain (a cheap hue/white-balance shift)
    min_box_fraction: float = 0.3  # drop a box whose visible part is under this fraction of it after the warp
    min_box_pixels: float = 2.0  # ... or whose visible width or height is under this many pixels


def _uniform(n: int, lo: float, hi: float, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=generator, device=device)


def augment_batch(
    images: torch.Tensor,
    boxes: torch.Tensor,
    labels: torch.Tensor,
    cfg: AugmentConfig,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Augment a batch.

    ``images``: ``(B, 3, H, W)`` uint8 or float pixels in [0, 255]; ``boxes``: ``(B, M, 4)`` normalised xyxy;
    ``labels``: ``(B, M)`` with -1 for padding. Returns float32 images holding integer values in [0, 255] (the
    detector sees 8-bit pixels on hardware), the transformed boxes clipped to [0, 1], and labels where boxes
    that left the image (see ``min_box_fraction``, ``min_box_pixels``) are set to -1 with a zero box.
    """
    b, _, h, w = images.shape
    dev = images.device
    x = images.float()

    # Draw all random numbers up front, in a fixed order, so results depend only on the generator state.
    flip = torch.rand(b, generator=generator, device=dev) < cfg.hflip_p
    scale = _uniform(b, cfg.scale_range[0], cfg.scale_range[1], generator, dev)
    tx = _uniform(b, -cfg.translate, cfg.translate, generator, dev)
    ty = _uniform(b, -cfg.translate, cfg.translate, generator, dev)
    bright = _uniform(b, 1 - cfg.brightness, 1 + cfg.brightness, generator, dev)
    contrast = _uniform(b, 1 - cfg.contrast, 1 + cfg.contrast, generator, dev)
    sat = _uniform(b, 1 - cfg.saturation, 1 + cfg.saturation, generator, dev)
    gain = 1 - cfg.channel_gain + 2 * cfg.channel_gain * torch.rand(b, 3, generator=generator, device=dev)

    # Image: affine_grid maps output to input in [-1, 1] coordinates (u = 2p - 1, align_corners=False, so
    # -1 and 1 are the outer pixel edges, matching the box convention). Inverting the forward map gives
    # u_in = sign * (u_out - 2t) / s with sign = -1 when flipped.
    sign = 1.0 - 2.0 * flip.float()
    theta = torch.zeros(b, 2, 3, device=dev)
    theta[:, 0, 0] = sign / scale
    theta[:, 0, 2] = -sign * 2 * tx / scale
    theta[:, 1, 1] = 1 / scale
    theta[:, 1, 2] = -2 * ty / scale
    grid = F.affine_grid(theta, [b, 3, h, w], align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

    # Colour jitter.
    x = x * bright[:, None, None, None]
    grey = (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2])[:, None]
    mean = grey.mean(dim=(2, 3), keepdim=True)
    x = (x - mean) * contrast[:, None, None, None] + mean
    grey = (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2])[:, None]
    x = (x - grey) * sat[:, None, None, None] + grey
    x = x * gain[:, :, None, None]
    x = x.round().clamp(0, 255)

    # Boxes: the forward map, then clipping and the visibility test.
    bx = boxes.float()
    x1, y1, x2, y2 = bx.unbind(-1)
    fl = flip[:, None]
    x1, x2 = torch.where(fl, 1 - x2, x1), torch.where(fl, 1 - x1, x2)
    s = scale[:, None]
    x1, x2 = s * (x1 - 0.5) + 0.5 + tx[:, None], s * (x2 - 0.5) + 0.5 + tx[:, None]
    y1, y2 = s * (y1 - 0.5) + 0.5 + ty[:, None], s * (y2 - 0.5) + 0.5 + ty[:, None]
    full_area = (x2 - x1) * (y2 - y1)
    cx1, cy1, cx2, cy2 = x1.clamp(0, 1), y1.clamp(0, 1), x2.clamp(0, 1), y2.clamp(0, 1)
    vis_w, vis_h = cx2 - cx1, cy2 - cy1
    keep = (
        (labels >= 0)
        & (vis_w * w >= cfg.min_box_pixels)
        & (vis_h * h >= cfg.min_box_pixels)
        & (vis_w * vis_h >= cfg.min_box_fraction * full_area)
    )
    out_boxes = torch.stack([cx1, cy1, cx2, cy2], dim=-1) * keep[..., None]
    out_labels = torch.where(keep, labels, torch.full_like(labels, -1))
    return x, out_boxes, out_labels
