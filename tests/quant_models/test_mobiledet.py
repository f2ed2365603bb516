"""mobiledet: a depthwise-separable backbone (strided depthwise convs, no pooling) with tinydet's head and stride."""

import io

import numpy as np
import pytest
import torch
from brevitas.nn import QuantConv2d, QuantIdentity, QuantReLU

from quant_models.models import build_model, default_config, num_conv_layers, validate_bits
from quant_models.quantizers import BitSpecError

# The published plan at width 1, depth 2, written out by hand: (in, out, kernel, stride, groups) per conv.
MOBILEDET_W1 = [
    (3, 16, 3, 2, 1),  # full 3x3 stem, stride 2
    (16, 16, 3, 1, 16), (16, 32, 1, 1, 1),
    (32, 32, 3, 2, 32), (32, 64, 1, 1, 1),
    (64, 64, 3, 1, 64), (64, 64, 1, 1, 1),
    (64, 64, 3, 2, 64), (64, 128, 1, 1, 1),
    (128, 128, 3, 1, 128), (128, 128, 1, 1, 1),  # depth 2: two separable blocks at stride 8
    (128, 128, 3, 1, 128), (128, 128, 1, 1, 1),
]


def _convs(model):
    return [(b.conv.in_channels, b.conv.out_channels, b.conv.kernel_size[0], b.conv.stride[0], b.conv.groups)
            for b in model.layers]


@pytest.mark.parametrize("width", [0.5, 1.0, 1.35])
@pytest.mark.parametrize("bits", [None, "w4a4", "w2a2", "w4a4,first=8,last=8", "w4a2,l3=w3a3"])
def test_output_shape_and_stride(bits, width):
    model = build_model(default_config("mobiledet", num_classes=4, bits=bits, width=width))
    out = model(torch.randint(0, 256, (2, 3, 128, 128)).float())
    assert out.shape == (2, 3 * (5 + 4), 16, 16)  # tinydet's head layout: 3 anchors, stride 8
    assert model.stride == 8 and model.grid_size == (16, 16)


def test_stride_8_on_a_non_square_input():
    model = build_model(default_config("mobiledet", 2, bits="w4a4", width=0.25, input_size=(64, 96)))
    assert model(torch.zeros(1, 3, 64, 96)).shape == (1, 21, 8, 12)
    with pytest.raises(ValueError, match="multiple of its stride 8"):
        build_model(default_config("mobiledet", 2, input_size=(60, 96)))


def test_the_plan_is_depthwise_separable_with_strided_depthwise_downsampling():
    model = build_model(default_config("mobiledet", 4, bits="w4a4"))
    assert _convs(model) == MOBILEDET_W1
    assert not any(isinstance(m, torch.nn.MaxPool2d) for m in model.modules())
    for block in model.layers:
        if block.conv.groups > 1:  # depthwise: one 3x3 filter per channel, channel multiplier 1
            assert block.conv.groups == block.conv.in_channels == block.conv.out_channels
            assert tuple(block.conv.weight.shape) == (block.conv.in_channels, 1, 3, 3)
    strided = [i for i, (_, _, _, stride, _) in enumerate(MOBILEDET_W1) if stride == 2]
    assert [model.layers[i].conv.groups > 1 for i in strided] == [False, True, True]  # stem, then depthwise only
    assert (model.head.in_channels, model.head.out_channels, model.head.kernel_size[0]) == (128, 27, 1)


def test_width_and_depth():
    model = build_model(default_config("mobiledet", 4, bits="w4a4", width=0.5, depth=3))
    # 16/32/64/64/128 halved; depth 3 separable blocks of 64 at the end
    assert [b.conv.out_channels for b in model.layers] == [8, 8, 16, 16, 32, 32, 32, 32, 64] + [64] * 6
    assert num_conv_layers("mobiledet", depth=3) == 1 + 2 * 4 + 2 * 3 + 1


def test_float_twin_has_no_quantizers_and_the_same_parameters():
    flt = build_model(default_config("mobiledet", 4, bits=None))
    assert not any(isinstance(m, (QuantConv2d, QuantReLU, QuantIdentity)) for m in flt.modules())
    assert _convs(flt) == MOBILEDET_W1
    quant_keys = set(build_model(default_config("mobiledet", 4, bits="w4a4")).state_dict())
    assert set(flt.state_dict()) <= quant_keys
    assert all("quant" in k for k in quant_keys - set(flt.state_dict()))


def test_mixed_precision_and_first_last_reach_the_layers():
    model = build_model(default_config("mobiledet", 4, bits="w4a4,first=8,last=8,l1=w2a3"))
    assert int(model.layers[0].conv.quant_weight().bit_width) == 8  # the stem
    assert int(model.layers[1].conv.quant_weight().bit_width) == 2  # the first depthwise conv
    assert int(model.layers[1].act.act_quant.bit_width()) == 3
    assert int(model.layers[2].conv.quant_weight().bit_width) == 4
    assert int(model.head.quant_weight().bit_width) == 8


def test_layer_overrides_are_checked_against_mobiledet():
    assert num_conv_layers("mobiledet") == 14  # stem + 4 separable + depth 2 separable + head
    assert str(validate_bits("w4a4,l13=w8a8", "mobiledet")) == "w4a4,l13=w8a8"
    with pytest.raises(BitSpecError, match=r"l14=w4a4.*mobiledet.*l0\.\.l13"):
        validate_bits("w4a4,l14=w4a4", "mobiledet")


def test_every_block_exposes_its_activation_for_layer_diagnosis():
    """The flow's layer diagnosis hooks ``block.act`` of every ``model.layers`` entry and divides by its scale."""
    torch.manual_seed(0)
    model = build_model(default_config("mobiledet", 4, bits="w4a4", width=0.25)).eval()
    outs = []
    scales = [float(b.act.act_quant.scale().detach()) for b in model.layers]
    hooks = [b.act.register_forward_hook(lambda _m, _i, o, s=s: outs.append(o / s))
             for b, s in zip(model.layers, scales)]
    with torch.no_grad():
        model(torch.randint(0, 256, (1, 3, 128, 128)).float())
    for h in hooks:
        h.remove()
    assert [tuple(o.shape[1:]) for o in outs] == [
        (8, 64, 64), (8, 64, 64), (8, 64, 64), (8, 32, 32), (16, 32, 32), (16, 32, 32), (16, 32, 32),
        (16, 16, 16), (32, 16, 16), (32, 16, 16), (32, 16, 16), (32, 16, 16), (32, 16, 16)]
    for o in outs:  # 4-bit unsigned integers once the scale is divided out
        assert torch.allclose(o, o.round(), atol=1e-3) and 0 <= o.min() and o.max() <= 15


def test_head_accumulators_rebuild_the_output():
    torch.manual_seed(1)
    model = build_model(default_config("mobiledet", 4, bits="w4a4", width=0.5))
    out = model(torch.randint(0, 256, (2, 3, 128, 128)).float())
    acc = model.head_accumulators(out)
    scale, bias = model.head_scale_bias()
    assert torch.allclose(acc * scale.view(1, -1, 1, 1) + bias.view(1, -1, 1, 1), out, atol=1e-4)
    assert acc.abs().max() > 0


def test_same_seed_same_model_bytes():
    def model_bytes(seed):
        torch.manual_seed(seed)
        buf = io.BytesIO()
        torch.save(build_model(default_config("mobiledet", 4, bits="w4a4", width=0.5)).state_dict(), buf)
        return buf.getvalue()

    assert model_bytes(3) == model_bytes(3)
    assert model_bytes(3) != model_bytes(4)


@pytest.mark.slow  # ~10 s alone, over 20 s on a busy 2-core machine
def test_exports_to_qonnx_with_grouped_convs(tmp_path):
    """The exported graph keeps every depthwise conv as a Conv with ``group`` == channels, and matches torch."""
    import onnx
    from qonnx.core.modelwrapper import ModelWrapper

    from quant_models.checkpoint import save_checkpoint
    from quant_models.export import FINN_MAPPABLE_OPS, export_checkpoint

    torch.manual_seed(0)
    model = build_model(default_config("mobiledet", 4, bits="w4a4", width=0.25, depth=1))
    model.train()
    with torch.no_grad():  # non-trivial BatchNorm statistics, as training would leave
        for _ in range(2):
            model(torch.randint(0, 256, (4, 3, 128, 128)).float())
    ckpt = tmp_path / "mobiledet.pt"
    save_checkpoint(ckpt, {"model_config": model.cfg.to_dict(), "model": model.state_dict()})
    report = export_checkpoint(ckpt, tmp_path / "mobiledet.onnx", samples=2)
    assert report.accumulator_mismatches == 0 and report.output_shape == (1, 27, 16, 16)
    assert set(report.node_types) <= FINN_MAPPABLE_OPS and "MaxPool" not in report.node_types
    wrapped = ModelWrapper(str(tmp_path / "mobiledet.onnx"))
    convs = [n for n in wrapped.graph.node if n.op_type == "Conv"]
    attrs = [{a.name: onnx.helper.get_attribute_value(a) for a in n.attribute} for n in convs]
    shapes = {n.input[1]: tuple(wrapped.get_tensor_shape(n.input[1])) for n in convs}  # (quantized) weights
    # (group, out channels, kernel, stride) of every conv, head last; width 0.25 -> channels 8/8/16/16/32, depth 1
    got = [(a.get("group", 1), shapes[n.input[1]][0], a["kernel_shape"][0], a.get("strides", [1, 1])[0])
           for n, a in zip(convs, attrs)]
    assert got == [(1, 8, 3, 2), (8, 8, 3, 1), (1, 8, 1, 1), (8, 8, 3, 2), (1, 16, 1, 1), (16, 16, 3, 1),
                   (1, 16, 1, 1), (16, 16, 3, 2), (1, 32, 1, 1), (32, 32, 3, 1), (1, 32, 1, 1), (1, 27, 1, 1)]
    for n, (group, out, _, _) in zip(convs, got):
        if group > 1:  # depthwise weights are (C, 1, 3, 3) in the graph too
            assert shapes[n.input[1]] == (out, 1, 3, 3)


@pytest.mark.slow  # one epoch of 64 images plus the shared synthetic data set
def test_trains_through_the_public_api(synth_data, tmp_path):
    from quant_models.checkpoint import load_model, read_checkpoint
    from quant_models.train import TrainConfig, train

    result = train(TrainConfig(data=synth_data, out=tmp_path / "run", model="mobiledet", bits="w4a4", epochs=1,
                               batch_size=32, width=0.25, progress=False))
    ckpt = read_checkpoint(result.last)
    assert ckpt["model_config"]["arch"] == "mobiledet" and ckpt["model_config"]["bits"] == "w4a4"
    assert np.isfinite(ckpt["history"][0]["loss"]) and 0.0 <= result.metrics["map50"] <= 1.0
    model, _ = load_model(result.last)
    assert [b.conv.groups for b in model.layers][:4] == [1, 8, 1, 8]
    # The optimizer moved the weights away from the seeded initialisation.
    torch.manual_seed(0)
    fresh = build_model(model.cfg)
    assert not torch.equal(fresh.layers[1].conv.weight, model.layers[1].conv.weight)


def test_conv_spec_defaults_keep_the_older_plans_plain():
    from quant_models.models import ConvSpec
    from quant_models.models.config import plan_stride
    from quant_models.models.zoo import mobiledet_plan, tinydet_plan

    tiny = tinydet_plan(default_config("tinydet", 4))
    assert all(c.stride == 1 and c.groups == 1 and not c.depthwise for c in tiny) and plan_stride(tiny) == 8
    plan = mobiledet_plan(default_config("mobiledet", 4))
    assert [c.depthwise for c in plan] == [False] + [True, False] * 6 and plan_stride(plan) == 8
    with pytest.raises(ValueError, match="groups 3 must divide in_ch 16"):
        ConvSpec(16, 16, 3, pool=False, groups=3)
