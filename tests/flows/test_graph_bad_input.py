"""Graph-shaped models the flow must refuse, each with a message naming the node and the fix: a residual add of two
differently quantized branches, a bilinear resize, a resize by a non-integer factor, a concat of a float tensor."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from flows.config import FlowConfig, FlowError
from flows.runner import run_flow
from flows.steps import DEFAULT_STEPS
from tests.flows.brevitas_nets import _act_quant, _weight_quant, export
from tests.flows.graph_nets import GraphSpec, build_graph_net


def _build(tmp_path, model: nn.Module, shape: tuple[int, int, int]) -> None:
    onnx = export(model, shape, tmp_path / "model.onnx")
    run_flow(onnx, FlowConfig(out=tmp_path / "build", board="pynq-z2", verify_images=1), DEFAULT_STEPS)


class _Resizer(nn.Module):
    """conv -> QuantReLU -> Upsample(scale, mode) -> head conv."""

    def __init__(self, scale: float, mode: str):
        super().__init__()
        from brevitas.nn import QuantConv2d, QuantIdentity, QuantReLU

        self.quant_in = QuantIdentity(return_quant_tensor=True)
        self.conv = QuantConv2d(3, 4, 3, padding=1, bias=False, weight_quant=_weight_quant(4, True))
        self.act = QuantReLU(act_quant=_act_quant(4), return_quant_tensor=True)
        self.up = nn.Upsample(scale_factor=scale, mode=mode)
        self.head = QuantConv2d(4, 2, 1, bias=False, weight_quant=_weight_quant(8, True))

    def forward(self, x):
        return self.head(self.up(self.act(self.conv(self.quant_in(x)))))


class _FloatConcat(nn.Module):
    """A concat of a quantized map with a float one (a conv output no quantizer follows)."""

    def __init__(self):
        super().__init__()
        from brevitas.nn import QuantConv2d, QuantIdentity, QuantReLU

        self.quant_in = QuantIdentity(return_quant_tensor=True)
        self.conv = QuantConv2d(3, 4, 3, padding=1, bias=False, weight_quant=_weight_quant(4, True))
        self.act = QuantReLU(act_quant=_act_quant(4), return_quant_tensor=False)
        self.side = QuantConv2d(4, 4, 1, bias=False, weight_quant=_weight_quant(4, True))
        self.head = QuantConv2d(8, 2, 1, bias=False, weight_quant=_weight_quant(8, True))

    def forward(self, x):
        a = self.act(self.conv(self.quant_in(x)))
        return self.head(torch.cat([a, self.side(a)], dim=1))


def test_a_residual_add_of_two_scales_names_the_node_and_the_brevitas_fix(tmp_path):
    spec = GraphSpec((3, 8, 8), (4,), (1,), (0,), shared_join=False)
    with pytest.raises(FlowError) as err:
        _build(tmp_path, build_graph_net(spec), spec.in_shape)
    text = str(err.value)
    assert "step 'qonnx_to_finn' failed" in text and "(op Add" in text, text
    assert "different quantization scales" in text and "share one activation quantizer" in text, text
    assert "module stages.0" in text, text  # the Brevitas module the add sits in


@pytest.mark.parametrize(("scale", "mode", "expected"), [(2.0, "bilinear", "mode 'linear'"),
                                                         (1.5, "nearest", "integer factors")])
def test_a_resize_the_hardware_cannot_do_fails_clearly(tmp_path, scale, mode, expected):
    with pytest.raises(FlowError) as err:
        _build(tmp_path, _Resizer(scale, mode), (3, 4, 4))
    text = str(err.value)
    assert "(op Resize" in text and expected in text and "nn.Upsample" in text, text


def test_a_concat_of_a_float_tensor_is_refused(tmp_path):
    with pytest.raises(FlowError) as err:
        _build(tmp_path, _FloatConcat(), (3, 4, 4))
    text = str(err.value)
    assert "(op Concat" in text and "not quantized" in text and "share one activation quantizer" in text, text
