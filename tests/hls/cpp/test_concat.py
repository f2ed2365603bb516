"""The C++ kernel ``qdet_concat`` (hls/cpp/kernels/qdet_concat.hpp) against FINN's StreamingConcat python
execution (two inputs, channel axis).

The cases are the RTL bench's (sim/tb/concat.py, the seed of tests/sim/test_concat.py): 24 random legal sets (C0
and C1 multiples of a common g of 1..8, SIMD of 1, g and between, equal and mixed input types with both range
ends of each, the output type FINN's: the smallest holding both inputs' ranges, so an unsigned input is
zero-extended into a signed output), 2-3 frames each, the kernel called once per frame. Expected: FINN's
concatenation, SIMD channels per beat. All cases, and the starve probes below, compile into one program
(tests/hls/cpp/harness.py).

A second test checks the read order: in1 must not be read before a pixel's in0 part is through (the RTL's
unselected input is never ready), so with in0 starved in1 is not touched."""

from __future__ import annotations


import pytest

from tests.hls.cpp.harness import require_kernel_tools

SEED = 20261203  # tests/sim/test_concat.py's
N_CASES = 24


@pytest.fixture(scope="module")
def bench_cases():
    require_kernel_tools(finn=True)
    from sim.tb import concat

    return concat.sample_cases(SEED, N_CASES)


@pytest.fixture(scope="module")
def kernel_cases(bench_cases):
    from sim.tb import concat
    from sim.tb.streams import fold_words
    from tests.hls.cpp.harness import KernelCase

    out = []
    for i, case in enumerate(bench_cases):
        p = case.params()
        s = case.simd
        frames, pixels, _ = case.in0.shape
        w0 = fold_words(case.in0.reshape(-1, case.c0), s, p["IN0_BITS"])
        w1 = fold_words(case.in1.reshape(-1, case.c1), s, p["IN1_BITS"])
        res = fold_words(concat.finn_reference(case).reshape(-1, case.c0 + case.c1), s, p["OUT_BITS"])
        params = {**p, "IN_BEATS": pixels * case.c0 // s, "OUT_BEATS": pixels * (case.c0 + case.c1) // s}
        out.append(KernelCase(label=f"concat{i} {case.label()}", kernel="qdet_concat", params=params,
                              inputs=[(s * p["IN0_BITS"], w0), (s * p["IN1_BITS"], w1)],
                              outputs=[(s * p["OUT_BITS"], res)], frames=frames))
    return out


def test_cases_cover_the_brief(bench_cases) -> None:
    """At least 20 sets of several frames; SIMD of 1 and more; C0 != C1; every signedness mix."""
    from sim.tb.streams import dtype_range

    assert len(bench_cases) >= 20 and all(c.in0.shape[0] >= 2 for c in bench_cases)
    assert any(c.simd == 1 for c in bench_cases) and any(c.simd > 1 for c in bench_cases)
    assert any(c.c0 != c.c1 for c in bench_cases)
    mixes = {(dtype_range(c.dtypes[0])[3], dtype_range(c.dtypes[1])[3]) for c in bench_cases}
    assert mixes == {(False, False), (False, True), (True, False), (True, True)}


@pytest.fixture(scope="module")
def starve_probes(kernel_cases):
    """Per case, frame 0 with only the first pixel's in0 beats but one offered (in1 whole)."""
    from tests.hls.cpp.harness import KernelCase

    probes = []
    for case in kernel_cases:
        f0 = case.params["C0"] // case.params["SIMD"]
        (w0, in0), (w1, in1) = case.inputs
        probes.append(KernelCase(label=case.label + " (in0 starved)", kernel="qdet_concat", params=case.params,
                                 inputs=[(w0, in0[:f0 - 1]), (w1, in1)],
                                 outputs=[(case.outputs[0][0], case.outputs[0][1][:f0 - 1])], frames=1))
    return probes


@pytest.fixture(scope="module")
def results(kernel_cases, starve_probes, tmp_path_factory: pytest.TempPathFactory):
    """The cases and the starve probes, all in one program (one compile)."""
    from tests.hls.cpp.harness import run_cases

    return run_cases(list(kernel_cases) + list(starve_probes), tmp_path_factory.mktemp("concat"))


def test_concat_matches_finn(kernel_cases, results) -> None:
    """Every case's output beats equal FINN's, exactly as many."""
    from tests.hls.cpp.test_fork import failures

    bad = failures(kernel_cases, results[:len(kernel_cases)])
    assert not bad, f"{len(bad)} of {len(kernel_cases)} cases fail:\n" + "\n".join(bad)


def test_in1_waits_for_the_pixels_in0_part(kernel_cases, starve_probes, results) -> None:
    """The kernel emits the in0 beats it got, then waits on in0, with every in1 beat still in its source (the in1
    stream stays full: nothing was taken from it)."""
    for probe, result in zip(starve_probes, results[len(kernel_cases):]):
        assert result.outputs == [list(probe.outputs[0][1])], probe.label
        assert "waits to read from empty stream 'in0'" in result.error, probe.label
        assert "'in1' (depth 2, 2 beats held)" in result.error, probe.label
