import pytest
import torch
from brevitas.nn import QuantConv2d

from quant_models.models import build_model, default_config, num_conv_layers, validate_bits
from quant_models.quantizers import BitSpecError


@pytest.mark.parametrize("bits", [None, "w8a8", "w4a4", "w2a2", "w1a1", "w4a4,first=8,last=8", "w4a2,l1=w3a3"])
def test_tinydet_output_shape(bits):
    model = build_model(default_config("tinydet", num_classes=4, bits=bits))
    out = model(torch.randint(0, 256, (2, 3, 128, 128)).float())
    assert out.shape == (2, 3 * (5 + 4), 16, 16)  # 3 anchors, stride 8


def test_ultranet_is_the_published_architecture():
    model = build_model(default_config("ultranet", num_classes=1, bits="w4a4"))
    convs = [(b.conv.in_channels, b.conv.out_channels, b.conv.kernel_size[0], isinstance(b.pool, torch.nn.MaxPool2d))
             for b in model.layers]
    assert convs == [(3, 16, 3, True), (16, 32, 3, True), (32, 64, 3, True), (64, 64, 3, True)] + [(64, 64, 3, False)] * 4
    assert (model.head.in_channels, model.head.out_channels, model.head.kernel_size[0]) == (64, 36, 1)
    out = model(torch.zeros(1, 3, 160, 320))
    assert out.shape == (1, 36, 10, 20)
    n_weights = sum(b.conv.weight.numel() for b in model.layers) + model.head.weight.numel()
    assert 200_000 < n_weights < 220_000  # ~210k 4-bit weights, as published


def test_mixed_precision_reaches_the_layers():
    model = build_model(default_config("tinydet", 4, bits="w4a4,first=8,last=8,l1=w2a3"))
    assert int(model.layers[0].conv.quant_weight().bit_width) == 8
    assert int(model.layers[1].conv.quant_weight().bit_width) == 2
    assert int(model.layers[1].act.act_quant.bit_width()) == 3
    assert int(model.layers[2].conv.quant_weight().bit_width) == 4
    assert int(model.head.quant_weight().bit_width) == 8


def test_float_twin_has_the_same_parameters():
    quant = build_model(default_config("tinydet", 4, bits="w4a4"))
    flt = build_model(default_config("tinydet", 4, bits=None))
    assert not any(isinstance(m, QuantConv2d) for m in flt.modules())
    float_keys = set(flt.state_dict())
    quant_keys = set(quant.state_dict())
    assert float_keys <= quant_keys
    assert all("quant" in k for k in quant_keys - float_keys)


def test_width_and_depth():
    model = build_model(default_config("tinydet", 4, bits="w4a4", width=0.5, depth=3))
    assert [b.conv.out_channels for b in model.layers] == [8, 16, 32, 32, 32, 32]


def test_input_size_must_match_stride():
    cfg = default_config("tinydet", 4, input_size=(100, 128))
    with pytest.raises(ValueError, match="multiple of its stride 8"):
        build_model(cfg)


def test_unknown_architecture():
    with pytest.raises(ValueError, match="known: mobiledet, tinydet, tinyyolo, ultranet"):
        default_config("resnet", 4)


def test_head_accumulators_are_integers_that_rebuild_the_output():
    torch.manual_seed(1)
    model = build_model(default_config("tinydet", 4, bits="w4a4"))
    model.train()
    out = model(torch.randint(0, 256, (2, 3, 128, 128)).float())
    acc = model.head_accumulators(out)
    scale, bias = model.head_scale_bias()
    rebuilt = acc * scale.view(1, -1, 1, 1) + bias.view(1, -1, 1, 1)
    assert torch.allclose(rebuilt, out, atol=1e-4)
    assert acc.abs().max() > 0


def test_float_model_has_no_accumulators():
    with pytest.raises(ValueError, match="float model"):
        build_model(default_config("tinydet", 4, bits=None)).head_scale_bias()


@pytest.mark.parametrize("arch, depth, last_layer", [
    ("tinydet", None, 5),  # 3 pooled blocks + depth 2 + head = 6 convs
    ("tinydet", 0, 3),  # 3 pooled blocks + head
    ("ultranet", None, 8),  # 4 pooled blocks + depth 4 + head = 9 convs
])
def test_layer_overrides_are_checked_against_the_model(arch, depth, last_layer):
    assert num_conv_layers(arch, depth) == last_layer + 1
    assert str(validate_bits(f"w4a4,l{last_layer}=w8a8", arch, depth=depth)) == f"w4a4,l{last_layer}=w8a8"
    with pytest.raises(BitSpecError) as err:
        validate_bits(f"w4a4,l{last_layer + 1}=w4a4", arch, depth=depth)
    message = str(err.value)
    for fragment in (f"l{last_layer + 1}=w4a4", arch, f"{last_layer + 1} conv layers", f"l0..l{last_layer}"):
        assert fragment in message, (fragment, message)


def test_validate_bits_accepts_float_and_rejects_bad_grammar():
    assert validate_bits("float", "tinydet") is None
    with pytest.raises(BitSpecError, match="cannot parse"):
        validate_bits("w4", "tinydet")
    with pytest.raises(ValueError, match="unknown architecture 'yolo'"):
        validate_bits("w4a4", "yolo")


def test_build_model_refuses_an_override_past_the_last_layer():
    # Such an override used to be ignored silently, while the config recorded it as applied.
    with pytest.raises(BitSpecError, match=r"l99=w4a4.*l0\.\.l5"):
        build_model(default_config("tinydet", 4, bits="w4a4,l99=w4a4"))
