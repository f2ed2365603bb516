"""The pynq platform against a fake pynq (tests/boards/runtime/fakes.py): opening, errors, the bytes through
``Accelerator.execute``, timeouts instead of hangs, power."""

from __future__ import annotations

import importlib
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from boards.runtime.accelerator import open_accelerator
from boards.runtime.device import AcceleratorError, DmaTimeout, PlatformUnavailable, open_device
from boards.runtime.spec import DriverSpec, sha256_of
from tests.boards.runtime.fakes import FakePynq, expected, frames, make_spec, rail


@pytest.fixture
def bitfile(tmp_path: Path) -> Path:
    """A deploy folder's qdet.bit with its qdet.hwh."""
    bit = tmp_path / "qdet.bit"
    bit.write_bytes(b"bitstream bytes")
    bit.with_suffix(".hwh").write_text("<hwh/>")
    return bit


def install(monkeypatch: pytest.MonkeyPatch, board: FakePynq) -> FakePynq:
    monkeypatch.setitem(sys.modules, "pynq", board.module)
    return board


def test_imports_without_pynq(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynq", None)
    monkeypatch.delitem(sys.modules, "boards.runtime.pynq", raising=False)
    mod = importlib.import_module("boards.runtime.pynq")
    assert mod.PynqDevice.name == "pynq"


def test_no_pynq(monkeypatch: pytest.MonkeyPatch, bitfile: Path) -> None:
    monkeypatch.setitem(sys.modules, "pynq", None)
    with pytest.raises(PlatformUnavailable, match="pynq is not installed") as err:
        open_device("pynq", make_spec(), bitfile=bitfile)
    assert "Zynq board" in str(err.value) and "PYNQ image" in str(err.value) and "--platform csim" in str(err.value)


def test_shadowed_pynq(monkeypatch: pytest.MonkeyPatch, bitfile: Path) -> None:
    """Run from inside the runtime package, `import pynq` finds this very file: say so, not AttributeError."""
    monkeypatch.setitem(sys.modules, "pynq", importlib.import_module("boards.runtime.pynq"))
    with pytest.raises(PlatformUnavailable, match="is not PYNQ: run from the deploy folder"):
        open_device("pynq", make_spec(), bitfile=bitfile)


def test_no_board(monkeypatch: pytest.MonkeyPatch, bitfile: Path) -> None:
    install(monkeypatch, FakePynq(make_spec(), overlay_error=RuntimeError("No devices found")))
    with pytest.raises(PlatformUnavailable, match="No devices found") as err:
        open_device("pynq", make_spec(), bitfile=bitfile)
    assert "no Zynq board here" in str(err.value)


def test_missing_bitfile(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    install(monkeypatch, FakePynq(make_spec()))
    with pytest.raises(PlatformUnavailable, match=r"the bitstream .*nope\.bit does not exist"):
        open_device("pynq", make_spec(), bitfile=tmp_path / "nope.bit")


def test_bitstream_hash_mismatch(monkeypatch: pytest.MonkeyPatch, bitfile: Path) -> None:
    spec = make_spec(bitstream_sha256="ab" * 32)
    install(monkeypatch, FakePynq(spec))
    with pytest.raises(AcceleratorError, match="does not match the build this driver was made for") as err:
        open_device("pynq", spec, bitfile=bitfile)
    assert not isinstance(err.value, PlatformUnavailable)
    assert f"sha256 {sha256_of(bitfile)}" in str(err.value) and f"driver.json says {'ab' * 32}" in str(err.value)
    assert "qdet deploy" in str(err.value)


def test_missing_hwh(monkeypatch: pytest.MonkeyPatch, bitfile: Path) -> None:
    install(monkeypatch, FakePynq(make_spec()))
    bitfile.with_suffix(".hwh").unlink()
    with pytest.raises(PlatformUnavailable, match=r"qdet\.hwh does not exist: pynq reads the block design"):
        open_device("pynq", make_spec(), bitfile=bitfile)


def test_missing_dma(monkeypatch: pytest.MonkeyPatch, bitfile: Path) -> None:
    install(monkeypatch, FakePynq(make_spec(), missing=("dma1",)))
    with pytest.raises(AcceleratorError, match="has no DMA 'dma1' for port m1_axis") as err:
        open_device("pynq", make_spec(), bitfile=bitfile)
    assert "its IP: dma, qdet" in str(err.value)


def test_happy_path(monkeypatch: pytest.MonkeyPatch, bitfile: Path) -> None:
    """7 frames in batches of 3: 3 transfers (3, 3, 1), every byte of both heads back, through the registry."""
    spec = make_spec(bitstream_sha256=sha256_of(bitfile))
    board = install(monkeypatch, FakePynq(spec))
    x = frames(7)
    with open_accelerator("pynq", spec, batch_size=3, bitfile=bitfile) as acc:
        heads = acc.execute(x)
        assert acc.fclk_mhz == 200.0 and board.Clocks.fclk0_mhz == 200.0
        assert acc.last_run is not None and acc.last_run.wall_s > 0 and acc.last_run.power_w is None
    for got, want in zip(heads, expected(x)):
        np.testing.assert_array_equal(got, want)
    assert board.downloads == [True]
    # each transfer arms both S2MM channels before the MM2S one, then re-arms them frame by frame (TLAST ends each)
    first = ["dma.recvchannel", "dma1.recvchannel", "dma.sendchannel"]
    assert board.calls == (first + ["dma.recvchannel", "dma1.recvchannel"] * 2) * 2 + first
    # the input's batch buffer and one buffer per output frame, for 3 frames, then for the last frame; all freed
    assert [b.shape for b in board.allocated] == [(12, 4), *[(4, 4)] * 3, *[(1, 8)] * 3, (4, 4), (4, 4), (1, 8)]
    assert all(b.freed for b in board.allocated)


def test_output_dma_timeout(monkeypatch: pytest.MonkeyPatch, bitfile: Path) -> None:
    board = install(monkeypatch, FakePynq(make_spec(), stall=("dma1.recvchannel",)))
    acc = open_accelerator("pynq", make_spec(), batch_size=2, bitfile=bitfile, timeout_s=0.2)
    start = time.perf_counter()
    with pytest.raises(DmaTimeout, match=r"the output DMA dma1\.recvchannel \(port m1_axis\) moved nothing "
                                         r"for 0\.2 s, frame 0 of 2") as err:
        acc.execute(frames(2))
    assert time.perf_counter() - start < 5.0  # a bound on a hang, not a performance figure
    assert "fewer bytes than 8 bytes per frame x 2 frames" in str(err.value)
    with pytest.raises(AcceleratorError, match="a previous transfer failed on dma1.recvchannel"):
        acc.execute(frames(2))
    acc.close()
    assert not any(b.freed for b in board.allocated)  # the stalled DMA may still write into them


def test_a_slow_batch_that_keeps_moving_is_not_a_timeout(monkeypatch: pytest.MonkeyPatch, bitfile: Path) -> None:
    """6 frames of 0.08 s each take longer than the 0.2 s timeout altogether, but a frame moves every 0.08 s: the
    timeout bounds the time without progress, not the batch."""
    spec = make_spec()
    install(monkeypatch, FakePynq(spec, frame_delay_s=0.08))
    with open_accelerator("pynq", spec, batch_size=6, bitfile=bitfile, timeout_s=0.2) as acc:
        heads = acc.execute(frames(6))
    for got, want in zip(heads, expected(frames(6))):
        np.testing.assert_array_equal(got, want)


def test_input_dma_timeout(monkeypatch: pytest.MonkeyPatch, bitfile: Path) -> None:
    """A stalled input leaves the outputs empty too: the input is named, the outputs listed."""
    install(monkeypatch, FakePynq(make_spec(), stall=("dma.sendchannel",)))
    acc = open_accelerator("pynq", make_spec(), bitfile=bitfile, timeout_s=0.2)
    with pytest.raises(DmaTimeout, match=r"the input DMA dma\.sendchannel \(port s_axis\) .* did not accept all "
                                         r"input \(16 bytes per frame x 1 frames\)") as err:
        acc.execute(frames(1))
    assert "(also pending: dma.recvchannel at frame 0, dma1.recvchannel at frame 0)" in str(err.value)


def test_early_tlast(monkeypatch: pytest.MonkeyPatch, bitfile: Path) -> None:
    """An accelerator that ends its frames early: the short frame is reported, not stale bytes returned."""
    install(monkeypatch, FakePynq(make_spec(), short={"dma.recvchannel": 12}))
    acc = open_accelerator("pynq", make_spec(), batch_size=2, bitfile=bitfile)
    with pytest.raises(AcceleratorError, match=r"dma\.recvchannel \(port m_axis\) received 12 bytes for frame 0 of 2, "
                                               r"expected 16: the accelerator ended the frame \(TLAST\) early"):
        acc.execute(frames(2))


def test_dma_error(monkeypatch: pytest.MonkeyPatch, bitfile: Path) -> None:
    board = install(monkeypatch, FakePynq(make_spec()))
    acc = open_accelerator("pynq", make_spec(), bitfile=bitfile)
    board.recv[1].error = True  # DMASR's error bits: a halted channel that would never go idle
    with pytest.raises(AcceleratorError, match=r"dma1\.recvchannel \(port m1_axis\) reports a DMA error"):
        acc.execute(frames(1))


@pytest.mark.parametrize("rails, power", [
    ({"VCCINT": rail(1.0), "12V": rail(7.5), "FAN": rail(None)}, 7.5),  # the board's input rail before VCCINT
    ({"VCCINT": rail(1.0)}, 1.0),
    ({}, None),  # a board without sensors (PYNQ-Z2)
    (None, None),  # a pynq without get_rails
])
def test_power(monkeypatch: pytest.MonkeyPatch, bitfile: Path, rails: dict | None, power: float | None) -> None:
    install(monkeypatch, FakePynq(make_spec(), rails=rails))
    res = open_accelerator("pynq", make_spec(), batch_size=2, bitfile=bitfile).throughput_test()
    assert res.get("power[W]") == power and ("power[W]" in res) == (power is not None)
    assert res["batch_size"] == 2 and res["fclk[mhz]"] == 200.0


def test_power_sensor_failure(monkeypatch: pytest.MonkeyPatch, bitfile: Path) -> None:
    class Broken:
        @property
        def value(self) -> float:
            raise OSError("hwmon read failed")

    install(monkeypatch, FakePynq(make_spec(), rails={"12V": type("Rail", (), {"power": Broken()})()}))
    res = open_accelerator("pynq", make_spec(), bitfile=bitfile, power=True).throughput_test()
    assert "power[W]" not in res


def test_spec_round_trip_opens(monkeypatch: pytest.MonkeyPatch, bitfile: Path, tmp_path: Path) -> None:
    """A spec read back from driver.json (as on the board) opens the same DMAs."""
    make_spec().save(tmp_path / "driver.json")
    board = install(monkeypatch, FakePynq(make_spec()))
    acc = open_accelerator("zynq", DriverSpec.load(tmp_path / "driver.json"), bitfile=str(bitfile), download=False)
    np.testing.assert_array_equal(acc.execute(frames(1))[0], expected(frames(1))[0])
    assert board.downloads == [False]
