"""The C++ kernel ``qdet_accpool`` (hls/cpp/kernels/qdet_accpool.hpp) against FINN's GlobalAccPool python
execution.

The cases are the RTL bench's (tests/sim/test_accpool.py, its seed): 24 one-node FINN GlobalAccPool graphs (maps
of 1x1 to 7x7, non-square, one row or column; C of 1..64 with PE of 1, C and between; 1..8-bit signed and unsigned
inputs), the kernel's parameters from the generator's view (hls.gen.pool.AccPoolParams: FINN's output type),
2-3 frames each (every third set starts with an all-minimum and an all-maximum frame), the kernel called once per
frame. Expected: FINN's per-frame channel sums in its output type. All cases compile into one program
(tests/hls/cpp/harness.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.hls.cpp.harness import require_kernel_tools

SEED = 3  # tests/sim/test_accpool.py's
N_CASES = 24


@pytest.fixture(scope="module")
def kernel_cases():
    require_kernel_tools(finn=True)
    from tests.hls.cpp.harness import KernelCase
    from tests.sim.test_accpool import _instances

    out = []
    for i, inst in enumerate(_instances(N_CASES, SEED)):
        p = inst["params"]
        out_beats = p["C"] // p["PE"]
        in_beats = p["PIXELS"] * out_beats
        frames = len(inst["in"]) // in_beats
        assert frames * in_beats == len(inst["in"]) and frames * out_beats == len(inst["out"])
        out.append(KernelCase(label=f"accpool{i} x{frames} {inst['name']}", kernel="qdet_accpool",
                              params={**p, "IN_BEATS": in_beats, "OUT_BEATS": out_beats},
                              inputs=[(inst["in_width"], inst["in"])], outputs=[(inst["out_width"], inst["out"])],
                              frames=frames))
    return out


def test_cases_cover_the_brief(kernel_cases) -> None:
    """At least 20 sets of several frames; signed and unsigned; one pixel and 49; PE of 1, C and between."""
    ps = [c.params for c in kernel_cases]
    assert len(ps) >= 20 and all(c.frames >= 2 for c in kernel_cases)
    assert {p["SIGNED"] for p in ps} == {0, 1} and {1, 49} <= {p["PIXELS"] for p in ps}
    assert any(p["PE"] == 1 < p["C"] for p in ps) and any(p["PE"] == p["C"] > 1 for p in ps)
    assert any(1 < p["PE"] < p["C"] for p in ps)


def test_accpool_matches_finn(kernel_cases, tmp_path: Path) -> None:
    """Every case's output beats equal FINN's, exactly as many (one compile for all cases)."""
    from tests.hls.cpp.harness import check_cases

    check_cases(kernel_cases, tmp_path)
