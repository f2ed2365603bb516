"""qdet_thresholding against FINN's Thresholding python execution, on Verilator and Icarus: 24 random legal
parameter sets plus a 255-step case in one wrapper (one compile per simulator), random idle/stall, exact counts."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.cocotb_run import run_cocotb
from sim.tb import thresholding
from sim.tb.streams import PLAN_ENV
from tests.tools import require_simulator

RTL = Path(__file__).resolve().parents[2] / "hls" / "rtl"
SOURCES = ("qdet_skid.sv", "qdet_mt.sv", "qdet_thresholding.sv")
SEED = 20261124
N_RANDOM = 24


@pytest.fixture(scope="module")
def cases() -> list[thresholding.ThresholdingCase]:
    return thresholding.sample_cases(SEED, N_RANDOM)


@pytest.fixture(scope="module")
def plan(cases, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Threshold files, wrapper and plan (FINN's outputs as expected beats), shared by both simulators."""
    return thresholding.build_plan(cases, tmp_path_factory.mktemp("thr_plan"))


def test_cases_cover_the_brief(cases) -> None:
    """Every input type, 1 and 2^b-1 steps, signed outputs with a nonzero bias, PE extremes, and thresholds that
    tie with inputs, fall between integers or lie outside the input range."""
    ps = [c.params for c in cases]
    assert {(p.in_bits, p.in_signed) for p in ps} >= {(b, s) for b in range(1, 9) for s in (False, True)}
    assert {p.steps for p in ps} >= {1, 3, 7, 15}
    assert any(p.act_bias < 0 and p.out_signed for p in ps) and any(p.act_bias == 0 for p in ps)
    assert any(p.pe == 1 for p in ps) and any(p.pe == p.c > 1 for p in ps) and any(1 < p.pe < p.c for p in ps)
    kinds = {"tie": 0, "half": 0, "below": 0, "above": 0}
    for c in cases:
        lo, hi = c.params.in_range()
        for ch in range(c.params.c):
            row = c.thresholds[ch]
            kinds["tie"] += int(sum(v in set(c.inputs[:, ch].tolist()) for v in row))
            kinds["half"] += int(sum(v != int(v) for v in row))
            kinds["below"] += int(sum(v < lo for v in row))
            kinds["above"] += int(sum(v > hi + 1 for v in row))
    assert min(kinds.values()) > 20, kinds


def test_threshold_storage_rule() -> None:
    """The T_FILE lane formula and the ceil/clip rule on a hand-made UINT2 case."""
    import numpy as np

    p = thresholding.ThresholdingParams(c=2, pe=2, in_bits=2, in_signed=False, steps=2, out_bits=2,
                                        out_signed=False, act_bias=0)
    case = thresholding.ThresholdingCase(p, np.array([[-3.0, 1.5], [2.0, 9.0]]), np.zeros((1, 2), dtype=int),
                                         0.0, 0.0, 0)
    # lanes (p, k) in 3 bits: (0,0) -3 -> 0, (0,1) 1.5 -> 2, (1,0) 2 -> 2, (1,1) 9 -> 4 (max_in + 1)
    assert thresholding.threshold_words(case) == [0 | 2 << 3 | 2 << 6 | 4 << 9]


@pytest.mark.rtlsim
@pytest.mark.parametrize("simulator", ["verilator", "icarus"])
def test_thresholding_matches_finn(simulator: str, plan, tmp_path: Path) -> None:
    require_simulator(simulator)
    wrapper, plan_json = plan
    run_cocotb(simulator=simulator, sources=[*(RTL / s for s in SOURCES), wrapper],
               toplevel="top", test_module="sim.tb.thresholding", build_dir=tmp_path / "build",
               test_env={PLAN_ENV: str(plan_json)}, timeout_s=300)
