"""The C++ kernel ``qdet_fifo`` (hls/cpp/kernels/qdet_fifo.hpp): every beat passed on unchanged, in order.

The cases are the RTL bench's (tests/sim/test_fifo.py, its seed): 24 random (WIDTH, DEPTH) sets of 1..130-bit
words, 1..400 of them; each runs as up to three frames (the largest of 3, 2, 1 that divides its word count), with
the kernel's input stream DEPTH beats deep as in the generated top. The expected words are the input words
(the bench's reference). All cases compile into one program (tests/hls/cpp/harness.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.hls.cpp.harness import require_kernel_tools

SEED = 11  # tests/sim/test_fifo.py's
N_CASES = 24


@pytest.fixture(scope="module")
def kernel_cases():
    require_kernel_tools(finn=False)
    from tests.hls.cpp.harness import KernelCase
    from tests.sim.test_fifo import _instances

    out = []
    for i, inst in enumerate(_instances(N_CASES, SEED)):
        words = inst["in"]
        frames = next(f for f in (3, 2, 1) if len(words) % f == 0)
        beats = len(words) // frames
        params = {"WIDTH": inst["WIDTH"], "DEPTH": inst["DEPTH"], "IN_BEATS": beats, "OUT_BEATS": beats}
        out.append(KernelCase(label=f"fifo{i} x{frames} {inst['name']}", kernel="qdet_fifo", params=params,
                              inputs=[(inst["WIDTH"], words)], outputs=[(inst["WIDTH"], inst["out"])],
                              frames=frames, depth=inst["DEPTH"]))
    return out


def test_cases_cover_the_brief(kernel_cases) -> None:
    """At least 20 sets, words wider than 64 bits, DEPTH 2 (the skid) and deeper, several frames per case."""
    assert len(kernel_cases) >= 20
    assert any(c.params["WIDTH"] > 64 for c in kernel_cases) and any(c.params["WIDTH"] == 1 for c in kernel_cases)
    assert {2, 3} <= {c.params["DEPTH"] for c in kernel_cases}
    assert sum(c.frames > 1 for c in kernel_cases) >= 5


def test_fifo_passes_beats_on(kernel_cases, tmp_path: Path) -> None:
    """Every case's output beats are its input beats, exactly as many (one compile for all cases)."""
    from tests.hls.cpp.harness import check_cases

    check_cases(kernel_cases, tmp_path)
