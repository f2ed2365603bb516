"""The backend interface: the registry, the rtl backend's bytes against the generator's output recorded before
the backend refactor, and stream packing in one module (int, hex and DMA-byte forms agreeing)."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest

from hls.backend import BACKENDS, BackendError, get_backend
from hls.gen import GenConfig
from boards.runtime.stream import pack, pack_bytes, pack_words, unpack, unpack_bytes, unpack_words
from tests.hls.test_gen import _fold_build

ROOT = Path(__file__).resolve().parents[2]
# sha256 of every file the RTL generator wrote for two fixed builds, recorded on 09e8fac+ (before the backend
# interface existed). A deliberate change of the RTL output (a kernel edit) updates this file in the same commit.
RECORDED = json.loads((Path(__file__).with_name("rtl_sha256.json")).read_text())


@pytest.mark.parametrize("name, kwargs, config", [("fold", {}, GenConfig()),
                                                  ("fold_pw", {"parallel_window": 1},
                                                   GenConfig(tree_levels=2, mac_style="dsp"))])
def test_the_rtl_backend_writes_the_pre_refactor_bytes(tmp_path, name, kwargs, config):
    build, _, _ = _fold_build(tmp_path, **kwargs)
    out = get_backend("rtl").generate(build, mac_style=config.mac_style, tree_levels=config.tree_levels)
    assert out == build.rtl_dir
    got = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(out.iterdir())}
    assert got == RECORDED[name]


def test_the_registry_names_both_backends_and_refuses_others():
    assert set(BACKENDS) == {"rtl", "cpp"}
    with pytest.raises(BackendError, match="'vhdl' is not one of rtl, cpp"):
        get_backend("vhdl")
    import importlib

    for backend in BACKENDS.values():  # every entry point resolves to a function
        for path in (backend.plan_path, backend.simulate_path, backend.scripts_path):
            module, _, fn = path.partition(":")
            assert callable(getattr(importlib.import_module(module), fn)), path


def test_packing_forms_agree():
    rng = np.random.default_rng(0)
    for bits, elems, signed, width in ((4, 3, False, 16), (5, 7, True, 40), (16, 2, True, 32), (1, 9, False, 16),
                                       (12, 11, True, 256)):
        lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
        lanes = rng.integers(lo, hi + 1, (20, elems))
        ints = [pack(r, bits) for r in lanes]
        # Independent of pack_bytes: Python's int.to_bytes, little-endian.
        want = np.array([list(w.to_bytes(width // 8, "little")) for w in ints], np.uint8)
        assert np.array_equal(pack_bytes(lanes, bits, width), want)
        assert np.array_equal(unpack_bytes(want, elems, bits, signed), lanes)
        assert [int(w, 16) for w in pack_words(lanes, bits)] == ints
        assert np.array_equal(unpack_words(pack_words(lanes, bits), elems, bits, signed), lanes)
        assert [unpack(w, elems, bits, signed) for w in ints] == lanes.tolist()


# FINN's driver method names, kept by the accelerator API; they call boards/runtime/stream.py.
FINN_NAMES = {("boards/runtime/accelerator.py", "pack_input"), ("boards/runtime/accelerator.py", "unpack_output")}


def test_beat_packing_is_defined_in_one_module_only():
    """Nothing outside boards/runtime/stream.py defines a pack/unpack function or shifts elements into beats by index."""
    defs = re.compile(r"^\s*def (_?(un)?pack(_\w+)?)\(", re.M)
    idiom = re.compile(r"[<>]{2} \(\w+ \* (bits|b|self\.bits)\)")
    found = []
    for path in ROOT.glob("**/*.py"):
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith((".venv", "build/")) or rel == "boards/runtime/stream.py":
            continue
        text = path.read_text(errors="replace")
        found += [f"{rel}: def {m.group(1)}" for m in defs.finditer(text) if (rel, m.group(1)) not in FINN_NAMES]
        if rel != "tests/boards/runtime/test_stream_finn.py":  # packs by hand: the independent reference
            found += [f"{rel}: {m.group(0)}" for m in idiom.finditer(text)]
    assert not found, found
