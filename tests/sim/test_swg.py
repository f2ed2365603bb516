"""qdet_swg against FINN's python execution of ConvolutionInputGenerator, many parameter sets in one compile.

The golden stream is FINN's: a one-node ``ConvolutionInputGenerator_rtl`` model run by qonnx's ``execute_onnx``
(its python path is qonnx's Im2Col, plus FINN's depthwise channel-fold interleave), reshaped to FINN's folded output
shape. Under Verilator the wrapper also holds real layer shapes, run without backpressure to compare cycles per
frame with FINN's ``get_exp_cycles`` of the RTL SWG."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from sim.cocotb_run import run_cocotb
from sim.tb.finn_node import FPGADATAFLOW, execute_int, one_node_model
from tests.tools import require_simulator
from sim.wrap import multi_instance_wrapper

RTL = Path(__file__).resolve().parents[2] / "hls" / "rtl"

# Real layer shapes (IFM_H, IFM_W, C, SIMD, K, stride, depthwise, parallel_window, bits, frames) from our detectors'
# folds. The big ones run one frame (python drives every cycle: ~35k cycles/s), the small one two, back to back.
REAL = [
    (130, 130, 3, 3, 3, 1, 0, 1, 8, 2),    # first conv, UINT8 image, whole window per beat
    (66, 66, 16, 8, 3, 1, 0, 0, 4, 1),     # 3x3 conv, SIMD 8
    (128, 128, 16, 4, 2, 2, 1, 0, 4, 1),   # 2x2/2 max pool input, depthwise, SIMD 4
]


def _odim(ifm: int, k: int, s: int, d: int) -> int:
    return (ifm - ((k - 1) * d + 1)) // s + 1


def _finn_node(p: dict, signed: bool):
    """A one-node FINN model of the RTL SWG with these parameters, and its custom-op wrapper."""
    from qonnx.custom_op.registry import getCustomOp

    dt = f"{'INT' if signed else 'UINT'}{p['BITS']}" if p["BITS"] > 1 or signed else "BINARY"
    ishape = [1, p["IFM_H"], p["IFM_W"], p["C"]]
    oshape = [1, p["OFM_H"], p["OFM_W"], p["K_H"] * p["K_W"] * p["C"]]
    model = one_node_model(
        "ConvolutionInputGenerator_rtl", ishape, oshape, dt, dt, domain=f"{FPGADATAFLOW}.rtl",
        ConvKernelDim=[p["K_H"], p["K_W"]], IFMChannels=p["C"], IFMDim=[p["IFM_H"], p["IFM_W"]],
        OFMDim=[p["OFM_H"], p["OFM_W"]], SIMD=p["SIMD"], Stride=[p["STRIDE_H"], p["STRIDE_W"]],
        Dilation=[p["DIL_H"], p["DIL_W"]], inputDataType=dt, outputDataType=dt, depthwise=p["DEPTHWISE"],
        parallel_window=p["PARALLEL_WINDOW"], exec_mode="cppsim")
    return model, getCustomOp(model.graph.node[0])

def _golden(p: dict, signed: bool, x: np.ndarray) -> np.ndarray:
    """FINN's folded output stream for frames ``x`` (F, H, W, C): (F, beats, elements per beat)."""
    model, op = _finn_node(p, signed)
    fshape = op.get_folded_output_shape()
    beats = int(np.prod(fshape[1:-1]))
    return np.stack([execute_int(model, f[None]).reshape(beats, fshape[-1]) for f in x])


def _random_params(rng: random.Random, **force) -> dict:
    """One legal parameter set (FINN's constraints), with ``force`` overriding the draws."""
    c = force.get("C", rng.choice([1, 2, 3, 4, 6, 8]))
    p = {"C": c, "SIMD": force.get("SIMD", rng.choice([d for d in range(1, c + 1) if c % d == 0])),
         "K_H": rng.randint(1, 4), "K_W": rng.randint(1, 4), "DIL_H": rng.randint(1, 2), "DIL_W": rng.randint(1, 2),
         "STRIDE_H": rng.randint(1, 3), "STRIDE_W": rng.randint(1, 3), "BITS": rng.choice([1, 2, 3, 4, 8]),
         "DEPTHWISE": rng.randint(0, 1), "PARALLEL_WINDOW": rng.randint(0, 1)}
    p.update({k: v for k, v in force.items() if k in p})
    if p["K_H"] == 1:
        p["DIL_H"] = 1
    if p["K_W"] == 1:
        p["DIL_W"] = 1
    for dim, k, d, s in (("H", "K_H", "DIL_H", "STRIDE_H"), ("W", "K_W", "DIL_W", "STRIDE_W")):
        ext = (p[k] - 1) * p[d] + 1
        p[f"IFM_{dim}"] = force.get(f"IFM_{dim}", max(ext, p[s]) + rng.randint(0, 5))
        p[f"OFM_{dim}"] = _odim(p[f"IFM_{dim}"], p[k], p[s], p[d])
    if p["PARALLEL_WINDOW"] and not p["DEPTHWISE"] and p["K_H"] * p["K_W"] > 1:
        p["SIMD"] = p["C"]  # FINN's rule: a non-depthwise parallel window carries all channels
    return p


def _random_sets(count: int, seed: int) -> list[dict]:
    """``count`` instances: the first ones pin the corner cases, the rest are free draws."""
    rng = random.Random(seed)
    pinned = [
        {"K_H": 1, "K_W": 1, "STRIDE_H": 1, "STRIDE_W": 1},                      # 1x1
        {"K_H": 1, "K_W": 1, "STRIDE_H": 3, "STRIDE_W": 2, "PARALLEL_WINDOW": 1, "C": 4, "SIMD": 2},
        {"K_H": 2, "K_W": 3, "DIL_H": 2, "DIL_W": 1, "DEPTHWISE": 1, "PARALLEL_WINDOW": 0, "C": 6, "SIMD": 2},
        {"K_H": 3, "K_W": 2, "DIL_H": 1, "DIL_W": 2, "DEPTHWISE": 0, "PARALLEL_WINDOW": 0, "C": 8, "SIMD": 1},
        {"K_H": 3, "K_W": 3, "DIL_H": 2, "DIL_W": 2, "DEPTHWISE": 0, "PARALLEL_WINDOW": 1, "C": 3},
        {"K_H": 2, "K_W": 2, "STRIDE_H": 2, "STRIDE_W": 2, "DEPTHWISE": 1, "PARALLEL_WINDOW": 1, "C": 8, "SIMD": 2},
        {"K_H": 2, "K_W": 2, "STRIDE_H": 2, "STRIDE_W": 2, "DEPTHWISE": 1, "PARALLEL_WINDOW": 0, "C": 4, "SIMD": 1},
        {"K_H": 3, "K_W": 3, "STRIDE_H": 1, "STRIDE_W": 1, "DEPTHWISE": 0, "PARALLEL_WINDOW": 0, "C": 4, "SIMD": 4},
        # Kernel as wide as the image, and one narrower: the parallel delay line's row gap is 0 and 1 beats.
        {"K_H": 2, "K_W": 3, "DIL_H": 1, "DIL_W": 1, "IFM_W": 3, "PARALLEL_WINDOW": 1, "DEPTHWISE": 1, "C": 2,
         "SIMD": 2},
        {"K_H": 3, "K_W": 3, "DIL_H": 1, "DIL_W": 1, "IFM_W": 4, "PARALLEL_WINDOW": 1, "DEPTHWISE": 0, "C": 2},
        # One row of kernel and image (FINN's 1D case), and a one-column image.
        {"K_H": 1, "K_W": 3, "IFM_H": 1, "STRIDE_H": 1, "DEPTHWISE": 1, "PARALLEL_WINDOW": 0, "C": 4, "SIMD": 2},
        {"K_H": 3, "K_W": 1, "IFM_W": 1, "STRIDE_W": 1, "DEPTHWISE": 0, "PARALLEL_WINDOW": 0, "C": 2, "SIMD": 1},
        {"K_H": 3, "K_W": 3, "STRIDE_H": 3, "STRIDE_W": 3, "DEPTHWISE": 1, "PARALLEL_WINDOW": 1, "C": 6, "SIMD": 3},
    ]
    sets = [_random_params(rng, **f) for f in pinned] + [_random_params(rng) for _ in range(count - len(pinned))]
    out = []
    for p in sets:
        signed = p["BITS"] > 1 and rng.random() < 0.4  # FINN has no INT1
        out.append({"params": p, "signed": signed, "frames": rng.randint(2, 3),
                    "idle": rng.choice([0.0, 0.3, 0.7]), "stall": rng.choice([0.0, 0.3, 0.7]), "perf": False})
    # One each with neither idle nor stall and with both heavy, so full-rate and starved paths are both covered.
    out[0].update(idle=0.0, stall=0.0)
    out[1].update(idle=0.7, stall=0.7)
    return out


def _real_sets() -> list[dict]:
    out = []
    for h, w, c, simd, k, s, dw, pw, bits, frames in REAL:
        p = {"IFM_H": h, "IFM_W": w, "C": c, "SIMD": simd, "K_H": k, "K_W": k, "STRIDE_H": s, "STRIDE_W": s,
             "DIL_H": 1, "DIL_W": 1, "OFM_H": _odim(h, k, s, 1), "OFM_W": _odim(w, k, s, 1), "BITS": bits,
             "DEPTHWISE": dw, "PARALLEL_WINDOW": pw}
        out.append({"params": p, "signed": False, "frames": frames, "idle": 0.0, "stall": 0.0, "perf": True})
    return out


def _prepare(instances: list[dict], folder: Path, seed: int) -> None:
    """Random frames and FINN's golden stream per instance, into ``folder``; fills in index and npz."""
    rng = np.random.default_rng(seed)
    for n, inst in enumerate(instances):
        p = inst["params"]
        bits = p["BITS"]
        lo, hi = (-(1 << (bits - 1)), 1 << (bits - 1)) if inst["signed"] else (0, 1 << bits)
        x = rng.integers(lo, hi, size=(inst["frames"], p["IFM_H"], p["IFM_W"], p["C"]), dtype=np.int64)
        inst["index"] = n
        inst["npz"] = str(folder / f"swg{n}.npz")
        np.savez(inst["npz"], x=x, y=_golden(p, inst["signed"], x))


def _wrapper(instances: list[dict]) -> str:
    entries = []
    for inst in instances:
        p = inst["params"]
        w_in = p["SIMD"] * p["BITS"]
        w_out = w_in * (p["K_H"] * p["K_W"] if p["PARALLEL_WINDOW"] else 1)
        entries.append((p, {"s_axis_tdata": w_in, "s_axis_tvalid": 1, "s_axis_tready": 1,
                            "m_axis_tdata": w_out, "m_axis_tvalid": 1, "m_axis_tready": 1}))
    return multi_instance_wrapper("qdet_swg", entries)


@pytest.mark.rtlsim
@pytest.mark.parametrize("simulator", ["verilator", "icarus"])
def test_swg_matches_finn(simulator: str, tmp_path: Path) -> None:
    """24 random legal parameter sets (and, under Verilator, real shapes for cycles) against FINN's stream."""
    require_simulator(simulator)
    instances = _random_sets(24, seed=7)
    if simulator == "verilator":
        instances += _real_sets()
    _prepare(instances, tmp_path, seed=11)
    top = tmp_path / "top.sv"
    top.write_text(_wrapper(instances))
    cycles_file = tmp_path / "cycles.json"
    run_cocotb(simulator=simulator, sources=[RTL / "qdet_skid.sv", RTL / "qdet_swg.sv", top], toplevel="top",
               test_module="sim.tb.swg", build_dir=tmp_path / "build", timeout_s=300,
               test_env={"QDET_TB_INSTANCES": json.dumps(instances), "QDET_TB_CYCLES": str(cycles_file),
                         "QDET_TB_SEED": "5"})
    if simulator != "verilator":
        return
    measured = json.loads(cycles_file.read_text())
    report = []
    for inst in instances:
        if not inst["perf"]:
            continue
        _, op = _finn_node(inst["params"], inst["signed"])
        finn = op.get_exp_cycles()
        got = measured[str(inst["index"])]
        report.append((inst["params"], finn, got))
        # Within 10% of FINN's estimate for its RTL SWG, on the first frame (fill included) and back to back.
        for cycles in [got["first_frame"], *got["later_frames"]]:
            assert cycles <= 1.10 * finn, f"{inst['params']}: {cycles} cycles per frame, FINN estimates {finn}"
    print("\n".join(f"SWG {p['IFM_H']}x{p['IFM_W']}x{p['C']} SIMD {p['SIMD']} K{p['K_H']} S{p['STRIDE_H']} "
                    f"dw{p['DEPTHWISE']} pw{p['PARALLEL_WINDOW']}: FINN {f}, measured {g}" for p, f, g in report))
