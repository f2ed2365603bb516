"""Bad third-party models through ``qdet build``: a clear ``error:`` line naming the node and the fix, exit 2, the
loaded input and the log kept; and a FINN peer comparison that raises, which must not fail the build."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from flows.build import BuildLayout
from tests.flows.brevitas_nets import Layer, NetSpec, build_net, calibrate, export
from tests.qdet.cli_helpers import run_qdet

SMALL = NetSpec((3, 10, 8), (Layer("conv", 6, k=3, w_bits=8), Layer("dw", k=3), Layer("pw", 5),
                             Layer("head", 4, k=1, pad=0)), name="small")


def _export_module(model: nn.Module, shape: tuple[int, ...], path: Path) -> Path:
    from brevitas.export import export_qonnx

    calibrate(model, shape)
    export_qonnx(model, torch.rand(1, *shape), str(path))
    return path


def _refused(capsys, model: Path, out: Path, *must_contain: str) -> str:
    result = run_qdet(capsys, "build", model, "--out", out, "--verify", "1", "--max-fps")
    assert result.code == 2, result.text
    lines = result.error_lines()
    assert len(lines) == 1 and "Traceback" not in result.text
    for text in must_contain:
        assert text in lines[0], lines[0]
    layout = BuildLayout(out)
    assert layout.input_checkpoint.is_file() and layout.log.is_file()  # nothing lost: the input and the log stay
    return lines[0]


class _Multiplier(nn.Module):
    """A depthwise conv with channel multiplier 2 (groups == in_channels, out_channels == 2 * in_channels)."""

    def __init__(self):
        super().__init__()
        from brevitas.nn import QuantConv2d, QuantIdentity, QuantReLU

        self.body = nn.Sequential(QuantIdentity(bit_width=8), QuantConv2d(3, 6, 3, groups=3, weight_bit_width=4),
                                  nn.BatchNorm2d(6), QuantReLU(bit_width=4), QuantConv2d(6, 4, 1, weight_bit_width=4))

    def forward(self, x):
        return self.body(x)


def test_a_depthwise_conv_with_a_channel_multiplier_is_refused(capsys, tmp_path):
    model = _export_module(_Multiplier(), (3, 8, 8), tmp_path / "mult.onnx")
    line = _refused(capsys, model, tmp_path / "b", "(op Conv)", "depthwise conv with channel multiplier 2")
    assert "out_channels == in_channels" in line


def test_an_input_quantizer_with_a_float_zero_point_is_refused(capsys, tmp_path):
    import onnx
    from onnx import numpy_helper

    path = export(build_net(SMALL), SMALL.in_shape, tmp_path / "net.onnx")
    proto = onnx.load(str(path))
    first = next(n for n in proto.graph.node if n.op_type == "Quant" and n.input[0] == proto.graph.input[0].name)
    inits = {i.name: i for i in proto.graph.initializer}
    inits[first.input[2]].CopyFrom(numpy_helper.from_array(np.asarray(0.4, np.float32), first.input[2]))
    onnx.save(proto, str(path))
    _refused(capsys, path, tmp_path / "b", "input quantizer", "float zero point 0.4", "integer")


class _FloatLast(nn.Module):
    """A classifier whose last layer is a plain (float) nn.Linear."""

    def __init__(self):
        super().__init__()
        from brevitas.nn import QuantConv2d, QuantIdentity, QuantReLU

        self.body = nn.Sequential(QuantIdentity(bit_width=8), QuantConv2d(3, 6, 3, weight_bit_width=4),
                                  nn.BatchNorm2d(6), QuantReLU(bit_width=4), nn.Flatten(), nn.Linear(6 * 6 * 6, 3))

    def forward(self, x):
        return self.body(x)


def test_a_classifier_whose_last_layer_is_float_is_refused(capsys, tmp_path):
    model = _export_module(_FloatLast(), (3, 8, 8), tmp_path / "floatlast.onnx")
    _refused(capsys, model, tmp_path / "b", "float weights", "QuantLinear")


def test_a_raising_finn_setfolding_does_not_fail_the_build(capsys, tmp_path, monkeypatch):
    import flows.steps.fold as fold

    def exploding(model, cycles):
        raise RuntimeError("SetFolding exploded on purpose")

    monkeypatch.setattr(fold, "finn_setfolding", exploding)
    path = export(build_net(SMALL), SMALL.in_shape, tmp_path / "net.onnx")
    result = run_qdet(capsys, "build", path, "--out", tmp_path / "b", "--verify", "1", "--max-fps")
    assert result.code == 0, result.text
    assert "no FINN comparison: FINN's SetFolding failed: RuntimeError: SetFolding exploded on purpose" in result.text
    layout = BuildLayout(tmp_path / "b")
    est = layout.read_estimates()
    assert "exploded on purpose" in est["finn_setfolding"]["error"] and "comparison" not in est
    assert "No comparison: FINN's SetFolding failed" in layout.summary.read_text()
    assert est["fits"] and est["fps"] > 0  # qdet's own folding is there


def test_an_illegal_finn_folding_is_reported_not_used(capsys, tmp_path, monkeypatch):
    """FINN's SetFolding can pick a window SIMD its own RTL window rejects: the report says so with FINN's message."""
    import flows.steps.fold as fold
    from qonnx.custom_op.registry import getCustomOp

    real = fold.finn_setfolding

    def illegal(model, cycles):
        peer = real(model, cycles)
        window = next(n for n in peer.graph.node if n.op_type == "ConvolutionInputGenerator_rtl"
                      and not getCustomOp(n).get_nodeattr("depthwise"))
        getCustomOp(window).set_nodeattr("SIMD", 1)
        getCustomOp(window).set_nodeattr("parallel_window", 1)
        return peer

    monkeypatch.setattr(fold, "finn_setfolding", illegal)
    path = export(build_net(SMALL), SMALL.in_shape, tmp_path / "net.onnx")
    result = run_qdet(capsys, "build", path, "--out", tmp_path / "b", "--verify", "1", "--max-fps")
    assert result.code == 0, result.text
    error = BuildLayout(tmp_path / "b").read_estimates()["finn_setfolding"]["error"]
    assert "FINN's own node model rejects" in error and "SIMD must be equal to IFMChannels" in error


def test_resuming_without_verification_leaves_no_stale_golden_record(tmp_path):
    from flows.config import FlowConfig
    from flows.runner import run_flow
    from flows.steps import DEFAULT_STEPS

    path = export(build_net(SMALL), SMALL.in_shape, tmp_path / "net.onnx")
    out = tmp_path / "b"
    run_flow(path, FlowConfig(out=out, verify_images=1, stop="verify"), DEFAULT_STEPS)
    layout = BuildLayout(out)
    assert layout.verify_record.is_file() and layout.golden_outputs.is_file()
    run_flow(path, FlowConfig(out=out, verify_images=0, start="verify", stop="verify"), DEFAULT_STEPS)
    assert not layout.verify_record.exists() and not layout.golden_outputs.exists()
