"""The analytic energy estimate of a build (flows/energy.py): its operation counts against the torch model's own
cost figures (quant_models.complexity, an independent count from the layer plan), and its arithmetic against the
documented table, by hand."""

from __future__ import annotations

import pytest

from flows import energy

pytestmark = pytest.mark.slow


def test_a_builds_macs_and_bops_are_the_torch_models(tiny_build, trained_run):
    from quant_models.checkpoint import load_model
    from quant_models.complexity import model_complexity

    cfg, _ = tiny_build
    est = energy.estimate_build_energy(cfg.layout, fps=1000.0)
    model, _ = load_model(trained_run.best)
    cost = model_complexity(model)
    assert est.macs == cost.macs  # FINN's counts of the hardware graph = the layer plan's
    assert est.bops == cost.bops
    assert est.static_power_w == energy.IDLE_POWER_W["pynq-z2"] and est.static_uj == pytest.approx(1.5 / 1000 * 1e6)
    # DMA: one uint8 128x128x3 frame in and the head's accumulators out, from the io_spec (independently of FINN).
    from boards.runtime.io_spec import IOSpec

    spec = IOSpec.load(cfg.layout.io_spec)
    bits = {"UINT8": 8}.get(spec.input.datatype, 0) * 128 * 128 * 3
    out_bits = sum(int(o.datatype.lstrip("UINT")) * o.shape[1] * o.shape[2] * o.shape[3] for o in spec.outputs)
    from qonnx.core.modelwrapper import ModelWrapper

    hw = ModelWrapper(str(cfg.layout.step_checkpoint("stream_links")))
    assert energy.traffic(hw)[1] == (bits + out_bits) // 8  # the data the DMAs move
    assert est.dma_bytes >= (bits + out_bits) // 8  # the ports' padded beats (when a backend manifest says so)
    # Streams: the C++ backend's links (its own walk of the graph), data bits per frame, the DMA ports' left out.
    from hls.backend import get_backend

    links = get_backend("cpp").plan(cfg.layout).manifest["links"]
    inner = [l for l in links if l["producer"] != "s_axis" and not l["consumer"].endswith("_axis")]
    assert est.stream_bits == sum(l["beats_per_frame"] * l["width"] for l in inner)
    measured = energy.estimate_build_energy(cfg.layout, fps=1000.0, static_power_w=2.5)
    assert measured.static_uj == pytest.approx(2500.0) and measured.dynamic_uj == est.dynamic_uj


def test_the_table_by_hand():
    # One 4x4-bit layer of 1,000 MACs, 320 stream bits and 10 DMA bytes per frame, at 100 FPS on an assumed 2 W
    # board; and a first layer of 8-bit pixels x 4-bit weights, whose weight reads are 4-bit (its weight key), not 8.
    est = energy.estimate_energy([{"op_mac_4bx4b": 1000, "param_weight_4b": 50}], stream_bits=320, dma_bytes=10,
                                 board="nowhere", fps=100.0, static_power_w=2.0)
    mac_pj = 1000 * (0.2 * 16 / 64 + 0.03) * 14  # 0.08 pJ x 14 per MAC
    weights_pj = 1000 * 4 / 64 * 10.0
    streams_pj = 320 * 0.1 / 32 * 14
    dma_pj = 10 * 8 / 64 * 1300.0
    assert est.macs == 1000 and est.bops == 16000 and est.weight_bits_read == 4000
    assert est.parts_uj["MACs"] == pytest.approx(mac_pj * 1e-6)
    assert est.parts_uj["weight reads"] == pytest.approx(weights_pj * 1e-6)
    assert est.parts_uj["streams"] == pytest.approx(streams_pj * 1e-6)
    assert est.parts_uj["DMA"] == pytest.approx(dma_pj * 1e-6)
    assert est.static_uj == pytest.approx(2.0 / 100 * 1e6)
    assert est.to_dict()["total_uj"] == pytest.approx(est.dynamic_uj + est.static_uj)
    first = energy.estimate_energy([{"op_mac_4bx8b": 10, "param_weight_4b": 5}], 0, 0, "pynq-z2", fps=1.0)
    assert first.weight_bits_read == 40 and first.bops == 320
    with pytest.raises(ValueError, match="frame rate > 0"):
        energy.estimate_energy([], 0, 0, "pynq-z2", fps=0.0)
