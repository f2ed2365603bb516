"""qdet_concat against FINN's StreamingConcat python execution (two inputs), on Verilator and Icarus: 24 random
legal parameter sets in one wrapper (one compile per simulator), idle on each input and stall on the output drawn
independently, several frames back to back, both range ends of each input type in every instance.

Rate: the first 5 instances run with no idle and no stall and must take exactly output beats + 1 cycles (one output
beat per cycle, s0 and s1 taking turns without a bubble, one cycle of latency)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.cocotb_run import run_cocotb
from sim.tb import concat
from sim.tb.streams import PLAN_ENV, dtype_range
from tests.tools import require_simulator

RTL = Path(__file__).resolve().parents[2] / "hls" / "rtl"
SOURCES = ("qdet_skid.sv", "qdet_concat.sv")
SEED = 20261203


@pytest.fixture(scope="module")
def cases() -> list[concat.ConcatCase]:
    return concat.sample_cases(SEED, 24)


@pytest.fixture(scope="module")
def plan(cases, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return concat.build_plan(cases, tmp_path_factory.mktemp("concat_plan"))


def test_cases_cover_the_brief(cases) -> None:
    """SIMD of 1 and more, C0 != C1, one beat per pixel on a side, signed and unsigned inputs mixed (an unsigned
    input into a signed output) and equal, both range ends of each input, free and back-pressured instances."""
    assert len(cases) >= 20
    assert any(c.simd == 1 for c in cases) and any(c.simd > 1 for c in cases)
    assert any(c.c0 != c.c1 for c in cases) and any(c.simd in (c.c0, c.c1) for c in cases)
    mixes = {(dtype_range(c.dtypes[0])[3], dtype_range(c.dtypes[1])[3]) for c in cases}
    assert mixes == {(False, False), (False, True), (True, False), (True, True)}
    for c in cases:
        for x, t in ((c.in0, c.dtypes[0]), (c.in1, c.dtypes[1])):
            _, lo, hi, _ = dtype_range(t)
            assert x.min() == lo and x.max() == hi, c.label()
        assert c.in0.shape[0] >= 2
    assert sum(c.free for c in cases) >= 3 and any(len(set(c.pressure)) == 3 for c in cases)


def test_finn_output_type() -> None:
    """FINN's output type is the smallest holding both inputs' ranges: UINT4 with INT4 is INT5, UINT2 with UINT4 is
    UINT4, INT3 with UINT8 is INT9."""
    import numpy as np

    def out(t0: str, t1: str) -> str:
        z = np.zeros((2, 1, 2), dtype=np.int64)
        return concat.ConcatCase(2, 2, 1, (t0, t1), z, z, (0.0, 0.0, 0.0), 0).out_dtype()

    assert out("UINT4", "INT4") == "INT5"
    assert out("UINT2", "UINT4") == "UINT4"
    assert out("INT3", "UINT8") == "INT9"
    assert out("INT4", "INT4") == "INT4"


@pytest.mark.rtlsim
@pytest.mark.parametrize("simulator", ["verilator", "icarus"])
def test_concat_matches_finn(simulator: str, plan, tmp_path: Path) -> None:
    require_simulator(simulator)
    wrapper, plan_json = plan
    run_cocotb(simulator=simulator, sources=[*(RTL / s for s in SOURCES), wrapper], toplevel="top",
               test_module="sim.tb.concat", build_dir=tmp_path / "build", test_env={PLAN_ENV: str(plan_json)},
               timeout_s=240, log_file=tmp_path / "sim.log")
