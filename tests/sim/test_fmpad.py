"""qdet_fmpad on Verilator and Icarus against FINN's FMPadding python execution: 24 random sets in one compile.

Each instance streams 2-3 random images back to back; the golden output of each image is FINN's ``FMPadding``
(one-node model, qonnx ``execute_onnx``), folded SIMD channels per beat (FINN's folded output shape
(1, OH, OW, C/SIMD, SIMD)). Padding is asymmetric in most sets, zero on some sides in some."""

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


def _finn_fmpadding(img: np.ndarray, pad: list[int], simd: int, dtype: str) -> np.ndarray:
    """FINN's FMPadding (Padding = [top, left, bottom, right]) on one NHWC image, by qonnx python execution."""
    _, h, w, c = img.shape
    oshape = (1, h + pad[0] + pad[2], w + pad[1] + pad[3], c)
    model = one_node_model("FMPadding", img.shape, oshape, dtype, dtype, ImgDim=[h, w], Padding=pad,
                           NumChannels=c, SIMD=simd, inputDataType=dtype, numInputVectors=1)
    return execute_int(model, img)

def _beats(t: np.ndarray, simd: int, bits: int) -> list[int]:
    """An NHWC tensor streamed channel fastest, SIMD elements per beat."""
    flat = [int(v) for v in t.reshape(-1)]
    return [pack(flat[i:i + simd], bits) for i in range(0, len(flat), simd)]


def _instances(count: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    np_rng = np.random.default_rng(seed)
    out = []
    for n in range(count):
        if n == 0:  # the smallest real feature map shape (10x20) with an RGB-like input
            h, w, c, simd, bits, signed, pad = 10, 20, 3, 3, 8, False, [1, 1, 1, 1]
        else:
            h, w = rng.randint(1, 8), rng.randint(1, 8)
            c = rng.choice([1, 2, 3, 4, 6, 8, 12, 16, 64])
            simd = rng.choice([d for d in range(1, c + 1) if c % d == 0])
            bits, signed = rng.choice([1, 2, 3, 4, 8]), rng.random() < 0.5
            signed = signed and bits > 1
            pad = [1, 1, 1, 1] if n < 6 else [rng.randint(0, 3) for _ in range(4)]
        dtype = f"{'INT' if signed else 'UINT'}{bits}"
        lo, hi = (-(1 << (bits - 1)), 1 << (bits - 1)) if signed else (0, 1 << bits)
        frames = [np_rng.integers(lo, hi, size=(1, h, w, c)) for _ in range(rng.randint(2, 3))]
        ins, outs = [], []
        for img in frames:
            ins += _beats(img, simd, bits)
            outs += _beats(_finn_fmpadding(img, pad, simd, dtype), simd, bits)
        rate = n in (0, 1, 7)
        out.append({"name": f"{h}x{w}x{c} simd{simd} {dtype} pad{pad}", "IMG_H": h, "IMG_W": w, "C": c,
                    "SIMD": simd, "BITS": bits, "PAD_T": pad[0], "PAD_L": pad[1], "PAD_B": pad[2], "PAD_R": pad[3],
                    "in": ins, "out": outs, "rate": rate,
                    "idle": 0.0 if rate else rng.choice([0.0, 0.2, 0.6]),
                    "stall": 0.0 if rate else rng.choice([0.0, 0.2, 0.6])})
    return out


PARAMS = ("IMG_H", "IMG_W", "C", "SIMD", "BITS", "PAD_T", "PAD_L", "PAD_B", "PAD_R")


@pytest.mark.rtlsim
@pytest.mark.parametrize("simulator", ["verilator", "icarus"])
def test_fmpad_matches_finn(simulator: str, tmp_path: Path) -> None:
    require_simulator(simulator)
    require_module("finn", "FINN (finn-plus) provides the golden model; `make setup` installs it")
    instances = _instances(24, seed=7)
    top = tmp_path / "top.sv"
    top.write_text(multi_instance_wrapper("qdet_fmpad", [
        ({k: i[k] for k in PARAMS},
         {"s_axis_tdata": i["SIMD"] * i["BITS"], "s_axis_tvalid": 1, "s_axis_tready": 1,
          "m_axis_tdata": i["SIMD"] * i["BITS"], "m_axis_tvalid": 1, "m_axis_tready": 1})
        for i in instances]))
    stim = tmp_path / "stim.json"
    stim.write_text(json.dumps(instances))
    run_cocotb(simulator=simulator, sources=[RTL / "qdet_skid.sv", RTL / "qdet_fmpad.sv", top], toplevel="top",
               test_module="sim.tb.fmpad", build_dir=tmp_path / "build", test_env={"QDET_TB_STIM": str(stim)},
               timeout_s=240)
