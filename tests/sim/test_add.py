"""qdet_add against FINN's ElementwiseAdd python execution (both inputs streamed, equal shapes), on Verilator and
Icarus: 24 random legal parameter sets in one wrapper (one compile per simulator), idle on each input and stall on
the output drawn independently, several frames back to back, the four extreme sums in every instance.

Rate: the first 5 instances run with no idle and no stall and must take exactly output beats + 2 cycles (one beat
per cycle on all three ports, two cycles of latency: input skid, output register)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.cocotb_run import run_cocotb
from sim.tb import add
from sim.tb.streams import PLAN_ENV, dtype_range
from tests.tools import require_simulator

RTL = Path(__file__).resolve().parents[2] / "hls" / "rtl"
SOURCES = ("qdet_skid.sv", "qdet_add.sv")
SEED = 20261202


@pytest.fixture(scope="module")
def cases() -> list[add.AddCase]:
    return add.sample_cases(SEED, 24)


@pytest.fixture(scope="module")
def plan(cases, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return add.build_plan(cases, tmp_path_factory.mktemp("add_plan"))


def test_cases_cover_the_brief(cases) -> None:
    """Every signedness mix, PE of 1, C and in between, outputs at FINN's width and wider, the extreme sums, and
    free-running and back-pressured instances."""
    assert len(cases) >= 20
    mixes = {(dtype_range(c.lhs_dtype)[3], dtype_range(c.rhs_dtype)[3]) for c in cases}
    assert mixes == {(False, False), (False, True), (True, False), (True, True)}
    assert any(c.pe == 1 < c.c for c in cases) and any(c.pe == c.c > 1 for c in cases)
    assert any(1 < c.pe < c.c for c in cases)
    assert any(c.out_dtype == add.finn_out_dtype(c.lhs_dtype, c.rhs_dtype) for c in cases)
    assert any(dtype_range(c.out_dtype)[0] > dtype_range(add.out_dtype_for(c.lhs_dtype, c.rhs_dtype))[0]
               for c in cases)
    for c in cases:
        _, llo, lhi, _ = dtype_range(c.lhs_dtype)
        _, rlo, rhi, _ = dtype_range(c.rhs_dtype)
        sums = c.lhs + c.rhs
        assert sums.min() == llo + rlo and sums.max() == lhi + rhi, c.label()
        _, olo, ohi, _ = dtype_range(c.out_dtype)
        assert olo <= llo + rlo and lhi + rhi <= ohi, c.label()
        assert c.lhs.shape[0] >= 2
    assert sum(c.free for c in cases) >= 3 and any(len(set(c.pressure)) == 3 for c in cases)


def test_finn_out_type_is_short_for_signed_plus_unsigned() -> None:
    """FINN derives INT5 for INT4 + UINT4 (the sum reaches 22) but INT6 for UINT4 + INT4: the bench (and the
    generator's view) use the smallest type that holds the sums instead."""
    assert add.finn_out_dtype("INT4", "UINT4") == "INT5"
    assert add.finn_out_dtype("UINT4", "INT4") == "INT6"
    assert add.out_dtype_for("INT4", "UINT4") == "INT6"
    assert add.out_dtype_for("UINT3", "UINT3") == "UINT4"


@pytest.mark.rtlsim
@pytest.mark.parametrize("simulator", ["verilator", "icarus"])
def test_add_matches_finn(simulator: str, plan, tmp_path: Path) -> None:
    require_simulator(simulator)
    wrapper, plan_json = plan
    run_cocotb(simulator=simulator, sources=[*(RTL / s for s in SOURCES), wrapper], toplevel="top",
               test_module="sim.tb.add", build_dir=tmp_path / "build", test_env={PLAN_ENV: str(plan_json)},
               timeout_s=240, log_file=tmp_path / "sim.log")
