"""tinyyolo: residual blocks, an upsample + concat neck and two heads (strides 16 and 8), each with its anchors."""

import json

import pytest
import torch
from brevitas.nn import QuantConv2d, QuantIdentity, QuantReLU

from quant_models.complexity import model_complexity
from quant_models.models import DetectorConfig, TinyYolo, build_model, default_config, num_conv_layers, validate_bits
from quant_models.models.config import order_anchors
from quant_models.quantizers import BitSpecError

# The plan at width 1, depth 1, written out by hand: (name, in, out, kernel, conv stride, pool) per conv block.
TINYYOLO_W1 = [
    ("stem0", 3, 16, 3, 1, True),
    ("stem1", 16, 32, 3, 1, True),
    ("down8", 32, 64, 3, 2, False),
    ("res8.0a", 64, 32, 1, 1, False),
    ("res8.0b", 32, 64, 3, 1, False),
    ("down16", 64, 128, 3, 2, False),
    ("res16.0a", 128, 64, 1, 1, False),
    ("res16.0b", 64, 128, 3, 1, False),
    ("lateral", 128, 64, 1, 1, False),
    ("fuse", 128, 64, 3, 1, False),
]


def _blocks(model):
    return [(layer.name, b.conv.in_channels, b.conv.out_channels, b.conv.kernel_size[0], b.conv.stride[0],
             isinstance(b.pool, torch.nn.MaxPool2d)) for layer, b in zip(model.layout.layers, model.layers)]


def test_the_plan_at_width_1():
    model = build_model(default_config("tinyyolo", 4, bits="w4a4"))
    assert isinstance(model, TinyYolo) and _blocks(model) == TINYYOLO_W1
    assert [(h.in_channels, h.out_channels, h.kernel_size[0]) for h in model.heads] == [(128, 27, 1), (64, 27, 1)]
    assert isinstance(model.up, torch.nn.Upsample) and model.up.mode == "nearest" and model.up.scale_factor == 2
    assert num_conv_layers("tinyyolo") == 12 and model.strides == (16, 8)


@pytest.mark.parametrize("width, size", [(0.25, (64, 64)), (0.5, (64, 96)), (1.0, (128, 128)), (0.25, (96, 160))])
@pytest.mark.parametrize("bits", [None, "w4a4", "w2a2,first=8,last=8"])
def test_two_outputs_at_strides_16_and_8(bits, width, size):
    model = build_model(default_config("tinyyolo", 3, bits=bits, width=width, input_size=size))
    h, w = size
    out = model(torch.randint(0, 256, (2, 3, h, w)).float())
    assert isinstance(out, tuple)
    assert [tuple(o.shape) for o in out] == [(2, 24, h // 16, w // 16), (2, 24, h // 8, w // 8)]  # 3 x (5 + 3)
    assert model.grid_sizes == ((h // 16, w // 16), (h // 8, w // 8))


def test_width_and_depth():
    model = build_model(default_config("tinyyolo", 4, bits="w4a4", width=0.25, depth=2))
    assert [layer.name for layer in model.layout.layers] == [
        "stem0", "stem1", "down8", "res8.0a", "res8.0b", "res8.1a", "res8.1b", "down16", "res16.0a", "res16.0b",
        "res16.1a", "res16.1b", "lateral", "fuse"]
    assert [b.conv.out_channels for b in model.layers] == [8, 8, 16, 8, 16, 8, 16, 32, 16, 32, 16, 32, 16, 16]
    assert len(model.sums) == 4 and num_conv_layers("tinyyolo", depth=2) == 16
    assert [tuple(o.shape) for o in model(torch.zeros(1, 3, 128, 128))] == [(1, 27, 8, 8), (1, 27, 16, 16)]
    flat = build_model(default_config("tinyyolo", 4, bits="w4a4", width=0.25, depth=0))
    assert len(flat.sums) == 0 and flat.layers[flat.layout.lateral].act is flat.layers[flat.layout.down8].act
    assert [tuple(o.shape) for o in flat(torch.zeros(1, 3, 64, 64))] == [(1, 27, 4, 4), (1, 27, 8, 8)]


def test_input_size_must_be_a_multiple_of_16():
    with pytest.raises(ValueError, match="multiple of its stride 16"):
        build_model(default_config("tinyyolo", 2, input_size=(72, 64)))


def test_add_and_concat_inputs_share_one_quantizer():
    model = build_model(default_config("tinyyolo", 4, bits="w4a4", depth=2))
    lay = model.layout
    for down, pairs, first_sum in ((lay.down8, lay.res8, 0), (lay.down16, lay.res16, 2)):
        entry = model.layers[down].act
        for k, (_, second) in enumerate(pairs):
            assert model.layers[second].act is entry  # f(x) leaves through the quantizer x came out of
            assert model.sums[first_sum + k] is not entry  # the sum through a fresh one: the next block's input
            entry = model.sums[first_sum + k]
    assert model.layers[lay.lateral].act is model.sums[1]  # p8's quantizer: both concat inputs
    quantizers = {id(m) for m in model.modules() if isinstance(m, QuantReLU)}
    assert len(quantizers) == 14 - 4 - 1 + 4  # 14 blocks, 4 second convs and the lateral share; 4 sums


def test_float_twin_has_the_same_names_and_loads_into_the_quantized_model():
    torch.manual_seed(0)
    flt = build_model(default_config("tinyyolo", 4, bits=None, width=0.5))
    assert not any(isinstance(m, (QuantConv2d, QuantReLU, QuantIdentity)) for m in flt.modules())
    quant = build_model(default_config("tinyyolo", 4, bits="w4a4", width=0.5))
    result = quant.load_state_dict(flt.state_dict(), strict=False)
    assert not result.unexpected_keys and result.missing_keys
    assert all("quant" in k for k in result.missing_keys)
    for key, value in flt.state_dict().items():
        assert torch.equal(quant.state_dict()[key], value), key


def test_mixed_precision_reaches_the_layers_and_both_heads():
    model = build_model(default_config("tinyyolo", 4, bits="w2a2,first=8,last=8,l3=w3a4"))
    assert int(model.layers[0].conv.quant_weight().bit_width) == 8
    assert int(model.layers[1].conv.quant_weight().bit_width) == 2
    assert int(model.layers[3].conv.quant_weight().bit_width) == 3
    assert int(model.layers[3].act.act_quant.bit_width()) == 4
    assert [int(h.quant_weight().bit_width) for h in model.heads] == [8, 8]
    assert int(model.sums[0].act_quant.bit_width()) == 2


def test_overrides_are_checked_against_tinyyolo():
    assert str(validate_bits("w4a4,l11=w8a8", "tinyyolo")) == "w4a4,l11=w8a8"
    with pytest.raises(BitSpecError, match=r"l12=w4a4.*tinyyolo.*l0\.\.l11 \(l10\.\.l11 are the heads\)"):
        validate_bits("w4a4,l12=w4a4", "tinyyolo")
    # res8.0b (l4) leaves through down8's (l2) quantizer: its activation bits are l2's, as are the stride-8 sum's
    # and the lateral conv's (which shares the sum's quantizer).
    assert validate_bits("w4a4,l2=w4a3,l4=w2a3", "tinyyolo") is not None
    model = build_model(default_config("tinyyolo", 4, bits="w4a4,l2=w4a3", width=0.25))
    assert [int(q.act_quant.bit_width()) for q in (model.layers[4].act, model.sums[0], model.layers[8].act,
                                                    model.sums[1], model.layers[9].act)] == [3, 3, 3, 4, 4]
    with pytest.raises(BitSpecError, match=r"l4 \(res8\.0b\) shares the activation quantizer of l2 \(down8\)"):
        validate_bits("w4a4,l4=w2a3", "tinyyolo")
    with pytest.raises(BitSpecError, match=r"l8 \(lateral\) shares .* l2 \(down8\), whose activation is 3-bit"):
        build_model(default_config("tinyyolo", 4, bits="w4a4,l2=w4a3,l8=w4a4"))


def test_head_accumulators_rebuild_both_outputs():
    torch.manual_seed(1)
    model = build_model(default_config("tinyyolo", 4, bits="w4a4", width=0.25, input_size=(64, 64)))
    outs = model(torch.randint(0, 256, (2, 3, 64, 64)).float())
    for index, out in enumerate(outs):
        acc = model.head_accumulators(out, index)
        scale, bias = model.head_scale_bias(index)
        assert torch.allclose(acc * scale.view(1, -1, 1, 1) + bias.view(1, -1, 1, 1), out, atol=1e-4)
        assert acc.abs().max() > 0
    with pytest.raises(IndexError):
        model.head_scale_bias(2)


def test_config_says_each_outputs_stride_and_anchors():
    cfg = default_config("tinyyolo", 4, bits="w4a4", input_size=(64, 96))
    data = cfg.to_dict()
    assert data["head_strides"] == (16, 8)
    assert data["heads"] == [
        {"output": 0, "stride": 16, "grid": [4, 6], "anchors": [[0.20, 0.20], [0.28, 0.28], [0.40, 0.40]]},
        {"output": 1, "stride": 8, "grid": [8, 12], "anchors": [[0.06, 0.06], [0.10, 0.10], [0.14, 0.14]]}]
    assert DetectorConfig.from_dict(json.loads(json.dumps(data))) == cfg
    assert cfg.with_(anchors=cfg.anchors[::-1]).anchor_sets[0] == ((0.14, 0.14), (0.10, 0.10), (0.06, 0.06))
    # A single-output config serialises exactly as before: no head_strides, no heads.
    assert list(default_config("tinydet", 4).to_dict()) == ["arch", "num_classes", "input_size", "anchors", "bits",
                                                             "width", "depth", "class_names"]
    with pytest.raises(ValueError, match="5 anchors cannot be split evenly over 2 outputs"):
        cfg.with_(anchors=cfg.anchors[:5])
    with pytest.raises(ValueError, match=r"tinyyolo has head_strides \(16, 8\), the config says \(\)"):
        build_model(cfg.with_(head_strides=()))


def test_k_means_anchors_are_split_by_size_over_the_outputs():
    ascending = ((0.05, 0.05), (0.1, 0.1), (0.15, 0.15), (0.2, 0.2), (0.3, 0.3), (0.4, 0.4))
    # Output 0 is stride 16: the three largest; output 1 (stride 8) the three smallest.
    assert order_anchors(ascending, (16, 8)) == ascending[3:] + ascending[:3]
    assert order_anchors(ascending, (8, 16)) == ascending
    assert order_anchors(ascending, ()) == ascending


def test_costs_by_hand():
    """Width 0.25 at 64x64 (the CI size): channels 8/8/16/8/16/32/16/32/16/16, maps 64 -> 32 -> 8 -> 4."""
    model = build_model(default_config("tinyyolo", 4, bits="w4a4,first=8,last=8", width=0.25, input_size=(64, 64)))
    c = model_complexity(model)
    expected = [  # (name, params, MACs); a conv's MACs are counted at its own output, before the pool
        ("stem0", 3 * 8 * 9, 3 * 8 * 9 * 64 * 64),
        ("stem1", 8 * 8 * 9, 8 * 8 * 9 * 32 * 32),
        ("down8", 8 * 16 * 9, 8 * 16 * 9 * 8 * 8),  # 16x16 in, stride 2
        ("res8.0a", 16 * 8, 16 * 8 * 8 * 8),
        ("res8.0b", 8 * 16 * 9, 8 * 16 * 9 * 8 * 8),
        ("down16", 16 * 32 * 9, 16 * 32 * 9 * 4 * 4),
        ("res16.0a", 32 * 16, 32 * 16 * 4 * 4),
        ("res16.0b", 16 * 32 * 9, 16 * 32 * 9 * 4 * 4),
        ("lateral", 32 * 16, 32 * 16 * 4 * 4),
        ("fuse", 32 * 16 * 9, 32 * 16 * 9 * 8 * 8),  # concat of 16 + 16 channels at stride 8
        ("head16", 32 * 27, 32 * 27 * 4 * 4),
        ("head8", 16 * 27, 16 * 27 * 8 * 8),
    ]
    assert [(layer.name, layer.params, layer.macs) for layer in c.layers] == expected
    assert c.params == sum(b.conv.weight.numel() for b in model.layers) + sum(h.weight.numel() for h in model.heads)
    assert [(layer.weight_bits, layer.input_bits) for layer in c.layers] == [(8, 8)] + [(4, 4)] * 9 + [(8, 4)] * 2
    flt = model_complexity(build_model(default_config("tinyyolo", 4, bits=None, width=0.25, input_size=(64, 64))))
    assert flt.weight_memory_bits == 32 * flt.params and flt.macs == c.macs


def test_a_few_training_steps_lower_the_loss():
    from quant_models.loss import detection_loss_heads

    torch.manual_seed(0)
    model = build_model(default_config("tinyyolo", 2, bits="w4a4", width=0.25, input_size=(64, 64)))
    images = torch.randint(0, 256, (8, 3, 64, 64)).float()
    centre = torch.rand(8, 2, 2) * 0.6 + 0.2
    size = torch.tensor([0.08, 0.35]).view(1, 2, 1).expand(8, 2, 2)  # one small and one large object per image
    boxes = torch.cat([centre - size / 2, centre + size / 2], -1)
    labels = torch.tensor([0, 1]).expand(8, 2)
    anchor_sets = [torch.tensor(a) for a in model.cfg.anchor_sets]
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)
    losses = []
    for _ in range(12):
        loss, _ = detection_loss_heads(model(images), boxes, labels, anchor_sets, 2)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0], losses


@pytest.mark.slow  # export (~5 s), QONNX execution of 2 samples, FINN conversion
def test_exports_with_two_outputs_and_one_scale_on_each_add_and_concat(tmp_path):
    import onnx
    from qonnx.core.modelwrapper import ModelWrapper

    from quant_models.export import FINN_MAPPABLE_OPS, MODEL_CONFIG_KEY, check_export, export_model, sample_images

    torch.manual_seed(0)
    model = build_model(default_config("tinyyolo", 4, bits="w4a4", width=0.25, input_size=(64, 64)))
    model.train()
    with torch.no_grad():
        for _ in range(2):  # non-trivial BatchNorm statistics
            model(torch.randint(0, 256, (4, 3, 64, 64)).float())
        # Every activation quantizer gets its own scale (they all start at 6/15), so equal scales in the graph
        # can only come from a shared quantizer.
        scales = [p for n, p in model.named_parameters() if n.endswith("scaling_impl.value")]
        assert len(scales) == 9  # 10 blocks' own, less the 3 that borrow, and the 2 sums (pixels: a constant)
        for i, p in enumerate(scales):
            p.fill_(3.0 + 0.25 * i)
    model.eval()
    out = tmp_path / "tinyyolo.onnx"
    export_model(model, out)
    report = check_export(model, out, sample_images(model, 2, seed=0))
    assert report.accumulator_mismatches == 0 and report.max_abs_diff < 1e-3
    assert set(report.node_types) <= FINN_MAPPABLE_OPS
    assert report.node_types["Add"] == 2 and report.node_types["Concat"] == 1 and report.node_types["Resize"] == 1
    assert report.output_shape == (1, 27, 4, 4) and [h.shape for h in report.more_heads] == [(1, 27, 8, 8)]
    assert report.head_scale == model.head_scale_bias(0)[0].tolist()
    assert report.more_heads[0].scale == model.head_scale_bias(1)[0].tolist()

    wrapped = ModelWrapper(str(out))
    outputs = [o.name for o in wrapped.graph.output]
    assert [wrapped.get_tensor_shape(n) for n in outputs] == [[1, 27, 4, 4], [1, 27, 8, 8]]
    # The graph's outputs are the heads in the model's order: the stride-16 head's conv produces output 0.
    convs = [n for n in wrapped.graph.node if n.op_type == "Conv"]
    head_of = {n.output[0]: n for n in convs}
    assert [wrapped.get_tensor_shape(head_of[n].input[0])[2] for n in outputs] == [4, 8]

    def quant_scale(tensor: str) -> float:
        """The scale of the Quant node that produced ``tensor``, through scale-preserving Resize."""
        node = wrapped.find_producer(tensor)
        while node.op_type == "Resize":
            node = wrapped.find_producer(node.input[0])
        assert node.op_type == "Quant", node.op_type
        return float(wrapped.get_initializer(node.input[1]))

    def requant_scale(add) -> float:
        """The scale of the quantizer after an Add (its QuantReLU: Relu, then Quant)."""
        relu = wrapped.find_consumer(add.output[0])
        assert relu.op_type == "Relu"
        return quant_scale(wrapped.find_consumer(relu.output[0]).output[0])

    adds = [n for n in wrapped.graph.node if n.op_type == "Add"]
    for add in adds:
        assert all(wrapped.find_producer(i).op_type == "Quant" for i in add.input)
        a, b = (quant_scale(i) for i in add.input)
        assert a == b and requant_scale(add) != a  # one scale on both inputs, a fresh quantizer after the sum
    concat = next(n for n in wrapped.graph.node if n.op_type == "Concat")
    p8_scale = requant_scale(adds[0])  # the stride-8 sum's quantizer
    assert [quant_scale(i) for i in concat.input] == [p8_scale, p8_scale]
    assert wrapped.find_producer(concat.input[0]).op_type == "Resize"
    resize = next(n for n in wrapped.graph.node if n.op_type == "Resize")
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in resize.attribute}
    assert attrs["mode"] == b"nearest"
    assert wrapped.get_initializer(resize.input[2]).tolist() == [1.0, 1.0, 2.0, 2.0]
    # The decode parameters of every output, in order, ride along in the metadata.
    meta = json.loads(wrapped.get_metadata_prop(MODEL_CONFIG_KEY))
    assert [(h["output"], h["stride"], h["grid"], h["onnx_output"]) for h in meta["heads"]] == [
        (0, 16, [4, 4], outputs[0]), (1, 8, [8, 8], outputs[1])]
    assert [h["anchors"] for h in meta["heads"]] == [[list(a) for a in s] for s in model.cfg.anchor_sets]
    assert DetectorConfig.from_dict(meta) == model.cfg

    # FINN (finn-plus, as a library) converts it to its dialect, and both outputs keep torch's accumulators.
    from finn.transformation.qonnx.convert_qonnx_to_finn import ConvertQONNXtoFINN
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.util.cleanup import cleanup_model

    finn_model = cleanup_model(ModelWrapper(str(out))).transform(ConvertQONNXtoFINN())
    ops = {n.op_type for n in finn_model.graph.node}
    assert "Quant" not in ops and {"MultiThreshold", "Add", "Concat", "Resize"} <= ops
    x = sample_images(model, 1, seed=1).float()
    with torch.no_grad():
        refs = model(x)
    got = execute_onnx(finn_model, {finn_model.graph.input[0].name: x.numpy()})
    for index, (name, ref) in enumerate(zip(outputs, refs)):
        assert torch.equal(model.head_accumulators(torch.from_numpy(got[name]), index),
                           model.head_accumulators(ref, index))


def test_train_checks_the_input_size_against_the_stride(tmp_path):
    from quant_models.train import TrainConfig, TrainError, check_train_config

    with pytest.raises(TrainError, match="input size 72x64: tinyyolo needs both sides a multiple of its stride 16"):
        check_train_config(TrainConfig(data=tmp_path, out=tmp_path / "run", model="tinyyolo", input_size=(72, 64)))
    check_train_config(TrainConfig(data=tmp_path, out=tmp_path / "run", model="tinyyolo", input_size=(64, 96)))


@pytest.mark.slow  # an epoch of 64 images (and one of tinydet) plus the shared synthetic data set
def test_trains_and_evaluates_through_the_public_api(synth_data, tmp_path):
    import numpy as np

    from quant_models.checkpoint import load_model, read_checkpoint
    from quant_models.train import TrainConfig, TrainError, train

    # The CI size: width 0.25 at 64x64 (the 128x128 images are resized).
    result = train(TrainConfig(data=synth_data, out=tmp_path / "run", model="tinyyolo", bits="w4a4", epochs=1,
                               batch_size=32, width=0.25, input_size=(64, 64), progress=False))
    ckpt = read_checkpoint(result.last)
    assert ckpt["model_config"]["arch"] == "tinyyolo" and ckpt["model_config"]["head_strides"] == (16, 8)
    assert ckpt["model_config"]["input_size"] == (64, 64)
    assert np.isfinite(ckpt["history"][0]["loss"]) and 0.0 <= result.metrics["map50"] <= 1.0
    model, _ = load_model(result.last)
    # k-means anchors, the three largest on the stride-16 output
    small, large = max(w * h for w, h in model.cfg.anchor_sets[1]), min(w * h for w, h in model.cfg.anchor_sets[0])
    assert small <= large
    # A teacher with one output cannot teach a two-output student.
    flt = train(TrainConfig(data=synth_data, out=tmp_path / "tinydet", bits=None, epochs=1, batch_size=32,
                            width=0.25, progress=False))
    with pytest.raises(TrainError, match="is a tinydet with one output, a tinyyolo has outputs at strides 16, 8"):
        train(TrainConfig(data=synth_data, out=tmp_path / "kd", model="tinyyolo", epochs=1, teacher=flt.last,
                          progress=False))
