"""The bit-exact torch reference: a Brevitas model evaluated in float64 on its float32 quantizer parameters.

Why: in float32, a Brevitas model's conv sums, BatchNorm and quantizer arithmetic carry ~1e-7 relative error, so an
activation whose exact value lies that close to a rounding tie can round to the other level (seen on a pruned
tinydet: x / s = 13.5000013 in float32, 13.4999975 in float64; 694 head accumulators off on one image of four). The
hardware compares integer accumulators with thresholds folded in float64 from the exported float32 scales
(flows.transforms.exact_thresholds), so it follows the exact value.

Why not just ``model.double()``: Brevitas computes its scales at run time in the tensors' type, and the exported
graph holds the float32 results. In float64, a weight scale ``max|w| / 7`` and the weights' integers ``w / s``, an
activation scale ``value / 15`` and the input's ``1 / 255`` all come out a little different (a scale by ~4e-8),
enough to move a near-tie the other way again. So in the copy every weight quantizer returns the float32 model's
integers times its scales (in float64, unrounded, as the exact execution of the exported graph multiplies them),
and every activation quantizer's scale parameter is set so that its float64 scale is the float32 model's exactly
(checked: a quantizer that cannot be aligned is an error). BatchNorm's epsilon is the float32 one the exported
graph's attribute holds.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

ALIGN_STEPS = 8  # ulps a scale parameter is nudged by after the proportional correction


class Float64ReferenceError(ValueError):
    """A quantizer of the model whose float64 copy cannot reproduce its float32 scale."""


def _scale_tensor(proxy: nn.Module) -> torch.Tensor | None:
    """The tensor (parameter or constant buffer) an activation quantizer's scale is computed from, if one."""
    found = [t for name, t in [*proxy.named_parameters(), *proxy.named_buffers()]
             if name.endswith("scaling_impl.value") or name.endswith("scaling_impl.value.value")]
    return found[0] if len(found) == 1 else None


def _forward_scale(name: str, proxy: nn.Module, dtype: torch.dtype) -> torch.Tensor:
    """The scale an activation quantizer applies, from a forward pass: ``proxy.scale()`` returns the scale cached by
    the last export, which is not recomputed in another float type."""
    from brevitas.quant_tensor import IntQuantTensor

    training = proxy.training
    proxy.eval()  # a quantizer with running statistics must not learn from the probe
    try:
        out = proxy(torch.ones((1, 1, 1, 1), dtype=dtype))
    finally:
        proxy.train(training)
    if not isinstance(out, IntQuantTensor):
        raise Float64ReferenceError(f"{name}: an activation quantizer that does not return a quantized tensor")
    return out.scale.detach().to(torch.float64)


def _align_scale(name: str, ours: nn.Module, theirs: nn.Module) -> None:
    """Set ``theirs`` (float64) scale tensor so that its scale equals ``ours`` (float32) exactly."""
    with torch.no_grad():
        target = _forward_scale(name, ours, torch.float32)
        got = _forward_scale(name, theirs, torch.float64)
        if torch.equal(got, target):
            return
        value = _scale_tensor(theirs)
        if value is None:
            raise Float64ReferenceError(f"{name}: its scale in float64 is not its float32 scale, and it has no single "
                                        "scale parameter to align; the float64 reference supports Brevitas' parameter "
                                        "and constant activation scalings")
        value.mul_(target / got)
        for _ in range(ALIGN_STEPS):
            got = _forward_scale(name, theirs, torch.float64)
            if torch.equal(got, target):
                return
            value.copy_(torch.nextafter(value, value + torch.sign(target - got)))
        got = _forward_scale(name, theirs, torch.float64)
        if not torch.equal(got, target):
            raise Float64ReferenceError(f"{name}: its float64 scale {float(got):.17g} cannot be made its float32 "
                                        f"scale {float(target):.17g}")


def float64_reference(model: nn.Module) -> nn.Module:
    """A float64 copy of ``model``, in eval mode, with ``model``'s float32 quantized weights and activation scales
    (``model`` itself is left as it is). Raises :class:`Float64ReferenceError` for a quantizer it cannot align."""
    from brevitas.proxy.runtime_quant import ActQuantProxyFromInjector
    from brevitas.quant_tensor import IntQuantTensor

    ref = copy.deepcopy(model).double().eval()
    for (name, ours), (_, theirs) in zip(model.named_modules(), ref.named_modules()):
        if isinstance(theirs, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)):
            theirs.eps = float(np.float32(ours.eps))  # ONNX stores epsilon as a float32 attribute; folds use that
        if isinstance(ours, ActQuantProxyFromInjector) and ours.is_quant_enabled:
            _align_scale(name, ours, theirs)
        if not callable(getattr(ours, "quant_weight", None)) or getattr(ours, "weight_quant", None) is None:
            continue
        with torch.no_grad():
            q = ours.quant_weight()
        if not isinstance(q, IntQuantTensor):  # a layer whose weights are not quantized: float64 weights as they are
            continue
        # The integers times the scale in float64: q.value is that product rounded to float32, a rounding the exact
        # execution of the exported graph (quant_models.exact_exec) does not make.
        scale, zero_point = q.scale.double(), q.zero_point.double()
        value = (q.int(float_datatype=True).double() - zero_point) * scale
        fixed = IntQuantTensor(value, scale, zero_point, q.bit_width, q.signed, False)
        theirs.quant_weight = lambda *_args, _q=fixed, **_kwargs: _q  # the instance attribute shadows the method
    return ref


__all__ = ["Float64ReferenceError", "float64_reference"]
