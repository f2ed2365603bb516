"""The C++ kernel ``qdet_maxpool`` (hls/cpp/kernels/qdet_maxpool.hpp) against FINN's Pool (MaxPool) python
execution.

The cases are the RTL bench's (tests/sim/test_maxpool.py, its seed): 24 random legal sets (C of 1..64, PE a divisor,
windows 1x1 to 3x3, 1..8-bit signed and unsigned elements, 1..4 x 1..4 output pixels), 2-3 frames each, the kernel
called once per frame. The bench draws a random im2col tensor, takes the maxima from FINN's python execution, and
streams the tensor in the depthwise SWG hardware order (per pixel: channel fold, window position, PE lanes),
which FINN's python Pool does not read (hls/rtl/README.md). All cases compile into one program
(tests/hls/cpp/harness.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.hls.cpp.harness import require_kernel_tools

SEED = 9  # tests/sim/test_maxpool.py's
N_CASES = 24


@pytest.fixture(scope="module")
def kernel_cases():
    require_kernel_tools(finn=True)
    from tests.hls.cpp.harness import KernelCase
    from tests.sim.test_maxpool import PARAMS, _instances

    out = []
    for i, inst in enumerate(_instances(N_CASES, SEED)):
        out_beats = inst["OUT_PIXELS"] * inst["C"] // inst["PE"]
        in_beats = out_beats * inst["K"]
        frames = len(inst["in"]) // in_beats
        assert frames * in_beats == len(inst["in"]) and frames * out_beats == len(inst["out"])
        params = {**{k: inst[k] for k in PARAMS}, "IN_BEATS": in_beats, "OUT_BEATS": out_beats}
        width = inst["PE"] * inst["BITS"]
        out.append(KernelCase(label=f"maxpool{i} x{frames} {inst['name']}", kernel="qdet_maxpool", params=params,
                              inputs=[(width, inst["in"])], outputs=[(width, inst["out"])], frames=frames))
    return out


def test_cases_cover_the_brief(kernel_cases) -> None:
    """At least 20 sets of several frames; signed and unsigned; K = 1 and larger windows; PE of 1, C and between."""
    ps = [c.params for c in kernel_cases]
    assert len(ps) >= 20 and all(c.frames >= 2 for c in kernel_cases)
    assert {p["SIGNED"] for p in ps} == {0, 1} and 1 in {p["K"] for p in ps} and max(p["K"] for p in ps) >= 6
    assert any(p["PE"] == 1 < p["C"] for p in ps) and any(p["PE"] == p["C"] > 1 for p in ps)
    assert any(1 < p["PE"] < p["C"] for p in ps)


def test_maxpool_matches_finn(kernel_cases, tmp_path: Path) -> None:
    """Every case's output beats equal FINN's, exactly as many (one compile for all cases)."""
    from tests.hls.cpp.harness import check_cases

    check_cases(kernel_cases, tmp_path)
