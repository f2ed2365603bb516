"""Graph-shaped networks in RTL: random residual / feature-pyramid / multi-head Brevitas nets build, verify and
simulate bit-exact on every output port under backpressure, and the reconvergent FIFO sizing decides between a
deadlock and the estimated rate.

The sizing test takes the skip FIFO of a residual block (the FIFO in front of the add's input that comes straight
from the fork) and simulates it one entry short of the computed deadlock bound (the watchdog must name that FIFO)
and at the bound itself (it must finish, slowly: the bound is exact, not a guess). At the depths the flow built,
every random graph net (each with residual blocks, so skip FIFOs sized by the same rule) must run within 10% of the
estimated cycles per frame.
"""

from __future__ import annotations

import json

import pytest

from flows.config import FlowConfig
from flows.runner import run_flow
from flows.steps import DEFAULT_STEPS
from tests.flows.brevitas_nets import export
from tests.flows.graph_nets import GraphSpec, build_graph_net, random_graph
from tests.sim.fast_compile import FAST_COMPILE
from tests.tools import require_cxx, require_simulator

# Residual block on an 8x8 map (the sizing test's graph).
RESIDUAL = GraphSpec((3, 8, 8), (4,), (1,), (0,), name="residual")
SEEDS = (0, 5, 7)  # two stages / two heads; three stages / three heads; a three-input concat
GOLDEN_FRAMES = 3  # the C simulation runs them all, as the RTL simulation does (1 where it only checks a deadlock)


@pytest.fixture(scope="module")
def graph_build(tmp_path_factory):
    done: dict = {}

    def get(spec: GraphSpec, board: str = "pynq-z2"):
        key = (spec.name, board)
        if key not in done:
            root = tmp_path_factory.mktemp(spec.name)
            onnx = export(build_graph_net(spec, seed=3), spec.in_shape, root / "model.onnx", seed=3)
            cfg = FlowConfig(out=root / "build", board=board, verify_images=GOLDEN_FRAMES)
            run_flow(onnx, cfg, DEFAULT_STEPS)
            done[key] = cfg.layout
        return done[key]

    return get


@pytest.mark.rtlsim
@pytest.mark.parametrize("seed", SEEDS)
def test_random_graph_nets_simulate_bit_exact_on_every_output_in_rtl_and_c(graph_build, seed):
    require_simulator("verilator")
    from sim.network import SimConfig, simulate

    spec = random_graph(seed)
    layout = graph_build(spec)
    spec_json = json.loads(layout.io_spec.read_text())
    assert len(spec_json["outputs"]) == len(spec.heads)  # one output port per head
    r = simulate(layout, SimConfig(images=3, backpressure=0.3, seed=seed, build_args=FAST_COMPILE))
    assert r.status == "done" and r.frames == 3 and r.mismatches == 0, r.message
    manifest = layout.read_manifest()
    kernels = {s["kernel"] for s in manifest["stages"]}
    assert {"qdet_fork", "qdet_add"} <= kernels and len([p for p in manifest["ports"] if p != "s_axis"]) == len(
        spec.heads)
    if len(spec.heads) > 1:
        assert {"qdet_concat", "qdet_upsample"} <= kernels
    # Without backpressure the pipeline keeps the estimated rate.
    fast = simulate(layout, SimConfig(images=3, seed=seed, build_args=FAST_COMPILE))
    assert fast.status == "done" and fast.mismatches == 0, fast.message
    assert fast.ratio_to_estimate is not None and fast.ratio_to_estimate <= 1.10, fast.ratio_to_estimate
    # The same build's HLS C++ C-simulates bit-exact on every port too (one build serves both backends).
    require_cxx()
    from hls.backend import get_backend

    r = get_backend("cpp").simulate(layout, images=GOLDEN_FRAMES)
    assert r.status == "done" and r.frames == GOLDEN_FRAMES and r.mismatches == 0, r.message
    manifest = layout.read_cpp_manifest()
    assert len([p for p in manifest["ports"] if p != "s_axis"]) == len(random_graph(seed).heads)
    # Every stream reports its occupancy, never above its capacity, which is its depth on every stream between a
    # fork and its join (the only ones whose capacity can decide a deadlock); the result file is the layout's.
    assert {s["link"] for s in r.streams} == {l["name"] for l in manifest["links"]}
    assert all(0 < s["max_occupancy"] <= s["capacity"] for s in r.streams)
    on_cycle = {l["name"] for l in manifest["links"] if _still_connected(manifest["links"], l)}
    assert on_cycle and all(s["capacity"] == s["depth"] for s in r.streams if s["link"] in on_cycle)
    assert json.loads(layout.csim_result.read_text())["mismatches"] == 0


@pytest.mark.rtlsim
def test_the_skip_fifo_one_short_of_the_sizing_deadlocks_and_is_named(graph_build):
    require_simulator("verilator")
    from flows.steps.links import set_fifo_depths
    from sim.network import SimConfig, simulate

    layout = graph_build(RESIDUAL)
    sizing = json.loads(layout.fifo_sizing.read_text())
    skip = [name for name, r in sizing.items() if r["join"].startswith("ElementwiseAdd")
            and r["long_branch_nodes"] > r["short_branch_nodes"]]
    assert len(skip) == 1, sizing
    name, record = skip[0], sizing[skip[0]]
    bound, built = record["deadlock_depth"], record["depth"]
    assert bound > 2 and built >= bound
    # (Bit-exact at the estimated rate with the depths the flow built: every random graph net above, one Verilator
    # compile each, instead of a fourth compile here.)

    # One entry short of the bound: no stream moves any more, and the watchdog names the skip FIFO.
    set_fifo_depths(layout, {name: bound - 1})
    short = simulate(layout, SimConfig(images=1, watchdog_cycles=1500, diagnose=False, build_args=FAST_COMPILE))
    assert short.status == "watchdog", short.message
    assert f"full at FIFO {name} (depth {bound - 1}" in short.message and "deadlock at ElementwiseAdd" in \
        short.message, short.message

    # At the bound itself the frame gets through (bit-exact, however slowly): the bound is the exact one.
    set_fifo_depths(layout, {name: bound})
    edge = simulate(layout, SimConfig(images=1, watchdog_cycles=1500, diagnose=False, build_args=FAST_COMPILE))
    assert edge.status == "done" and edge.mismatches == 0, edge.message
    set_fifo_depths(layout, {name: built})

    # qdet sim --size-fifos' measurement: with 4x deeper FIFOs the skip FIFO fills to at least the bound (a shallower
    # fill would contradict the deadlock one below it), and the depth it sets holds what it measured.
    from sim.fifo_sizing import size_fifos

    record = size_fifos(layout, SimConfig(images=2, build_args=FAST_COMPILE))[name]
    assert record["sized_by"] == "simulation" and record["sim_max_occupancy"] >= bound, record
    assert record["depth"] >= record["sim_max_occupancy"] and record["model_depth"] == built


def _still_connected(links: list[dict], cut: dict) -> bool:
    """True when ``cut``'s two ends stay connected without it (the graph taken undirected): it lies on a cycle."""
    adj: dict[str, set[str]] = {}
    for l in links:
        if l["name"] != cut["name"]:
            adj.setdefault(l["producer"], set()).add(l["consumer"])
            adj.setdefault(l["consumer"], set()).add(l["producer"])
    seen, todo = {cut["producer"]}, [cut["producer"]]
    while todo:
        for nxt in adj.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return cut["consumer"] in seen


def test_a_skip_fifo_too_shallow_deadlocks_the_c_simulation_naming_its_stream(graph_build):
    require_cxx()
    from flows.steps.links import set_fifo_depths
    from hls.backend import get_backend

    cpp = get_backend("cpp")
    layout = graph_build(RESIDUAL)
    sizing = json.loads(layout.fifo_sizing.read_text())
    name = next(n for n, r in sizing.items() if r["join"].startswith("ElementwiseAdd")
                and r["long_branch_nodes"] > r["short_branch_nodes"])
    built = sizing[name]["depth"]
    ok = cpp.simulate(layout, images=2)
    assert ok.status == "done" and ok.mismatches == 0, ok.message

    set_fifo_depths(layout, {name: 2})  # far below the deadlock bound (report/fifo_sizing.json)
    try:
        short = cpp.simulate(layout, images=1)  # the C++ is stale now: regenerated with the shallow FIFO
    finally:
        set_fifo_depths(layout, {name: built})
    assert short.status == "deadlock" and short.frames == 0, short.message
    # The too-shallow stream is named by its link, its FIFO node and the join its reader waits at.
    assert f"= FIFO {name})" in short.message and "is full while its reader" in short.message, short.message
    assert "deepen" in short.message


def test_a_corrupted_weight_is_caught_and_its_layer_named(graph_build, tmp_path):
    require_cxx()
    import shutil

    import numpy as np
    from qonnx.core.modelwrapper import ModelWrapper

    from flows.build import HARDWARE_STEP, BuildLayout
    from hls.backend import get_backend

    source = graph_build(RESIDUAL)
    layout = BuildLayout(tmp_path / "corrupt")
    shutil.copytree(source.root, layout.root)
    path = layout.step_checkpoint(HARDWARE_STEP)
    model = ModelWrapper(str(path))
    mvau = next(n for n in model.graph.node if n.op_type.startswith("MVAU"))
    w = model.get_initializer(mvau.input[1]).copy()
    w[0, 0] = w.min() if w[0, 0] > 0 else w.max()  # one weight, to the other end of its range
    model.set_initializer(mvau.input[1], w)
    model.save(str(path))
    r = get_backend("cpp").simulate(layout, images=2)
    assert r.status == "done" and r.mismatches > 0, r.message
    assert f"first diverging layer: {mvau.name}" in r.message, r.message
    first = next(d for d in r.layers if d["mismatches"])
    assert first["layer"] == mvau.name and np.all([d["mismatches"] == 0 for d in r.layers[:r.layers.index(first)]])
