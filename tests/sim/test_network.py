"""Whole-network RTL simulation of the tiny_build fixture: bit-exact under random backpressure, cycles per frame
against the build's estimate, the by-layer report on a corrupted weight memory, and the watchdog on a stall.

One Verilator compile (the top is the main cost) serves every test here: the harness reads its frames, backpressure
and mode from files at run time, and weight memories are $readmemh'd at start, so only the first run compiles.
"""

from __future__ import annotations

import json
import shutil

import pytest

from tests.tools import require_simulator

pytestmark = [pytest.mark.rtlsim, pytest.mark.slow]


@pytest.fixture(scope="module")
def tiny_sim(tiny_build):
    """The tiny build with its RTL generated and 8 golden frames simulated at backpressure 0.3."""
    require_simulator("verilator")
    from hls.gen import generate_rtl
    from sim.network import SimConfig, simulate

    cfg, _ = tiny_build
    generate_rtl(cfg.layout)
    result = simulate(cfg.out, SimConfig(images=8, backpressure=0.3, seed=1, diagnose=False))
    return cfg.layout, result


def test_bit_exact_under_backpressure(tiny_sim) -> None:
    build, r = tiny_sim
    print(f"\n{r.frames} frames, {r.mismatches} mismatches; cycles/frame {r.cycles_per_frame} vs estimate "
          f"{r.estimate_cycles_per_frame} (ratio {r.ratio_to_estimate}); latency {r.latency_cycles}; "
          f"{r.sim_cycles_per_s:.0f} sim cycles/s; compile {r.compile_s:.0f} s")
    assert r.status == "done", r.message
    assert r.frames == 8
    assert r.mismatches == 0, r.message
    saved = json.loads(build.sim_result.read_text())
    assert saved["mismatches"] == 0 and saved["frames"] == 8


def test_cycles_per_frame_near_estimate(tiny_sim) -> None:
    _, r = tiny_sim
    assert r.cycles_per_frame is not None
    # FINN's cycle model is the reference: the stitched RTL must sustain its bottleneck layer's rate.
    assert abs(r.cycles_per_frame / r.estimate_cycles_per_frame - 1) <= 0.10, (
        f"cycles/frame {r.cycles_per_frame:.0f}, estimate {r.estimate_cycles_per_frame}")


def test_corrupted_weight_names_the_layer(tiny_sim) -> None:
    from sim.network import SimConfig, simulate

    build, _ = tiny_sim
    manifest = build.read_manifest()
    mvaus = [s["node"] for s in manifest["stages"] if s["kernel"] == "qdet_mvau"]
    victim = mvaus[1]
    mem = build.rtl_dir / f"{victim}_w.mem"
    backup = mem.with_suffix(".bak")
    shutil.copyfile(mem, backup)
    try:
        lines = mem.read_text().split()
        # Flip every bit of every weight word: the layer's output must change wherever its input is non-zero.
        width = len(lines[0])
        lines = [format(int(l, 16) ^ ((1 << (4 * width)) - 1), f"0{width}x") for l in lines]
        mem.write_text("".join(f"{l}\n" for l in lines))
        r = simulate(build, SimConfig(images=1, diagnose=True))
    finally:
        shutil.move(backup, mem)
    assert r.mismatches > 0
    bad = [d for d in r.layers if d["mismatches"] or d["beats"] != d["expected_beats"]]
    assert bad and bad[0]["layer"] == victim, r.message
    assert all(d["mismatches"] == 0 for d in r.layers[: [d["layer"] for d in r.layers].index(victim)])
    assert f"first diverging layer: {victim}" in r.message


def test_output_never_ready_ends_with_the_watchdog(tiny_sim) -> None:
    from sim.network import SimConfig, simulate

    build, _ = tiny_sim
    r = simulate(build, SimConfig(images=1, output_stall=1.0, watchdog_cycles=2000, diagnose=False))
    assert r.status == "watchdog"
    manifest = build.read_manifest()
    last = manifest["links"][-1]
    assert f"data stops at link {last['name']}" in r.message and "m_axis" in r.message, r.message
