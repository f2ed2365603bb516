"""Exact activation thresholds: the count of ``x >= t`` equals QONNX's own quantizer level, evaluated in the same
float type, for every value near every boundary, where FINN's float32 ``(k + 1/2) * s`` thresholds (which they
replace) are sometimes one off. float64 is the type the flow streamlines in; float32 shows the method holds there
too."""

from __future__ import annotations

import numpy as np
import pytest

from flows.transforms.exact_thresholds import ActQuant, exact_thresholds


def _qonnx_levels(x: np.ndarray, scale, bits: int, signed: bool, narrow: bool) -> np.ndarray:
    """QONNX's Quant execution (the reference) in x's float type, as integers: its output divided by the scale."""
    from qonnx.custom_op.general.quant import quant

    y = quant(x, x.dtype.type(scale), x.dtype.type(0), x.dtype.type(bits), signed, narrow, "ROUND")
    return np.round(y / x.dtype.type(scale)).astype(np.int64)


def _around(t: np.ndarray, ulps: int = 3) -> np.ndarray:
    """Every value of t's float type within ``ulps`` of each threshold."""
    out, up, down = [t], t, t
    for _ in range(ulps):
        up, down = np.nextafter(up, t.dtype.type(np.inf)), np.nextafter(down, t.dtype.type(-np.inf))
        out += [up, down]
    return np.concatenate([o.reshape(-1) for o in out])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("bits,signed,narrow", [(2, False, False), (4, False, False), (4, True, False),
                                                (8, True, True), (3, True, False), (8, False, False)])
def test_exact_thresholds_count_like_the_quantizer(bits, signed, narrow, dtype):
    rng = np.random.default_rng(bits * 10 + signed)
    lo = (-(1 << (bits - 1)) + int(narrow)) if signed else 0
    hi = ((1 << (bits - 1)) - 1) if signed else (1 << bits) - 1 - int(narrow)
    finn_wrong = 0
    # Arbitrary scales, and powers of two (where (k + 1/2) * s is an exact tie that half to even may round down).
    scales = np.concatenate([rng.uniform(1e-3, 2.0, 40), 2.0 ** rng.integers(-8, 2, 8)]).astype(np.float32)
    for scale in scales:
        t = exact_thresholds(ActQuant(np.asarray([scale]), lo, hi, "ROUND"), 1, dtype)[0]
        assert t.dtype == dtype and t.shape == (hi - lo,) and np.all(np.diff(t) > 0)
        finn = ((np.arange(hi - lo, dtype=np.float64) + lo + 0.5) * np.float64(scale)).astype(np.float32)
        x = _around(np.concatenate([t, finn.astype(dtype)]))
        want = _qonnx_levels(x, scale, bits, signed, narrow)
        got = lo + (x[:, None] >= t[None, :]).sum(axis=1)
        np.testing.assert_array_equal(got, want)
        finn_wrong += int((lo + (x[:, None] >= finn[None, :].astype(dtype)).sum(axis=1) != want).sum())
    assert finn_wrong > 0  # FINN's float32 (k + 1/2) * s thresholds do miss some: the test can tell the difference


def test_per_channel_scales_give_one_row_per_channel():
    scales = np.asarray([0.1, 0.37, 1.9], np.float32)
    t = exact_thresholds(ActQuant(scales, 0, 15, "ROUND"), 3)
    assert t.shape == (3, 15) and t.dtype == np.float64
    for c, s in enumerate(scales):
        x = _around(t[c])
        want = _qonnx_levels(x, s, 4, False, False)
        np.testing.assert_array_equal((x[:, None] >= t[c][None, :]).sum(axis=1), want)
