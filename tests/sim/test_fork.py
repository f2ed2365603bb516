"""qdet_fork against FINN's DuplicateStreams python execution, on Verilator and Icarus: 24 random legal parameter
sets in one wrapper (one compile per simulator), idle on the input and stall on each output drawn independently,
several frames back to back, exact beats on every output and no extra beat.

Rate: the first 5 instances run with no idle and no stall and must take exactly input beats + 1 cycles (one beat
per cycle on the input and on all N outputs at once, one cycle of latency)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.cocotb_run import run_cocotb
from sim.tb import fork
from sim.tb.streams import PLAN_ENV, dtype_range
from tests.tools import require_simulator

RTL = Path(__file__).resolve().parents[2] / "hls" / "rtl"
SOURCES = ("qdet_skid.sv", "qdet_fork.sv")
SEED = 20261201


@pytest.fixture(scope="module")
def cases() -> list[fork.ForkCase]:
    return fork.sample_cases(SEED, 24)


@pytest.fixture(scope="module")
def plan(cases, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return fork.build_plan(cases, tmp_path_factory.mktemp("fork_plan"))


def test_cases_cover_the_brief(cases) -> None:
    """N from 2 to 5, PE of 1, C and in between, signed and unsigned types, both range ends in every stream,
    free-running instances, and instances whose outputs stall differently (one never, another heavily)."""
    assert len(cases) >= 20
    assert {c.n for c in cases} >= {2, 3, 4, 5}
    assert any(c.pe == 1 < c.c for c in cases) and any(c.pe == c.c > 1 for c in cases)
    assert any(1 < c.pe < c.c for c in cases)
    assert {dtype_range(c.dtype)[3] for c in cases} == {False, True}
    for c in cases:
        _, lo, hi, _ = dtype_range(c.dtype)
        assert c.inputs.min() == lo and c.inputs.max() == hi, c.label()
        assert c.inputs.shape[0] >= 2  # frames back to back
    assert sum(c.free for c in cases) >= 3
    assert any(min(c.stalls) == 0 and max(c.stalls) >= 0.5 for c in cases)
    assert any(c.idle > 0 for c in cases)


@pytest.mark.rtlsim
@pytest.mark.parametrize("simulator", ["verilator", "icarus"])
def test_fork_matches_finn(simulator: str, plan, tmp_path: Path) -> None:
    require_simulator(simulator)
    wrapper, plan_json = plan
    run_cocotb(simulator=simulator, sources=[*(RTL / s for s in SOURCES), wrapper], toplevel="top",
               test_module="sim.tb.fork", build_dir=tmp_path / "build", test_env={PLAN_ENV: str(plan_json)},
               timeout_s=240, log_file=tmp_path / "sim.log")
