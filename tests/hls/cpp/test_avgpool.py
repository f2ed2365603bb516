"""The C++ kernel ``qdet_avgpool`` (hls/cpp/kernels/qdet_avgpool.hpp) against FINN's Pool (QuantAvgPool and
AccPool) python execution.

The cases are the RTL bench's (tests/sim/test_avgpool.py, its seed): 24 one-node FINN Pool graphs (windows 1x1 to
7x7, C of 1..16 with PE of 1, C and between, 1..8-bit signed and unsigned inputs, QuantAvgPool outputs of 1..8
bits and AccPool with FINN's minimised accumulator type), the kernel's parameters from the generator's view of
the node (hls.gen.pool.AvgPoolParams: FINN's shift rule), 2-3 frames each (uniform, range-end and all-minimum
values), the kernel called once per frame. The bench streams FINN's im2col input in the depthwise SWG hardware
order; the expected beats are FINN's outputs in the output type. All cases compile into one program
(tests/hls/cpp/harness.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.hls.cpp.harness import require_kernel_tools

SEED = 5  # tests/sim/test_avgpool.py's
N_CASES = 24


@pytest.fixture(scope="module")
def kernel_cases():
    require_kernel_tools(finn=True)
    from tests.hls.cpp.harness import KernelCase
    from tests.sim.test_avgpool import _instances

    out = []
    for i, inst in enumerate(_instances(N_CASES, SEED)):
        p = inst["params"]
        out_beats = p["OUT_PIXELS"] * p["C"] // p["PE"]
        in_beats = out_beats * p["K"]
        frames = len(inst["in"]) // in_beats
        assert frames * in_beats == len(inst["in"]) and frames * out_beats == len(inst["out"])
        out.append(KernelCase(label=f"avgpool{i} x{frames} {inst['name']} shift {p['SHIFT']}",
                              kernel="qdet_avgpool", params={**p, "IN_BEATS": in_beats, "OUT_BEATS": out_beats},
                              inputs=[(inst["in_width"], inst["in"])], outputs=[(inst["out_width"], inst["out"])],
                              frames=frames))
    return out


def test_cases_cover_the_brief(kernel_cases) -> None:
    """At least 20 sets of several frames; signed and unsigned; shifts of 0 and more; K = 1 and 49."""
    ps = [c.params for c in kernel_cases]
    assert len(ps) >= 20 and all(c.frames >= 2 for c in kernel_cases)
    assert {p["SIGNED"] for p in ps} == {0, 1} and {1, 49} <= {p["K"] for p in ps}
    assert any(p["SHIFT"] == 0 for p in ps) and any(p["SHIFT"] > 0 and p["SIGNED"] for p in ps)


def test_avgpool_matches_finn(kernel_cases, tmp_path: Path) -> None:
    """Every case's output beats equal FINN's, exactly as many (one compile for all cases)."""
    from tests.hls.cpp.harness import check_cases

    check_cases(kernel_cases, tmp_path)
