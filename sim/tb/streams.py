"""Multi-instance stream checks shared by the kernel benches.

Two drivers live here: :func:`check_streams` (fifo, dwc, fmpad, maxpool; stimulus file in ``QDET_TB_STIM``) and
:func:`run_plan` (mvau, thresholding; a plan with per-instance cycle bounds and per-lane diffs, in ``QDET_TB_PLAN``).
They do the same job with different extras and are due to become one. :func:`run_ports` is ``run_plan`` for
kernels with several stream ports (fork, add, concat, upsample): every input and every output port is driven as its
own stream, with its own idle or stall pattern.

The ``check_streams`` stimulus format:

The pytest side writes a JSON stimulus file (path in ``QDET_TB_STIM``): one entry per wrapper instance with the
input beats ``in``, the expected output beats ``out`` (from an independent reference), the source idle and sink
stall probabilities, and ``rate`` (no idle, no stall: the whole stream must then take at most
max(len(in), len(out)) + ``slack`` cycles, the kernel's folded rate plus its pipeline latency). Every instance
runs at once; each must deliver exactly ``out`` and then stay quiet (no extra beat)."""

from __future__ import annotations

import json
import os
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge

from boards.runtime.stream import pack, unpack
from sim.axis import AxisSink, AxisSource
from sim.wrap import multi_instance_wrapper

RATE_SLACK = 8  # cycles of pipeline latency allowed on top of the folded rate


def first_difference(got: list[int], want: list[int]) -> str:
    """Where two beat lists first differ, for a failure message."""
    for i, (a, b) in enumerate(zip(got, want)):
        if a != b:
            return f"beat {i}: got {a:#x}, want {b:#x}"
    return f"lengths {len(got)} vs {len(want)}"


async def _timed_recv(sink: AxisSink, n: int, counter: list[int]) -> tuple[list[int], int]:
    """Receive ``n`` beats; also return the cycle count (a shared counter) when the last one arrived."""
    got = await sink.recv(n, 5000)
    return got, counter[0]


async def _receive(sink, count: int, timeout_cycles: int, cycle: list[int]) -> tuple[list[int] | None, str, int]:
    """``count`` beats from ``sink``, the error text on a timeout (the other streams keep going: every failure is
    reported together), and the cycle it ended at."""
    try:
        got = await sink.recv(count, timeout_cycles=timeout_cycles)
    except TimeoutError as exc:
        return None, str(exc), cycle[0]
    return got, "", cycle[0]


async def _quiet(sink, cycles: int) -> str:
    """'' when ``sink`` sees no beat for ``cycles`` cycles, else what it saw (an extra beat)."""
    try:
        await sink.expect_quiet(cycles)
    except AssertionError as exc:
        return str(exc)
    return ""


async def _count_cycles(clk, counter: list[int]) -> None:
    while True:
        await RisingEdge(clk)
        counter[0] += 1


async def check_streams(dut) -> None:
    """Drive every instance of the wrapper with its stimulus and compare its output beats exactly."""
    with open(os.environ["QDET_TB_STIM"]) as f:
        stim = json.load(f)
    rng = random.Random(int(os.environ.get("QDET_TB_SEED", "0")))
    cocotb.start_soon(Clock(dut.ap_clk, 10, unit="ns").start())
    dut.ap_rst_n.value = 0
    jobs = []
    for n, inst in enumerate(stim):
        src = AxisSource(dut.ap_clk, getattr(dut, f"i{n}_s_axis_tdata"), getattr(dut, f"i{n}_s_axis_tvalid"),
                         getattr(dut, f"i{n}_s_axis_tready"), random.Random(rng.random()), inst["idle"])
        sink = AxisSink(dut.ap_clk, getattr(dut, f"i{n}_m_axis_tdata"), getattr(dut, f"i{n}_m_axis_tvalid"),
                        getattr(dut, f"i{n}_m_axis_tready"), random.Random(rng.random()), inst["stall"])
        jobs.append((inst, src, sink))
    await ClockCycles(dut.ap_clk, 3)
    dut.ap_rst_n.value = 1
    await RisingEdge(dut.ap_clk)
    cycles = [0]
    cocotb.start_soon(_count_cycles(dut.ap_clk, cycles))
    receivers = [cocotb.start_soon(_timed_recv(sink, len(inst["out"]), cycles)) for inst, _, sink in jobs]
    for inst, src, _ in jobs:
        cocotb.start_soon(src.send(inst["in"]))
    errors = []
    for n, ((inst, _, _), rx) in enumerate(zip(jobs, receivers)):
        got, took = await rx
        if got != inst["out"]:
            errors.append(f"instance {n} ({inst.get('name', '')}): {first_difference(got, inst['out'])}")
        limit = max(len(inst["in"]), len(inst["out"])) + RATE_SLACK
        if inst.get("rate") and took > limit:
            errors.append(f"instance {n} ({inst.get('name', '')}): {took} cycles at full rate, limit {limit}")
    quiet = [cocotb.start_soon(sink.expect_quiet(30)) for _, _, sink in jobs]
    for n, q in enumerate(quiet):
        try:
            await q
        except AssertionError as exc:
            errors.append(f"instance {n} ({jobs[n][0].get('name', '')}): {exc}")
    assert not errors, "; ".join(errors)


def stim_entry(name: str, view, ins: list[int], outs: list[int], rate: bool, rng: random.Random) -> dict:
    """One :func:`check_streams` stimulus entry for an instance with a generator view's parameters and port widths
    (``view.params()``, ``in_width``, ``out_width``): ``rate`` runs it free (no idle, no stall, the folded rate is
    checked), otherwise its idle and stall probabilities are drawn from ``rng``."""
    return {"name": name, "params": view.params(), "in_width": view.in_width, "out_width": view.out_width,
            "in": ins, "out": outs, "rate": rate,
            "idle": 0.0 if rate else rng.choice([0.0, 0.2, 0.6]),
            "stall": 0.0 if rate else rng.choice([0.0, 0.3, 0.7])}


def write_stim(module: str, instances: Sequence[dict], out_dir: Path) -> tuple[Path, Path]:
    """Write the wrapper ``top`` (one ``module`` per :func:`stim_entry`) and the stimulus file for
    :func:`check_streams`; return (wrapper, stimulus) paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    top = out_dir / "top.sv"
    top.write_text(multi_instance_wrapper(module, [
        (i["params"], {"s_axis_tdata": i["in_width"], "s_axis_tvalid": 1, "s_axis_tready": 1,
                       "m_axis_tdata": i["out_width"], "m_axis_tvalid": 1, "m_axis_tready": 1})
        for i in instances]))
    stim = out_dir / "stim.json"
    stim.write_text(json.dumps(instances))
    return top, stim


def cycled(rng: random.Random, values: Sequence, n: int) -> list:
    """``n`` values covering every entry of ``values`` (when n allows), in a seeded random order."""
    out = [values[i % len(values)] for i in range(n)]
    rng.shuffle(out)
    return out


def fold_words(rows: np.ndarray, lanes: int, bits: int) -> list[int]:
    """Stream beats of ``rows`` [V, N]: per row, N/lanes beats of ``lanes`` consecutive elements."""
    return [pack(r[f * lanes:(f + 1) * lanes], bits) for r in rows for f in range(len(r) // lanes)]


# Where the cocotb side finds the plan written by the pytest side.
PLAN_ENV = "QDET_TB_PLAN"
# (idle on the input, stall on the output): free-running, each side alone, both, both heavy.
BACKPRESSURE = ((0.0, 0.0), (0.3, 0.0), (0.0, 0.5), (0.3, 0.5), (0.6, 0.7))


@dataclass(frozen=True)
class StreamInstance:
    """One kernel instance in a multi-instance run: HDL parameters, port widths, and the beats in and out.

    ``max_cycles`` (only for runs without idle or stall) bounds the cycles from the first input offered to the last
    output taken: it checks the folded rate, in cycles, never wall-clock time."""

    label: str
    params: dict[str, int | str]
    in_width: int
    out_width: int
    words_in: tuple[int, ...]
    words_out: tuple[int, ...]
    out_elems: int
    out_bits: int
    out_signed: bool
    idle: float
    stall: float
    seed: int
    max_cycles: int | None = None


def write_hex(path: Path, words: Sequence[int], bits: int) -> Path:
    """Write a ``$readmemh`` file: one word per line, zero-padded to ``bits`` bits."""
    digits = max(1, -(-bits // 4))
    path.write_text("".join(f"{w:0{digits}x}\n" for w in words))
    return path


def write_plan(module: str, instances: Sequence[StreamInstance], out_dir: Path) -> tuple[Path, Path]:
    """Write the wrapper ``top`` (one ``module`` per instance) and the JSON plan; return (wrapper, plan) paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    entries = []
    for inst in instances:
        ports = {"s_axis_tdata": inst.in_width, "s_axis_tvalid": 1, "s_axis_tready": 1,
                 "m_axis_tdata": inst.out_width, "m_axis_tvalid": 1, "m_axis_tready": 1}
        entries.append((inst.params, ports))
    wrapper = out_dir / f"top_{module}.v"
    wrapper.write_text(multi_instance_wrapper(module, entries))
    plan = out_dir / f"plan_{module}.json"
    plan.write_text(json.dumps({"module": module, "instances": [asdict(i) for i in instances]}))
    return wrapper, plan


def _diff(inst: dict, got: list[int]) -> str:
    """A readable description of where ``got`` differs from the expected beats of ``inst``."""
    exp = inst["words_out"]
    if len(got) != len(exp):
        return f"{len(got)} beats, expected {len(exp)}"
    bad = []
    for beat, (g, e) in enumerate(zip(got, exp)):
        if g != e:
            gv = unpack(g, inst["out_elems"], inst["out_bits"], inst["out_signed"])
            ev = unpack(e, inst["out_elems"], inst["out_bits"], inst["out_signed"])
            lanes = [f"lane {i}: got {a} expected {b}" for i, (a, b) in enumerate(zip(gv, ev)) if a != b]
            bad.append(f"beat {beat}: " + ", ".join(lanes))
    return f"{len(bad)} of {len(exp)} beats differ; " + "; ".join(bad[:4]) if bad else ""


async def run_plan(dut, plan_path: Path, quiet_cycles: int = 64, timeout_cycles: int = 5000) -> None:
    """Drive every instance of the plan at once (seeded idle/stall), then check beats, counts and cycle bounds."""
    from cocotb.clock import Clock
    from cocotb.triggers import ClockCycles, RisingEdge

    from sim.axis import AxisSink, AxisSource

    plan = json.loads(Path(plan_path).read_text())
    clk = dut.ap_clk
    Clock(clk, 10, unit="ns").start()
    dut.ap_rst_n.value = 0
    ends: list[tuple[object, object]] = []
    for n, inst in enumerate(plan["instances"]):
        rng = random.Random(inst["seed"])
        src = AxisSource(clk, getattr(dut, f"i{n}_s_axis_tdata"), getattr(dut, f"i{n}_s_axis_tvalid"),
                         getattr(dut, f"i{n}_s_axis_tready"), rng, inst["idle"])
        sink = AxisSink(clk, getattr(dut, f"i{n}_m_axis_tdata"), getattr(dut, f"i{n}_m_axis_tvalid"),
                        getattr(dut, f"i{n}_m_axis_tready"), rng, inst["stall"])
        ends.append((src, sink))
    await ClockCycles(clk, 4)
    dut.ap_rst_n.value = 1
    await RisingEdge(clk)

    cycle = [0]

    async def receive(sink, inst) -> tuple[list[int] | None, str, int]:
        return await _receive(sink, len(inst["words_out"]), timeout_cycles, cycle)

    counter = cocotb.start_soon(_count_cycles(clk, cycle))
    senders = [cocotb.start_soon(src.send(inst["words_in"])) for (src, _), inst in zip(ends, plan["instances"])]
    receivers = [cocotb.start_soon(receive(sink, inst)) for (_, sink), inst in zip(ends, plan["instances"])]
    received = [await r for r in receivers]
    for s in senders:
        s.cancel()

    async def quiet(sink) -> str:
        return await _quiet(sink, quiet_cycles)

    quiets = [await q for q in [cocotb.start_soon(quiet(sink)) for _, sink in ends]]
    counter.cancel()

    failures = []
    for n, (inst, (got, err, cycles), extra) in enumerate(zip(plan["instances"], received, quiets)):
        problems = []
        if got is None:
            problems.append(err)
        else:
            d = _diff(inst, got)
            if d:
                problems.append(d)
            if inst["max_cycles"] is not None and cycles > inst["max_cycles"]:
                problems.append(f"took {cycles} cycles, folded rate allows {inst['max_cycles']}")
        if extra:
            problems.append(extra)
        if problems:
            failures.append(f"i{n} ({inst['label']}): " + " | ".join(problems))
    assert not failures, f"{len(failures)} of {len(plan['instances'])} instances failed:\n" + "\n".join(failures)


# ---- Multi-port kernels (qdet_fork, qdet_add, qdet_concat; qdet_upsample uses it too): every port its own stream.

@dataclass(frozen=True)
class PortStream:
    """The beats one port of an instance moves, and how the bench drives it.

    ``port`` is the signal prefix (``s0_axis``, ``m_axis``): signals ``i<n>_<port>_tdata/tvalid/tready``, or
    ``i<n>_<port>_tdata_<k>`` ... for slice ``k`` of a :class:`sim.wrap.Split` port. ``prob`` is the idle
    probability of an input and the stall probability of an output, drawn each cycle from the port's own
    generator. ``elems``/``bits``/``signed`` only describe an output's lanes for the failure message."""

    port: str
    words: tuple[int, ...]
    prob: float = 0.0
    slice: int | None = None
    elems: int = 1
    bits: int = 1
    signed: bool = False


def _signal(n: int, port: dict, name: str) -> str:
    """The top-level signal ``name`` (tdata, tvalid, tready) of a plan's port (a :class:`PortStream` as a dict)
    on instance ``n``."""
    return f"i{n}_{port['port']}_{name}" + ("" if port["slice"] is None else f"_{port['slice']}")


@dataclass(frozen=True)
class PortsInstance:
    """One kernel instance of a multi-port run: HDL parameters, the wrapper's port map (widths, or
    :class:`sim.wrap.Split` for packed multi-stream ports), the input and output streams, a seed.

    ``max_cycles`` (only for runs without idle or stall on any port) bounds the cycles from the first input
    offered to the last output beat taken on any output port."""

    label: str
    params: dict[str, int | str]
    ports: dict[str, Any]
    inputs: tuple[PortStream, ...]
    outputs: tuple[PortStream, ...]
    seed: int
    max_cycles: int | None = None


def axis_ports(prefix: str, width: int, parts: int | None = None) -> dict[str, Any]:
    """The wrapper port map of one AXI-Stream port ``prefix`` (``s0_axis``, ``m_axis``) of ``width`` bits, or of
    ``parts`` packed streams of ``width`` bits each (a :class:`sim.wrap.Split` per signal)."""
    from sim.wrap import Split

    if parts is None:
        return {f"{prefix}_tdata": width, f"{prefix}_tvalid": 1, f"{prefix}_tready": 1}
    return {f"{prefix}_tdata": Split(parts, width), f"{prefix}_tvalid": Split(parts, 1),
            f"{prefix}_tready": Split(parts, 1)}


def write_ports_plan(module: str, instances: Sequence[PortsInstance], out_dir: Path) -> tuple[Path, Path]:
    """Write the wrapper ``top`` (one ``module`` per instance) and the JSON plan for :func:`run_ports`; return
    (wrapper, plan) paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    wrapper = out_dir / f"top_{module}.v"
    wrapper.write_text(multi_instance_wrapper(module, [(i.params, i.ports) for i in instances]))
    plan = out_dir / f"plan_{module}.json"
    plan.write_text(json.dumps({"module": module, "instances": [
        {"label": i.label, "seed": i.seed, "max_cycles": i.max_cycles,
         "inputs": [asdict(p) for p in i.inputs], "outputs": [asdict(p) for p in i.outputs]} for i in instances]}))
    return wrapper, plan


def _port_diff(port: dict, got: list[int]) -> str:
    """Where an output port's beats differ from the expected ones ('' when equal)."""
    return _diff({"words_out": port["words"], "out_elems": port["elems"], "out_bits": port["bits"],
                  "out_signed": port["signed"]}, got)


async def run_ports(dut, plan_path: Path, quiet_cycles: int = 48, timeout_cycles: int = 5000) -> None:
    """Drive every port of every instance of the plan at once, each input with its own seeded idle pattern and
    each output with its own stall pattern; then check each output's beats, that every input beat was taken,
    that no output moves an extra beat, and the cycle bounds."""
    plan = json.loads(Path(plan_path).read_text())
    clk = dut.ap_clk
    cocotb.start_soon(Clock(clk, 10, unit="ns").start())
    dut.ap_rst_n.value = 0
    ends = []
    for n, inst in enumerate(plan["instances"]):
        srcs, sinks = [], []
        for k, port in enumerate(inst["inputs"]):
            tdata, tvalid, tready = (getattr(dut, _signal(n, port, s)) for s in ("tdata", "tvalid", "tready"))
            srcs.append(AxisSource(clk, tdata, tvalid, tready, random.Random(inst["seed"] * 64 + k), port["prob"]))
        for k, port in enumerate(inst["outputs"]):
            tdata, tvalid, tready = (getattr(dut, _signal(n, port, s)) for s in ("tdata", "tvalid", "tready"))
            sinks.append(AxisSink(clk, tdata, tvalid, tready, random.Random(inst["seed"] * 64 + 32 + k),
                                  port["prob"]))
        ends.append((srcs, sinks))
    await ClockCycles(clk, 4)
    dut.ap_rst_n.value = 1
    await RisingEdge(clk)

    cycle = [0]
    counter = cocotb.start_soon(_count_cycles(clk, cycle))

    async def receive(sink, port) -> tuple[list[int] | None, str, int]:
        return await _receive(sink, len(port["words"]), timeout_cycles, cycle)

    senders = [[cocotb.start_soon(src.send(port["words"])) for src, port in zip(srcs, inst["inputs"])]
               for (srcs, _), inst in zip(ends, plan["instances"])]
    receivers = [[cocotb.start_soon(receive(sink, port)) for sink, port in zip(sinks, inst["outputs"])]
                 for (_, sinks), inst in zip(ends, plan["instances"])]
    received = [[await r for r in rs] for rs in receivers]

    async def quiet(sink) -> str:
        return await _quiet(sink, quiet_cycles)

    quiets = [[cocotb.start_soon(quiet(sink)) for sink in sinks] for _, sinks in ends]
    quiets = [[await q for q in qs] for qs in quiets]
    counter.cancel()

    failures = []
    for n, inst in enumerate(plan["instances"]):
        problems = []
        for port, (got, err, _), extra in zip(inst["outputs"], received[n], quiets[n]):
            name = port["port"] + ("" if port["slice"] is None else f"[{port['slice']}]")
            if got is None:
                problems.append(f"{name}: {err}")
            elif d := _port_diff(port, got):
                problems.append(f"{name}: {d}")
            if extra:
                problems.append(f"{name}: {extra}")
        for port, task in zip(inst["inputs"], senders[n]):
            if not task.done():
                task.cancel()
                problems.append(f"{port['port']}: not every input beat was taken")
        took = max((c for _, _, c in received[n]), default=0)
        if inst["max_cycles"] is not None and took > inst["max_cycles"]:
            problems.append(f"took {took} cycles, the rate allows {inst['max_cycles']}")
        if problems:
            failures.append(f"i{n} ({inst['label']}): " + " | ".join(problems))
    assert not failures, f"{len(failures)} of {len(plan['instances'])} instances failed:\n" + "\n".join(failures)


def finn_model(op_type: str, inputs: Sequence[tuple[str, Sequence[int], str]],
               outputs: Sequence[tuple[str, Sequence[int]]], domain: str = "finn.custom_op.fpgadataflow",
               **attrs: Any) -> Any:
    """A qonnx ``ModelWrapper`` holding one FINN ``op_type`` node with several streamed inputs and/or outputs
    (:func:`sim.tb.finn_node.one_node_model` has one of each): ``inputs`` as (name, shape, FINN datatype),
    ``outputs`` as (name, shape), in the node's port order; ``attrs`` are the node's attributes."""
    from onnx import TensorProto, helper
    from qonnx.core.datatype import DataType
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.basic import qonnx_make_model

    node = helper.make_node(op_type, [n for n, _, _ in inputs], [n for n, _ in outputs], domain=domain,
                            backend="fpgadataflow", name=f"{op_type}_0", **attrs)
    graph = helper.make_graph([node], op_type.lower(),
                              [helper.make_tensor_value_info(n, TensorProto.FLOAT, list(s)) for n, s, _ in inputs],
                              [helper.make_tensor_value_info(n, TensorProto.FLOAT, list(s)) for n, s in outputs])
    model = ModelWrapper(qonnx_make_model(graph, producer_name="qdet-tb"))
    for name, _, dtype in inputs:
        model.set_tensor_datatype(name, DataType[dtype])
    return model


def finn_execute(model: Any, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every graph output of ``model`` for ``feeds`` (FINN's python execution), as int64; an output that is not
    integer-valued is an error."""
    from qonnx.core.onnx_exec import execute_onnx

    out = execute_onnx(model, {k: v.astype(np.float32) for k, v in feeds.items()})
    result = {}
    for name, value in out.items():
        r = np.rint(value).astype(np.int64)
        if not np.array_equal(r, value):
            raise AssertionError(f"FINN's {model.graph.node[0].op_type} returned non-integer values on {name}")
        result[name] = r
    return result


def with_extremes(rng: random.Random, shape: Sequence[int], lo: int, hi: int, edge: float = 0.2) -> np.ndarray:
    """Random integers in [lo, hi] of ``shape``: each element is ``lo`` or ``hi`` with probability ``edge/2`` each,
    uniform otherwise; two random positions (of at least two elements) hold ``lo`` and ``hi`` in any case, so both
    range ends are in every stream."""
    out = np.empty(tuple(shape), dtype=np.int64)
    for i in np.ndindex(out.shape):
        r = rng.random()
        out[i] = lo if r < edge / 2 else hi if r < edge else rng.randint(lo, hi)
    if out.size >= 2:
        a, b = rng.sample(range(out.size), 2)
        out.flat[a], out.flat[b] = lo, hi
    return out


def dtype_range(name: str) -> tuple[int, int, int, bool]:
    """(bits, min, max, signed) of a FINN integer DataType name such as ``INT4``."""
    from qonnx.core.datatype import DataType

    dt = DataType[name]
    return dt.bitwidth(), int(dt.min()), int(dt.max()), dt.signed()


# Idle/stall probabilities drawn per port (independently on every input and every output).
PORT_PRESSURE = (0.0, 0.2, 0.5, 0.7)
