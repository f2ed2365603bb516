"""qdet_maxpool on Verilator and Icarus against FINN's Pool (MaxPool) python execution: 24 random sets, one compile.

FINN's python execution of Pool takes the im2col tensor (1, OH, OW, K*C), index k*C + c (window position major),
while FINN's depthwise sliding-window hardware streams each output pixel as (C/PE, K, PE): channel fold major,
then window position, then the PE channels of the fold (hls/rtl/README.md). The bench draws a random im2col
tensor, gets the golden maxima from FINN, and streams the tensor to the kernel in that hardware order."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from boards.runtime.stream import pack
from sim.cocotb_run import run_cocotb
from sim.tb.finn_node import execute_int, one_node_model
from tests.tools import require_module, require_simulator
from sim.wrap import multi_instance_wrapper

RTL = Path(__file__).resolve().parents[2] / "hls" / "rtl"
SOURCES = ("qdet_skid.sv", "qdet_poolctl.sv", "qdet_maxpool.sv")


def _finn_maxpool(cols: np.ndarray, c: int, pe: int, kernel: tuple[int, int], dtype: str) -> np.ndarray:
    """FINN's Pool(Function=MaxPool) on an im2col tensor (1, OH, OW, K*C), by qonnx python execution."""
    _, oh, ow, _ = cols.shape
    model = one_node_model("Pool", cols.shape, (1, oh, ow, c), dtype, dtype, Channels=c, PE=pe,
                           KernelSize=list(kernel), Function="MaxPool", OutImgDims=[oh, ow], InputDataType=dtype,
                           OutputDataType=dtype, BatchSize=1)
    return execute_int(model, cols)

def _depthwise_beats(cols: np.ndarray, c: int, pe: int, k: int, bits: int) -> list[int]:
    """The im2col tensor in FINN's depthwise SWG hardware order: per pixel, fold f, window position, PE lanes."""
    pix = cols.reshape(-1, k, c // pe, pe)  # [pixel, window position, fold, lane]
    return [pack([int(v) for v in pix[p, kk, f]], bits)
            for p in range(pix.shape[0]) for f in range(c // pe) for kk in range(k)]


def _out_beats(y: np.ndarray, pe: int, bits: int) -> list[int]:
    flat = [int(v) for v in y.reshape(-1)]
    return [pack(flat[i:i + pe], bits) for i in range(0, len(flat), pe)]


def _instances(count: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    np_rng = np.random.default_rng(seed)
    out = []
    for n in range(count):
        c = rng.choice([1, 2, 3, 4, 6, 8, 16, 64])
        pe = rng.choice([d for d in range(1, c + 1) if c % d == 0])
        kernel = (2, 2) if n < 6 else rng.choice([(2, 2), (3, 3), (1, 2), (2, 1), (1, 1), (3, 2)])
        k = kernel[0] * kernel[1]
        oh, ow = rng.randint(1, 4), rng.randint(1, 4)
        bits = rng.choice([1, 2, 3, 4, 8])
        signed = bits > 1 and n % 2 == 1
        dtype = f"{'INT' if signed else 'UINT'}{bits}"
        lo, hi = (-(1 << (bits - 1)), 1 << (bits - 1)) if signed else (0, 1 << bits)
        ins, outs = [], []
        for _ in range(rng.randint(2, 3)):
            cols = np_rng.integers(lo, hi, size=(1, oh, ow, k * c))
            ins += _depthwise_beats(cols, c, pe, k, bits)
            outs += _out_beats(_finn_maxpool(cols, c, pe, kernel, dtype), pe, bits)
        rate = n in (0, 1, 9)
        out.append({"name": f"C{c} PE{pe} K{kernel} {dtype} {oh}x{ow}", "C": c, "PE": pe, "K": k, "BITS": bits,
                    "SIGNED": int(signed), "OUT_PIXELS": oh * ow, "in": ins, "out": outs, "rate": rate,
                    "idle": 0.0 if rate else rng.choice([0.0, 0.2, 0.6]),
                    "stall": 0.0 if rate else rng.choice([0.0, 0.2, 0.6])})
    return out


PARAMS = ("C", "PE", "K", "BITS", "SIGNED", "OUT_PIXELS")


@pytest.mark.rtlsim
@pytest.mark.parametrize("simulator", ["verilator", "icarus"])
def test_maxpool_matches_finn(simulator: str, tmp_path: Path) -> None:
    require_simulator(simulator)
    require_module("finn", "FINN (finn-plus) provides the golden model; `make setup` installs it")
    instances = _instances(24, seed=9)
    top = tmp_path / "top.sv"
    top.write_text(multi_instance_wrapper("qdet_maxpool", [
        ({k: i[k] for k in PARAMS},
         {"s_axis_tdata": i["PE"] * i["BITS"], "s_axis_tvalid": 1, "s_axis_tready": 1,
          "m_axis_tdata": i["PE"] * i["BITS"], "m_axis_tvalid": 1, "m_axis_tready": 1})
        for i in instances]))
    stim = tmp_path / "stim.json"
    stim.write_text(json.dumps(instances))
    run_cocotb(simulator=simulator, sources=[*(RTL / s for s in SOURCES), top], toplevel="top",
               test_module="sim.tb.maxpool", build_dir=tmp_path / "build", test_env={"QDET_TB_STIM": str(stim)},
               timeout_s=240)
