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
