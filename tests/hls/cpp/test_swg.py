"""The C++ kernel ``qdet_swg`` (hls/cpp/kernels/qdet_swg.hpp) against FINN's ConvolutionInputGenerator stream.

The cases are the RTL bench's (tests/sim/test_swg.py, its seed): 24 random legal sets (the pinned corner cases
first: 1x1 windows, strides up to 3, dilation 2, depthwise and standard order, parallel window, kernels as wide as
the image, one-row and one-column images, 1..8-bit signed and unsigned elements) and the real layer shapes of
our detectors (130x130x3 parallel window, 66x66x16 SIMD 8, a 128x128x16 depthwise 2x2/2 pool input), 2-3 random
frames each for the random sets, the kernel called once per frame. Expected: FINN's python execution of a
one-node ConvolutionInputGenerator_rtl (Im2Col plus FINN's depthwise fold-major interleave), reshaped to its
folded output shape: the exact beat sequence, whichever the order (hls/rtl/README.md). All cases compile into one
program (tests/hls/cpp/harness.py).

A second test (a second, small program: it counts the input beats taken) checks the buffering: with the output
never read beyond its first beats, the kernel must stop taking input within the RTL's ring (DEPTH beats ahead of
the window, or the delay line's SPAN), never read on through the frame."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.hls.cpp.harness import require_kernel_tools

SEED = 7  # tests/sim/test_swg.py's sampling seed
DATA_SEED = 11  # and its frames' seed
N_RANDOM = 24


def _words(rows: np.ndarray, bits: int) -> list[int]:
    from boards.runtime.stream import pack

    return [pack(r, bits) for r in rows.tolist()]


@pytest.fixture(scope="module")
def instances():
    require_kernel_tools(finn=True)
    from tests.sim.test_swg import _golden, _random_sets, _real_sets

    insts = _random_sets(N_RANDOM, SEED) + _real_sets()
    rng = np.random.default_rng(DATA_SEED)
    for inst in insts:
        p, bits = inst["params"], inst["params"]["BITS"]
        lo, hi = (-(1 << (bits - 1)), 1 << (bits - 1)) if inst["signed"] else (0, 1 << bits)
        inst["x"] = rng.integers(lo, hi, size=(inst["frames"], p["IFM_H"], p["IFM_W"], p["C"]), dtype=np.int64)
        inst["y"] = _golden(p, inst["signed"], inst["x"])
    return insts


def kernel_case(i: int, inst: dict):
    from tests.hls.cpp.harness import KernelCase

    p = dict(inst["params"])
    frames, beats, elems = inst["y"].shape
    width_in = p["SIMD"] * p["BITS"]
    params = {**p, "IN_BEATS": p["IFM_H"] * p["IFM_W"] * p["C"] // p["SIMD"], "OUT_BEATS": beats}
    label = (f"swg{i} x{frames} {p['IFM_H']}x{p['IFM_W']}x{p['C']} SIMD{p['SIMD']} K{p['K_H']}x{p['K_W']} "
             f"S{p['STRIDE_H']}x{p['STRIDE_W']} D{p['DIL_H']}x{p['DIL_W']} dw{p['DEPTHWISE']} "
             f"pw{p['PARALLEL_WINDOW']} {'INT' if inst['signed'] else 'UINT'}{p['BITS']}")
    return KernelCase(label=label, kernel="qdet_swg", params=params,
                      inputs=[(width_in, _words(inst["x"].reshape(-1, p["SIMD"]), p["BITS"]))],
                      outputs=[(elems * p["BITS"], _words(inst["y"].reshape(-1, elems), p["BITS"]))],
                      frames=frames)


@pytest.fixture(scope="module")
def kernel_cases(instances):
    return [kernel_case(i, inst) for i, inst in enumerate(instances)]


def test_cases_cover_the_brief(instances) -> None:
    """At least 20 random sets of several frames; every order with a channel fold (SIMD < C; a standard-order
    parallel window carries all channels, FINN's rule), strides and dilations above 1, 1x1 and non-square windows,
    signed elements."""
    rand = [i for i in instances if not i["perf"]]
    ps = [i["params"] for i in rand]
    assert len(rand) >= 20 and all(i["frames"] >= 2 for i in rand)
    for dw in (0, 1):
        for pw in (0, 1):
            fold = (lambda p: p["SIMD"] < p["C"]) if dw or not pw else (lambda p: p["SIMD"] == p["C"] > 1)
            assert any(p["DEPTHWISE"] == dw and p["PARALLEL_WINDOW"] == pw and fold(p) and p["K_H"] * p["K_W"] > 1
                       for p in ps), (dw, pw)
    assert any(p["STRIDE_H"] > 1 for p in ps) and any(p["STRIDE_W"] > 1 for p in ps)
    assert any(p["DIL_H"] > 1 for p in ps) and any(p["DIL_W"] > 1 for p in ps)
    assert any(p["K_H"] * p["K_W"] == 1 for p in ps) and any(p["K_H"] != p["K_W"] for p in ps)
    assert any(i["signed"] for i in rand)


def test_swg_matches_finn(kernel_cases, tmp_path: Path) -> None:
    """Every case's output beats equal FINN's folded stream, exactly as many (one compile for all cases)."""
    from tests.hls.cpp.harness import check_cases

    check_cases(kernel_cases, tmp_path)


def input_taken_when_stalled(probes: list[tuple[str, dict, int, int, int]], work: Path) -> list[tuple[int, bool]]:
    """For each (kernel, params, input width, output width, beats read): a one-input, one-output kernel called once,
    its whole frame offered (zero beats) through a depth-2 stream, a sink that reads that many output beats and
    stops. Returns (input beats the kernel took, whether the region deadlocked) per probe: what it buffers while
    its output is stalled. One compile for all probes."""
    from hls.cpp.cfg import cfg_struct
    from hls.cpp.csim import compile_cpp

    kernels = sorted({k for k, *_ in probes})
    src = ["#include <cstdio>", "#include <exception>", '#include "qdet_hls.hpp"']
    src += [f'#include "{k}.hpp"' for k in kernels]
    main = ["int main() {"]
    for i, (kernel, params, w_in, w_out, reads) in enumerate(probes):
        src.append(cfg_struct(f"probe{i}", params))
        src.append(f"""void run_probe{i}() {{
  hls::stream<ap_uint<{w_in}>, 2> in("in");
  hls::stream<ap_uint<{w_out}>, 2> out("out");
  int offered = 0;
  bool deadlocked = false;
  try {{
    QDET_DATAFLOW_BEGIN
    QDET_PROCESS("source", for (int i = 0; i < probe{i}::IN_BEATS; ++i) {{ in.write(ap_uint<{w_in}>(0)); ++offered; }});
    QDET_PROCESS("kernel", {kernel}<probe{i}>(in, out));
    QDET_PROCESS("sink", for (int i = 0; i < {reads}; ++i) out.read());
    QDET_DATAFLOW_END
  }} catch (const std::exception&) {{
    deadlocked = true;
  }}
  std::printf("%d %d\\n", offered - static_cast<int>(in.size()), deadlocked ? 1 : 0);
}}""")
        main.append(f"  run_probe{i}();")
    main += ["  return 0;", "}"]
    work.mkdir(parents=True, exist_ok=True)
    cpp = work / "probes.cpp"
    cpp.write_text("\n".join(src + main) + "\n")
    exe = compile_cpp([cpp], work / "probes", log=work / "probes.log")
    lines = subprocess.run([str(exe)], capture_output=True, text=True, timeout=300, check=True).stdout.splitlines()
    return [(int(a), b == "1") for a, b in (line.split() for line in lines if line)]


def _ring(p: dict) -> tuple[int, int]:
    """(the RTL's ring depth (qdet_swg.sv, PARALLEL_WINDOW=0) or delay line (PARALLEL_WINDOW=1) in input beats,
    the largest jump of a window's start)."""
    cf = p["C"] // p["SIMD"]
    row, col = p["DIL_H"] * p["IFM_W"] * cf, p["DIL_W"] * cf
    j_col = p["STRIDE_W"] * cf
    j_row = (p["STRIDE_H"] * p["IFM_W"] - (p["OFM_W"] - 1) * p["STRIDE_W"]) * cf
    if p["PARALLEL_WINDOW"]:
        return (p["K_H"] - 1) * row + (p["K_W"] - 1) * col + 1, max(j_col, j_row)
    span = (p["K_H"] - 1) * row + (p["K_W"] - 1) * col + cf
    full = span + max(j_row, j_col)
    pow2 = 1 << (full.bit_length() - 1)
    return (pow2 if pow2 >= span + j_col and 16 * pow2 >= 15 * full else full), max(j_col, j_row)


READS = 3  # output beats the stalled sink reads


def test_swg_buffers_what_the_rtl_buffers(instances, tmp_path: Path) -> None:
    """Output stalled after READS beats (the output stream holds 2 more): the kernel takes no more input than the
    RTL's ring holds beyond the windows it has emitted (at most READS + 3 window starts), then waits: the region
    deadlocks with the rest of the frame still offered, whatever the frame's length."""
    from tests.sim.test_swg import _odim

    probes, limits = [], []
    for inst in instances:
        p = dict(inst["params"])
        # Taller images than the bench's: the frame then reaches well beyond the ring.
        p["IFM_H"] += (p["K_H"] - 1) * p["DIL_H"] + 8 * p["STRIDE_H"] + 4
        p["OFM_H"] = _odim(p["IFM_H"], p["K_H"], p["STRIDE_H"], p["DIL_H"])
        in_beats = p["IFM_H"] * p["IFM_W"] * p["C"] // p["SIMD"]
        ring, jump = _ring(p)
        limit = ring + (READS + 3) * jump
        if in_beats < limit + 20:  # the frame hardly exceeds the ring: nothing to see
            continue
        w_in = p["SIMD"] * p["BITS"]
        w_out = w_in * (p["K_H"] * p["K_W"] if p["PARALLEL_WINDOW"] else 1)
        out_beats = p["OFM_H"] * p["OFM_W"] * p["C"] // p["SIMD"] * (1 if p["PARALLEL_WINDOW"] else p["K_H"] * p["K_W"])
        probes.append(("qdet_swg", {**p, "IN_BEATS": in_beats, "OUT_BEATS": out_beats}, w_in, w_out, READS))
        limits.append(limit)
    assert len(probes) >= 20 and any(p["PARALLEL_WINDOW"] for _, p, *_ in probes)
    assert any(not p["PARALLEL_WINDOW"] for _, p, *_ in probes)
    for (_, p, *_), (taken, deadlocked), limit in zip(probes, input_taken_when_stalled(probes, tmp_path), limits):
        assert deadlocked, f"{p}: the kernel finished without its output being read"
        assert taken <= limit, f"{p}: took {taken} input beats with its output stalled, the RTL's ring allows {limit}"
