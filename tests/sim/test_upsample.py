"""qdet_upsample against FINN's UpsampleNearestNeighbour python execution, on Verilator and Icarus: 24 random
legal parameter sets in one wrapper (one compile per simulator), idle on the input and stall on the output drawn
independently, FINN's batchSize frames back to back, both range ends of the type in every instance.

Rate: the first 6 instances (factors 2x2, 1x1, 3x1, 1x2, 2x3, 2x2) run with no idle and no stall and must take
exactly frames*OFM_H*OFM_W*C/SIMD + 2 cycles from the first input beat offered to the last output beat taken: one
output beat per cycle for the whole run (the next input row is written while the current one is replayed, and the
first row is read while it is written), two cycles of latency in all."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.cocotb_run import run_cocotb
from sim.tb import upsample
from sim.tb.streams import PLAN_ENV, dtype_range
from tests.tools import require_simulator

RTL = Path(__file__).resolve().parents[2] / "hls" / "rtl"
SOURCES = ("qdet_upsample.sv",)
SEED = 20261204


@pytest.fixture(scope="module")
def cases() -> list[upsample.UpsampleCase]:
    return upsample.sample_cases(SEED, 24)


@pytest.fixture(scope="module")
def plan(cases, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return upsample.build_plan(cases, tmp_path_factory.mktemp("upsample_plan"))


def test_cases_cover_the_brief(cases) -> None:
    """Factors 1..3 on each axis (1x1, unequal FH/FW), non-square images, 1-pixel rows and columns, SIMD of 1, C and
    in between, signed and unsigned types with both range ends, free and back-pressured instances."""
    assert len(cases) >= 20
    factors = {(c.ofm[0] // c.ifm[0], c.ofm[1] // c.ifm[1]) for c in cases}
    assert {(1, 1), (2, 2), (3, 1), (1, 2)} <= factors and any(fh != fw for fh, fw in factors)
    assert {f for fs in factors for f in fs} == {1, 2, 3}
    assert any(c.ifm[0] != c.ifm[1] for c in cases) and any(1 in c.ifm for c in cases)
    assert any(c.simd == 1 < c.c for c in cases) and any(c.simd == c.c > 1 for c in cases)
    assert any(1 < c.simd < c.c for c in cases)
    assert {dtype_range(c.dtype)[3] for c in cases} == {False, True}
    for c in cases:
        _, lo, hi, _ = dtype_range(c.dtype)
        assert c.inputs.min() == lo and c.inputs.max() == hi, c.label()
        assert c.inputs.shape[0] >= 2
    assert sum(c.free for c in cases) >= 3 and any(c.pressure[0] > 0 and c.pressure[1] > 0 for c in cases)


@pytest.mark.rtlsim
@pytest.mark.parametrize("simulator", ["verilator", "icarus"])
def test_upsample_matches_finn(simulator: str, plan, tmp_path: Path) -> None:
    require_simulator(simulator)
    wrapper, plan_json = plan
    run_cocotb(simulator=simulator, sources=[*(RTL / s for s in SOURCES), wrapper], toplevel="top",
               test_module="sim.tb.upsample", build_dir=tmp_path / "build", test_env={PLAN_ENV: str(plan_json)},
               timeout_s=240, log_file=tmp_path / "sim.log")
