"""qdet_avgpool on Verilator and Icarus against FINN's Pool (QuantAvgPool / AccPool) python execution, plus the
generator view (hls.gen.pool.AvgPoolParams) and the Pool dispatch in hls.gen.ops.

Each random parameter set is a one-node FINN graph: the kernel's parameters come from the generator's view of that
node (so the view is tested too), the expected beats from FINN's python execution of it. FINN's python Pool takes
the im2col tensor (1, OH, OW, K*C), index k*C + c, while the depthwise SWG hardware streams each output pixel
fold-major (C/PE, K, PE) (hls/rtl/README.md): the bench streams FINN's input tensor in that hardware order."""

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
SOURCES = ("qdet_skid.sv", "qdet_poolctl.sv", "qdet_avgpool.sv")
FINN_HINT = "FINN (finn-plus) provides the golden model; `make setup` installs it"
KERNELS = [(2, 2), (3, 3), (7, 7), (1, 1), (1, 3), (3, 2), (2, 1), (2, 2)]
CHANNELS = [1, 3, 5, 7, 13, 4, 16, 2, 6]


def _dtype(bits: int, signed: bool) -> str:
    return f"{'INT' if signed else 'UINT'}{bits}"


def _qonnx_shift(k: int, ibits: int, obits: int, signed: bool) -> int:
    """The ``Size`` InferPool writes for a square k x k QuantAvgPool2d: qonnx's own ``get_shifts``."""
    from onnx import helper
    from qonnx.custom_op.registry import getCustomOp

    node = helper.make_node("QuantAvgPool2d", ["x"], ["y"], domain="qonnx.custom_op.general", kernel=k, stride=k,
                            ibits=ibits, obits=obits, signed=int(signed), data_layout="NHWC")
    return int(getCustomOp(node).get_shifts())


def pool_model(fxn: str, c: int, pe: int, kernel: tuple[int, int], odims: tuple[int, int], idt: str,
               odt: str | None, size: int | None = None, op_type: str = "Pool"):
    """A one-node FINN Pool graph as InferPool + FINN's accumulator minimisation leave it.

    ``odt`` None (AccPool): FINN's ``minimize_accumulator_width`` picks the output type, as in a real flow."""
    from qonnx.custom_op.registry import getCustomOp

    oh, ow = odims
    k = kernel[0] * kernel[1]
    extra = {} if size is None else {"Size": size}
    model = one_node_model(op_type, (1, oh, ow, k * c), (1, oh, ow, c), idt, odt or idt, Channels=c, PE=pe,
                           KernelSize=list(kernel), Function=fxn, OutImgDims=[oh, ow], InputDataType=idt,
                           OutputDataType=odt or idt, BatchSize=1, **extra)
    if op_type == "Pool":
        getCustomOp(model.graph.node[0]).minimize_accumulator_width(model)
    return model


def _frame(np_rng, mode: str, shape, lo: int, hi: int) -> np.ndarray:
    """Random values, or the extremes only (where accumulator width and shift rounding go wrong)."""
    if mode == "extreme":
        return np_rng.choice([lo, hi], size=shape)
    if mode == "min":
        return np.full(shape, lo)
    return np_rng.integers(lo, hi + 1, size=shape)


def _instances(count: int, seed: int) -> list[dict]:
    from qonnx.core.datatype import DataType
    from qonnx.custom_op.registry import getCustomOp

    from hls.gen.pool import AvgPoolParams

    rng = random.Random(seed)
    np_rng = np.random.default_rng(seed)
    kernels = cycled(rng, KERNELS, count)
    channels = cycled(rng, CHANNELS, count)
    bits_all = cycled(rng, list(range(1, 9)), count)
    pe_modes = cycled(rng, ["1", "mid", "C"], count)
    out = []
    for n in range(count):
        kernel, c, bits = kernels[n], channels[n], bits_all[n]
        divs = [d for d in range(1, c + 1) if c % d == 0]
        pe = {"1": 1, "C": c, "mid": divs[len(divs) // 2]}[pe_modes[n]]
        signed = n % 2 == 1
        fxn = "AccPool" if n % 4 == 3 else "QuantAvgPool"
        k = kernel[0] * kernel[1]
        odims = (1, 1) if k >= 25 else (rng.randint(1, 3), rng.randint(1, 3))
        idt = _dtype(bits, signed)
        odt, size = None, None
        if fxn == "QuantAvgPool":
            obits = rng.randint(1, 8)
            odt = _dtype(obits, signed)
            if kernel[0] == kernel[1]:
                size = _qonnx_shift(kernel[0], bits, obits, signed)
        model = pool_model(fxn, c, pe, kernel, odims, idt, odt, size)
        node = model.graph.node[0]
        view = AvgPoolParams.from_node(model, node)
        finn = getCustomOp(node)
        fdt = finn.get_output_datatype()
        assert (view.out_bits, view.out_signed) == (fdt.bitwidth(), fdt.signed()), "view's output type is FINN's"
        assert view.in_beats == finn.get_exp_cycles(), "one input beat per FINN cycle"
        lo, hi = int(DataType[idt].min()), int(DataType[idt].max())
        cf = c // pe
        ins, outs = [], []
        for f in range(rng.randint(2, 3)):
            mode = ["uniform", "extreme", "min"][f] if n % 3 == 0 else "uniform"
            cols = _frame(np_rng, mode, (1, *odims, k * c), lo, hi)
            # FINN's im2col index k*C + c -> the hardware's (pixel, fold, window position, lane) beat order.
            hw = cols.reshape(-1, k, cf, pe).transpose(0, 2, 1, 3).reshape(-1, pe)
            ins += fold_words(hw, pe, bits)
            outs += fold_words(execute_int(model, cols).reshape(-1, c), pe, view.out_bits)
        rate = n in (0, 1, 2, 5, 10)
        name = f"{fxn} C{c} PE{pe} K{kernel} {idt}->{fdt.name} {odims}"
        out.append(stim_entry(name, view, ins, outs, rate, rng))
    return out


@pytest.mark.rtlsim
@pytest.mark.parametrize("simulator", ["verilator", "icarus"])
def test_avgpool_matches_finn(simulator: str, tmp_path: Path) -> None:
    """24 random parameter sets in one wrapper: exact beats under backpressure, folded rate where free-running."""
    require_simulator(simulator)
    require_module("finn", FINN_HINT)
    top, stim = write_stim("qdet_avgpool", _instances(24, seed=5), tmp_path)
    run_cocotb(simulator=simulator, sources=[*(RTL / s for s in SOURCES), top], toplevel="top",
               test_module="sim.tb.avgpool", build_dir=tmp_path / "build", test_env={"QDET_TB_STIM": str(stim)},
               timeout_s=240)


def _hls_pool(fxn: str, **kw):
    return pool_model(fxn, 4, 2, (2, 2), (2, 2), "UINT4", kw.pop("odt", "UINT4"), op_type="Pool_hls", **kw)


def test_pool_views_dispatch_on_function() -> None:
    """view_of: MaxPool -> qdet_maxpool, QuantAvgPool/AccPool -> qdet_avgpool with FINN's shift; AvgPool refused."""
    require_module("finn", FINN_HINT)
    from hls.gen import GenerateError, view_of

    model = _hls_pool("MaxPool")
    assert view_of(model, model.graph.node[0]).kernel == "qdet_maxpool"
    model = _hls_pool("QuantAvgPool", odt="UINT3", size=_qonnx_shift(2, 4, 3, False))
    v = view_of(model, model.graph.node[0])
    # bitlen(15 * 4) = 6 bits of sum, 3 kept: shift 3 (qonnx's Size agrees, else from_node raises).
    assert (v.kernel, v.params()["SHIFT"], v.params()["OUT_BITS"], v.in_beats, v.out_beats) == \
        ("qdet_avgpool", 3, 3, 32, 8)
    model = _hls_pool("AccPool", odt="UINT6")
    v = view_of(model, model.graph.node[0])
    assert (v.kernel, v.params()["SHIFT"], v.out_bits) == ("qdet_avgpool", 0, 6)
    with pytest.raises(GenerateError, match="AvgPool"):
        model = _hls_pool("AvgPool")
        view_of(model, model.graph.node[0])


def test_avgpool_view_refuses_inconsistent_nodes() -> None:
    """A Size that is not the types' shift, an AccPool output too narrow for the sum, mixed signedness."""
    require_module("finn", FINN_HINT)
    from hls.gen import GenerateError, view_of

    for kw, match in (({"odt": "UINT3", "size": 2}, "Size=2"), ({"odt": "INT3"}, "signed")):
        model = _hls_pool("QuantAvgPool", **kw)
        with pytest.raises(GenerateError, match=match):
            view_of(model, model.graph.node[0])
    model = _hls_pool("AccPool", odt="UINT5")
    with pytest.raises(GenerateError, match="cannot hold"):
        view_of(model, model.graph.node[0])
