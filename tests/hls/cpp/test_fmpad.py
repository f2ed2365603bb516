"""The C++ kernel ``qdet_fmpad`` (hls/cpp/kernels/qdet_fmpad.hpp) against FINN's FMPadding python execution.

The cases are the RTL bench's (tests/sim/test_fmpad.py, its seed): 24 random legal sets (a 10x20x3 UINT8 image,
then 1..8 x 1..8 images of 1..64 channels, SIMD a divisor of C, 1..8-bit signed and unsigned elements, symmetric
and asymmetric padding of 0..3 on each side), each streaming 2-3 images back to back, the kernel called once per
image. Expected: FINN's padded images, folded SIMD channels per beat. All cases compile into one program
(tests/hls/cpp/harness.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.hls.cpp.harness import require_kernel_tools

SEED = 7  # tests/sim/test_fmpad.py's
N_CASES = 24


@pytest.fixture(scope="module")
def instances():
    require_kernel_tools(finn=True)
    from tests.sim.test_fmpad import _instances

    return _instances(N_CASES, SEED)


@pytest.fixture(scope="module")
def kernel_cases(instances):
    from tests.hls.cpp.harness import KernelCase
    from tests.sim.test_fmpad import PARAMS

    out = []
    for i, inst in enumerate(instances):
        cf = inst["C"] // inst["SIMD"]
        in_beats = inst["IMG_H"] * inst["IMG_W"] * cf
        out_beats = ((inst["IMG_H"] + inst["PAD_T"] + inst["PAD_B"]) * (inst["IMG_W"] + inst["PAD_L"] + inst["PAD_R"])
                     * cf)
        frames = len(inst["in"]) // in_beats
        assert frames * in_beats == len(inst["in"]) and frames * out_beats == len(inst["out"])
        params = {**{k: inst[k] for k in PARAMS}, "IN_BEATS": in_beats, "OUT_BEATS": out_beats}
        width = inst["SIMD"] * inst["BITS"]
        out.append(KernelCase(label=f"fmpad{i} x{frames} {inst['name']}", kernel="qdet_fmpad", params=params,
                              inputs=[(width, inst["in"])], outputs=[(width, inst["out"])], frames=frames))
    return out


def test_cases_cover_the_brief(kernel_cases) -> None:
    """At least 20 sets, each of several images; zero and nonzero padding on every side; SIMD of 1, C, between."""
    ps = [c.params for c in kernel_cases]
    assert len(ps) >= 20 and all(c.frames >= 2 for c in kernel_cases)
    for side in ("PAD_T", "PAD_L", "PAD_B", "PAD_R"):
        assert any(p[side] == 0 for p in ps) and any(p[side] > 1 for p in ps)
    assert any(p["SIMD"] == 1 < p["C"] for p in ps) and any(p["SIMD"] == p["C"] > 1 for p in ps)
    assert any(1 < p["SIMD"] < p["C"] for p in ps)


def test_fmpad_matches_finn(kernel_cases, tmp_path: Path) -> None:
    """Every case's output beats equal FINN's, exactly as many (one compile for all cases)."""
    from tests.hls.cpp.harness import check_cases

    check_cases(kernel_cases, tmp_path)
