"""qdet bitstream --backend cpp: the Vitis HLS script, testbench, data and Vivado block design (no Vitis needed).

The builds here are fakes: a cpp folder with a manifest and dummy sources, golden frames of a known function. The
generated testbench is compiled with g++ against qdet's own C-simulation headers (hls/cpp/include, standing in
for Vitis') and run against a hand-written qdet_top of that function, correct and broken, when g++ and the
ap_int headers are installed."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from boards import vitis
from boards.catalogue import get_board
from boards.vitis import VitisError, plan_vitis, render, write_vitis
from flows.build import BuildLayout
from tests.tools import require_tool

# The fake top: a 4x4x4 frame of 4-bit elements in, one per 8-bit beat (64 beats); out m_axis: 3*x - 20 as 12-bit
# signed, two per 32-bit beat (32 beats); out m1_axis: the sum of every 4 inputs, one 8-bit value per beat.
FRAME = (4, 4, 4)
PORTS = {
    "s_axis": {"width": 8, "data_bits": 4, "elems": 1, "bits": 4, "beats_per_frame": 64, "link": "in",
               "padding": "none"},
    "m_axis": {"width": 32, "data_bits": 24, "elems": 2, "bits": 12, "beats_per_frame": 32, "signed": True,
               "layer": "head", "link": "out0", "padding": "8 zero bits"},
    "m1_axis": {"width": 8, "data_bits": 8, "elems": 1, "bits": 8, "beats_per_frame": 16, "signed": False,
                "layer": "head1", "link": "out1", "padding": "none"},
}
HEADERS = ["qdet_top.h", "qdet_params.h", "qdet_hls.hpp", "qdet_mvau.hpp"]


def golden(frames: int, seed: int = 0) -> tuple[np.ndarray, list[np.ndarray]]:
    x = np.random.default_rng(seed).integers(0, 16, size=(frames, *FRAME))
    return x, [3 * x - 20, x.reshape(frames, 4, 4, 1, 4).sum(axis=-1)]


def make_build(root: Path, board: str = "pynq-z2", clock: float = 100.0, outputs: int = 2, frames: int = 6,
               record: bool = True) -> Path:
    layout = BuildLayout(root)
    cpp = layout.cpp_dir
    (cpp / "csim").mkdir(parents=True)
    (cpp / "csim" / "hls_stream.h").write_text("// qdet's C simulation shim\n")
    files = {}
    for name in ["qdet_top.cpp", *HEADERS]:
        (cpp / name).write_text(f"// {name}\n")
        files[name] = "0" * 64
    ports = {k: v for k, v in PORTS.items() if k == "s_axis" or list(PORTS).index(k) <= outputs}
    manifest = {"backend": "cpp", "top": "qdet_top", "board": board, "clock_mhz": clock,
                "source": "steps/08_stream_links.onnx", "source_sha256": "ab" * 32, "ports": ports,
                "synthesis_sources": ["qdet_top.cpp"], "headers": HEADERS, "csim_dir": "csim", "files": files}
    layout.cpp_manifest.write_text(json.dumps(manifest, indent=2))
    if record:
        layout.write_record(board, clock, {})
    layout.golden_dir.mkdir()
    x, outs = golden(frames)
    np.save(layout.golden_inputs, x)
    for i, out in enumerate(outs[:outputs]):
        np.save(layout.golden_output(i), out)
    return root


def files_of(plan) -> dict[str, str]:
    return {p.name: p.read_text() for p in write_vitis(plan)}


def test_run_hls_tcl_has_the_part_clock_top_sources_testbench_flow_and_ip(tmp_path):
    for board, clock in (("pynq-z2", 100.0), ("ultra96-v2", 150.0), ("zcu104", 187.5)):
        layout = BuildLayout(make_build(tmp_path / board, board=board, clock=clock))
        plan = plan_vitis(layout)
        tcl = render(plan)["run_hls.tcl"]
        part = get_board(board).part
        assert f"\nset_part {part}\n" in tcl
        assert f"create_clock -period {1000.0 / clock:.3f} -name default" in tcl
        assert "open_project -reset qdet_hls\n" in tcl and "set_top qdet_top\n" in tcl
        assert "open_solution -reset solution1 -flow_target vivado" in tcl
        assert 'add_files [file join $cpp_dir qdet_top.cpp] -cflags "-std=c++14 -I$cpp_dir"' in tcl
        for header in HEADERS:
            assert f"add_files [file join $cpp_dir {header}]\n" in tcl
        assert 'add_files -tb [file join $here tb_qdet_top.cpp] -cflags "-std=c++14 -I$cpp_dir"' in tcl
        for data in ("tb_input.dat", "tb_output_m_axis.dat", "tb_output_m1_axis.dat"):
            assert f"add_files -tb [file join $here {data}]" in tcl
        steps = [tcl.index(s) for s in ("open_project", "add_files", "open_solution", "set_part", "create_clock",
                                        "\ncsim_design", "\ncsynth_design", "export_design")]
        assert steps == sorted(steps)
        exports = re.findall(r"export_design -format ip_catalog -vendor (\S+) -library (\S+) -version (\S+) "
                             r"-ipname (\S+)", tcl)
        assert exports and set(exports) == {("qdet.org", "hls", "1.0", "qdet_top")}
        assert plan.ip_vlnv == "qdet.org:hls:qdet_top:1.0" and plan.ip_repo == "qdet_hls/solution1/impl/ip"
        assert tcl.rstrip().endswith("exit")  # vitis_hls -f stays interactive without it
        assert "set cpp_dir [file normalize [file join $here ../cpp]]" in tcl
        # qdet's C-simulation shim (cpp/csim/hls_stream.h) is never part of the Vitis project or its include path.
        code = "\n".join(line for line in tcl.splitlines() if not line.lstrip().startswith("#"))
        assert "csim" not in code.replace("csim_design", "") and "hls_stream" not in code
        assert all("csim" not in f for f in plan.sources + plan.headers)


def test_cosim_only_when_asked(tmp_path):
    layout = BuildLayout(make_build(tmp_path / "b"))
    plain = render(plan_vitis(layout))["run_hls.tcl"]
    asked = render(plan_vitis(layout, cosim=True))["run_hls.tcl"]
    assert "\nset cosim 0\n" in plain and "\nset cosim 1\n" in asked
    for tcl in (plain, asked):  # the one cosim_design line, behind the switch that -tclargs cosim/nocosim sets
        assert re.findall(r"^\s*cosim_design.*$", tcl, flags=re.M) == ["    cosim_design -O -rtl verilog "
                                                                      "-trace_level none -argv 2"]
        assert "if {$cosim} {\n    cosim_design" in tcl
        assert "cosim { set cosim 1 }" in tcl and "nocosim { set cosim 0 }" in tcl
    assert "cosim_design" not in plain.split("set cosim 0")[1].split("if {$cosim}")[0]
    assert plan_vitis(layout).cosim is False and plan_vitis(layout, cosim=True).cosim is True


def test_tcl_scripts_are_complete_tcl_and_the_vitis_script_runs_in_order(tmp_path):
    """Tcl (tkinter) parses the scripts; run_hls.tcl runs with Vitis' commands stubbed, in the order and with the
    arguments they were given, and `-tclargs cosim` among Vitis' own argv turns cosimulation on."""
    tkinter = pytest.importorskip("tkinter")
    layout = BuildLayout(make_build(tmp_path / "b", board="ultra96-v2"))
    files = render(plan_vitis(layout))
    for name in ("run_hls.tcl", "create_project.tcl"):
        assert tkinter.Tcl().call("info", "complete", files[name]) == 1, name
    script = layout.vitis_dir / "run_hls.tcl"
    write_vitis(plan_vitis(layout))
    for argv, cosim in (("", False), ("-f run_hls.tcl -tclargs cosim", True)):
        interp = tkinter.Tcl()
        interp.eval("set qdet_calls {}")
        for cmd in ("open_project", "set_top", "add_files", "open_solution", "set_part", "create_clock",
                    "csim_design", "csynth_design", "cosim_design", "export_design", "close_project"):
            interp.eval(f"proc {cmd} {{args}} {{ lappend ::qdet_calls [list {cmd} {{*}}$args] }}")
        interp.eval("proc exit {args} {}")
        interp.eval("proc cd {args} {}")  # not this process's working directory
        interp.eval(f"set argv [list {argv}]")
        interp.eval(f"source {{{script}}}")
        names = str(interp.eval("lmap c $qdet_calls {lindex $c 0}")).split()
        assert [n for n in names if n != "add_files"] == [
            "open_project", "set_top", "open_solution", "set_part", "create_clock", "csim_design", "csynth_design",
            *(["cosim_design"] if cosim else []), "export_design", "close_project"]
        assert names.count("add_files") == 1 + len(HEADERS) + 1 + 3
        assert str(interp.eval("lindex $qdet_calls 2 end")) == f"-std=c++14 -I{layout.cpp_dir.resolve()}"
        assert str(interp.eval("lindex $qdet_calls 2 1")) == str(layout.cpp_dir.resolve() / "qdet_top.cpp")


def test_testbench_names_the_top_its_ports_widths_and_beats(tmp_path):
    plan = plan_vitis(BuildLayout(make_build(tmp_path / "b")))
    tb = render(plan)["tb_qdet_top.cpp"]
    assert '#include "qdet_top.h"' in tb and '#include "hls_stream.h"' in tb and '#include "ap_axi_sdata.h"' in tb
    assert "qdet_top(s_axis, m_axis, m1_axis);" in tb
    for name, port in PORTS.items():
        assert f"typedef ap_axiu<{port['width']}, 0, 0, 0> {name}_beat;" in tb
        assert f"const int k_{name}_beats = {port['beats_per_frame']};" in tb
        assert f'hls::stream<{name}_beat> {name}("{name}");' in tb
    assert "const int kFrames = 4;" in tb  # at most 4 of the build's 6 golden frames
    assert 'check_frame<32>(m_axis, "m_axis"' in tb and 'check_frame<8>(m1_axis, "m1_axis"' in tb
    assert tb.count("{") == tb.count("}") and tb.count("(") == tb.count(")")
    assert "int main(int argc, char** argv)" in tb and "return 1;" in tb


def test_data_files_are_the_golden_frames_packed_per_beat(tmp_path):
    layout = BuildLayout(make_build(tmp_path / "b", frames=3))
    files = files_of(plan_vitis(layout))
    x, (y0, y1) = golden(3)
    words = files["tb_input.dat"].split()
    assert len(words) == 3 * 64 and all(len(w) == 2 for w in words)
    assert [int(w, 16) for w in words] == list(x.reshape(-1))
    words0 = files["tb_output_m_axis.dat"].split()
    assert len(words0) == 3 * 32 and all(len(w) == 8 for w in words0)
    flat = y0.reshape(-1)
    expect = [((int(flat[2 * i]) & 0xFFF) | ((int(flat[2 * i + 1]) & 0xFFF) << 12)) for i in range(3 * 32)]
    assert [int(w, 16) for w in words0] == expect  # element 0 in the LSBs, two's complement, padding bits zero
    assert [int(w, 16) for w in files["tb_output_m1_axis.dat"].split()] == list(y1.reshape(-1))
    assert "const int kFrames = 3;" in files["tb_qdet_top.cpp"]


def test_zynq7_block_design_wraps_the_hls_ip_with_the_ps_dma_shell(tmp_path):
    plan = plan_vitis(BuildLayout(make_build(tmp_path / "b", outputs=1)))
    files = files_of(plan)
    assert set(files) == {"run_hls.tcl", "tb_qdet_top.cpp", "tb_input.dat", "tb_output_m_axis.dat",
                          "create_project.tcl", "run.sh", "README.md"}
    tcl = files["create_project.tcl"]
    assert "-part xc7z020clg400-1" in tcl and "[qdet_ip processing_system7] ps" in tcl
    assert "zynq_ultra_ps_e" not in tcl and "CONFIG.PCW_FPGA0_PERIPHERAL_FREQMHZ {100}" in tcl
    assert "set ip_repo [file normalize [file join $here qdet_hls/solution1/impl/ip]]" in tcl
    assert "set_property ip_repo_paths [list $ip_repo] [current_project]" in tcl and "update_ip_catalog" in tcl
    assert "create_bd_cell -type ip -vlnv qdet.org:hls:qdet_top:1.0 qdet" in tcl
    assert "qdet_axis_shell" not in tcl and "rtl_dir" not in tcl and "module -reference" not in tcl
    assert "CONFIG.c_m_axis_mm2s_tdata_width {8}" in tcl and "CONFIG.c_s_axis_s2mm_tdata_width {32}" in tcl
    assert "connect_bd_intf_net [get_bd_intf_pins dma/M_AXIS_MM2S] [get_bd_intf_pins qdet/s_axis]" in tcl
    assert "connect_bd_intf_net [get_bd_intf_pins qdet/m_axis] [get_bd_intf_pins dma/S_AXIS_S2MM]" in tcl
    assert "[get_bd_pins qdet/ap_clk]" in tcl and "[get_bd_pins qdet/ap_rst_n]" in tcl
    assert "dma1" not in tcl and "CONFIG.NUM_SI {2} CONFIG.NUM_MI {1}] [get_bd_cells mem_ic]" in tcl
    for flow in ("launch_runs impl_1 -to_step write_bitstream", "write_hw_platform", "qdet.hwh", "qdet.bit"):
        assert flow in tcl
    assert "vivado -mode batch -nojournal -log vivado.log -source create_project.tcl" in files["run.sh"]
    assert "vitis_hls -f run_hls.tcl" in files["run.sh"]


def test_zynq_ultrascale_block_design_gives_each_further_output_its_own_dma(tmp_path):
    for board, part in (("ultra96-v2", "xczu3eg-sbva484-1-i"), ("zcu104", "xczu7ev-ffvc1156-2-e")):
        plan = plan_vitis(BuildLayout(make_build(tmp_path / board, board=board, clock=150.0)))
        tcl = render(plan)["create_project.tcl"]
        assert f"-part {part}" in tcl and "[qdet_ip zynq_ultra_ps_e] ps" in tcl
        assert "processing_system7" not in tcl and "CONFIG.PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ {150}" in tcl
        assert "create_bd_cell -type ip -vlnv qdet.org:hls:qdet_top:1.0 qdet" in tcl
        assert "connect_bd_intf_net [get_bd_intf_pins qdet/m1_axis] [get_bd_intf_pins dma1/S_AXIS_S2MM]" in tcl
        dma1 = tcl[tcl.index("create_bd_cell -type ip -vlnv [qdet_ip axi_dma] dma1"):]
        dma1 = dma1[:dma1.index("[get_bd_cells dma1]")]
        assert "CONFIG.c_include_mm2s {0}" in dma1 and "CONFIG.c_s_axis_s2mm_tdata_width {8}" in dma1
        assert "CONFIG.c_m_axi_s2mm_data_width {32}" in dma1 and "CONFIG.c_addr_width {64}" in dma1
        assert "CONFIG.NUM_SI {1} CONFIG.NUM_MI {2}] [get_bd_cells ctrl_ic]" in tcl
        assert "CONFIG.NUM_SI {3} CONFIG.NUM_MI {1}] [get_bd_cells mem_ic]" in tcl
        assert "CONFIG.NUM_PORTS {3}] [get_bd_cells irq]" in tcl
        assert "[get_bd_intf_pins ctrl_ic/M01_AXI] [get_bd_intf_pins dma1/S_AXI_LITE]" in tcl
        assert "[get_bd_intf_pins dma1/M_AXI_S2MM] [get_bd_intf_pins mem_ic/S02_AXI]" in tcl
        assert "[get_bd_pins dma1/s2mm_introut] [get_bd_pins irq/In2]" in tcl
        assert "[get_bd_addr_segs dma1/S_AXI_LITE/Reg] -offset 0xA0010000 -range 64K" in tcl
        assert "[get_bd_pins dma1/axi_resetn]" in tcl and "[get_bd_pins dma1/m_axi_s2mm_aclk]" in tcl
        readme = render(plan)["README.md"]
        assert "`dma1` S2MM at `0xA0010000`" in readme and "`dma` MM2S at `0xA0000000`" in readme


def test_alveo_writes_only_the_hls_flow_and_says_why(tmp_path):
    plan = plan_vitis(BuildLayout(make_build(tmp_path / "u", board="u250", clock=250.0)))
    files = files_of(plan)
    assert "create_project.tcl" not in files
    assert "set_part xcu250-figd2104-2L-e" in files["run_hls.tcl"]
    assert "create_clock -period 4.000 -name default" in files["run_hls.tcl"]
    assert len(plan.notes) == 1 and "u250" in plan.notes[0] and "no Zynq PS" in plan.notes[0]
    assert "v++" in files["README.md"] and "vivado=0" in files["run.sh"]
    assert "create_project.tcl" not in files["run.sh"].split("vivado=0")[1].split("if [")[0]


def test_output_is_byte_identical_and_relocatable(tmp_path):
    a, b = make_build(tmp_path / "a", board="zcu104"), make_build(tmp_path / "b", board="zcu104")
    write_vitis(plan_vitis(BuildLayout(a), cosim=True))
    write_vitis(plan_vitis(BuildLayout(b), cosim=True))
    first = {f.name: f.read_bytes() for f in BuildLayout(a).vitis_dir.iterdir()}
    write_vitis(plan_vitis(BuildLayout(a), cosim=True))  # a second generation of the same build
    assert first == {f.name: f.read_bytes() for f in BuildLayout(a).vitis_dir.iterdir()}
    for name, text in first.items():
        assert text == (BuildLayout(b).vitis_dir / name).read_bytes(), name
        assert str(tmp_path).encode() not in text and b"/work/" not in text, name  # only paths relative to scripts


def test_the_backend_registry_reaches_the_handoff(tmp_path):
    from hls.backend import get_backend

    layout = BuildLayout(make_build(tmp_path / "b", board="zcu104"))
    plan = get_backend("cpp").scripts(layout, cosim=True)
    assert plan.cosim and plan.board.name == "zcu104"
    assert sorted(p.name for p in plan.out_dir.iterdir()) == sorted(render(plan))


def test_board_and_clock_come_from_the_build_the_arguments_or_the_cpp_manifest(tmp_path):
    plan = plan_vitis(BuildLayout(make_build(tmp_path / "a", board="ultra96-v2", clock=150.0)))
    assert (plan.board.name, plan.clock_mhz, plan.period_ns) == ("ultra96-v2", 150.0, "6.667")
    plan = plan_vitis(BuildLayout(tmp_path / "a"), board="zcu104", clock_mhz=125.0)
    assert (plan.board.name, plan.clock_mhz) == ("zcu104", 125.0)
    # A cpp folder without a build record: the C++'s manifest names them.
    plan = plan_vitis(BuildLayout(make_build(tmp_path / "n", board="zcu104", clock=175.0, record=False)))
    assert (plan.board.name, plan.clock_mhz) == ("zcu104", 175.0)


def test_missing_or_inconsistent_inputs_are_clear_errors(tmp_path):
    with pytest.raises(VitisError, match=r"manifest.json does not exist: generate the C\+\+ first: qdet sim .* "
                                         r"--backend cpp"):
        plan_vitis(BuildLayout(tmp_path / "nothing"))
    layout = BuildLayout(make_build(tmp_path / "b"))
    with pytest.raises(VitisError, match="unknown board"):
        plan_vitis(layout, board="pynq-z9")
    with pytest.raises(VitisError, match="--jobs must be >= 1"):
        plan_vitis(layout, jobs=0)

    def edit(change):
        manifest = json.loads(layout.cpp_manifest.read_text())
        change(manifest)
        layout.cpp_manifest.write_text(json.dumps(manifest))

    original = layout.cpp_manifest.read_text()
    edit(lambda m: m["ports"]["m_axis"].update(width=24))
    with pytest.raises(VitisError, match="m_axis is 24 bits wide"):
        plan_vitis(layout)
    layout.cpp_manifest.write_text(original)
    edit(lambda m: m["headers"].remove("qdet_top.h"))
    with pytest.raises(VitisError, match="headers do not list qdet_top.h"):
        plan_vitis(layout)
    layout.cpp_manifest.write_text(original)
    edit(lambda m: m["headers"].append("qdet_gone.hpp"))
    with pytest.raises(VitisError, match="lacks qdet_gone.hpp"):
        plan_vitis(layout)
    layout.cpp_manifest.write_text(original)
    edit(lambda m: m["synthesis_sources"].append("csim/hls_stream.h"))
    with pytest.raises(VitisError, match="C-simulation files"):
        plan_vitis(layout)
    layout.cpp_manifest.write_text(original)
    edit(lambda m: m["headers"].append("csim/hls_stream.h"))  # a listed shim header is left out, never added
    assert "csim/hls_stream.h" not in plan_vitis(layout).headers
    layout.cpp_manifest.write_text(original)
    (layout.cpp_dir / "hls_stream.h").write_text("// the shim, in the wrong place\n")
    with pytest.raises(VitisError, match="holds hls_stream.h: a quoted #include would take it"):
        plan_vitis(layout)
    (layout.cpp_dir / "hls_stream.h").unlink()
    edit(lambda m: m["ports"]["m_axis"].update(beats_per_frame=31))
    with pytest.raises(VitisError, match="golden output of m_axis has 64 values per frame.*31 beats x 2"):
        plan_vitis(layout)
    layout.cpp_manifest.write_text(original)
    layout.golden_output(1).unlink()
    with pytest.raises(VitisError, match="golden frames for 1 outputs, the C\\+\\+ top 2 output ports"):
        plan_vitis(layout)
    shutil.rmtree(layout.golden_dir)
    with pytest.raises(VitisError, match="golden frames.*--verify"):
        plan_vitis(layout)


def test_run_without_vitis_says_what_to_run_and_with_fake_tools_runs_both(tmp_path, monkeypatch):
    plan = plan_vitis(BuildLayout(make_build(tmp_path / "b")))
    write_vitis(plan)
    monkeypatch.setattr(vitis.shutil, "which", lambda name: None)
    assert vitis.find_vitis_hls() is None
    with pytest.raises(VitisError, match="neither vitis_hls nor vitis-run is on PATH.*`sh vitis/run.sh`"):
        vitis.run_vitis(plan)
    assert "`sh vitis/run.sh cosim`" in plan.how_to_run and "`sh vitis/run.sh hls`" in plan.how_to_run
    # Stand-ins for the tools: vitis_hls "exports" the IP, vivado writes the hand-off files.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "vitis_hls").write_text("#!/bin/sh\necho \"$@\" > args.txt\nmkdir -p qdet_hls/solution1/impl/ip\n"
                                       "touch qdet_hls/solution1/impl/ip/component.xml\n")
    (bin_dir / "vivado").write_text("#!/bin/sh\nmkdir -p out\ntouch out/qdet.bit out/qdet.hwh out/qdet.xsa\n")
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    with pytest.raises(VitisError, match="vivado is not on PATH .*run.sh hls"):  # checked before any run
        vitis.run_vitis(plan, bin_dir / "vitis_hls")
    assert not (plan.out_dir / "args.txt").exists()
    outputs = vitis.run_vitis(plan, bin_dir / "vitis_hls", bin_dir / "vivado")
    assert [p.name for p in outputs] == ["component.xml", "qdet.bit", "qdet.hwh", "qdet.xsa"]
    assert (plan.out_dir / "args.txt").read_text().split() == ["-f", "run_hls.tcl", "-l", "vitis_hls.log"]
    (bin_dir / "vitis_hls").write_text("#!/bin/sh\necho 'qdet tb: FAIL frame 0, m_axis beat 3: got 1, expected 2'\n"
                                       "exit 1\n")
    with pytest.raises(VitisError, match="Vitis HLS failed .*qdet tb: FAIL frame 0, m_axis beat 3"):
        vitis.run_vitis(plan, bin_dir / "vitis_hls", bin_dir / "vivado")


def test_run_sh_is_valid_shell_and_says_what_is_missing(tmp_path):
    sh, dirname = shutil.which("sh"), shutil.which("dirname")
    if sh is None or dirname is None:
        pytest.skip("no sh / dirname")
    bin_dir = tmp_path / "bin"  # a PATH with the shell's helpers and no Vitis
    bin_dir.mkdir()
    (bin_dir / "dirname").symlink_to(dirname)
    for board in ("pynq-z2", "u250"):
        plan = plan_vitis(BuildLayout(make_build(tmp_path / board, board=board)))
        write_vitis(plan)
        run_sh = str(plan.out_dir / "run.sh")
        subprocess.run([sh, "-n", run_sh], check=True)
        proc = subprocess.run([sh, run_sh], capture_output=True, text=True, env={"PATH": str(bin_dir)})
        assert proc.returncode == 127 and "neither vitis_hls nor vitis-run is on PATH" in proc.stderr
        proc = subprocess.run([sh, run_sh, "bogus"], capture_output=True, text=True, env={"PATH": str(bin_dir)})
        assert proc.returncode == 2 and "usage" in proc.stderr


FAKE_TOP_H = """\
#ifndef QDET_TOP_H
#define QDET_TOP_H
#include "hls_stream.h"
#include "ap_axi_sdata.h"
void qdet_top(hls::stream<ap_axiu<8, 0, 0, 0> >& s_axis, hls::stream<ap_axiu<32, 0, 0, 0> >& m_axis,
              hls::stream<ap_axiu<8, 0, 0, 0> >& m1_axis);
#endif
"""
FAKE_TOP = """\
#include "qdet_top.h"
#ifndef BUG
#define BUG 0
#endif
// BUG 1: one wrong value in frame 1; BUG 2: m_axis TLAST one beat early; BUG 3: one m1_axis beat too few.
void qdet_top(hls::stream<ap_axiu<8, 0, 0, 0> >& s_axis, hls::stream<ap_axiu<32, 0, 0, 0> >& m_axis,
              hls::stream<ap_axiu<8, 0, 0, 0> >& m1_axis) {
  static int calls = 0;
  int sum = 0;
  for (int b = 0; b < 32; ++b) {
    ap_axiu<32, 0, 0, 0> o;
    o.data = 0;
    for (int e = 0; e < 2; ++e) {
      const int k = 2 * b + e;
      const int v = s_axis.read().data.to_int() & 15;
      int y = 3 * v - 20;
      if (BUG == 1 && calls == 1 && k == 5) y += 1;
      o.data.range(12 * e + 11, 12 * e) = ap_uint<12>(y & 0xfff);
      sum += v;
      if (k % 4 == 3 && !(BUG == 3 && k == 63)) {
        ap_axiu<8, 0, 0, 0> o1;
        o1.data = sum;
        o1.keep = -1;
        o1.strb = -1;
        o1.last = k == 63 ? 1 : 0;
        m1_axis.write(o1);
        sum = 0;
      }
    }
    o.keep = -1;
    o.strb = -1;
    o.last = b == (BUG == 2 ? 30 : 31) ? 1 : 0;
    m_axis.write(o);
  }
  ++calls;
}
"""


def test_generated_testbench_compiles_and_catches_data_tlast_and_beat_count_errors(tmp_path):
    """g++ with qdet's C-simulation hls_stream.h / ap_axi_sdata.h in place of Vitis': the testbench passes a
    correct top on the written data files and names the first mismatch of a broken one."""
    gxx = shutil.which("g++")
    require_tool("g++", gxx is not None, "apt install g++")
    from hls.cpp import csim

    try:
        ap_types = csim.ap_types_dir()
    except csim.CsimError as exc:
        require_tool("ap_int.h", False, str(exc))
    layout = BuildLayout(make_build(tmp_path / "b", frames=5))
    plan = plan_vitis(layout)
    write_vitis(plan)
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "qdet_top.h").write_text(FAKE_TOP_H)
    (fake / "qdet_top.cpp").write_text(FAKE_TOP)
    flags = ["-std=c++14", "-O2", "-Wall", "-Wextra", "-Werror", f"-I{fake}", f"-I{csim.INCLUDE}", "-isystem",
             str(ap_types)]
    tb_obj = tmp_path / "tb.o"
    subprocess.run([gxx, *flags, "-c", str(plan.out_dir / "tb_qdet_top.cpp"), "-o", str(tb_obj)], check=True,
                   capture_output=True, timeout=300)

    def run(bug: int, *args: str) -> subprocess.CompletedProcess:
        exe = tmp_path / f"tb{bug}"
        subprocess.run([gxx, *flags, f"-DBUG={bug}", str(fake / "qdet_top.cpp"), str(tb_obj), "-o", str(exe)],
                       check=True, capture_output=True, timeout=300)
        return subprocess.run([str(exe), *args], cwd=plan.out_dir, capture_output=True, text=True, timeout=60)

    ok = run(0)
    assert ok.returncode == 0 and "qdet tb: PASS: 4 frames bit-exact on m_axis, m1_axis" in ok.stdout, ok.stdout
    assert "PASS: 2 frames" in run(0, "2").stdout
    bad = run(1)
    assert bad.returncode == 1 and "FAIL frame 1, m_axis beat 2:" in bad.stdout, bad.stdout
    assert "m1_axis" not in bad.stdout  # the sums of m1_axis do not see the wrong value
    last = run(2)
    assert last.returncode == 1 and "FAIL frame 0, m_axis beat 30:" in last.stdout and "(TLAST 1)" in last.stdout
    short = run(3)
    assert short.returncode == 1 and "FAIL frame 0: m1_axis gave 15 of its 16 beats" in short.stdout, short.stdout
    (plan.out_dir / "tb_output_m1_axis.dat").write_text("zz\n")
    broken = subprocess.run([str(tmp_path / "tb0")], cwd=plan.out_dir, capture_output=True, text=True, timeout=60)
    assert broken.returncode == 2 and "not a hex word" in broken.stdout
