"""The C++ kernel ``qdet_mvau`` (hls/cpp/kernels/qdet_mvau.hpp) against FINN's MVAU python execution.

The cases are the RTL bench's (sim/tb/mvau.py, the seed of tests/sim/test_mvau.py): 24 random legal parameter sets
(every input type of 1..8 bits and both signs, W_BITS 2..8, STEPS 0/1/3/7/15, SIMD and PE of 1, full and between)
plus the real graphs' four MVAU shapes. Each becomes one kernel instance with the RTL parameter map, the weight and
threshold arrays in the memory files' layout (hls.gen.memfiles), the bench's input beats and FINN's output beats
as the expected words; every case is called once on all its vectors, and those with an even vector count and an
even index also twice on half of them (a second call on the same instance must work: no state kept between
frames). All cases compile into one program (tests/hls/cpp/harness.py). A deliberately wrong weight must be
caught, naming its case."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.hls.cpp.harness import require_kernel_tools

SEED = 20261123  # tests/sim/test_mvau.py's: the C++ kernel sees exactly the cases the RTL kernel sees
N_RANDOM = 24


def kernel_case(i: int, case, frames: int):
    """The KernelCase of bench case ``case``: the bench's RTL parameters plus the beats of one of ``frames``
    frames, the arrays of the W_FILE/T_FILE layouts, the bench's input words and FINN's output words."""
    from hls.gen.memfiles import threshold_lanes, weight_lanes
    from sim.tb import mvau
    from tests.hls.cpp.harness import KernelCase

    p = case.params
    words_in = mvau.input_words(case)
    words_out = mvau.output_words(p, mvau.finn_reference(case))
    assert len(words_in) % frames == 0 and len(words_out) % frames == 0
    params = p.hdl(Path(f"mvau{i}_w.mem"), Path(f"mvau{i}_t.mem") if p.steps else None)
    params.update(W_FILE=f"mvau{i}_w.mem", T_FILE=f"mvau{i}_t.mem" if p.steps else "",
                  IN_BEATS=len(words_in) // frames, OUT_BEATS=len(words_out) // frames)
    arrays = {"weights": weight_lanes(case.weights, p.pe, p.simd)}
    if p.steps:
        arrays["thresholds"] = threshold_lanes(case.thresholds, p.pe)
    return KernelCase(label=f"mvau{i} x{frames} {p.label()}", kernel="qdet_mvau", params=params,
                      inputs=[(p.simd * p.in_bits, words_in)], outputs=[(p.pe * p.out_bits, words_out)],
                      frames=frames, arrays=arrays)


@pytest.fixture(scope="module")
def bench_cases():
    require_kernel_tools(finn=True)
    from sim.tb import mvau

    return mvau.sample_cases(SEED, N_RANDOM)


@pytest.fixture(scope="module")
def kernel_cases(bench_cases):
    """One KernelCase per bench case; even-indexed cases with an even vector count run as two frames."""
    out = []
    for i, case in enumerate(bench_cases):
        v = case.inputs.shape[0]
        out.append(kernel_case(i, case, 2 if v % 2 == 0 and i % 2 == 0 else 1))
    return out


def test_cases_cover_the_brief(bench_cases, kernel_cases) -> None:
    """At least 20 random legal sets, the real graphs' shapes, both activation kinds, and two-frame runs."""
    from sim.tb import mvau

    ps = [c.params for c in bench_cases]
    assert len(ps) == N_RANDOM + len(mvau.REAL_SHAPES) + len(mvau.PACKING_CORNERS) and N_RANDOM >= 20
    for shape in mvau.REAL_SHAPES:
        assert any((p.mw, p.mh, p.pe, p.simd) == (shape["mw"], shape["mh"], shape["pe"], shape["simd"]) for p in ps)
    assert {p.steps for p in ps} >= {0, 1, 3, 7, 15}
    assert {(p.in_bits, p.in_signed) for p in ps} >= {(b, s) for b in range(1, 9) for s in (False, True)}
    assert sum(c.frames == 2 for c in kernel_cases) >= 5


def test_mvau_matches_finn(kernel_cases, tmp_path: Path) -> None:
    """Every case's output beats equal FINN's, exactly as many as FINN's (one compile for all cases)."""
    from tests.hls.cpp.harness import check_cases

    check_cases(kernel_cases, tmp_path)


def test_wrong_weight_is_caught(bench_cases, kernel_cases, tmp_path: Path) -> None:
    """One weight changed by one (in a case without activation, at an input element that is nonzero in some
    vector, so the accumulator changes): check_cases fails, naming that case and no other."""
    from tests.hls.cpp.harness import KernelCase, check_cases

    i = next(i for i, c in enumerate(bench_cases)
             if c.params.steps == 0 and (c.inputs[:, 0] != 0).any() and c.params.mw * c.params.mh <= 256)
    good = kernel_cases[i]
    w = good.arrays["weights"].copy()
    # Line 0, lane 0 is W[0][0]: it multiplies input element 0 into channel 0.
    w_max = (1 << (bench_cases[i].params.w_bits - 1)) - 1
    w[0, 0] = w[0, 0] + 1 if w[0, 0] < w_max else w[0, 0] - 1
    bad = KernelCase(label=good.label + " (wrong weight)", kernel=good.kernel, params=good.params,
                     inputs=good.inputs, outputs=good.outputs, frames=good.frames, arrays={**good.arrays, "weights": w})
    other = next(c for j, c in enumerate(kernel_cases) if j != i and c.params["MW"] * c.params["MH"] <= 256)
    with pytest.raises(AssertionError) as err:
        check_cases([other, bad], tmp_path)
    assert "1 of 2 cases fail" in str(err.value) and f"{bad.label}: port 0" in str(err.value)
    assert f"{other.label}:" not in str(err.value)
