"""qdet_accpool on Verilator and Icarus against FINN's GlobalAccPool python execution, plus the generator view
(hls.gen.pool.AccPoolParams) and its registry entry.

Each random parameter set is a one-node FINN graph: the kernel's parameters come from the generator's view of it,
the expected beats from FINN's python execution, one frame (image) at a time, the frames then streamed back to
back. Input and output are NHWC with channels fastest, which is also the hardware's beat order (no reordering)."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from sim.cocotb_run import run_cocotb
from sim.tb.finn_node import execute_int, one_node_model
from sim.tb.streams import cycled, fold_words, stim_entry, write_stim
from tests.tools import require_module, require_simulator

RTL = Path(__file__).resolve().parents[2] / "hls" / "rtl"
SOURCES = ("qdet_skid.sv", "qdet_poolctl.sv", "qdet_accpool.sv")
FINN_HINT = "FINN (finn-plus) provides the golden model; `make setup` installs it"
# (H, W) of the map: 7x7 (MobileNet-style global pool), 1x1, non-square, one row or column.
MAPS = [(7, 7), (1, 1), (2, 3), (3, 1), (4, 4), (1, 5), (3, 3), (2, 2)]
CHANNELS = [1, 3, 5, 7, 13, 4, 6, 16, 2, 64]


def accpool_model(c: int, pe: int, hw: tuple[int, int], idt: str, op_type: str = "GlobalAccPool"):
    """A one-node FINN GlobalAccPool graph for one (1, H, W, C) image, as InferGlobalAccPoolLayer makes it
    (then folded to ``pe``); the output tensor gets FINN's own output datatype."""
    from qonnx.custom_op.registry import getCustomOp

    h, w = hw
    model = one_node_model(op_type, (1, h, w, c), (1, 1, 1, c), idt, NumChannels=c, PE=pe, inputDataType=idt,
                           numInputVectors=[1, h, w])
    if op_type == "GlobalAccPool":
        getCustomOp(model.graph.node[0]).minimize_accumulator_width(model)
    return model


def _instances(count: int, seed: int) -> list[dict]:
    from qonnx.core.datatype import DataType
    from qonnx.custom_op.registry import getCustomOp

    from hls.gen.pool import AccPoolParams

    rng = random.Random(seed)
    np_rng = np.random.default_rng(seed)
    maps = cycled(rng, MAPS, count)
    channels = cycled(rng, CHANNELS, count)
    bits_all = cycled(rng, list(range(1, 9)), count)
    pe_modes = cycled(rng, ["1", "mid", "C"], count)
    out = []
    for n in range(count):
        hw, c, bits = maps[n], channels[n], bits_all[n]
        divs = [d for d in range(1, c + 1) if c % d == 0]
        pe = {"1": 1, "C": c, "mid": divs[len(divs) // 2]}[pe_modes[n]]
        if hw == (7, 7) and c // pe > 16:  # keep the simulated stream short (beats = H*W*C/PE per frame)
            pe = divs[-2] if len(divs) > 2 else c
        signed = n % 2 == 1
        idt = f"{'INT' if signed else 'UINT'}{bits}"
        model = accpool_model(c, pe, hw, idt)
        node = model.graph.node[0]
        view = AccPoolParams.from_node(model, node)
        finn = getCustomOp(node)
        fdt = finn.get_output_datatype()
        assert (view.out_bits, view.out_signed) == (fdt.bitwidth(), fdt.signed()), "view's output type is FINN's"
        # FINN's cycle model: every input beat, then C/PE cycles to write the sums out (ours overlap the last pixel).
        assert view.in_beats + c // pe == finn.get_exp_cycles()
        lo, hi = int(DataType[idt].min()), int(DataType[idt].max())
        ins, outs = [], []
        for f in range(rng.randint(2, 3)):
            if n % 3 == 0 and f < 2:  # the extremes: where a too-narrow accumulator or sign extension fails
                x = np.full((1, *hw, c), [lo, hi][f])
            else:
                x = np_rng.integers(lo, hi + 1, size=(1, *hw, c))
            ins += fold_words(x.reshape(-1, c), pe, bits)
            outs += fold_words(execute_int(model, x).reshape(-1, c), pe, view.out_bits)
        rate = n in (0, 1, 2, 4, 7)
        out.append(stim_entry(f"C{c} PE{pe} {hw} {idt}->{fdt.name}", view, ins, outs, rate, rng))
    return out


@pytest.mark.rtlsim
@pytest.mark.parametrize("simulator", ["verilator", "icarus"])
def test_accpool_matches_finn(simulator: str, tmp_path: Path) -> None:
    """24 random parameter sets in one wrapper: exact beats under backpressure, folded rate where free-running."""
    require_simulator(simulator)
    require_module("finn", FINN_HINT)
    top, stim = write_stim("qdet_accpool", _instances(24, seed=3), tmp_path)
    run_cocotb(simulator=simulator, sources=[*(RTL / s for s in SOURCES), top], toplevel="top",
               test_module="sim.tb.accpool", build_dir=tmp_path / "build", test_env={"QDET_TB_STIM": str(stim)},
               timeout_s=240)


def test_accpool_view() -> None:
    """view_of on a GlobalAccPool_hls node: qdet_accpool, H*W pixels, FINN's output width; non-[N,H,W] refused."""
    require_module("finn", FINN_HINT)
    from hls.gen import GenerateError, view_of

    model = accpool_model(6, 2, (2, 3), "INT4", op_type="GlobalAccPool_hls")
    v = view_of(model, model.graph.node[0])
    # 6 pixels of INT4: FINN's smallest type holding 6 * -8 = -48 is INT7.
    assert (v.kernel, v.params(), v.in_beats, v.out_beats, v.out_signed) == (
        "qdet_accpool", {"C": 6, "PE": 2, "PIXELS": 6, "IN_BITS": 4, "SIGNED": 1, "OUT_BITS": 7}, 18, 3, True)
    model = one_node_model("GlobalAccPool_hls", (4, 6), (4, 6), "UINT4", NumChannels=6, PE=2,
                           inputDataType="UINT4", numInputVectors=[4])
    with pytest.raises(GenerateError, match="numInputVectors"):
        view_of(model, model.graph.node[0])
