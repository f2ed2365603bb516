"""The folder's LUT and DSP model of an MVAU's MAC lanes, calibrated against yosys.

Both lane kinds of ``qdet_mvau``: LUT products (shifted partial products) and DSP-packed products
(``qdet_packdot``: several products per multiplier, :mod:`hls.gen.dsp`). The LUT count of one instance is a
non-negative combination of a few structural terms (:func:`lane_features`: the multipliers' partial products, the
adder trees' leaf bits, the accumulators, the threshold comparators, one per lane), fitted per lane kind to the
measured table ``flows/calibration/mac_lanes.json`` (single instances synthesized by yosys'
``synth_xilinx``; ``python -m bench.mac_calibration`` regenerates it). Weight memories are costed apart (FINN's
BRAM/LUTRAM models, scaled to the packed word width)."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np

TABLE = Path(__file__).resolve().parent / "calibration" / "mac_lanes.json"
FEATURES = ("const", "partial_products", "tree_bits", "acc_bits", "compare_bits", "lanes")


def lane_features(pe: int, simd: int, in_bits: int, w_bits: int, acc_bits: int, steps: int) -> list[float]:
    """The structural terms of one MVAU (see :data:`FEATURES`)."""
    lanes = pe * simd
    return [1.0, float(lanes * in_bits * w_bits), float(lanes * (in_bits + w_bits)), float(pe * acc_bits),
            float(pe * steps * acc_bits), float(lanes)]


def fit(points: list[dict]) -> dict[str, list[float]]:
    """Non-negative least squares per lane kind over the measured points: {"lut": coefficients, "dsp": ...}.
    (The families' LUT counts differ by about 2%, so one family's points serve both.)"""
    model = {}
    for key in sorted({p["kind"] for p in points}):
        rows = [p for p in points if p["kind"] == key]
        a = np.array([lane_features(p["pe"], p["simd"], p["in_bits"], p["w_bits"], p["acc_bits"], p["steps"])
                      for p in rows])
        model[key] = relative_nnls(a, np.array([float(p["lut"]) for p in rows]))
    return model


def relative_nnls(a: np.ndarray, b: np.ndarray) -> list[float]:
    """Non-negative least squares of ``a @ x ~ b`` in relative error (each row weighted by 1 / b): small layers
    count as much as large ones."""
    from scipy.optimize import nnls

    w = 1.0 / np.maximum(b, 1.0)
    coef, _ = nnls(a * w[:, None], b * w)
    return [float(c) for c in coef]


def predict(model: dict[str, list[float]], kind: str, features: list[float]) -> float:
    """LUTs of one MVAU's MAC logic by the fitted ``model``."""
    coef = model[kind]
    return float(np.dot(coef, features))


@functools.lru_cache(maxsize=1)
def default_model() -> dict[str, list[float]]:
    """The model fitted to the repository's calibration table (read once, on first use)."""
    return fit(json.loads(TABLE.read_text())["points"])


def mac_luts(kind: str, pe: int, simd: int, in_bits: int, w_bits: int, acc_bits: int, steps: int) -> float:
    """LUTs of an MVAU's MAC lanes, accumulators and comparators (memories aside) by the calibrated model."""
    return predict(default_model(), kind, lane_features(pe, simd, in_bits, w_bits, acc_bits, steps))


MAC_KINDS = ("lut", "dsp")


def family_of_part(part: str) -> str:
    """yosys' synth_xilinx family of a Xilinx part: ``xc7`` for 7-series (Zynq-7000), ``xcup`` for UltraScale+."""
    return "xc7" if part.lower().startswith("xc7") else "xcup"


def _packing(op, part: str, model=None) -> dict:
    """The DSP packing terms of an MVAU (its folding and ``resType`` as set): widths, family, narrow weights, lanes."""
    from hls.gen.dsp import dsp_lanes, is_narrow

    pe, simd = int(op.get_nodeattr("PE")), int(op.get_nodeattr("SIMD"))
    idt, wdt = op.get_input_datatype(0), op.get_input_datatype(1)
    w_bits = wdt.bitwidth() + (0 if wdt.signed() else 1)  # the kernel's two's complement weights
    family = family_of_part(part)
    narrow = False
    if model is not None:
        weights = model.get_initializer(op.onnx_node.input[1])
        narrow = weights is not None and is_narrow(weights, w_bits)
    dsp = str(op.get_nodeattr("resType")) == "dsp"
    return {"pe": pe, "simd": simd, "in_bits": idt.bitwidth(), "in_signed": idt.signed(), "w_bits": w_bits,
            "family": family, "narrow": narrow,
            "lanes": dsp_lanes(idt.bitwidth(), w_bits, pe, family, narrow) if dsp else 1}


def dsp_rejects(op, part: str, model=None) -> str | None:
    """Why DSP lanes make no sense for this MVAU option (None: they do, or its ``resType`` is not "dsp"): a packed
    product narrower than a DSP takes (:data:`hls.gen.dsp.MIN_DSP_PRODUCT_BITS`) is mapped to LUTs, so the option
    would only repeat the LUT kind under a DSP count it never uses."""
    from hls.gen.dsp import MIN_DSP_PRODUCT_BITS, product_width

    if str(op.get_nodeattr("resType")) != "dsp":
        return None
    k = _packing(op, part, model)
    bits = product_width(k["lanes"], k["in_bits"], k["w_bits"], k["narrow"])
    if bits < MIN_DSP_PRODUCT_BITS:
        return (f"DSP lanes: {k['lanes']} packed {k['in_bits']}x{k['w_bits']}-bit product(s) make a {bits}-bit "
                f"product, which synthesis maps to LUTs (a DSP from {MIN_DSP_PRODUCT_BITS} bits)")
    return None


def mvau_estimate(op, part: str, model=None) -> dict[str, float] | None:
    """qdet's estimate of an MVAU whose ``resType`` the folder chose ("lut" or "dsp"): FINN's cycles, the calibrated
    MAC logic (:func:`mac_luts`), FINN's weight memory models with the word widened to the packed width for DSP
    lanes, and the packing's DSP count (:mod:`hls.gen.dsp`). None for a node left at ``resType`` "auto" (FINN's own
    models then apply). ``model`` (the graph) lets the weights decide the narrow-range packing; without it the
    packing assumes the full weight range (never fewer DSPs than the generator uses)."""
    from hls.gen.dsp import dsp_count, packed_width

    kind = str(op.get_nodeattr("resType"))
    if kind not in MAC_KINDS:
        return None
    k = _packing(op, part, model)
    pe, simd, in_bits, w_bits, lanes, narrow = (k[n] for n in ("pe", "simd", "in_bits", "w_bits", "lanes", "narrow"))
    acc_bits = op.get_accumulator_datatype().bitwidth() + 1
    steps = 0 if op.get_nodeattr("noActivation") else 2 ** op.get_output_datatype().bitwidth() - 1
    plain = pe * simd * w_bits
    word = -(-pe // lanes) * simd * packed_width(lanes, in_bits, w_bits, narrow) if kind == "dsp" else plain
    widen = word / plain
    depth = int(op.calc_wmem())
    memory_luts = word * -(-depth // 64) if str(op.get_nodeattr("ram_style")) == "distributed" else 0.0
    return {"cycles": int(op.get_exp_cycles()),
            "lut": mac_luts(kind, pe, simd, in_bits, w_bits, acc_bits, steps) + memory_luts,
            "bram18": float(np.ceil(op.bram_estimation(part) * widen)),
            "uram": float(np.ceil(op.uram_estimation(part) * widen)),
            "dsp": float(dsp_count(pe, simd, in_bits, k["in_signed"], w_bits, lanes, k["family"], narrow)
                         if kind == "dsp" else 0)}
