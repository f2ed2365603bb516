"""qdet_fifo (and, at DEPTH 2, qdet_skid) under random backpressure, on Verilator and Icarus: 24 random (WIDTH,
DEPTH) sets in one compile.

Reference: the same words in the same order; and, with the consumer stopped, exactly DEPTH beats accepted."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from sim.cocotb_run import run_cocotb
from tests.tools import require_simulator
from sim.wrap import multi_instance_wrapper

RTL = Path(__file__).resolve().parents[2] / "hls" / "rtl"


def _instances(count: int, seed: int) -> list[dict]:
    """Random legal parameter sets with their stimulus; the first three run at full rate (no idle, no stall)."""
    rng = random.Random(seed)
    out = []
    for n in range(count):
        width = rng.choice([1, 3, 8, 16, 37, 64, 130])
        depth = [2, 3, 8][n] if n < 3 else rng.choice([2, 3, 4, 5, 7, 8, 16, 33, 64, 200])
        words = [rng.getrandbits(width) for _ in range(rng.randint(1, 400))]
        idle, stall = (0.0, 0.0) if n < 3 else (rng.choice([0.0, 0.2, 0.6]), rng.choice([0.0, 0.2, 0.6]))
        out.append({"name": f"W{width} D{depth}", "WIDTH": width, "DEPTH": depth, "depth": depth,
                    "in": words, "out": words, "idle": idle, "stall": stall, "rate": n < 3})
    return out


@pytest.mark.rtlsim
@pytest.mark.parametrize("simulator", ["verilator", "icarus"])
def test_fifo_keeps_order_and_depth(simulator: str, tmp_path: Path) -> None:
    require_simulator(simulator)
    instances = _instances(24, seed=11)
    top = tmp_path / "top.sv"
    top.write_text(multi_instance_wrapper("qdet_fifo", [
        ({"WIDTH": i["WIDTH"], "DEPTH": i["DEPTH"]},
         {"s_axis_tdata": i["WIDTH"], "s_axis_tvalid": 1, "s_axis_tready": 1,
          "m_axis_tdata": i["WIDTH"], "m_axis_tvalid": 1, "m_axis_tready": 1})
        for i in instances]))
    stim = tmp_path / "stim.json"
    stim.write_text(json.dumps(instances))
    run_cocotb(simulator=simulator, sources=[RTL / "qdet_skid.sv", RTL / "qdet_fifo.sv", top], toplevel="top",
               test_module="sim.tb.fifo", build_dir=tmp_path / "build", test_env={"QDET_TB_STIM": str(stim)},
               timeout_s=240)
