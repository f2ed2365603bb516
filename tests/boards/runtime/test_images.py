"""boards/runtime/images.py: the built-in PNG reader against pillow, pillow loading against ``qdet run``'s
``_load_image`` (identical bytes), the no-pillow fallbacks, and the error messages."""

from __future__ import annotations

import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

from tests.boards.runtime.fakes import LEAKED, isolated_script
from PIL import Image

from boards.runtime import images as rt
from quant_models.data.tensors import _load_image

RUNTIME = Path(rt.__file__).parent
COLOUR_TYPES = {0: 1, 2: 3, 4: 2, 6: 4}  # PNG colour type -> samples per pixel
PIL_MODES = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}


def _pixels(rng: np.random.Generator, h: int, w: int, samples: int) -> np.ndarray:
    """Half smooth gradient (so predictors matter), half noise (so every byte value occurs)."""
    smooth = (np.add.outer(np.arange(h), np.arange(w))[:, :, None] * np.arange(1, samples + 1)) % 256
    noise = rng.integers(0, 256, (h, w, samples))
    return np.where(rng.random((h, w, 1)) < 0.5, smooth, noise).astype(np.uint8)


def _paeth(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    p = a + b - c
    pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - c)
    return np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))


def _write_png(path: Path, pixels: np.ndarray, colour: int, filters: list[int],
               palette: np.ndarray | None = None) -> None:
    """A PNG encoder straight from the spec, with the filter of every row chosen by the caller (pillow picks
    its own, mostly Sub and Up, so this is how Average and Paeth get exercised)."""
    h, w, n = pixels.shape
    rows = pixels.reshape(h, w * n).astype(np.int64)
    out = []
    for r, f in enumerate(filters):
        x, up = rows[r], rows[r - 1] if r else np.zeros(w * n, np.int64)
        left, upleft = np.concatenate([np.zeros(n, np.int64), x[:-n]]), np.concatenate([np.zeros(n, np.int64),
                                                                                        up[:-n]])
        pred = [0, left, up, (left + up) // 2, _paeth(left, up, upleft)][f]
        out.append(bytes([f]) + ((x - pred) % 256).astype(np.uint8).tobytes())

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, colour, 0, 0, 0))
    if palette is not None:
        png += chunk(b"PLTE", palette.astype(np.uint8).tobytes())
    data = zlib.compress(b"".join(out))
    # Two IDAT chunks: a reader must concatenate them.
    png += chunk(b"IDAT", data[: len(data) // 2]) + chunk(b"IDAT", data[len(data) // 2:]) + chunk(b"IEND", b"")
    path.write_bytes(png)


def _pil_array(path: Path, mode: str) -> np.ndarray:
    with Image.open(path) as im:
        arr = np.asarray(im.convert(mode))
    return arr[:, :, None] if arr.ndim == 2 else arr


@pytest.fixture
def no_pil(monkeypatch: pytest.MonkeyPatch) -> None:
    """A Python without pillow: its lazy import inside images.py fails."""
    monkeypatch.setitem(sys.modules, "PIL", None)
    monkeypatch.setitem(sys.modules, "PIL.Image", None)
    assert rt._pil() is None


@pytest.mark.parametrize("colour", sorted(COLOUR_TYPES))
@pytest.mark.parametrize("shape", [(17, 23), (1, 9), (9, 1), (40, 33)])
def test_png_reader_all_filters(tmp_path: Path, colour: int, shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(colour * 100 + shape[0])
    samples = COLOUR_TYPES[colour]
    pixels = _pixels(rng, *shape, samples)
    plans = [("cycle", [r % 5 for r in range(shape[0])]), ("random", [int(f) for f in rng.integers(0, 5, shape[0])])]
    for name, filters in plans + [(f"only{f}", [f] * shape[0]) for f in range(5)]:
        path = tmp_path / f"{name}.png"
        _write_png(path, pixels, colour, filters)
        assert np.array_equal(_pil_array(path, PIL_MODES[samples]), pixels)  # the encoder is right: pillow agrees
        got, has_alpha = rt._read_png(path)
        assert has_alpha == (colour in (4, 6))
        np.testing.assert_array_equal(got, pixels, err_msg=name)


def test_png_reader_palette(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    palette = rng.integers(0, 256, (20, 3))
    index = rng.integers(0, 20, (15, 12, 1)).astype(np.uint8)
    path = tmp_path / "p.png"
    _write_png(path, index, 3, [r % 5 for r in range(15)], palette)
    got, has_alpha = rt._read_png(path)
    assert not has_alpha
    np.testing.assert_array_equal(got, palette[index[:, :, 0]])
    np.testing.assert_array_equal(got, _pil_array(path, "RGB"))


@pytest.mark.parametrize("mode", ["L", "LA", "RGB", "RGBA", "P"])
@pytest.mark.parametrize("channels", [3, 1])
def test_fallback_equals_pillow_on_pillow_pngs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str,
                                               channels: int) -> None:
    """PNGs as pillow writes them, every colour type: load_image without pillow gives pillow's bytes (channel
    mapping included: grayscale replicated, alpha dropped, palette looked up, pillow's luma) and the same
    warnings."""
    rgb = _pixels(np.random.default_rng(3), 30, 41, 3)
    path = tmp_path / f"{mode}.png"
    Image.fromarray(rgb, "RGB").convert(mode).save(path)
    with_pil, note_pil = rt.load_image(path, (30, 41), channels)
    monkeypatch.setitem(sys.modules, "PIL", None)
    without, note = rt.load_image(path, (30, 41), channels)
    assert with_pil.shape == without.shape == (channels, 30, 41) and without.dtype == np.uint8
    np.testing.assert_array_equal(without, with_pil)
    assert note == note_pil
    gray = mode in ("L", "LA")
    assert (note is not None) == (gray != (channels == 1))
    if gray and channels == 3:
        assert note == f"{path} is grayscale: replicated to 3 channels"


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".bmp"])
def test_pillow_load_is_qdet_runs(tmp_path: Path, suffix: str) -> None:
    """With pillow, a wrong-size image gives exactly the bytes qdet run feeds the model, and says so."""
    path = tmp_path / f"img{suffix}"
    Image.fromarray(_pixels(np.random.default_rng(1), 70, 100, 3)).save(path)
    arr, note = rt.load_image(path, (48, 64))
    expected = _load_image(path, (48, 64))
    assert arr.shape == (3, 48, 64) and arr.dtype == np.uint8 and arr.flags.c_contiguous
    assert arr.tobytes() == np.ascontiguousarray(expected).tobytes()
    assert note == f"{path} is 100x70, the accelerator takes 64x48: resized (PIL bilinear)"
    same, note = rt.load_image(path, (70, 100))
    assert note is None and np.array_equal(same, _load_image(path, (70, 100)))


@pytest.mark.parametrize("layout", ["hwc", "chw"])
def test_npy_with_pillow_resizes_like_qdet_run(tmp_path: Path, layout: str) -> None:
    hwc = _pixels(np.random.default_rng(2), 50, 30, 3)
    Image.fromarray(hwc).save(tmp_path / "ref.png")
    np.save(tmp_path / "a.npy", hwc if layout == "hwc" else hwc.transpose(2, 0, 1))
    arr, note = rt.load_image(tmp_path / "a.npy", (40, 40))
    np.testing.assert_array_equal(arr, _load_image(tmp_path / "ref.png", (40, 40)))
    assert note is not None and note.endswith("30x50, the accelerator takes 40x40: resized (PIL bilinear)")
    same, note = rt.load_image(tmp_path / "a.npy", (50, 30))
    assert note is None and np.array_equal(same, hwc.transpose(2, 0, 1))


def test_without_pillow_nearest_resize_warns(tmp_path: Path, no_pil: None) -> None:
    hwc = _pixels(np.random.default_rng(4), 37, 53, 3)
    path = tmp_path / "a.png"
    _write_png(path, hwc, 2, [r % 5 for r in range(37)])
    for h, w in [(64, 64), (20, 30), (37, 100)]:
        arr, note = rt.load_image(path, (h, w))
        rows = np.minimum(((np.arange(h) + 0.5) * 37 / h).astype(int), 36)
        cols = np.minimum(((np.arange(w) + 0.5) * 53 / w).astype(int), 52)
        np.testing.assert_array_equal(arr, hwc[rows][:, cols].transpose(2, 0, 1))
        assert note is not None and note.startswith(f"{path} is 53x37, the accelerator takes {w}x{h}: resized by "
                                                    "nearest neighbour, not PIL's bilinear")
        assert "differ from `qdet run`" in note
    arr, note = rt.load_image(path, (37, 53))
    assert note is None and np.array_equal(arr, hwc.transpose(2, 0, 1))


def test_without_pillow_nearest_is_pillows_nearest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hwc = _pixels(np.random.default_rng(5), 29, 31, 3)
    np.save(tmp_path / "a.npy", hwc)
    expected = np.asarray(Image.fromarray(hwc).resize((50, 12), Image.Resampling.NEAREST)).transpose(2, 0, 1)
    monkeypatch.setitem(sys.modules, "PIL", None)
    arr, _ = rt.load_image(tmp_path / "a.npy", (12, 50))
    np.testing.assert_array_equal(arr, expected)


def test_without_pillow_other_formats_need_it(tmp_path: Path, no_pil: None) -> None:
    for suffix in (".jpg", ".jpeg", ".bmp"):
        (tmp_path / f"a{suffix}").write_bytes(b"whatever")
        with pytest.raises(rt.ImageError, match=rf"a\{suffix}: reading \{suffix} needs pillow.*install pillow or "
                                                r"convert to PNG"):
            rt.load_image(tmp_path / f"a{suffix}", (8, 8))


def test_unsupported_png_without_pillow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "deep.png"
    Image.fromarray(np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000).save(path)  # a 16-bit grayscale PNG
    monkeypatch.setitem(sys.modules, "PIL", None)
    with pytest.raises(rt.ImageError, match=r"deep.png: the built-in PNG reader takes 8-bit .*16-bit.*install "
                                            "pillow or convert to PNG"):
        rt.load_image(path, (8, 8))


def test_corrupt_png(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "cut.png"
    _write_png(path, _pixels(np.random.default_rng(6), 20, 20, 3), 2, [1] * 20)
    path.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(rt.ImageError, match="cut.png: pillow cannot read it"):
        rt.load_image(path, (20, 20))
    monkeypatch.setitem(sys.modules, "PIL", None)
    with pytest.raises(rt.ImageError, match="cut.png: truncated or corrupt PNG"):
        rt.load_image(path, (20, 20))
    (tmp_path / "fake.png").write_bytes(b"GIF89a....")
    with pytest.raises(rt.ImageError, match="fake.png is not a PNG file"):
        rt.load_image(tmp_path / "fake.png", (20, 20))


def test_npy_layouts_and_channels(tmp_path: Path) -> None:
    hwc = _pixels(np.random.default_rng(8), 6, 5, 3)
    for name, arr in [("hwc", hwc), ("chw", hwc.transpose(2, 0, 1))]:
        np.save(tmp_path / f"{name}.npy", arr)
        got, note = rt.load_image(tmp_path / f"{name}.npy", (6, 5))
        assert note is None and np.array_equal(got, hwc.transpose(2, 0, 1)), name
    # Ambiguous shapes: the accelerator's (H, W) decides which axis holds the channels.
    cube = _pixels(np.random.default_rng(12), 4, 4, 4)
    np.save(tmp_path / "cube.npy", cube)
    assert np.array_equal(rt.load_image(tmp_path / "cube.npy", (4, 4), channels=4)[0], cube.transpose(2, 0, 1))
    np.save(tmp_path / "small.npy", hwc[:2, :3].transpose(2, 0, 1))  # CHW (3, 2, 3): its last axis looks like C
    assert np.array_equal(rt.load_image(tmp_path / "small.npy", (2, 3))[0], hwc[:2, :3].transpose(2, 0, 1))
    np.save(tmp_path / "gray.npy", hwc[:, :, 0])
    got, note = rt.load_image(tmp_path / "gray.npy", (6, 5))
    assert np.array_equal(got, np.repeat(hwc[None, :, :, 0], 3, 0))
    assert note == f"{tmp_path / 'gray.npy'} is grayscale: replicated to 3 channels"
    _, note = rt.load_image(tmp_path / "gray.npy", (3, 5))  # two things done: both said, in order
    assert note == (f"{tmp_path / 'gray.npy'} is grayscale: replicated to 3 channels; {tmp_path / 'gray.npy'} is "
                    "5x6, the accelerator takes 5x3: resized (PIL bilinear)")
    four = _pixels(np.random.default_rng(9), 6, 5, 4)
    np.save(tmp_path / "four.npy", four)
    got, note = rt.load_image(tmp_path / "four.npy", (6, 5), channels=4)  # a 4-channel model takes it as is
    assert note is None and np.array_equal(got, four.transpose(2, 0, 1))
    for n in (2, 4):
        np.save(tmp_path / f"c{n}.npy", four[:, :, :n])
        with pytest.raises(rt.ImageError, match=rf"c{n}.npy has {n} channels, the model takes 3"):
            rt.load_image(tmp_path / f"c{n}.npy", (6, 5))
    np.save(tmp_path / "float.npy", hwc.astype(np.float32))
    with pytest.raises(rt.ImageError, match="float.npy holds float32 values; image arrays must be uint8"):
        rt.load_image(tmp_path / "float.npy", (6, 5))


def test_image_files_for_other_channel_counts(tmp_path: Path, no_pil: None) -> None:
    path = tmp_path / "rgba.png"
    _write_png(path, _pixels(np.random.default_rng(10), 4, 4, 4), 6, [0] * 4)
    with pytest.raises(rt.ImageError, match="rgba.png has 4 channels, the model takes 2"):
        rt.load_image(path, (4, 4), channels=2)


def test_unknown_and_missing_files(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(rt.ImageError, match=r"notes.txt: not an image the runtime reads \(.png, .jpg"):
        rt.load_image(tmp_path / "notes.txt", (8, 8))
    with pytest.raises(rt.ImageError, match="image .*gone.png does not exist"):
        rt.load_image(tmp_path / "gone.png", (8, 8))


def test_list_images(tmp_path: Path) -> None:
    for name in ["b.jpg", "a.PNG", "c.npy", "d.txt", "e.bmp", "A2.jpeg"]:
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "sub.png").mkdir()  # a folder named like an image is not one
    assert [p.name for p in rt.list_images(tmp_path)] == ["A2.jpeg", "a.PNG", "b.jpg", "c.npy", "e.bmp"]
    assert all(p.parent == tmp_path for p in rt.list_images(tmp_path))


def test_list_images_errors(tmp_path: Path) -> None:
    with pytest.raises(rt.ImageError, match=f"image folder {tmp_path / 'nope'} does not exist"):
        rt.list_images(tmp_path / "nope")
    (tmp_path / "file.png").write_bytes(b"")
    with pytest.raises(rt.ImageError, match="file.png is not a folder"):
        rt.list_images(tmp_path / "file.png")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("no images here")
    with pytest.raises(rt.ImageError, match=f"{empty} holds no image: the runtime reads .png, .jpg, .jpeg, .bmp, "
                                            ".npy files"):
        rt.list_images(empty)
    assert issubclass(rt.ImageError, ValueError)


_ISOLATED = isolated_script("images", f"""
arr, note = mod.load_image(mod.list_images(sys.argv[2])[0], (9, 11))
{LEAKED}
print(arr.shape, arr.astype("int64").sum(), note, leaked)
""")


def test_imports_only_stdlib_and_numpy(tmp_path: Path) -> None:
    hwc = _pixels(np.random.default_rng(11), 9, 11, 3)
    (tmp_path / "imgs").mkdir()
    _write_png(tmp_path / "imgs" / "x.png", hwc, 2, [r % 5 for r in range(9)])
    out = subprocess.run([sys.executable, "-I", "-c", _ISOLATED, str(RUNTIME), str(tmp_path / "imgs")],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"(3, 9, 11) {int(hwc.astype(np.int64).sum())} None []"
