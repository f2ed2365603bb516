"""boards/runtime/decode.py, the numpy decode shipped to boards, against the torch decode and NMS of quant_models
(the independent reference): same detections, same order, same errors; and it imports nothing but numpy."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.boards.runtime.fakes import LEAKED, isolated_script
import torch

from boards.runtime import decode as rt
from quant_models import decode as ref
from quant_models import nms as ref_nms

RUNTIME = Path(rt.__file__).parent

# Logits whose sigmoid every float32 implementation gets exactly (0 -> 0.5, 20 -> 1.0; -20 -> ~2e-9 only ever
# feeds sub-threshold scores): the decode is then bit-identical, whatever the exp kernel.
EXACT = np.array([-20.0, 0.0, 20.0], dtype=np.float32)


TINYDET = {"grids": [(8, 8)], "anchors": [((0.1, 0.15), (0.3, 0.25), (0.6, 0.7))], "size": (128, 128)}
TINYYOLO = {"grids": [(4, 6), (8, 12)], "anchors": [((0.35, 0.4), (0.6, 0.5), (0.9, 0.8)),
                                                     ((0.05, 0.08), (0.12, 0.1), (0.2, 0.3))], "size": (128, 192)}


def _maps(rng: np.random.Generator, net: dict, num_classes: int, batch: int, exact: bool = False) -> list[np.ndarray]:
    """Random head maps for ``net``: normal logits (scaled so scores spread over (0, 1)), or with ``exact``
    draws from :data:`EXACT` (box terms from its non-negative part, so boxes are 1 or 4 times the anchors)."""
    maps = []
    for (gh, gw), anchors in zip(net["grids"], net["anchors"]):
        shape = (batch, len(anchors), 5 + num_classes, gh, gw)
        if exact:
            m = rng.choice(EXACT, shape)
            m[:, :, :4] = rng.choice(EXACT[1:], m[:, :, :4].shape)
        else:
            m = rng.normal(0.0, 2.0, shape)
        maps.append(m.reshape(batch, -1, gh, gw).astype(np.float32))
    return maps


def _torch_decode(maps: list[np.ndarray], net: dict, num_classes: int, cfg: rt.DecodeConfig) -> list:
    return ref.decode_heads([torch.from_numpy(m) for m in maps], net["anchors"], num_classes, net["size"],
                            ref.DecodeConfig(**vars(cfg)))


def _check_types(d: rt.Detections) -> None:
    assert d.boxes.dtype == np.float32 and d.scores.dtype == np.float32 and d.labels.dtype == np.int64
    assert d.boxes.shape == (len(d), 4) and d.labels.shape == d.scores.shape == (len(d),)


def test_config_defaults_are_torchs() -> None:
    assert vars(rt.DecodeConfig()) == vars(ref.DecodeConfig())


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("net", [TINYDET, TINYYOLO], ids=["one-head", "two-heads"])
@pytest.mark.parametrize("num_classes", [1, 3, 20])
def test_random_heads_match_torch(seed: int, net: dict, num_classes: int) -> None:
    rng = np.random.default_rng(seed)
    maps = _maps(rng, net, num_classes, batch=2)
    # The defaults keep hundreds to thousands of candidates (the pre_nms_top_k cut is exercised with 20 classes);
    # a high threshold and a tight top-k are the deployment-style settings.
    for cfg in (rt.DecodeConfig(), rt.DecodeConfig(score_threshold=0.3, iou_threshold=0.45, pre_nms_top_k=200)):
        ours, theirs = rt.decode_heads(maps, net["anchors"], num_classes, net["size"], cfg), _torch_decode(
            maps, net, num_classes, cfg)
        assert len(ours) == len(theirs) == 2
        for o, t in zip(ours, theirs):
            _check_types(o)
            assert len(o) == t.scores.shape[0] > 0
            np.testing.assert_array_equal(o.labels, t.labels.numpy())
            # numpy's and torch's float32 exp are different SIMD kernels that disagree by an ulp on some inputs,
            # so scores and boxes agree to rounding, not bit for bit: an ulp of a 192-pixel coordinate is 1.5e-5.
            assert np.allclose(o.scores, t.scores.numpy(), rtol=1e-5, atol=1e-5)
            assert np.allclose(o.boxes, t.boxes.numpy(), rtol=1e-5, atol=1e-4)
            assert o.boxes.min() >= 0 and (o.boxes[:, [0, 2]] <= net["size"][1]).all()
            assert (o.boxes[:, [1, 3]] <= net["size"][0]).all()


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("net", [TINYDET, TINYYOLO], ids=["one-head", "two-heads"])
@pytest.mark.parametrize("num_classes", [1, 4])
def test_ties_and_overlaps_match_torch_exactly(seed: int, net: dict, num_classes: int) -> None:
    """Scores in {0.25, 0.5, 1} (ties everywhere) and boxes 1-4x the anchors (heavy overlaps): with identical
    inputs the kept set, its order (ties: lower candidate index first) and the values are identical."""
    maps = _maps(np.random.default_rng(seed), net, num_classes, batch=2, exact=True)
    cfg = rt.DecodeConfig(pre_nms_top_k=10**6, max_detections=10**6)  # no top-k cut: torch.topk is not involved
    ours, theirs = rt.decode_heads(maps, net["anchors"], num_classes, net["size"], cfg), _torch_decode(
        maps, net, num_classes, cfg)
    # A threshold equal to a score: "above" is strict, so the 0.25 candidates go.
    at = rt.DecodeConfig(score_threshold=0.25, pre_nms_top_k=10**6, max_detections=10**6)
    for o, t in zip(rt.decode_heads(maps, net["anchors"], num_classes, net["size"], at),
                    _torch_decode(maps, net, num_classes, at)):
        assert len(o) == t.scores.shape[0] > 0 and o.scores.min() == 0.5
        np.testing.assert_array_equal(o.boxes, t.boxes.numpy())
    # Candidates per image: obj and cls logits both >= 0 (the -20 ones score below the threshold).
    candidates = sum(((m[:, :, 4:5] >= 0) & (m[:, :, 5:] >= 0)).sum(axis=(1, 2, 3, 4))
                     for m in (x.reshape(2, len(a), 5 + num_classes, *x.shape[2:])
                               for x, a in zip(maps, net["anchors"])))
    for o, t, n in zip(ours, theirs, candidates):
        _check_types(o)
        assert len(np.unique(o.scores)) <= 3 < len(o)  # really tie-heavy
        assert len(o) < 0.8 * n  # and NMS really suppressed boxes
        np.testing.assert_array_equal(o.labels, t.labels.numpy())
        np.testing.assert_array_equal(o.scores, t.scores.numpy())
        np.testing.assert_array_equal(o.boxes, t.boxes.numpy())


def _stable_topk(values: torch.Tensor, k: int, *args, **kwargs):
    """torch.topk with the order of equal values pinned (lower index first), as the numpy decode documents."""
    return torch.return_types.topk((values[idx := torch.sort(values, descending=True, stable=True).indices[:k]],
                                    idx))


@pytest.mark.parametrize("seed", [0, 1])
def test_top_k_cut_on_ties_is_stable(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """torch.topk leaves the order of equal scores unspecified; the numpy cut keeps the lower candidate index
    first, i.e. equals torch's decode once its topk is made stable."""
    maps = _maps(np.random.default_rng(seed), TINYYOLO, 3, batch=1, exact=True)
    cfg = rt.DecodeConfig(pre_nms_top_k=40, max_detections=25)
    ours = rt.decode_heads(maps, TINYYOLO["anchors"], 3, TINYYOLO["size"], cfg)[0]
    monkeypatch.setattr(torch, "topk", _stable_topk)
    theirs = _torch_decode(maps, TINYYOLO, 3, cfg)[0]
    assert 0 < len(ours) <= 25
    np.testing.assert_array_equal(ours.labels, theirs.labels.numpy())
    np.testing.assert_array_equal(ours.scores, theirs.scores.numpy())
    np.testing.assert_array_equal(ours.boxes, theirs.boxes.numpy())


def _random_boxes(rng: np.random.Generator, n: int, integer: bool) -> np.ndarray:
    xy = rng.uniform(0, 50, (n, 2))
    wh = rng.uniform(0, 30, (n, 2))
    boxes = np.concatenate([xy, xy + wh], 1)
    return (np.round(boxes) if integer else boxes).astype(np.float32)


@pytest.mark.parametrize("seed", range(6))
def test_nms_matches_torch_exactly(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 300))
    boxes = _random_boxes(rng, n, integer=seed % 2 == 0)  # integer corners: exact IoU ties at the threshold
    scores = rng.choice(np.linspace(0.1, 1, 7), n).astype(np.float32)  # few distinct scores: many ties
    labels = rng.integers(0, 1 + seed, n)
    tb, ts, tl = torch.from_numpy(boxes), torch.from_numpy(scores), torch.from_numpy(labels)
    np.testing.assert_array_equal(rt.box_iou(boxes, boxes), ref_nms.box_iou(tb, tb).numpy())
    for thr in (0.0, 0.3, 0.5, 0.7, 1.0):
        keep = rt.batched_nms(boxes, scores, labels, thr)
        assert keep.dtype == np.int64
        np.testing.assert_array_equal(keep, ref_nms.batched_nms(tb, ts, tl, thr).numpy())
        np.testing.assert_array_equal(rt.nms(boxes, scores, thr), ref_nms.nms(tb, ts, thr).numpy())


def test_box_iou_promotes_like_torch() -> None:
    a = np.array([[0, 0, 3, 3], [1, 1, 1, 1]])  # int64, and a degenerate box
    iou = rt.box_iou(a, a)
    expected = ref_nms.box_iou(torch.from_numpy(a), torch.from_numpy(a))
    assert iou.dtype == np.float32 and expected.dtype == torch.float32
    np.testing.assert_array_equal(iou, expected.numpy())
    assert iou[1, 1] == 0  # zero-area union: 0, not NaN
    assert rt.box_iou(a.astype(np.float64), a).dtype == np.float64


def test_empty_inputs() -> None:
    keep = rt.batched_nms(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64), 0.5)
    assert keep.shape == (0,) and keep.dtype == np.int64
    assert rt.box_iou(np.zeros((0, 4)), np.zeros((3, 4))).shape == (0, 3)
    quiet = [np.full((2, 3 * 7, 8, 8), -20.0, np.float32)]  # every score ~1e-18: no candidate at all
    for dets in rt.decode_heads(quiet, TINYDET["anchors"], 2, TINYDET["size"]):
        _check_types(dets)
        assert len(dets) == 0 and dets.to_dict() == {"boxes": [], "scores": [], "labels": []}


def test_errors_match_torch() -> None:
    bad = np.zeros((1, 3 * 8, 4, 4), np.float32)  # 3 anchors x (5 + 4) = 27 channels expected
    with pytest.raises(ValueError, match=r"head has 24 channels, expected 3 anchors x \(5 \+ 4 classes\)") as ours:
        rt.decode_heads([bad], TINYDET["anchors"], 4, (64, 64))
    with pytest.raises(ValueError) as theirs:
        ref.decode_heads([torch.from_numpy(bad)], TINYDET["anchors"], 4, (64, 64))
    assert str(ours.value) == str(theirs.value)
    with pytest.raises(ValueError, match="2 head maps but 1 anchor sets"):
        rt.decode_heads([bad, bad], TINYDET["anchors"], 4, (64, 64))
    with pytest.raises(ValueError, match=r"\(B, channels, H, W\)"):
        rt.decode_heads([bad[0]], TINYDET["anchors"], 4, (64, 64))
    with pytest.raises(ValueError, match="batch size"):
        rt.decode_heads([np.zeros((1, 27, 4, 4)), np.zeros((2, 27, 2, 2))], TINYDET["anchors"] * 2, 4, (64, 64))
    boxes, scores = np.zeros((3, 4)), np.zeros(3)
    with pytest.raises(ValueError, match=r"boxes must have shape \(N, 4\)"):
        rt.nms(np.zeros((3, 5)), scores, 0.5)
    with pytest.raises(ValueError, match="one entry per box"):
        rt.batched_nms(boxes, np.zeros(2), np.zeros(3), 0.5)
    with pytest.raises(ValueError, match="labels must be"):
        rt.batched_nms(boxes, scores, np.zeros(2), 0.5)
    with pytest.raises(ValueError, match=r"iou_threshold must be in \[0, 1\]"):
        rt.batched_nms(boxes, scores, np.zeros(3), 1.5)


def test_to_dict_is_json() -> None:
    dets = rt.decode_heads(_maps(np.random.default_rng(5), TINYDET, 3, batch=1), TINYDET["anchors"], 3,
                           TINYDET["size"], rt.DecodeConfig(score_threshold=0.2))[0]
    back = json.loads(json.dumps(dets.to_dict()))
    assert len(back["boxes"]) == len(back["scores"]) == len(back["labels"]) == len(dets) > 0
    np.testing.assert_array_equal(np.asarray(back["boxes"], np.float32), dets.boxes)  # float32 -> float64 exact
    np.testing.assert_array_equal(np.asarray(back["scores"], np.float32), dets.scores)
    assert back["labels"] == dets.labels.tolist() and all(type(v) is int for v in back["labels"])


# Imports decode.py as qdet_runtime.decode (as on a board) in a Python where torch and PIL cannot be imported.
_ISOLATED = isolated_script("decode", f"""
import numpy as np
dets = mod.decode_heads([np.zeros((1, 6, 2, 2), np.float32)], [[(0.5, 0.5)]], 1, (64, 64))
{LEAKED}
print(len(dets[0]), dets[0].boxes[0].tolist(), leaked)
""")


def test_imports_only_stdlib_and_numpy(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-I", "-c", _ISOLATED, str(RUNTIME)], cwd=tmp_path, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["4", "[0.0,", "0.0,", "32.0,", "32.0]", "[]"]
