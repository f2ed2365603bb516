"""The C++ backend's generator on the small hand-made folded graph of tests/hls/test_gen.py: the same stages,
links and ports as the RTL backend, one stream per link with the FIFOs' depths, weights in the memory files'
layout, determinism, and the error for an unsupported node. No compiler needed."""

from __future__ import annotations

import re

import numpy as np
import pytest

from hls.backend import get_backend
from hls.cpp.generate import plan_cpp
from hls.gen import GenerateError, generate_rtl, load_manifest
from hls.gen.memfiles import weight_lanes
from tests.hls.test_gen import _fold_build


def test_the_cpp_plan_walks_the_graph_as_the_rtl_backend(tmp_path):
    build, w, _ = _fold_build(tmp_path)
    rtl = load_manifest(generate_rtl(build))
    plan = plan_cpp(build)
    m = plan.manifest
    assert m["backend"] == "cpp" and m["ports"] == rtl["ports"]
    assert m["links"] == rtl["links"] and [s["kernel"] for s in m["stages"]] == [s["kernel"] for s in rtl["stages"]]
    top = plan.files["qdet_top.cpp"]
    # One stream per link; a FIFO's depth sits on its output stream, every other stream holds 2 beats.
    fifo_out = {s["link_out"]: s["parameters"]["DEPTH"] for s in rtl["stages"] if s["role"] == "fifo"}
    for link in rtl["links"]:
        decl = re.search(rf"hls::stream<ap_uint<(\d+)>, (\d+)> {link['name']}\(\"{link['name']}\"\);", top)
        assert decl is not None, link["name"]
        assert int(decl.group(1)) == link["width"] and int(decl.group(2)) == fifo_out.get(link["name"], 2)
    assert top.count("QDET_PROCESS(") == len(rtl["stages"]) + 2  # every kernel, the input port, one output port
    # The MVAU's weights: the RTL's W_FILE lanes, row by row, in the generated struct.
    params = plan.files["qdet_params.h"]
    lanes = weight_lanes(w.astype(np.int64), 2, 3)
    body = re.search(r"MVAU_hls_0::weights\[(\d+)\]\[(\d+)\] = \{(.*?)\};", params, re.S)
    assert (int(body.group(1)), int(body.group(2))) == lanes.shape
    rows = [[int(v) for v in r.split(",")] for r in re.findall(r"\{([-\d, ]+)\}", body.group(3))]
    assert np.array_equal(np.array(rows), lanes)
    # The C simulation's stream shim travels in csim/, never among the synthesis sources.
    assert "csim/hls_stream.h" in plan.files and all(not h.startswith("csim/") for h in m["headers"])


def test_same_build_same_cpp_bytes(tmp_path):
    build, _, _ = _fold_build(tmp_path)
    first = get_backend("cpp").generate(build)
    again = plan_cpp(build)
    assert {p.relative_to(first).as_posix(): p.read_text() for p in first.rglob("*") if p.is_file()} == dict(
        again.files)


def test_an_unsupported_node_is_named(tmp_path):
    build, _, _ = _fold_build(tmp_path, extra_node=True)
    with pytest.raises(GenerateError, match="LabelSelect_hls_0"):
        plan_cpp(build)
