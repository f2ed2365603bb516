"""Reading a folder of images for the on-board driver: numpy, plus pillow where the board has it.

With pillow, an image is decoded and resized exactly as ``qdet run`` does it (``convert("RGB")``, then a bilinear
resize to the accelerator's input), so the accelerator sees the same bytes. Without pillow, a small built-in reader
takes 8-bit PNG (and ``.npy`` is always read by numpy); a size mismatch is then resized by nearest neighbour, with
a warning that results will differ from ``qdet run``. Images come back as uint8 (C, H, W) arrays.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["IMAGE_SUFFIXES", "ImageError", "list_images", "load_image"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".npy")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_SAMPLES = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # colour type -> samples per pixel (3 = palette index)


class ImageError(ValueError):
    """An image folder or file the runtime cannot read; the message says which and why."""


def list_images(folder: Path) -> list[Path]:
    """The image files (by :data:`IMAGE_SUFFIXES`, any case) directly in ``folder``, sorted by name."""
    folder = Path(folder)
    if not folder.exists():
        raise ImageError(f"image folder {folder} does not exist")
    if not folder.is_dir():
        raise ImageError(f"{folder} is not a folder: give the folder that holds the images")
    images = sorted((p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES),
                    key=lambda p: p.name)
    if not images:
        raise ImageError(f"{folder} holds no image: the runtime reads {', '.join(IMAGE_SUFFIXES)} files")
    return images


def load_image(path: Path, size: tuple[int, int], channels: int = 3) -> tuple[np.ndarray, str | None]:
    """One image as the accelerator's uint8 ``(channels, H, W)`` input, ``size = (H, W)``, and a warning (or None).

    The warning says what was done to fit the model: a resize, grayscale replicated to 3 channels, colour turned
    to grayscale for a 1-channel model. Alpha is dropped silently, as pillow's ``convert("RGB")`` does. ``.npy``
    files hold uint8 (H, W), (H, W, C) or (C, H, W) arrays. Raises :class:`ImageError` for a missing file, an
    unreadable format, or channels that cannot be mapped to the model's.
    """
    path = Path(path)
    height, width = size
    suffix = path.suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        raise ImageError(f"{path}: not an image the runtime reads ({', '.join(IMAGE_SUFFIXES)})")
    if not path.is_file():
        raise ImageError(f"image {path} does not exist")
    pil = _pil()
    if pil is not None and suffix != ".npy":
        return _load_with_pil(pil, path, (height, width), channels)
    notes: list[str] = []
    if suffix == ".npy":
        hwc, has_alpha = _read_npy(path, (height, width)), False
    elif suffix == ".png":
        hwc, has_alpha = _read_png(path)
    else:
        raise ImageError(f"{path}: reading {suffix} needs pillow, which is not installed here; "
                         "install pillow or convert to PNG")
    hwc = _map_channels(hwc, has_alpha, channels, path, notes)
    if hwc.shape[:2] != (height, width):
        how = ("resized (PIL bilinear)" if pil is not None else
               "resized by nearest neighbour, not PIL's bilinear (pillow is not installed): results will differ "
               "from `qdet run`")
        notes.append(f"{path} is {hwc.shape[1]}x{hwc.shape[0]}, the accelerator takes {width}x{height}: {how}")
        hwc = _resize(pil, hwc, (height, width))
    return np.ascontiguousarray(hwc.transpose(2, 0, 1)), "; ".join(notes) or None


def _pil() -> Any:
    """pillow's ``Image`` module, or None where pillow is not installed (imported lazily: boards may lack it)."""
    try:
        from PIL import Image
    except ImportError:
        return None
    return Image


def _bilinear(pil: Any) -> Any:
    # Image.Resampling arrived in pillow 9.1; older board images only have the module-level constant (same value).
    return getattr(pil, "Resampling", pil).BILINEAR


def _load_with_pil(pil: Any, path: Path, size: tuple[int, int], channels: int) -> tuple[np.ndarray, str | None]:
    """Decode as ``quant_models.data.tensors._load_image`` does, so 3-channel inputs match ``qdet run`` bytes."""
    height, width = size
    if channels not in (1, 3):
        raise ImageError(f"{path}: the model takes {channels} channels but image files decode to 1 (grayscale) "
                         "or 3 (RGB); give .npy arrays instead")
    notes: list[str] = []
    try:
        with pil.open(path) as im:
            gray = im.getbands()[0] in ("1", "L", "I", "F")  # LA, I;16 ... too; P (palette) counts as colour
            if gray and channels == 3:
                notes.append(f"{path} is grayscale: replicated to 3 channels")
            elif not gray and channels == 1:
                notes.append(f"{path} is colour: converted to grayscale (PIL luma)")
            img = im.convert("RGB" if channels == 3 else "L")
            if img.size != (width, height):
                notes.append(f"{path} is {img.size[0]}x{img.size[1]}, the accelerator takes {width}x{height}: "
                             "resized (PIL bilinear)")
                img = img.resize((width, height), _bilinear(pil))
            arr = np.asarray(img, dtype=np.uint8)
    except OSError as e:  # pillow's UnidentifiedImageError and truncated files are OSErrors
        raise ImageError(f"{path}: pillow cannot read it ({e})") from e
    arr = arr[:, :, None] if arr.ndim == 2 else arr
    return np.ascontiguousarray(arr.transpose(2, 0, 1)), "; ".join(notes) or None


def _map_channels(hwc: np.ndarray, has_alpha: bool, channels: int, path: Path, notes: list[str]) -> np.ndarray:
    """Fit decoded (H, W, C) pixels to the model's channel count, noting what was done in ``notes``."""
    if has_alpha:
        hwc = hwc[:, :, :-1]  # alpha is not part of the picture; pillow's convert("RGB") drops it too
    c = hwc.shape[2]
    if c == channels:
        return hwc
    if c == 1 and channels == 3:
        notes.append(f"{path} is grayscale: replicated to 3 channels")
        return np.repeat(hwc, 3, axis=2)
    if c == 3 and channels == 1:
        notes.append(f"{path} is colour: converted to grayscale (PIL luma)")
        # pillow's fixed-point ITU-R 601-2 luma (Convert.c, L24), so this matches its convert("L") exactly.
        rgb = hwc.astype(np.uint32)
        luma = (rgb[..., 0] * 19595 + rgb[..., 1] * 38470 + rgb[..., 2] * 7471 + 0x8000) >> 16
        return luma.astype(np.uint8)[:, :, None]
    raise ImageError(f"{path} has {c + int(has_alpha)} channels, the model takes {channels}: cannot map them")


def _resize(pil: Any, hwc: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize (H, W, C) pixels to ``size``: pillow's bilinear when available, else nearest neighbour."""
    height, width = size
    if pil is not None:
        if hwc.shape[2] == 3:  # one RGB image, as qdet run resizes it
            return np.asarray(pil.fromarray(np.ascontiguousarray(hwc), "RGB").resize((width, height),
                                                                                    _bilinear(pil)))
        planes = [pil.fromarray(np.ascontiguousarray(hwc[:, :, c])).resize((width, height), _bilinear(pil))
                  for c in range(hwc.shape[2])]
        return np.stack([np.asarray(p) for p in planes], axis=2)
    # Sample each output pixel's centre, as pillow's NEAREST does.
    rows = np.minimum(((np.arange(height) + 0.5) * hwc.shape[0] / height).astype(np.int64), hwc.shape[0] - 1)
    cols = np.minimum(((np.arange(width) + 0.5) * hwc.shape[1] / width).astype(np.int64), hwc.shape[1] - 1)
    return hwc[rows][:, cols]


def _read_npy(path: Path, size: tuple[int, int]) -> np.ndarray:
    """A uint8 (H, W), (H, W, C) or (C, H, W) array as (H, W, C)."""
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise ImageError(f"{path}: not a readable .npy array ({e})") from e
    if arr.dtype != np.uint8:
        raise ImageError(f"{path} holds {arr.dtype} values; image arrays must be uint8")
    if arr.ndim == 2:
        return arr[:, :, None]
    if arr.ndim != 3:
        raise ImageError(f"{path} has shape {arr.shape}; expected (H, W), (H, W, C) or (C, H, W)")
    # The accelerator's own (H, W) settles HWC vs CHW when it matches; otherwise a short axis is the channels.
    if arr.shape[:2] == tuple(size):
        return arr
    if arr.shape[1:] == tuple(size):
        return arr.transpose(1, 2, 0)
    if arr.shape[2] <= 4:
        return arr
    if arr.shape[0] <= 4:
        return arr.transpose(1, 2, 0)
    raise ImageError(f"{path} has shape {arr.shape}: no axis looks like channels (expected HWC or CHW)")


def _read_png(path: Path) -> tuple[np.ndarray, bool]:
    """The built-in reader: an 8-bit, non-interlaced PNG -> (H, W, samples) uint8 pixels and whether the last
    sample is alpha. Palette images come back as RGB."""
    data = path.read_bytes()
    if not data.startswith(_PNG_SIGNATURE):
        raise ImageError(f"{path} is not a PNG file (bad signature)")
    header, palette, idat, pos = None, None, [], len(_PNG_SIGNATURE)
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos: pos + 8])
        body, crc = data[pos + 8: pos + 8 + length], data[pos + 8 + length: pos + 12 + length]
        # The CRC catches truncated copies, which would otherwise decode into garbage rows.
        if len(body) != length or len(crc) != 4 or zlib.crc32(kind + body) != struct.unpack(">I", crc)[0]:
            raise ImageError(f"{path}: truncated or corrupt PNG ({kind.decode('latin-1')} chunk)")
        pos += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"PLTE":
            palette = np.frombuffer(body, dtype=np.uint8).reshape(-1, 3)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    if header is None:
        raise ImageError(f"{path}: PNG without a header (IHDR) chunk")
    width, height, depth, colour, _, _, interlace = header
    if depth != 8 or interlace or colour not in _PNG_SAMPLES:
        raise ImageError(f"{path}: the built-in PNG reader takes 8-bit non-interlaced PNGs (this one: {depth}-bit, "
                         f"colour type {colour}, {'interlaced' if interlace else 'not interlaced'}); "
                         "install pillow or convert to PNG (8-bit, not interlaced)")
    samples = _PNG_SAMPLES[colour]
    try:
        raw = zlib.decompress(b"".join(idat))
    except zlib.error as e:
        raise ImageError(f"{path}: corrupt PNG image data ({e})") from e
    if len(raw) != height * (1 + width * samples):
        raise ImageError(f"{path}: PNG image data is {len(raw)} bytes, expected {height * (1 + width * samples)}")
    rows = np.frombuffer(raw, dtype=np.uint8).reshape(height, 1 + width * samples)
    pixels = _unfilter(rows[:, 0], rows[:, 1:].reshape(height, width, samples), path)
    if colour == 3:
        if palette is None or pixels.max(initial=0) >= len(palette):
            raise ImageError(f"{path}: palette PNG with a missing or too short palette")
        return palette[pixels[:, :, 0]], False
    return pixels, colour in (4, 6)


def _unfilter(filters: np.ndarray, data: np.ndarray, path: Path) -> np.ndarray:
    """Undo PNG's per-row filters (None, Sub, Up, Average, Paeth) on (H, W, samples) bytes, 8-bit depth.

    A pixel depends on its left, upper and upper-left neighbours only, so all pixels of one anti-diagonal
    (row + col = d) are independent: sweeping the H + W - 1 diagonals vectorises every filter, Paeth included,
    instead of a Python loop per byte.
    """
    if filters.size and filters.max() > 4:
        raise ImageError(f"{path}: PNG row filter {int(filters.max())} does not exist (0-4)")
    h, w, _ = data.shape
    out = np.zeros((h + 1, w + 1, data.shape[2]), dtype=np.int16)  # a zero row and column: PNG's outside
    for d in range(h + w - 1):
        r = np.arange(max(0, d - w + 1), min(d, h - 1) + 1)
        c = d - r
        left, up, upleft = out[r + 1, c], out[r, c + 1], out[r, c]
        p = left + up - upleft
        pa, pb, pc = np.abs(p - left), np.abs(p - up), np.abs(p - upleft)
        paeth = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, up, upleft))
        f = filters[r][:, None]
        pred = np.select([f == 1, f == 2, f == 3, f == 4], [left, up, (left + up) >> 1, paeth], 0)
        out[r + 1, c + 1] = (data[r, c] + pred) & 0xFF
    return out[1:, 1:].astype(np.uint8)
