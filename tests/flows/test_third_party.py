"""Models people bring: random Brevitas nets (float inputs, preprocessing, odd shapes, strided and depthwise convs,
mixed precision, pools, fully connected heads) and FINN's own CNV build, verify against QONNX execution of the
export, fold legally for FINN's node models and simulate bit-exact in RTL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flows.build import BuildLayout
from flows.config import FlowConfig
from flows.runner import run_flow
from flows.steps import DEFAULT_STEPS
from tests.flows.brevitas_nets import Layer, NetSpec, build_net, export, random_spec
from tests.sim.fast_compile import FAST_COMPILE
from tests.tools import require_cxx, require_simulator

SEEDS = (0, 1, 2, 3, 4, 5)
# A float-input detector: normalised image (per-channel mean/std in the model), QuantIdentity, a strided stem,
# depthwise-separable blocks (one strided, one 5x5), odd channel counts, a non-square input, a 1x1 head.
DETECTOR = NetSpec((3, 20, 14), (Layer("conv", 8, k=3, stride=2, w_bits=8, a_bits=4), Layer("dw", k=3, a_bits=4),
                                 Layer("pw", 13, w_bits=4, a_bits=3), Layer("dw", k=5, stride=2, pad=2, w_bits=4),
                                 Layer("pw", 11, w_bits=2, a_bits=4), Layer("head", 12, k=1, pad=0, w_bits=8)),
                   preprocess="meanstd", name="float-detector")
# A classifier: global average pool (Brevitas TruncAvgPool2d), flatten, fully connected layers.
CLASSIFIER = NetSpec((3, 12, 12), (Layer("conv", 8, k=3, w_bits=8), Layer("dw", k=3, stride=2),
                                   Layer("pw", 10), Layer("gap", a_bits=4), Layer("flatten"),
                                   Layer("fc", 16, w_bits=4, a_bits=4), Layer("fc_head", 5, w_bits=4)),
                     preprocess="affine", name="classifier")


def _spec(key) -> NetSpec:
    return {"detector": DETECTOR, "classifier": CLASSIFIER}.get(key) or random_spec(key)


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    """Build cache: each net is exported and built once for the module (pynq-z2, --max-fps, 3 verify images)."""
    done: dict = {}

    def get(key) -> BuildLayout:
        if key not in done:
            root = tmp_path_factory.mktemp(f"net_{key}")
            spec = _spec(key)
            onnx = export(build_net(spec, seed=11), spec.in_shape, root / "model.onnx", seed=11)
            cfg = FlowConfig(out=root / "build", board="pynq-z2", verify_images=3)
            run_flow(onnx, cfg, DEFAULT_STEPS)
            done[key] = cfg.layout
        return done[key]

    return get


def _check_folding_is_legal_for_finn(layout: BuildLayout) -> None:
    """Every folded node passes FINN's own node checks, and each depthwise consumer's window matches its PE."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.custom_op.registry import getCustomOp

    model = ModelWrapper(str(layout.step_checkpoint("fold")))
    for node in model.graph.node:
        op = getCustomOp(node)
        op.get_folded_input_shape(), op.get_folded_output_shape(), op.get_exp_cycles()
        if node.op_type == "ConvolutionInputGenerator_rtl":
            op.select_impl_style()  # FINN's RTL window asserts its SIMD/parallel_window rules here
        if node.op_type.startswith(("VVAU", "Pool")):
            window = getCustomOp(model.find_producer(node.input[0]))
            assert window.get_nodeattr("SIMD") == op.get_nodeattr("PE"), node.name
            if node.op_type.startswith("Pool"):
                assert window.get_nodeattr("parallel_window") == 0, node.name
            channels = op.get_nodeattr("Channels")
            assert channels % op.get_nodeattr("PE") == 0
        if node.op_type.startswith("MVAU"):
            assert op.get_nodeattr("MH") % op.get_nodeattr("PE") == 0
            assert op.get_nodeattr("MW") % op.get_nodeattr("SIMD") == 0


@pytest.mark.parametrize("key", [*SEEDS, "detector", "classifier"])
def test_models_people_bring_build_exactly_and_fold_legally(builds, key):
    layout = builds(key)
    verified = json.loads(layout.verify_record.read_text())
    assert verified["images"] == 3 and verified["mismatches"] == 0
    assert "exact QONNX execution" in verified["reference"]  # float64, not a float32 accident
    spec = json.loads(layout.io_spec.read_text())
    assert spec["input"]["datatype"].startswith("INT")  # the host quantizes; the FPGA takes integers
    assert [op["op"] for op in spec["input"]["host_ops"]][-2:] == ["Quant", "Transpose"]
    _check_folding_is_legal_for_finn(layout)
    est = layout.read_estimates()
    assert est["fits"]
    from hls.gen import generate_rtl

    generate_rtl(layout)  # every node maps to a kernel and the depthwise streams pair up
    assert layout.manifest.is_file()


def test_depthwise_convs_became_vvaus_and_the_classifier_ends_in_fc(builds):
    from qonnx.core.modelwrapper import ModelWrapper

    ops = [n.op_type for n in ModelWrapper(str(builds("detector").step_checkpoint("fold"))).graph.node]
    assert ops.count("VVAU_hls") == 2 and ops.count("MVAU_hls") == 4
    ops = [n.op_type for n in ModelWrapper(str(builds("classifier").step_checkpoint("fold"))).graph.node]
    assert "VVAU_hls" in ops and "Pool_hls" in ops and ops[-1] == "MVAU_hls"
    spec = json.loads(builds("classifier").io_spec.read_text())
    assert spec["outputs"][0]["shape"] == [1, 5]


@pytest.mark.rtlsim
@pytest.mark.parametrize("key", ["detector", "classifier", 1, 4])
def test_models_people_bring_simulate_bit_exact(builds, key):
    """Bit-exact under random backpressure; without it, cycles per frame within 10% of FINN's estimate."""
    from sim.network import SimConfig, simulate

    require_simulator("verilator")
    layout = builds(key)
    pressed = simulate(layout, SimConfig(images=3, backpressure=0.3, seed=5, timeout_s=600, build_args=FAST_COMPILE))
    assert pressed.status == "done" and pressed.frames == 3 and pressed.mismatches == 0, pressed.message
    free = simulate(layout, SimConfig(images=3, timeout_s=600, build_args=FAST_COMPILE))
    assert free.mismatches == 0 and free.frames == 3
    assert 0.5 < free.ratio_to_estimate <= 1.10, (free.cycles_per_frame, free.estimate_cycles_per_frame)


def _cnv(tmp_path: Path) -> Path:
    """FINN's canonical test network from the installed Brevitas wheel: BNN-PYNQ CNV W2A2 (x*2-1 preprocessing
    in its forward, an input QuantIdentity), random init, BatchNorm calibrated on random images."""
    import torch
    from brevitas.export import export_qonnx
    from brevitas_examples.bnn_pynq.models import model_with_cfg

    torch.manual_seed(0)
    model, _ = model_with_cfg("cnv_2w2a", False)
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.rand(8, 3, 32, 32))
    path = tmp_path / "cnv_2w2a.onnx"
    export_qonnx(model.eval(), torch.rand(1, 3, 32, 32), str(path))
    return path


@pytest.mark.slow
@pytest.mark.rtlsim
def test_brevitas_cnv_w2a2_builds_for_pynq_z2_and_simulates_bit_exact(tmp_path):
    from sim.network import SimConfig, simulate

    require_simulator("verilator")
    cfg = FlowConfig(out=tmp_path / "cnv", board="pynq-z2", verify_images=16)
    run_flow(_cnv(tmp_path), cfg, DEFAULT_STEPS)
    layout = cfg.layout
    assert json.loads(layout.verify_record.read_text())["mismatches"] == 0
    est = layout.read_estimates()
    assert est["fits"] and est["fps"] > 1000
    spec = json.loads(layout.io_spec.read_text())
    assert [op["op"] for op in spec["input"]["host_ops"]][:3] == ["Mul", "Sub", "Quant"]  # 2x - 1 on the host
    # sim.network's own compile options, not FAST_COMPILE: 4 CNV frames are ~300k cycles, too many for an -O0 model.
    result = simulate(layout, SimConfig(images=4, timeout_s=900))
    assert result.frames == 4 and result.mismatches == 0, result.message
    assert result.ratio_to_estimate <= 1.10
    # Its HLS C++ C-simulates bit-exact on all 16 golden frames.
    require_cxx()
    from hls.backend import get_backend

    c = get_backend("cpp").simulate(layout, images=16)
    assert c.status == "done" and c.frames == 16 and c.mismatches == 0, c.message
