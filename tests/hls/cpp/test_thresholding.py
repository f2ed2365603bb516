"""The C++ kernel ``qdet_thresholding`` (hls/cpp/kernels/qdet_thresholding.hpp) against FINN's Thresholding python
execution.

The cases are the RTL bench's (sim/tb/thresholding.py, the seed of tests/sim/test_thresholding.py): 24 random legal
parameter sets (every input type of 1..8 bits and both signs, 1 to 15 steps, signed outputs with a nonzero
ACT_BIAS, PE of 1, full and between; real-valued thresholds that tie with inputs, fall between integers or lie
outside the input range) plus the bench's 255-step case. FINN is given the raw thresholds; the kernel's
threshold array is the generator's integer rule (hls.gen.ops.integer_thresholds: ceil, clipped to
[min_in, max_in + 1]) in the T_FILE layout (hls.gen.memfiles.threshold_lanes), so the run also checks that the
rule loses nothing. Every case is called once on all its pixels, and those with an even pixel count and an even
index also twice on half of them. All cases compile into one program (tests/hls/cpp/harness.py). A deliberately
wrong threshold must be caught, naming its case."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.hls.cpp.harness import require_kernel_tools

SEED = 20261124  # tests/sim/test_thresholding.py's: the C++ kernel sees exactly the cases the RTL kernel sees
N_RANDOM = 24


def threshold_array(case):
    """The kernel's thresholds: the generator's integer thresholds in the T_FILE line/lane layout."""
    from hls.gen.memfiles import threshold_lanes
    from hls.gen.ops import integer_thresholds

    p = case.params
    lo, hi = p.in_range()
    return threshold_lanes(integer_thresholds(case.thresholds, p.c, lo, hi), p.pe)


def kernel_case(i: int, case, frames: int):
    """The KernelCase of bench case ``case``: the bench's RTL parameters plus the beats of one of ``frames``
    frames, the threshold array, the bench's input words and FINN's output words."""
    from sim.tb import thresholding
    from tests.hls.cpp.harness import KernelCase

    p = case.params
    words_in = thresholding.input_words(case)
    words_out = thresholding.output_words(p, thresholding.finn_reference(case))
    assert len(words_in) % frames == 0 and len(words_out) % frames == 0
    params = p.hdl(Path(f"thr{i}_t.mem"))
    params.update(T_FILE=f"thr{i}_t.mem", IN_BEATS=len(words_in) // frames, OUT_BEATS=len(words_out) // frames)
    return KernelCase(label=f"thr{i} x{frames} {p.label()}", kernel="qdet_thresholding", params=params,
                      inputs=[(p.pe * p.in_bits, words_in)], outputs=[(p.pe * p.out_bits, words_out)],
                      frames=frames, arrays={"thresholds": threshold_array(case)})


@pytest.fixture(scope="module")
def bench_cases():
    require_kernel_tools(finn=True)
    from sim.tb import thresholding

    return thresholding.sample_cases(SEED, N_RANDOM)


@pytest.fixture(scope="module")
def kernel_cases(bench_cases):
    """One KernelCase per bench case; even-indexed cases with an even pixel count run as two frames."""
    out = []
    for i, case in enumerate(bench_cases):
        pixels = case.inputs.shape[0]
        out.append(kernel_case(i, case, 2 if pixels % 2 == 0 and i % 2 == 0 else 1))
    return out


def test_cases_cover_the_brief(bench_cases, kernel_cases) -> None:
    """At least 20 random legal sets plus the 255-step case, signed and unsigned outputs, two-frame runs; the
    threshold array is the RTL bench's T_FILE (two independently written sides of the storage rule)."""
    from hls.gen.memfiles import pack_words
    from sim.tb import thresholding

    ps = [c.params for c in bench_cases]
    assert len(ps) == N_RANDOM + 1 and N_RANDOM >= 20 and ps[-1].steps == 255
    assert {(p.in_bits, p.in_signed) for p in ps} >= {(b, s) for b in range(1, 9) for s in (False, True)}
    assert any(p.act_bias < 0 and p.out_signed for p in ps) and any(p.act_bias == 0 for p in ps)
    assert sum(c.frames == 2 for c in kernel_cases) >= 5
    for case in bench_cases:
        words = pack_words(threshold_array(case), case.params.in_bits + 1)
        assert [int(w, 16) for w in words] == thresholding.threshold_words(case), case.params.label()


def test_thresholding_matches_finn(kernel_cases, tmp_path: Path) -> None:
    """Every case's output beats equal FINN's, exactly as many as FINN's (one compile for all cases)."""
    from tests.hls.cpp.harness import check_cases

    check_cases(kernel_cases, tmp_path)


def test_wrong_threshold_is_caught(bench_cases, kernel_cases, tmp_path: Path) -> None:
    """Channel 0's first threshold raised above the input range in a case where some pixel's channel 0 reaches it
    (so that pixel's count drops by one): check_cases fails, naming that case and no other."""
    from tests.hls.cpp.harness import KernelCase, check_cases

    def reached(i: int) -> bool:
        return bool((bench_cases[i].inputs[:, 0] >= kernel_cases[i].arrays["thresholds"][0, 0]).any())

    i = next(i for i in range(N_RANDOM) if reached(i))
    good = kernel_cases[i]
    t = good.arrays["thresholds"].copy()
    t[0, 0] = bench_cases[i].params.in_range()[1] + 1  # line 0, lane 0 is T[0][0]
    bad = KernelCase(label=good.label + " (wrong threshold)", kernel=good.kernel, params=good.params,
                     inputs=good.inputs, outputs=good.outputs, frames=good.frames, arrays={"thresholds": t})
    other = kernel_cases[(i + 1) % N_RANDOM]
    with pytest.raises(AssertionError) as err:
        check_cases([other, bad], tmp_path)
    assert "1 of 2 cases fail" in str(err.value) and f"{bad.label}: port 0" in str(err.value)
    assert f"{other.label}:" not in str(err.value)
