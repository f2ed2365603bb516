from quant_models.complexity import model_complexity
from quant_models.models import build_model, default_config


def test_ultranet_w4a4_costs_by_hand():
    c = model_complexity(build_model(default_config("ultranet", 1, bits="w4a4")))
    # conv0: 3*16*9 = 432 weights at 160x320 -> 22,118,400 MACs, 8-bit pixels x 4-bit weights
    assert (c.layers[0].params, c.layers[0].macs, c.layers[0].bops) == (432, 22_118_400, 22_118_400 * 32)
    # conv4..7: 64*64*9 = 36,864 weights at 10x20 -> 7,372,800 MACs, 4 x 4 bits
    assert c.layers[4].macs == 7_372_800 and c.layers[4].bops == 7_372_800 * 16
    # head: 64 * 36 = 2,304 weights at 10x20
    assert (c.layers[-1].params, c.layers[-1].macs) == (2_304, 460_800)
    weights = 432 + 16 * 32 * 9 + 32 * 64 * 9 + 64 * 64 * 9 + 4 * 36_864 + 2_304
    assert c.params == weights and c.weight_memory_bits == 4 * weights
    assert 0.15e9 < c.macs < 0.25e9  # "about 0.2 GMAC per frame" (references.md)


def test_float_and_mixed_bits():
    flt = model_complexity(build_model(default_config("tinydet", 4, bits=None)))
    assert flt.weight_memory_bits == 32 * flt.params
    mixed = model_complexity(build_model(default_config("tinydet", 4, bits="w2a2,first=8,last=8")))
    assert mixed.layers[0].weight_bits == 8 and mixed.layers[0].input_bits == 8
    assert mixed.layers[1].weight_bits == 2 and mixed.layers[1].input_bits == 2
    assert mixed.layers[-1].weight_bits == 8 and mixed.layers[-1].input_bits == 2


def test_depthwise_and_strided_convs_are_counted_per_output_pixel():
    """A tiny mobiledet on a 32x32 input, costed by hand: a depthwise conv has C*K*K weights and C*K*K*Ho*Wo MACs."""
    model = build_model(default_config("mobiledet", 4, bits="w4a4", width=0.5, depth=0, input_size=(32, 32)))
    c = model_complexity(model)
    # (params, MACs) by hand; channels 8/16/32/64 at width 0.5, feature maps 16 -> 8 -> 4 after the strides.
    expected = [
        (3 * 8 * 9, 3 * 8 * 9 * 16 * 16),  # stem, stride 2: 32x32 in, 16x16 out
        (8 * 9, 8 * 9 * 16 * 16),  # dw 8, stride 1
        (8 * 16, 8 * 16 * 16 * 16),  # pw 8 -> 16
        (16 * 9, 16 * 9 * 8 * 8),  # dw 16, stride 2: 8x8 out
        (16 * 32, 16 * 32 * 8 * 8),
        (32 * 9, 32 * 9 * 8 * 8),  # dw 32, stride 1
        (32 * 32, 32 * 32 * 8 * 8),
        (32 * 9, 32 * 9 * 4 * 4),  # dw 32, stride 2: 4x4 out
        (32 * 64, 32 * 64 * 4 * 4),
        (64 * 27, 64 * 27 * 4 * 4),  # head: 3 anchors x (5 + 4 classes)
    ]
    assert [(layer.params, layer.macs) for layer in c.layers] == expected
    assert c.layers[1].macs == 18_432 and c.layers[3].macs == 9_216  # and not C*C*K*K*H*W (147,456 / 147,456)
    # Weights as torch holds them: the cost model counts exactly the conv tensors' elements.
    assert c.params == sum(b.conv.weight.numel() for b in model.layers) + model.head.weight.numel()
    # BOPs: 8-bit pixels into the stem, 4-bit activations elsewhere, 4-bit weights throughout.
    assert c.layers[0].bops == 55_296 * 4 * 8 and c.layers[3].bops == 9_216 * 4 * 4
