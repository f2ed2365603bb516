"""The C++ kernel ``qdet_upsample`` (hls/cpp/kernels/qdet_upsample.hpp) against FINN's UpsampleNearestNeighbour
python execution.

The cases are the RTL bench's (sim/tb/upsample.py, the seed of tests/sim/test_upsample.py): 24 random legal sets
(factors FH, FW of 1..3 each, 1x1 and unequal ones included, 1..4 x 1..4 images, SIMD of 1, C and between, signed
and unsigned types with both range ends), FINN's batchSize frames streamed back to back, the kernel called once
per frame. Expected: FINN's upsampled frames, SIMD channels per beat. All cases compile into one program
(tests/hls/cpp/harness.py).

A second test (a second, small program: tests/hls/cpp/test_swg.py's input_taken_when_stalled) checks the
buffering: with the output stalled, the kernel takes at most the RTL's two row banks (the row being replayed and
the next), never the rest of the frame."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.hls.cpp.harness import require_kernel_tools

SEED = 20261204  # tests/sim/test_upsample.py's
N_CASES = 24


@pytest.fixture(scope="module")
def bench_cases():
    require_kernel_tools(finn=True)
    from sim.tb import upsample

    return upsample.sample_cases(SEED, N_CASES)


@pytest.fixture(scope="module")
def kernel_cases(bench_cases):
    from sim.tb import upsample
    from sim.tb.streams import fold_words
    from tests.hls.cpp.harness import KernelCase

    out = []
    for i, case in enumerate(bench_cases):
        p = case.params()
        frames = case.inputs.shape[0]
        (ih, iw), (oh, ow), cf = case.ifm, case.ofm, case.c // case.simd
        width = case.simd * p["BITS"]
        words_in = fold_words(case.inputs.reshape(-1, case.c), case.simd, p["BITS"])
        words_out = fold_words(upsample.finn_reference(case).reshape(-1, case.c), case.simd, p["BITS"])
        out.append(KernelCase(label=f"upsample{i} {case.label()}", kernel="qdet_upsample",
                              params={**p, "IN_BEATS": ih * iw * cf, "OUT_BEATS": oh * ow * cf},
                              inputs=[(width, words_in)], outputs=[(width, words_out)], frames=frames))
    return out


def test_cases_cover_the_brief(bench_cases) -> None:
    """At least 20 sets of several frames; factors 1..3 on each axis, unequal ones; SIMD of 1, C and between."""
    assert len(bench_cases) >= 20 and all(c.inputs.shape[0] >= 2 for c in bench_cases)
    factors = {(c.ofm[0] // c.ifm[0], c.ofm[1] // c.ifm[1]) for c in bench_cases}
    assert {(1, 1), (2, 2), (3, 1), (1, 2)} <= factors and any(fh != fw for fh, fw in factors)
    assert any(c.simd == 1 < c.c for c in bench_cases) and any(c.simd == c.c > 1 for c in bench_cases)
    assert any(1 < c.simd < c.c for c in bench_cases)


def test_upsample_matches_finn(kernel_cases, tmp_path: Path) -> None:
    """Every case's output beats equal FINN's, exactly as many (one compile for all cases)."""
    from tests.hls.cpp.harness import check_cases

    check_cases(kernel_cases, tmp_path)


READS = 3  # output beats the stalled sink reads


def test_upsample_buffers_two_rows(bench_cases, tmp_path: Path) -> None:
    """Each bench set on a taller image (IFM_H + 6 rows): with the sink stopped after READS output beats, the kernel
    takes at most two input rows (plus the beats those reads needed) and then waits, with the frame's other rows
    still offered."""
    from tests.hls.cpp.test_swg import input_taken_when_stalled

    probes, limits = [], []
    for case in bench_cases:
        p = dict(case.params())
        p["IFM_H"] += 6
        p["OFM_H"] = p["IFM_H"] * (case.ofm[0] // case.ifm[0])
        cf = p["C"] // p["SIMD"]
        row = p["IFM_W"] * cf
        params = {**p, "IN_BEATS": p["IFM_H"] * row, "OUT_BEATS": p["OFM_H"] * p["OFM_W"] * cf}
        width = p["SIMD"] * p["BITS"]
        probes.append(("qdet_upsample", params, width, width, READS))
        limits.append(2 * row + READS + 3)
    for (_, p, *_), (taken, deadlocked), limit in zip(probes, input_taken_when_stalled(probes, tmp_path), limits):
        assert deadlocked, f"{p}: the kernel finished without its output being read"
        assert taken <= min(limit, p["IN_BEATS"] - 1), f"{p}: took {taken} input beats with its output stalled"
