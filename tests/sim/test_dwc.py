"""qdet_dwc on Verilator and Icarus: 26 (IN_ELEMS, OUT_ELEMS, BITS) sets in one compile, every ratio kind.

Reference: the input elements in the same order, regrouped OUT_ELEMS per beat (packed by sim.axis.pack). Frames of
lcm(IN_ELEMS, OUT_ELEMS)-multiple element counts run back to back; some instances run with no idle and no stall
and must then sustain the narrow side's rate."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest

from boards.runtime.stream import pack
from sim.cocotb_run import run_cocotb
from tests.tools import require_simulator
from sim.wrap import multi_instance_wrapper

RTL = Path(__file__).resolve().parents[2] / "hls" / "rtl"

# (IN_ELEMS, OUT_ELEMS): equal, down (multiple), up (divisor) and coprime/other ratios, both directions.
RATIOS = [(27, 9), (1, 3), (8, 4), (3, 2), (5, 3), (9, 27), (3, 1), (4, 8), (2, 3), (3, 5), (4, 6), (6, 4),
          (4, 4), (1, 1), (64, 8), (8, 64), (7, 3), (3, 7), (16, 12), (12, 16), (2, 1), (1, 2)]
# Indices into RATIOS run with no idle and no stall: down, up, general narrowing and widening, equal.
FULL_RATE = (0, 1, 3, 4, 7, 8, 10, 12)


def _instances(seed: int) -> list[dict]:
    rng = random.Random(seed)
    ratios = RATIOS + [rng.choice([(a, b) for a in range(1, 13) for b in range(1, 13)]) for _ in range(4)]
    out = []
    for n, (ie, oe) in enumerate(ratios):
        bits = rng.choice([1, 2, 3, 4, 8])
        frame = math.lcm(ie, oe) * rng.randint(1, max(1, 240 // math.lcm(ie, oe)))
        elems = [rng.getrandbits(bits) for _ in range(frame * rng.randint(2, 4))]
        rate = n in FULL_RATE
        out.append({
            "name": f"{ie}->{oe} b{bits}", "IN_ELEMS": ie, "OUT_ELEMS": oe, "BITS": bits,
            "in": [pack(elems[i:i + ie], bits) for i in range(0, len(elems), ie)],
            "out": [pack(elems[i:i + oe], bits) for i in range(0, len(elems), oe)],
            "idle": 0.0 if rate else rng.choice([0.0, 0.2, 0.6]),
            "stall": 0.0 if rate else rng.choice([0.0, 0.2, 0.6]), "rate": rate,
        })
    return out


@pytest.mark.rtlsim
@pytest.mark.parametrize("simulator", ["verilator", "icarus"])
def test_dwc_regroups_elements_in_order(simulator: str, tmp_path: Path) -> None:
    require_simulator(simulator)
    instances = _instances(seed=5)
    top = tmp_path / "top.sv"
    top.write_text(multi_instance_wrapper("qdet_dwc", [
        ({"IN_ELEMS": i["IN_ELEMS"], "OUT_ELEMS": i["OUT_ELEMS"], "BITS": i["BITS"]},
         {"s_axis_tdata": i["IN_ELEMS"] * i["BITS"], "s_axis_tvalid": 1, "s_axis_tready": 1,
          "m_axis_tdata": i["OUT_ELEMS"] * i["BITS"], "m_axis_tvalid": 1, "m_axis_tready": 1})
        for i in instances]))
    stim = tmp_path / "stim.json"
    stim.write_text(json.dumps(instances))
    run_cocotb(simulator=simulator, sources=[RTL / "qdet_skid.sv", RTL / "qdet_dwc.sv", top], toplevel="top",
               test_module="sim.tb.dwc", build_dir=tmp_path / "build", test_env={"QDET_TB_STIM": str(stim)},
               timeout_s=240)
