import pytest
import torch
from brevitas.nn import QuantConv2d, QuantIdentity, QuantReLU

from quant_models.quantizers import (
    ACT_MAX_INIT,
    ACT_QUANTIZERS,
    WEIGHT_QUANTIZERS,
    BitSpecError,
    LayerBits,
    Uint8Pixel,
    W1PerChannel,
    parse_bits,
)


def test_parse_plain_and_canonical_form():
    spec = parse_bits("W4A4")
    assert (spec.weight, spec.act, spec.first, spec.last) == (4, 4, None, None)
    assert str(parse_bits(" w4a4 , last=8,first=8")) == "w4a4,first=8,last=8"
    assert parse_bits("float") is None


def test_mixed_precision_layer_bits():
    spec = parse_bits("w4a4,first=8,last=8,l2=w2a3")
    n = 5  # 4 convs + head
    assert spec.layer_bits(0, n) == LayerBits(8, 4)
    assert spec.layer_bits(1, n) == LayerBits(4, 4)
    assert spec.layer_bits(2, n) == LayerBits(2, 3)
    assert spec.layer_bits(4, n) == LayerBits(8, None)  # the head has no output activation


@pytest.mark.parametrize("bad", ["w9a4", "w0a4", "w4", "a4w4", "w4a4,first", "w4a4,foo=3", "w4a4,l1=w4", "wxa4"])
def test_bad_specs_raise_with_grammar(bad):
    with pytest.raises(BitSpecError, match="w<W>a<A>"):
        parse_bits(bad)


@pytest.mark.parametrize("bits", range(2, 9))
def test_weight_quantizers_are_per_channel_with_their_bit_width(bits):
    conv = QuantConv2d(3, 6, 3, bias=False, weight_quant=WEIGHT_QUANTIZERS[bits])
    qw = conv.quant_weight()
    assert int(qw.bit_width) == bits
    assert qw.scale.numel() == 6
    ints = qw.int()
    assert int(ints.max()) <= 2 ** (bits - 1) - 1 and int(ints.min()) >= -(2 ** (bits - 1) - 1)  # narrow range


def test_binary_weights_are_bipolar_and_idempotent():
    torch.manual_seed(0)
    conv = QuantConv2d(4, 3, 3, bias=False, weight_quant=W1PerChannel)
    first = conv.quant_weight()
    second = conv.quant_weight()
    assert set(first.int().unique().tolist()) == {-1, 1}
    # Brevitas' default binary clamp modifies the weights in place; ours must not drift between calls.
    assert torch.equal(first.value, second.value) and torch.equal(first.scale, second.scale)


@pytest.mark.parametrize("bits", range(1, 9))
def test_activation_levels(bits):
    act = QuantReLU(act_quant=ACT_QUANTIZERS[bits], max_val=ACT_MAX_INIT[bits])
    levels = torch.unique(act(torch.linspace(-2, 10, 20001)).detach())
    assert len(levels) == 2 ** bits  # 0 .. 2^b - 1 steps of one scale, clipped at max_val
    assert float(levels[0]) == 0.0 and abs(float(levels[-1]) - ACT_MAX_INIT[bits]) < 1e-5


def test_ternary_weights_keep_most_weights_nonzero():
    torch.manual_seed(0)
    conv = QuantConv2d(64, 64, 3, bias=False, weight_quant=WEIGHT_QUANTIZERS[2])
    ints = conv.quant_weight().int()
    w = conv.weight.detach()
    # Threshold = half the per-channel mean |w|; for kaiming-uniform weights (|w| uniform on [0, a]) that is
    # a/4, so about 3/4 of the weights are +-1. A max-based scale would leave only about half nonzero.
    nonzero = float((ints != 0).float().mean())
    assert 0.7 < nonzero < 0.8
    assert torch.allclose(conv.quant_weight().scale.flatten(), w.abs().mean((1, 2, 3)), rtol=1e-5)


def test_pixel_quantizer_is_exact_on_every_byte():
    q = QuantIdentity(act_quant=Uint8Pixel, return_quant_tensor=True)
    pixels = torch.arange(256, dtype=torch.float32)
    out = q(pixels / 255)
    assert torch.equal(out.int().flatten(), torch.arange(256, dtype=torch.int32))
