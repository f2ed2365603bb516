"""The C++ kernel ``qdet_fork`` (hls/cpp/kernels/qdet_fork.hpp) against FINN's DuplicateStreams python execution.

The cases are the RTL bench's (sim/tb/fork.py, the seed of tests/sim/test_fork.py): 24 random legal sets (N of
2..5 outputs, C channels with PE of 1, C and between, 1..8-bit types with both range ends in every stream), each
streaming its 2-3 frames, the kernel called once per frame with its outputs as one array of N streams. Expected:
each of FINN's N outputs, PE channels per beat. All cases, and the stall probes below, compile into one program
(tests/hls/cpp/harness.py).

A second test checks that the outputs take a beat independently: with one output never read, the others still
receive the beat the fork holds, as the RTL's taken-mask does."""

from __future__ import annotations


import pytest

from tests.hls.cpp.harness import require_kernel_tools

SEED = 20261201  # tests/sim/test_fork.py's
N_CASES = 24


@pytest.fixture(scope="module")
def bench_cases():
    require_kernel_tools(finn=True)
    from sim.tb import fork

    return fork.sample_cases(SEED, N_CASES)


def kernel_case(i: int, case):
    from sim.tb import fork
    from sim.tb.streams import fold_words
    from tests.hls.cpp.harness import KernelCase

    frames, pixels, c = case.inputs.shape
    width = case.pe * case.bits
    beats = pixels * c // case.pe
    words_in = fold_words(case.inputs.reshape(-1, c), case.pe, case.bits)
    outs = [(width, fold_words(o.reshape(-1, c), case.pe, case.bits)) for o in fork.finn_reference(case)]
    return KernelCase(label=f"fork{i} {case.label()}", kernel="qdet_fork",
                      params={"N": case.n, "WIDTH": width, "IN_BEATS": beats, "OUT_BEATS": beats},
                      inputs=[(width, words_in)], outputs=outs, frames=frames, out_array=True)


@pytest.fixture(scope="module")
def kernel_cases(bench_cases):
    return [kernel_case(i, c) for i, c in enumerate(bench_cases)]


def test_cases_cover_the_brief(bench_cases) -> None:
    """At least 20 sets of several frames, N from 2 to 5, PE of 1, C and between."""
    assert len(bench_cases) >= 20 and all(c.inputs.shape[0] >= 2 for c in bench_cases)
    assert {c.n for c in bench_cases} >= {2, 3, 4, 5}
    assert any(c.pe == 1 < c.c for c in bench_cases) and any(c.pe == c.c > 1 for c in bench_cases)
    assert any(1 < c.pe < c.c for c in bench_cases)


def failures(cases, results) -> list[str]:
    """What check_cases (tests/hls/cpp/harness.py) reports, for results already run: each case whose run failed
    or whose output beats differ from its expected ones, with the first difference."""
    out = []
    for case, result in zip(cases, results):
        if result.error:
            out.append(f"{case.label}: {result.error}")
            continue
        for p, ((_, want), got) in enumerate(zip(case.outputs, result.outputs)):
            if list(want) != got:
                first = next((k for k, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
                out.append(f"{case.label}: port {p}: {len(got)} of {len(want)} beats, first difference at beat {first}")
    return out


@pytest.fixture(scope="module")
def stall_probes(kernel_cases):
    """Per case, output k = i % N never read and the others read for 3 beats (their stream holds 2 more)."""
    from tests.hls.cpp.harness import KernelCase

    probes = []
    for i, case in enumerate(kernel_cases):
        if case.params["IN_BEATS"] * case.frames < 4:
            continue
        k = i % case.params["N"]
        outs = [(w, [] if n == k else list(words[:3])) for n, (w, words) in enumerate(case.outputs)]
        probes.append(KernelCase(label=case.label + f" (output {k} stalled)", kernel="qdet_fork", params=case.params,
                                 inputs=case.inputs, outputs=outs, frames=case.frames, out_array=True))
    return probes


@pytest.fixture(scope="module")
def results(kernel_cases, stall_probes, tmp_path_factory: pytest.TempPathFactory):
    """The cases and the stall probes, all in one program (one compile)."""
    from tests.hls.cpp.harness import run_cases

    return run_cases(list(kernel_cases) + list(stall_probes), tmp_path_factory.mktemp("fork"))


def test_fork_matches_finn(kernel_cases, results) -> None:
    """Every output of every case equals FINN's, exactly as many beats."""
    bad = failures(kernel_cases, results[:len(kernel_cases)])
    assert not bad, f"{len(bad)} of {len(kernel_cases)} cases fail:\n" + "\n".join(bad)


def test_outputs_take_beats_independently(kernel_cases, stall_probes, results) -> None:
    """Output k (of N) is never read, its stream holds 2 beats: every other output still gets 3 beats (the two the
    blocked stream took and the one the fork then holds), not one fewer, and then the region deadlocks with the fork
    waiting on output k."""
    assert len(stall_probes) >= 20
    for probe, result in zip(stall_probes, results[len(kernel_cases):]):
        assert "deadlock" in result.error and "waits to write to full stream" in result.error, probe.label
        assert result.outputs == [list(w) for _, w in probe.outputs], probe.label
