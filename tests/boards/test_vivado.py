"""qdet bitstream: the Vivado hand-off scripts for Zynq-7000, Zynq UltraScale+ and Alveo boards (no Vivado needed).

Port widths are checked against the hand-written qdet_top's own declarations (parsed here), not against the
manifest the writer reads; the TLAST shell is simulated with Icarus when it is installed."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from boards import vivado
from flows.build import BuildLayout
from boards.vivado import VivadoError, plan_vivado, render, write_vivado
from tests.tools import require_simulator

TOP = """\
module qdet_top (
    input  logic        ap_clk,
    input  logic        ap_rst_n,
    input  logic [7:0]  s_axis_tdata,
    input  logic        s_axis_tvalid,
    output logic        s_axis_tready,
    output logic [63:0] m_axis_tdata,
    output logic        m_axis_tvalid,
    input  logic        m_axis_tready
);
    assign s_axis_tready = m_axis_tready;
    assign m_axis_tvalid = s_axis_tvalid;
    assign m_axis_tdata = {8{s_axis_tdata}};
endmodule
"""
OUT_BEATS = 5


def make_build(root: Path, board: str = "pynq-z2", clock: float = 100.0, in_width: int = 8) -> Path:
    rtl = BuildLayout(root).rtl_dir
    rtl.mkdir(parents=True)
    (rtl / "qdet_top.sv").write_text(TOP)
    (rtl / "qdet_skid.sv").write_text("module qdet_skid; endmodule\n")
    (rtl / "MVAU_0_w.mem").write_text("0f\n")
    (rtl / "MVAU_0_t.mem").write_text("01\n")
    ports = {"s_axis": {"width": in_width, "beats_per_frame": 20},
             "m_axis": {"width": 64, "beats_per_frame": OUT_BEATS}}
    BuildLayout(root).manifest.write_text(json.dumps({"top": "qdet_top", "clock_mhz": clock, "ports": ports}))
    BuildLayout(root).write_record(board, clock, {})
    return root


def top_widths(sv: str) -> dict[str, int]:
    """Port widths from the top's declarations (independent of the manifest)."""
    return {name: int(msb) + 1 for msb, name in re.findall(r"\[(\d+):0\]\s+(\w+)", sv)}


def test_zynq7_project_has_the_part_the_ps7_the_clock_and_dma_widths_of_the_top(tmp_path):
    build = make_build(tmp_path / "b")
    files = {p.name: p.read_text() for p in write_vivado(plan_vivado(BuildLayout(build)))}
    assert set(files) == {"create_project.tcl", "qdet_axis_shell.v", "ooc_synth.tcl", "qdet_ooc.xdc", "run.sh",
                          "README.md"}
    tcl = files["create_project.tcl"]
    assert "-part xc7z020clg400-1" in tcl and "[qdet_ip processing_system7] ps" in tcl
    assert "zynq_ultra_ps_e" not in tcl
    assert "CONFIG.PCW_FPGA0_PERIPHERAL_FREQMHZ {100}" in tcl
    assert "create_clock -period 10.000 -name ap_clk [get_ports ap_clk]" in files["qdet_ooc.xdc"]
    for name in ("qdet_top.sv", "qdet_skid.sv", "MVAU_0_w.mem", "MVAU_0_t.mem"):
        assert f"[file join $rtl_dir {name}]" in tcl and name in files["ooc_synth.tcl"]
    widths = top_widths(TOP)
    assert f"CONFIG.c_m_axis_mm2s_tdata_width {{{widths['s_axis_tdata']}}}" in tcl
    assert f"CONFIG.c_s_axis_s2mm_tdata_width {{{widths['m_axis_tdata']}}}" in tcl
    assert "CONFIG.c_m_axi_mm2s_data_width {32}" in tcl  # the memory side is never narrower than 32 bits
    assert "create_bd_cell -type module -reference qdet_axis_shell qdet" in tcl
    for flow in ("launch_runs impl_1 -to_step write_bitstream", "write_hw_platform", "qdet.hwh", "qdet.bit"):
        assert flow in tcl
    shell = top_widths(files["qdet_axis_shell.v"])
    assert shell["s_axis_tdata"] == widths["s_axis_tdata"] and shell["m_axis_tdata"] == widths["m_axis_tdata"]
    assert shell["m_axis_tkeep"] == widths["m_axis_tdata"] // 8
    assert "synth_design -top qdet_top -part xc7z020clg400-1 -mode out_of_context" in files["ooc_synth.tcl"]


def test_zynq_ultrascale_uses_the_zynqmp_ps_and_the_build_clock(tmp_path):
    for board, part in (("ultra96-v2", "xczu3eg-sbva484-1-i"), ("kv260", "xck26-sfvc784-2LV-c")):
        build = make_build(tmp_path / board, board=board, clock=150.0)
        tcl = render(plan_vivado(BuildLayout(build)))
        assert f"-part {part}" in tcl["create_project.tcl"]
        assert "[qdet_ip zynq_ultra_ps_e] ps" in tcl["create_project.tcl"]
        assert "processing_system7" not in tcl["create_project.tcl"]
        assert "CONFIG.PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ {150}" in tcl["create_project.tcl"]
        assert "S_AXI_HP0_FPD" in tcl["create_project.tcl"]
        assert "create_clock -period 6.667" in tcl["qdet_ooc.xdc"]


def test_alveo_writes_only_the_out_of_context_flow_and_says_why(tmp_path):
    plan = plan_vivado(BuildLayout(make_build(tmp_path / "u", board="u250", clock=250.0)))
    files = {p.name: p.read_text() for p in write_vivado(plan)}
    assert "create_project.tcl" not in files and "qdet_axis_shell.v" not in files
    assert "-part xcu250-figd2104-2L-e" in files["ooc_synth.tcl"]
    assert "create_clock -period 4.000" in files["qdet_ooc.xdc"]
    assert len(plan.notes) == 1 and "u250" in plan.notes[0] and "no Zynq PS" in plan.notes[0]
    assert "v++" in files["README.md"] and "-source ooc_synth.tcl" in files["run.sh"]


def test_output_is_deterministic_and_relocatable(tmp_path):
    a, b = make_build(tmp_path / "a"), make_build(tmp_path / "b")
    write_vivado(plan_vivado(BuildLayout(a)))
    write_vivado(plan_vivado(BuildLayout(b)))
    for f in sorted(BuildLayout(a).vivado_dir.iterdir()):
        text = f.read_bytes()
        assert text == (BuildLayout(b).vivado_dir / f.name).read_bytes(), f.name
        assert str(tmp_path).encode() not in text  # only paths relative to the scripts


def test_tcl_scripts_are_complete_tcl(tmp_path):
    tkinter = pytest.importorskip("tkinter")
    interp = tkinter.Tcl()
    for board in ("pynq-z2", "kv260"):
        for name, text in render(plan_vivado(BuildLayout(make_build(tmp_path / board, board=board)))).items():
            if name.endswith(".tcl") or name.endswith(".xdc"):
                assert interp.call("info", "complete", text) == 1, f"{board}: {name} has unbalanced braces"


def test_missing_rtl_and_unusable_widths_are_clear_errors(tmp_path):
    with pytest.raises(VivadoError, match="generate the RTL first"):
        plan_vivado(BuildLayout(tmp_path))
    with pytest.raises(VivadoError, match="24 bits wide"):
        plan_vivado(BuildLayout(make_build(tmp_path / "w", in_width=24)))
    with pytest.raises(VivadoError, match="unknown board"):
        plan_vivado(BuildLayout(make_build(tmp_path / "x")), board="pynq-z9")


def test_cli_without_vivado_writes_everything_and_says_what_to_run(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from qdet.cli import app

    build = make_build(tmp_path / "b")
    monkeypatch.setattr(vivado, "find_vivado", lambda: None)
    result = CliRunner().invoke(app, ["bitstream", str(build)])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "Vivado is not on PATH" in text and "sh vivado/run.sh" in text
    assert (BuildLayout(build).vivado_dir / "create_project.tcl").is_file()


@pytest.mark.rtlsim
def test_shell_raises_tlast_on_the_last_beat_of_every_frame(tmp_path):
    """Icarus: two frames through the shell (fed through the pass-through test top) with a stalling sink."""
    require_simulator("icarus")
    build = make_build(tmp_path / "b")
    shell = render(plan_vivado(BuildLayout(build)))["qdet_axis_shell.v"]
    (tmp_path / "shell.v").write_text(shell)
    (tmp_path / "tb.sv").write_text(f"""
module tb;
    logic clk = 0, rst_n = 0, tready = 0, tvalid = 0, tlast;
    logic [7:0] tdata = 0; logic [63:0] mdata; logic [7:0] keep; logic mvalid, sready;
    integer beats = 0, cycle = 0;
    qdet_axis_shell dut (.ap_clk(clk), .ap_rst_n(rst_n), .s_axis_tdata(tdata), .s_axis_tvalid(tvalid),
        .s_axis_tready(sready), .s_axis_tlast(1'b0), .m_axis_tdata(mdata), .m_axis_tkeep(keep),
        .m_axis_tvalid(mvalid), .m_axis_tready(tready), .m_axis_tlast(tlast));
    always #5 clk = ~clk;
    always @(posedge clk) begin
        cycle <= cycle + 1;
        tready <= (cycle % 3) != 0;  // a sink that stalls every third cycle
        tvalid <= rst_n;
        if (mvalid && tready) begin
            $display("BEAT %0d LAST %0d KEEP %0h", beats, tlast, keep);
            beats = beats + 1;
        end
    end
    initial begin
        #22 rst_n = 1;
        wait (beats == {2 * OUT_BEATS});
        $finish;
    end
endmodule
""")
    sim = tmp_path / "sim.vvp"
    subprocess.run(["iverilog", "-g2012", "-o", str(sim), str(tmp_path / "tb.sv"), str(tmp_path / "shell.v"),
                    str(BuildLayout(build).rtl_dir / "qdet_top.sv")], check=True, capture_output=True, timeout=60)
    out = subprocess.run(["vvp", str(sim)], check=True, capture_output=True, text=True, timeout=60).stdout
    beats = re.findall(r"BEAT (\d+) LAST (\d) KEEP (\w+)", out)
    assert len(beats) == 2 * OUT_BEATS
    assert [int(i) for i, last, _ in beats if last == "1"] == [OUT_BEATS - 1, 2 * OUT_BEATS - 1]
    assert all(keep == "ff" for _, _, keep in beats)
