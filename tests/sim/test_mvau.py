"""qdet_mvau against FINN's MVAU python execution, on Verilator and Icarus: 24 random legal parameter sets plus the
real graphs' four shapes in one wrapper (one compile per simulator), random idle/stall, exact beat counts."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from sim.cocotb_run import run_cocotb
from sim.tb import mvau
from tests.tools import require_simulator

RTL = Path(__file__).resolve().parents[2] / "hls" / "rtl"
SEED = 20261123
N_RANDOM = 24
SOURCES = ("qdet_skid.sv", "qdet_rom.sv", "qdet_tree.sv", "qdet_dot.sv", "qdet_packdot.sv", "qdet_mt.sv",
           "qdet_mac.sv", "qdet_foldcnt.sv", "qdet_mvau.sv")


@pytest.fixture(scope="module")
def cases() -> list[mvau.MvauCase]:
    return mvau.sample_cases(SEED, N_RANDOM)


@pytest.fixture(scope="module")
def plan(cases, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Memory files, wrapper and plan (FINN's outputs as expected beats), shared by both simulators."""
    return mvau.build_plan(cases, tmp_path_factory.mktemp("mvau_plan"))


def test_cases_cover_the_brief(cases) -> None:
    """The sampled set holds every input type, weight width, activation kind, fold extreme and MAC style."""
    ps = [c.params for c in cases]
    assert {(p.in_bits, p.in_signed) for p in ps} >= {(b, s) for b in range(1, 9) for s in (False, True)}
    assert {p.w_bits for p in ps} >= set(range(2, 9))
    assert {p.steps for p in ps} >= {0, 1, 3, 7, 15}
    assert {p.mac_style for p in ps} == {"lut", "dsp"}
    # Adder trees pipelined every level and every 2 levels, with trees deep enough for several stages.
    assert {p.tree_levels for p in ps} == {0, 1, 2}
    assert any(p.tree_levels == 1 and p.simd >= 4 for p in ps) and any(p.tree_levels == 2 and p.simd >= 8 for p in ps)
    assert any(p.simd == 1 for p in ps) and any(p.simd == p.mw > 1 for p in ps)
    assert any(p.pe == 1 for p in ps) and any(p.pe == p.mh > 1 for p in ps)
    assert any(1 < p.simd < p.mw for p in ps) and any(1 < p.pe < p.mh for p in ps)
    assert any(p.act_bias < 0 and p.out_signed for p in ps) and any(p.steps and p.act_bias == 0 for p in ps)
    assert all(c.inputs.shape[0] >= 2 for c in cases[:N_RANDOM] if c.params.nf * c.params.sf <= 150)
    assert any(c.idle and c.stall for c in cases) and any(not c.idle and not c.stall for c in cases)
    # Ties: some threshold equals an accumulator value the inputs produce.
    ties = 0
    for c in cases:
        if c.thresholds is not None:
            acc = c.inputs @ c.weights
            ties += sum(int(np.isin(acc[:, ch], c.thresholds[ch]).sum()) for ch in range(c.params.mh))
    assert ties > 50


def test_layouts_match_the_readme() -> None:
    """W_FILE and input/output beat packing on a tiny hand-checked case (README's lane formulas)."""
    rng = random.Random(1)
    case = mvau.make_case(rng, mw=4, mh=4, pe=2, simd=2, in_bits=4, in_signed=False, w_bits=4, steps=0,
                          out_signed=True, mac_style="lut", vectors=1, idle=0, stall=0)
    w = case.weights
    words = mvau.weight_words(case)
    # line nf*SF + sf = 1*2 + 1 = 3: lane (p=1, s=0) at bits [8:12) holds W[sf*SIMD + 0][nf*PE + 1] = W[2][3]
    assert (words[3] >> 8) & 0xF == w[2, 3] & 0xF
    assert (words[0] >> 4) & 0xF == w[1, 0] & 0xF
    assert mvau.input_words(case)[1] == int(case.inputs[0, 2]) | int(case.inputs[0, 3]) << 4


@pytest.mark.rtlsim
@pytest.mark.parametrize("simulator", ["verilator", "icarus"])
def test_mvau_matches_finn(simulator: str, plan, tmp_path: Path) -> None:
    require_simulator(simulator)
    wrapper, plan_json = plan
    run_cocotb(simulator=simulator, sources=[*(RTL / s for s in SOURCES), wrapper], toplevel="top",
               test_module="sim.tb.mvau", build_dir=tmp_path / "build", test_env={mvau.PLAN_ENV: str(plan_json)},
               timeout_s=300)
