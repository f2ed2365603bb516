"""The C++ kernel ``qdet_vvau`` (hls/cpp/kernels/qdet_vvau.hpp) against FINN's VVAU python execution.

The cases are the RTL bench's (sim/tb/vvau.py, the seed of tests/sim/test_vvau.py): 24 random legal parameter sets
(every input type of 1..8 bits and both signs, W_BITS 1..8, STEPS 0/1/3/7/15, kernels 1x1 to 7x7, SIMD and PE of
1, full and between), plus two wider depthwise layers than the bench simulates (3x3 on 64 channels with a whole
window per beat, and 32 channels in one beat). Each becomes one kernel instance with the RTL parameter map, the
weight and threshold arrays in the memory files' layout (hls.gen.memfiles), the bench's input beats (the depthwise
sliding window's folded order) and FINN's output beats as the expected words; every case is called once on all
its pixels, and those with an even pixel count and an even index also twice on half of them (a second call on the
same instance must work). All cases compile into one program (tests/hls/cpp/harness.py). A deliberately wrong
weight must be caught, naming its case."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from tests.hls.cpp.harness import require_kernel_tools

SEED = 20261207  # tests/sim/test_vvau.py's: the C++ kernel sees exactly the cases the RTL kernel sees
N_RANDOM = 24
# Wider than the RTL bench's instances (its limits bound Verilator's compile, not the C simulation's).
WIDE = (
    dict(c=64, pe=8, simd=9, kh=3, kw=3, in_bits=4, in_signed=False, w_bits=4, steps=15, out_signed=False,
         mac_style="lut", dim=(2, 2)),
    dict(c=32, pe=32, simd=1, kh=3, kw=3, in_bits=8, in_signed=True, w_bits=8, steps=0, out_signed=True,
         mac_style="dsp", dim=(1, 3)),
)


def kernel_case(i: int, case, frames: int):
    """The KernelCase of bench case ``case``: the bench's RTL parameters plus the beats of one of ``frames``
    frames, the arrays of the W_FILE/T_FILE layouts, the bench's input words and FINN's output words."""
    from hls.gen.memfiles import threshold_lanes, vvau_weight_lanes
    from sim.tb import vvau
    from tests.hls.cpp.harness import KernelCase

    p = case.params
    words_in = vvau.input_words(case)
    words_out = vvau.output_words(p, vvau.finn_reference(case))
    assert len(words_in) % frames == 0 and len(words_out) % frames == 0
    params = p.hdl(Path(f"vvau{i}_w.mem"), Path(f"vvau{i}_t.mem") if p.steps else None)
    params.update(W_FILE=f"vvau{i}_w.mem", T_FILE=f"vvau{i}_t.mem" if p.steps else "",
                  IN_BEATS=len(words_in) // frames, OUT_BEATS=len(words_out) // frames)
    arrays = {"weights": vvau_weight_lanes(case.weights, p.pe, p.simd)}
    if p.steps:
        arrays["thresholds"] = threshold_lanes(case.thresholds, p.pe)
    return KernelCase(label=f"vvau{i} x{frames} {p.label()}", kernel="qdet_vvau", params=params,
                      inputs=[(p.simd * p.pe * p.in_bits, words_in)], outputs=[(p.pe * p.out_bits, words_out)],
                      frames=frames, arrays=arrays)


@pytest.fixture(scope="module")
def bench_cases():
    require_kernel_tools(finn=True)
    from sim.tb import vvau

    rng = random.Random(SEED + 1)
    wide = [vvau.make_case(rng, **shape, idle=0.0, stall=0.0) for shape in WIDE]
    return vvau.sample_cases(SEED, N_RANDOM) + wide


@pytest.fixture(scope="module")
def kernel_cases(bench_cases):
    """One KernelCase per bench case; even-indexed cases with an even pixel count run as two frames."""
    out = []
    for i, case in enumerate(bench_cases):
        pixels = case.cols.shape[0]
        out.append(kernel_case(i, case, 2 if pixels % 2 == 0 and i % 2 == 0 else 1))
    return out


def test_cases_cover_the_brief(bench_cases, kernel_cases) -> None:
    """At least 20 random legal sets, both activation kinds, every fold extreme, and two-frame runs."""
    ps = [c.params for c in bench_cases]
    assert len(ps) == N_RANDOM + len(WIDE) and N_RANDOM >= 20
    assert {p.steps for p in ps} >= {0, 1, 3, 7, 15}
    assert {(p.in_bits, p.in_signed) for p in ps} >= {(b, s) for b in range(1, 9) for s in (False, True)}
    assert any(p.simd == 1 and p.k > 1 for p in ps) and any(p.simd == p.k > 1 for p in ps)
    assert any(1 < p.simd < p.k for p in ps) and any(1 < p.pe < p.c for p in ps)
    assert any(p.pe == 1 and p.c > 1 for p in ps) and any(p.pe == p.c > 1 for p in ps)
    assert sum(c.frames == 2 for c in kernel_cases) >= 5


def test_vvau_matches_finn(kernel_cases, tmp_path: Path) -> None:
    """Every case's output beats equal FINN's, exactly as many as FINN's (one compile for all cases)."""
    from tests.hls.cpp.harness import check_cases

    check_cases(kernel_cases, tmp_path)


def test_wrong_weight_is_caught(bench_cases, kernel_cases, tmp_path: Path) -> None:
    """One weight changed by one (in a case without activation, at an input element that is nonzero in some
    pixel, so the accumulator changes): check_cases fails, naming that case and no other."""
    from tests.hls.cpp.harness import KernelCase, check_cases

    # Weight line 0, lane 0 is W[0][0]: channel 0 at window position 0, im2col column 0*C + 0.
    i = next(i for i, c in enumerate(bench_cases[:N_RANDOM])
             if c.params.steps == 0 and (c.cols[:, 0] != 0).any())
    good = kernel_cases[i]
    w = good.arrays["weights"].copy()
    w_max = (1 << (bench_cases[i].params.w_bits - 1)) - 1
    w[0, 0] = w[0, 0] + 1 if w[0, 0] < w_max else w[0, 0] - 1
    bad = KernelCase(label=good.label + " (wrong weight)", kernel=good.kernel, params=good.params,
                     inputs=good.inputs, outputs=good.outputs, frames=good.frames, arrays={**good.arrays, "weights": w})
    other = kernel_cases[(i + 1) % N_RANDOM]
    with pytest.raises(AssertionError) as err:
        check_cases([other, bad], tmp_path)
    assert "1 of 2 cases fail" in str(err.value) and f"{bad.label}: port 0" in str(err.value)
    assert f"{other.label}:" not in str(err.value)
