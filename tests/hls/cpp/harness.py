"""C simulation of single C++ kernels for the kernel tests: many cases, one g++ compile, FINN's beats as the truth.

Each :class:`KernelCase` is one instance of a kernel (``hls/cpp/kernels/<kernel>.hpp``) with its parameter struct
(rendered by :func:`hls.cpp.cfg.cfg_struct`, as the generator renders it), the input beats of each input port, and
the expected beats of each output port (from FINN's python execution of the one-node op, built by the RTL kernel
benches in ``sim/tb``). Every case runs in a dataflow region of its own: a source process writes the input beats
into bounded streams (``depth`` beats), the kernel is called once per frame, and a sink process takes exactly the
expected number of beats. Too few output beats or too many are a deadlock of that region, reported per case.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hls.cpp.cfg import cfg_struct
from hls.cpp.csim import compile_cpp


@dataclass(frozen=True)
class KernelCase:
    """One kernel instance: parameters and arrays of its struct, input words per port, expected words per port.

    ``inputs``/``outputs`` are (width in bits, words) per port, in the kernel's port order. ``frames`` is how many
    times the kernel is called (it processes one frame per call). ``out_array``: the outputs are passed as one
    array of streams (the fork)."""

    label: str
    kernel: str
    params: Mapping[str, int | str]
    inputs: Sequence[tuple[int, Sequence[int]]]
    outputs: Sequence[tuple[int, Sequence[int]]]
    frames: int = 1
    arrays: Mapping[str, np.ndarray] = field(default_factory=dict)
    depth: int = 2
    out_array: bool = False


@dataclass(frozen=True)
class CaseResult:
    label: str
    outputs: list[list[int]]  # words per output port
    error: str

    @property
    def ok(self) -> bool:
        return not self.error


def _words(name: str, words: Sequence[int]) -> str:
    body = ", ".join(f'"{w:x}"' for w in words) if words else '""'
    return f"static const char* const {name}[] = {{{body}}};"


def _case_source(i: int, case: KernelCase) -> str:
    cfg = f"case{i}"
    lines = [cfg_struct(cfg, case.params, case.arrays)]
    for p, (_, words) in enumerate(case.inputs):
        lines.append(_words(f"{cfg}_in{p}", words))
    body = [f"void run_{cfg}() {{"]
    for p, (width, _) in enumerate(case.inputs):
        body.append(f"  hls::stream<ap_uint<{width}>, {case.depth}> in{p}(\"in{p}\");")
    if case.out_array:
        width = case.outputs[0][0]
        body.append(f"  hls::stream<ap_uint<{width}>, {case.depth}> out[{len(case.outputs)}];")
        outs = [f"out[{p}]" for p in range(len(case.outputs))]
        args = [f"in{p}" for p in range(len(case.inputs))] + ["out"]
    else:
        for p, (width, _) in enumerate(case.outputs):
            body.append(f"  hls::stream<ap_uint<{width}>, {case.depth}> out{p}(\"out{p}\");")
        outs = [f"out{p}" for p in range(len(case.outputs))]
        args = [f"in{p}" for p in range(len(case.inputs))] + outs
    body.append("  QDET_DATAFLOW_BEGIN")
    for p, (width, words) in enumerate(case.inputs):
        body.append(f"  QDET_PROCESS(\"source{p}\", for (int i = 0; i < {len(words)}; ++i) "
                    f"in{p}.write(parse_word<{width}>({cfg}_in{p}[i])));")
    body.append(f"  QDET_PROCESS(\"{case.kernel}\", for (int f = 0; f < {case.frames}; ++f) "
                f"{case.kernel}<{cfg}>({', '.join(args)}));")
    for p, (_, words) in enumerate(case.outputs):
        body.append(f"  QDET_PROCESS(\"sink{p}\", for (int i = 0; i < {len(words)}; ++i) "
                    f"qdet::csim::trace_word(stdout, \"{i} {p}\", {outs[p]}.read()));")
    body.append("  QDET_DATAFLOW_END")
    body.append("}")
    return "\n".join(lines + body) + "\n"


def _main(cases: Sequence[KernelCase]) -> str:
    kernels = sorted({c.kernel for c in cases})
    head = ["#include <cstdio>", "#include <cstdint>", "#include <string>", '#include "qdet_hls.hpp"']
    head += [f'#include "{k}.hpp"' for k in kernels]
    head.append("""
template <int W>
ap_uint<W> parse_word(const char* hex) {
  ap_uint<W> v = 0;
  for (const char* c = hex; *c; ++c) {
    const int d = (*c <= '9') ? *c - '0' : *c - 'a' + 10;
    v = (v << 4) | ap_uint<W>(d);
  }
  return v;
}
""")
    runs = ["int main() {"]
    for i in range(len(cases)):
        runs.append(f"  try {{ run_case{i}(); }} catch (const std::exception& e) {{ "
                    f"std::string m = e.what(); for (auto& ch : m) if (ch == '\\n') ch = '|'; "
                    f"std::printf(\"ERR {i} %s\\n\", m.c_str()); }}")
    runs += ["  return 0;", "}"]
    return "\n".join(head) + "\n" + "".join(_case_source(i, c) for i, c in enumerate(cases)) + "\n".join(runs) + "\n"


def require_kernel_tools(finn: bool = True) -> None:
    """Skip (fail in CI) a kernel test without g++ and the ap_types headers, or without FINN for its golden model."""
    from tests.tools import require_cxx, require_module

    if finn:
        require_module("finn", "FINN (finn-plus) provides the golden model; `make setup` installs it")
    require_cxx()


def run_cases(cases: Sequence[KernelCase], work: Path) -> list[CaseResult]:
    """Compile every case into one program, run it, and return each case's output words (or its error)."""
    work.mkdir(parents=True, exist_ok=True)
    src = work / "kernel_cases.cpp"
    src.write_text(_main(cases))
    exe = compile_cpp([src], work / "kernel_cases", log=work / "compile.log")
    proc = subprocess.run([str(exe)], capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise AssertionError(f"the kernel program failed ({proc.returncode}): {proc.stderr[-2000:]}")
    outs = [[[] for _ in c.outputs] for c in cases]
    errors = [""] * len(cases)
    for line in proc.stdout.splitlines():
        if line.startswith("ERR "):
            _, idx, msg = line.split(" ", 2)
            errors[int(idx)] = msg.replace("|", "\n")
            continue
        i, p, word = line.split()
        outs[int(i)][int(p)].append(int(word, 16))
    return [CaseResult(c.label, outs[i], errors[i]) for i, c in enumerate(cases)]


def check_cases(cases: Sequence[KernelCase], work: Path) -> None:
    """:func:`run_cases`, then every case must give exactly its expected words (all failures reported at once)."""
    failures = []
    for case, result in zip(cases, run_cases(cases, work)):
        if result.error:
            failures.append(f"{case.label}: {result.error}")
            continue
        for p, ((_, want), got) in enumerate(zip(case.outputs, result.outputs)):
            if list(want) != got:
                first = next((k for k, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
                failures.append(f"{case.label}: port {p}: {len(got)} of {len(want)} beats, first difference at "
                                f"beat {first}" + (f" (got {got[first]:#x}, want {want[first]:#x})"
                                                   if first < min(len(got), len(want)) else ""))
    assert not failures, f"{len(failures)} of {len(cases)} cases fail:\n" + "\n".join(failures)


