"""The C++ kernel ``qdet_dwc`` (hls/cpp/kernels/qdet_dwc.hpp): elements regrouped from IN_ELEMS to OUT_ELEMS per
beat, in order, for every ratio kind.

The (IN_ELEMS, OUT_ELEMS) sets are the RTL bench's (tests/sim/test_dwc.py's RATIOS: equal, down by a multiple, up
by a divisor, and coprime or other ratios both ways, from 1 to 64 elements) plus 4 random pairs of 1..12, with
1..8-bit elements; its sampling is reproduced here draw for draw (the same words as the bench's, checked) with
the frame size kept: a frame is a random multiple of lcm(IN_ELEMS, OUT_ELEMS) elements (up to about 240), 2-4
frames per case, the kernel called once per frame. The reference is the bench's: the input elements in the same
order, packed OUT_ELEMS per beat. All cases compile into
one program (tests/hls/cpp/harness.py)."""

from __future__ import annotations

import math
import random
from pathlib import Path

import pytest

from tests.hls.cpp.harness import require_kernel_tools

SEED = 5  # tests/sim/test_dwc.py's
N_EXTRA = 4  # the bench's random pairs


@pytest.fixture(scope="module")
def kernel_cases():
    require_kernel_tools(finn=False)
    from boards.runtime.stream import pack
    from tests.hls.cpp.harness import KernelCase
    from tests.sim.test_dwc import FULL_RATE, RATIOS

    rng = random.Random(SEED)
    ratios = RATIOS + [rng.choice([(a, b) for a in range(1, 13) for b in range(1, 13)]) for _ in range(N_EXTRA)]
    out = []
    for i, (ie, oe) in enumerate(ratios):
        bits = rng.choice([1, 2, 3, 4, 8])
        frame = math.lcm(ie, oe) * rng.randint(1, max(1, 240 // math.lcm(ie, oe)))
        frames = rng.randint(2, 4)
        elems = [rng.getrandbits(bits) for _ in range(frame * frames)]
        if i not in FULL_RATE:  # the bench's idle and stall draws, to keep its stream of draws
            rng.choice([0.0, 0.2, 0.6]), rng.choice([0.0, 0.2, 0.6])
        params = {"IN_ELEMS": ie, "OUT_ELEMS": oe, "BITS": bits, "IN_BEATS": frame // ie, "OUT_BEATS": frame // oe}
        out.append(KernelCase(label=f"dwc{i} x{frames} {ie}->{oe} b{bits} frame {frame}", kernel="qdet_dwc",
                              params=params,
                              inputs=[(ie * bits, [pack(elems[j:j + ie], bits) for j in range(0, len(elems), ie)])],
                              outputs=[(oe * bits, [pack(elems[j:j + oe], bits) for j in range(0, len(elems), oe)])],
                              frames=frames))
    return out


def test_cases_cover_the_brief(kernel_cases) -> None:
    """The bench's words exactly; at least 20 sets of several frames: equal, down, up and general ratios both ways,
    beats wider than 64 bits."""
    from tests.sim.test_dwc import _instances

    bench = _instances(seed=SEED)
    assert [(b["in"], b["out"]) for b in bench] == [(c.inputs[0][1], c.outputs[0][1]) for c in kernel_cases]
    ps = [c.params for c in kernel_cases]
    assert len(ps) >= 20 and all(c.frames >= 2 for c in kernel_cases)
    kinds = {"equal" if p["IN_ELEMS"] == p["OUT_ELEMS"] else "down" if p["IN_ELEMS"] % p["OUT_ELEMS"] == 0
             else "up" if p["OUT_ELEMS"] % p["IN_ELEMS"] == 0
             else "narrow" if p["IN_ELEMS"] > p["OUT_ELEMS"] else "widen" for p in ps}
    assert kinds == {"equal", "down", "up", "narrow", "widen"}
    assert any(max(p["IN_ELEMS"], p["OUT_ELEMS"]) * p["BITS"] > 64 for p in ps)


def test_dwc_keeps_element_order(kernel_cases, tmp_path: Path) -> None:
    """Every case's output beats are the input elements regrouped, exactly as many (one compile for all cases)."""
    from tests.hls.cpp.harness import check_cases

    check_cases(kernel_cases, tmp_path)
