"""The C++ kernel ``qdet_add`` (hls/cpp/kernels/qdet_add.hpp) against FINN's ElementwiseAdd python execution.

The cases are the RTL bench's (sim/tb/add.py, the seed of tests/sim/test_add.py): 24 random legal sets (operand
types of 1..8 bits in every signedness mix, INT4 + UINT4 among them where FINN's own output type is one bit short,
PE of 1, C and between, outputs at the width that holds every sum and wider), both operands streamed with equal
shapes, the four extreme sums in every case, 2-3 frames each, the kernel called once per frame. Expected: FINN's
sums in the output type, PE per beat. All cases compile into one program (tests/hls/cpp/harness.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.hls.cpp.harness import require_kernel_tools

SEED = 20261202  # tests/sim/test_add.py's
N_CASES = 24


@pytest.fixture(scope="module")
def bench_cases():
    require_kernel_tools(finn=True)
    from sim.tb import add

    return add.sample_cases(SEED, N_CASES)


@pytest.fixture(scope="module")
def kernel_cases(bench_cases):
    from sim.tb import add
    from sim.tb.streams import fold_words
    from tests.hls.cpp.harness import KernelCase

    out = []
    for i, case in enumerate(bench_cases):
        p = case.params()
        frames, pixels, c = case.lhs.shape
        beats = pixels * c // case.pe
        lhs = fold_words(case.lhs.reshape(-1, c), case.pe, p["LHS_BITS"])
        rhs = fold_words(case.rhs.reshape(-1, c), case.pe, p["RHS_BITS"])
        res = fold_words(add.finn_reference(case).reshape(-1, c), case.pe, p["OUT_BITS"])
        out.append(KernelCase(label=f"add{i} {case.label()}", kernel="qdet_add",
                              params={**p, "IN_BEATS": beats, "OUT_BEATS": beats},
                              inputs=[(case.pe * p["LHS_BITS"], lhs), (case.pe * p["RHS_BITS"], rhs)],
                              outputs=[(case.pe * p["OUT_BITS"], res)], frames=frames))
    return out


def test_cases_cover_the_brief(bench_cases) -> None:
    """At least 20 sets of several frames, every signedness mix, PE of 1, C and between."""
    from sim.tb.streams import dtype_range

    assert len(bench_cases) >= 20 and all(c.lhs.shape[0] >= 2 for c in bench_cases)
    mixes = {(dtype_range(c.lhs_dtype)[3], dtype_range(c.rhs_dtype)[3]) for c in bench_cases}
    assert mixes == {(False, False), (False, True), (True, False), (True, True)}
    assert any(c.pe == 1 < c.c for c in bench_cases) and any(c.pe == c.c > 1 for c in bench_cases)
    assert any(1 < c.pe < c.c for c in bench_cases)


def test_add_matches_finn(kernel_cases, tmp_path: Path) -> None:
    """Every case's output beats equal FINN's sums, exactly as many (one compile for all cases)."""
    from tests.hls.cpp.harness import check_cases

    check_cases(kernel_cases, tmp_path)
