"""The RTL generator on a small hand-made folded graph: insertion of width converters and FIFOs, memory layouts,
determinism, and the error for an unsupported node. No simulator needed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from flows.build import BuildLayout
from hls.gen import GenConfig, GenerateError, generate_rtl, load_manifest

RTL_DOMAIN = "finn.custom_op.fpgadataflow.rtl"
HLS_DOMAIN = "finn.custom_op.fpgadataflow.hls"


def _fold_build(root: Path, extra_node: bool = False, seed: int = 0,
                parallel_window: int = 0) -> tuple[Path, np.ndarray, np.ndarray]:
    """A fake build: steps/06_fold.onnx with FMPadding (SIMD 1) -> SWG (SIMD 2; ``parallel_window``: whole 3x3
    windows, 18 elements a beat) -> MVAU (SIMD 3, PE 2)."""
    from onnx import TensorProto, helper
    from qonnx.core.datatype import DataType
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.basic import qonnx_make_model

    rng = np.random.default_rng(seed)
    w = rng.integers(-8, 8, (18, 4)).astype(np.float32)
    t = np.sort(rng.uniform(-100, 100, (4, 3)), axis=1).astype(np.float32)
    t[0, 2] = 1e6  # beyond the accumulator: the generator widens ACC_BITS instead of changing the result
    nodes = [
        helper.make_node("FMPadding_rtl", ["x"], ["a"], name="FMPadding_rtl_0", domain=RTL_DOMAIN, backend="fpgadataflow",
                         ImgDim=[4, 4], NumChannels=2, Padding=[1, 1, 1, 1], SIMD=1, inputDataType="UINT4"),
        helper.make_node("ConvolutionInputGenerator_rtl", ["a"], ["b"], name="ConvolutionInputGenerator_rtl_0",
                         domain=RTL_DOMAIN, backend="fpgadataflow", ConvKernelDim=[3, 3], Dilation=[1, 1], IFMChannels=2, IFMDim=[6, 6],
                         OFMDim=[4, 4], SIMD=2, Stride=[1, 1], depthwise=0, inputDataType="UINT4",
                         outputDataType="UINT4", parallel_window=parallel_window),
        helper.make_node("MVAU_hls", ["b", "w", "t"], ["y"], name="MVAU_hls_0", domain=HLS_DOMAIN, backend="fpgadataflow", MW=18, MH=4,
                         PE=2, SIMD=3, ActVal=0, binaryXnorMode=0, noActivation=0, inputDataType="UINT4",
                         weightDataType="INT4", outputDataType="UINT2", accDataType="INT12",
                         numInputVectors=[1, 4, 4]),
    ]
    out = "y"
    if extra_node:
        nodes.append(helper.make_node("LabelSelect_hls", ["y"], ["z"], name="LabelSelect_hls_0", domain=HLS_DOMAIN))
        out = "z"
    graph = helper.make_graph(nodes, "fold", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 4, 2])],
                              [helper.make_tensor_value_info(out, TensorProto.FLOAT, [1, 4, 4, 4])])
    model = ModelWrapper(qonnx_make_model(graph))
    model.set_initializer("w", w)
    model.set_initializer("t", t)
    model.set_tensor_datatype("w", DataType["INT4"])
    if not extra_node:
        from qonnx.transformation.infer_shapes import InferShapes

        model = model.transform(InferShapes())
    build = BuildLayout(root / "build")
    build.steps_dir.mkdir(parents=True)
    model.save(str(build.checkpoint(6, "fold")))
    build.write_record("pynq-z2", 100.0, {})
    if not extra_node:  # the flow's stream_links step (width converters, FIFOs) makes the generator's input
        from flows.config import FlowConfig
        from flows.steps.links import step_stream_links

        linked = step_stream_links(model, FlowConfig(out=build.root, board="pynq-z2"))
        linked.save(str(build.checkpoint(7, "stream_links")))
    else:
        model.save(str(build.checkpoint(7, "stream_links")))
    return build, w, t


def _kernels(manifest: dict) -> list[tuple[str, str]]:
    return [(s["kernel"], s["role"]) for s in manifest["stages"]]


def test_dwc_and_fifo_insertion(tmp_path: Path) -> None:
    build, _, _ = _fold_build(tmp_path)
    manifest = load_manifest(generate_rtl(build))
    # Converter first, then the FIFO at the consumer's width (so up-converted beats can queue up).
    assert _kernels(manifest) == [("qdet_fmpad", "layer"), ("qdet_dwc", "dwc"), ("qdet_fifo", "fifo"),
                                  ("qdet_swg", "layer"), ("qdet_dwc", "dwc"), ("qdet_fifo", "fifo"),
                                  ("qdet_mvau", "layer")]
    fifos = [s["parameters"] for s in manifest["stages"] if s["role"] == "fifo"]
    # The MVAU's FIFO also covers its sliding window's frame-boundary gap (flows.transforms.insert_fifos): the
    # window reads 2 rows and 3 pixels (15 beats) of the next frame before its first window, while the MVAU takes
    # 96 beats per frame of the pipeline's 192 cycles: 32 + ceil(15 * 96 / 192) = 40 -> 64.
    assert fifos == [{"WIDTH": 8, "DEPTH": 32}, {"WIDTH": 12, "DEPTH": 64}]
    dwcs = [s["parameters"] for s in manifest["stages"] if s["role"] == "dwc"]
    assert dwcs == [{"IN_ELEMS": 1, "OUT_ELEMS": 2, "BITS": 4}, {"IN_ELEMS": 2, "OUT_ELEMS": 3, "BITS": 4}]
    # Top ports: 4-bit input and 2 x 2-bit output, both padded to one byte.
    assert manifest["ports"]["s_axis"]["width"] == 8 and manifest["ports"]["s_axis"]["data_bits"] == 4
    assert manifest["ports"]["m_axis"]["width"] == 8 and manifest["ports"]["m_axis"]["data_bits"] == 4
    mvau = manifest["stages"][-1]
    assert mvau["mac_style"] == "lut"  # min(4, 4) <= 4
    assert mvau["parameters"]["ACC_BITS"] > 12  # the 1e6 threshold needs a wider comparison
    # Every link width matches the producer's and consumer's beats.
    for s in manifest["stages"]:
        assert s["in_stream"]["width"] == next(l["width"] for l in manifest["links"] if l["name"] == s["link_in"])
        assert s["out_stream"]["width"] == next(l["width"] for l in manifest["links"] if l["name"] == s["link_out"])
    top = (build.rtl_dir / "qdet_top.sv").read_text()
    assert "module qdet_top" in top and top.count("qdet_dwc #(") == 2 and top.count("qdet_fifo #(") == 2


def test_a_down_converter_gets_its_fifo_in_front(tmp_path: Path) -> None:
    build, _, _ = _fold_build(tmp_path, parallel_window=1)
    manifest = load_manifest(generate_rtl(build))
    # The parallel window emits 18-element beats in bursts; the 18 -> 3 converter takes one every 6 cycles, so the
    # FIFO sits on the wide side, in front of the converter (an up-converter keeps it behind, as above).
    assert _kernels(manifest)[3:] == [("qdet_swg", "layer"), ("qdet_fifo", "fifo"), ("qdet_dwc", "dwc"),
                                      ("qdet_mvau", "layer")]
    wide = [s for s in manifest["stages"] if s["role"] == "fifo"][1]
    assert wide["parameters"]["WIDTH"] == 18 * 4


def test_tree_levels_reach_the_mac_kernels_and_the_manifest(tmp_path: Path) -> None:
    build, _, _ = _fold_build(tmp_path)
    manifest = load_manifest(generate_rtl(build, GenConfig(tree_levels=2)))
    assert manifest["generator"]["tree_levels"] == 2
    mvau = manifest["stages"][-1]
    assert mvau["parameters"]["TREE_LEVELS"] == 2 and mvau["tree_levels"] == 2
    assert GenConfig.of_manifest(manifest) == GenConfig(tree_levels=2)
    with pytest.raises(GenerateError, match="--tree-levels"):
        GenConfig(tree_levels=9)


def test_dsp_policy(tmp_path: Path) -> None:
    build, _, _ = _fold_build(tmp_path)
    manifest = load_manifest(generate_rtl(build, GenConfig(mac_style="dsp")))
    assert manifest["stages"][-1]["mac_style"] == "dsp"
    assert manifest["stages"][-1]["parameters"]["MAC_STYLE"] == "dsp"


def test_memory_files_follow_the_readme_layout(tmp_path: Path) -> None:
    """Read the .mem files back with the README's formulas (written out here, independently of the generator)."""
    build, w, t = _fold_build(tmp_path)
    rtl = generate_rtl(build)
    p = load_manifest(rtl)["stages"][-1]["parameters"]
    pe, simd, mw, mh, acc = p["PE"], p["SIMD"], p["MW"], p["MH"], p["ACC_BITS"]
    sf, nf = mw // simd, mh // pe
    lines = (rtl / p["W_FILE"]).read_text().split()
    assert len(lines) == nf * sf
    for nf_i in range(nf):
        for sf_i in range(sf):
            word = int(lines[nf_i * sf + sf_i], 16)
            for pp in range(pe):
                for s in range(simd):
                    v = (word >> ((pp * simd + s) * 4)) & 0xF
                    v = v - 16 if v >= 8 else v
                    assert v == w[sf_i * simd + s][nf_i * pe + pp]
    tl = (rtl / p["T_FILE"]).read_text().split()
    assert len(tl) == nf
    for nf_i in range(nf):
        word = int(tl[nf_i], 16)
        for pp in range(pe):
            for k in range(p["STEPS"]):
                v = (word >> ((pp * p["STEPS"] + k) * acc)) & ((1 << acc) - 1)
                v = v - (1 << acc) if v >= 1 << (acc - 1) else v
                c = nf_i * pe + pp
                # Same comparison result as FINN's float threshold for every accumulator value of INT12.
                for a in (-2048, -1, 0, 1, 2047):
                    assert (a >= v) == (a >= float(t[c][k]))


def test_same_build_same_bytes(tmp_path: Path) -> None:
    build, _, _ = _fold_build(tmp_path)
    first = generate_rtl(build, out=tmp_path / "a")
    second = generate_rtl(build, out=tmp_path / "b")
    names = sorted(p.name for p in first.iterdir())
    assert names == sorted(p.name for p in second.iterdir())
    for name in names:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
        assert str(tmp_path) not in (first / name).read_text(), f"{name} holds an absolute path"
    manifest = load_manifest(first)
    import hashlib

    # The manifest names what it was generated from, so a re-folded build can tell its RTL is stale.
    assert manifest["source"] == "steps/07_stream_links.onnx"
    assert manifest["source_sha256"] == hashlib.sha256(build.checkpoint(7, "stream_links").read_bytes()).hexdigest()

    for name, digest in manifest["files"].items():
        assert hashlib.sha256((first / name).read_bytes()).hexdigest() == digest
    assert {"qdet_fmpad.sv", "qdet_swg.sv", "qdet_mvau.sv", "qdet_fifo.sv", "qdet_dwc.sv",
            "qdet_skid.sv"} <= set(manifest["kernel_sources"])


def test_unsupported_node_is_named(tmp_path: Path) -> None:
    build, _, _ = _fold_build(tmp_path, extra_node=True)
    with pytest.raises(GenerateError, match=r"LabelSelect_hls_0.*LabelSelect_hls"):
        generate_rtl(build)
