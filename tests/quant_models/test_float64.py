import copy

import pytest
import torch

from quant_models.export import export_model
from quant_models.float64 import float64_reference
from quant_models.models import build_model, default_config


def _act_scales(model, dtype):
    """Every activation quantizer's applied scale, from a forward pass through it alone."""
    from brevitas.proxy.runtime_quant import ActQuantProxyFromInjector

    with torch.no_grad():
        return {name: float(m(torch.ones((1, 1, 1, 1), dtype=dtype)).scale)
                for name, m in model.named_modules() if isinstance(m, ActQuantProxyFromInjector) and m.is_quant_enabled}


@pytest.mark.parametrize("arch,bits", [("tinydet", "w4a4"), ("tinydet", "w2a2,first=8,last=8"),
                                       ("tinydet", "w1a2,first=8,last=8"), ("tinyyolo", "w4a4"),
                                       ("mobiledet", "w4a4")])
def test_the_float64_copy_holds_the_float32_models_integers_and_scales(arch, bits, tmp_path):
    torch.manual_seed(0)
    model = build_model(default_config(arch, 4, bits=bits)).eval()
    export_model(model, tmp_path / "m.onnx")  # an export leaves cached scales behind in the proxies
    before = {k: v.clone() for k, v in model.state_dict().items()}
    ref = float64_reference(model)
    # The caller's model is untouched: still float32, same state.
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert next(ref.parameters()).dtype == torch.float64 and not ref.training
    # Weights: the same integers and the same (float32) scales, in float64.
    layers = [(n, m) for n, m in model.named_modules() if callable(getattr(m, "quant_weight", None))
              and getattr(m, "weight_quant", None) is not None]
    assert len(layers) >= 5
    copies = dict(ref.named_modules())
    for name, layer in layers:
        with torch.no_grad():
            q32, q64 = layer.quant_weight(), copies[name].quant_weight()
        assert q64.value.dtype == torch.float64
        assert torch.equal(q64.int(float_datatype=True).double(), q32.int(float_datatype=True).double()), name
        assert torch.equal(q64.scale, q32.scale.double()), name
    # Activations: every quantizer applies the float32 scale, exactly; a plain .double() copy does not.
    assert _act_scales(ref, torch.float64) == _act_scales(model, torch.float32)
    assert _act_scales(copy.deepcopy(model).double(), torch.float64) != _act_scales(model, torch.float32)
    for i in range(model.num_outputs):
        s32, b32 = model.head_scale_bias(i)
        s64, b64 = ref.head_scale_bias(i)
        assert torch.equal(s64.float(), s32) and torch.equal(b64.float(), b32)
