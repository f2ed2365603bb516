"""tinyyolo W4A4 end to end at a small width: train, export, build for pynq-z2 and ultra96-v2 (residual adds,
forks, an upsample + concat neck, two heads), verify against the Brevitas checkpoint on both outputs. pynq-z2's build
is also simulated bit-exact on both output ports under random backpressure (8 frames) and at the estimated rate
without it, C-simulated bit-exact on 16 frames and `qdet run` on the val split (qdet eval's detections and mAP);
ultra96-v2's (another folding and FIFO sizing of the same graph) is mapped to RTL kernels with both output ports."""

from __future__ import annotations

import json

import pytest

from tests.e2e.zoo_builds import (C_FRAMES, build_verified, c_simulate, map_to_rtl, run_matches_eval,
                                  simulate_both_ways, train_and_export)
from tests.tools import require_simulator

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tinyyolo(synth_data, tmp_path_factory):
    """A quarter-width tinyyolo W4A4 at 64x64, trained for 2 epochs on the session's synthetic set, exported."""
    root = tmp_path_factory.mktemp("tinyyolo")
    checkpoint, onnx = train_and_export(synth_data, root, "tinyyolo", width=0.25, depth=1, input_size=(64, 64))
    return root, checkpoint, onnx


@pytest.mark.rtlsim
@pytest.mark.parametrize("board", ["pynq-z2", "ultra96-v2"])
def test_tinyyolo_builds_verifies_and_simulates_bit_exact_on_both_heads(capsys, tinyyolo, synth_data, board):
    from qonnx.core.modelwrapper import ModelWrapper

    root, checkpoint, onnx = tinyyolo
    # On pynq-z2 the build also C-simulates its HLS C++: 16 distinct golden frames.
    verify = C_FRAMES if board == "pynq-z2" else 4
    layout = build_verified(capsys, onnx, root / f"build_{board}", board, synth_data, checkpoint, verify)
    spec = json.loads(layout.io_spec.read_text())
    assert [o["shape"][1:3] for o in spec["outputs"]] == [[4, 4], [8, 8]]  # stride 16, then stride 8
    assert [h["stride"] for h in spec["model_config"]["heads"]] == [16, 8]
    assert [o["decode"]["stride"] for o in spec["outputs"]] == [16, 8]  # each port with its head's decode params
    ops = [n.op_type for n in ModelWrapper(str(layout.step_checkpoint("stream_links"))).graph.node]
    for op in ("ElementwiseAdd_hls", "DuplicateStreams_hls", "StreamingConcat_hls", "UpsampleNearestNeighbour_hls"):
        assert op in ops, op
    assert ops.count("ElementwiseAdd_hls") == 2
    sizing = json.loads(layout.fifo_sizing.read_text())
    assert any(r["join"].startswith("ElementwiseAdd") for r in sizing.values())
    assert any(r["join"].startswith("StreamingConcat") for r in sizing.values())
    if board != "pynq-z2":
        # The second board differs in its folding, FIFO sizing and budget (checked above); the kernels'
        # bit-exactness over foldings is tests/sim's, so a second whole-network compile would repeat it.
        assert {"m_axis", "m1_axis"} <= set(map_to_rtl(layout)["ports"])  # one output port per head
        return
    require_simulator("verilator")
    simulate_both_ways(capsys, layout, frames=8, seed=3)
    assert {"m_axis", "m1_axis"} <= set(layout.read_manifest()["ports"])  # one output port per head
    c_simulate(capsys, layout)
    # Both heads through the C simulation as a board, decoded on the host: qdet eval's detections and mAP.
    report = run_matches_eval(capsys, layout, synth_data, checkpoint, root / "eval")
    assert report["detections"] > 0 and report["images"] == 16
