"""The xrt platform against a fake pyxrt (tests/boards/runtime/fakes.py): opening, errors, the bytes through
``Accelerator.execute``, timeouts instead of hangs."""

from __future__ import annotations

import importlib
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from boards.runtime.accelerator import open_accelerator
from boards.runtime.device import AcceleratorError, DmaTimeout, PlatformUnavailable, open_device
from boards.runtime.spec import sha256_of
from tests.boards.runtime.fakes import FakeXrt, expected, frames, make_spec


@pytest.fixture
def xclbin(tmp_path: Path) -> Path:
    path = tmp_path / "qdet.xclbin"
    path.write_bytes(b"xclbin bytes")
    return path


def install(monkeypatch: pytest.MonkeyPatch, card: FakeXrt) -> FakeXrt:
    monkeypatch.setitem(sys.modules, "pyxrt", card.module)
    return card


def test_imports_without_pyxrt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyxrt", None)
    monkeypatch.setitem(sys.modules, "pynq", None)
    for name in ("boards.runtime.xrt", "boards.runtime.pynq"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    assert importlib.import_module("boards.runtime.xrt").XrtDevice.name == "xrt"


def test_no_pyxrt(monkeypatch: pytest.MonkeyPatch, xclbin: Path) -> None:
    monkeypatch.setitem(sys.modules, "pyxrt", None)
    with pytest.raises(PlatformUnavailable, match=r"pyxrt comes with XRT \(source /opt/xilinx/xrt/setup.sh\)") as err:
        open_device("alveo", make_spec(), bitfile=xclbin)
    assert "not on PyPI" in str(err.value) and "--platform csim" in str(err.value)


def test_missing_xclbin(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    install(monkeypatch, FakeXrt(make_spec()))
    with pytest.raises(PlatformUnavailable, match=r"the xclbin .*nope\.xclbin does not exist"):
        open_device("xrt", make_spec(), bitfile=tmp_path / "nope.xclbin")


def test_xclbin_hash_mismatch(monkeypatch: pytest.MonkeyPatch, xclbin: Path) -> None:
    spec = make_spec(bitstream_sha256="cd" * 32)
    install(monkeypatch, FakeXrt(spec))
    with pytest.raises(AcceleratorError, match="does not match the build this driver was made for") as err:
        open_device("xrt", spec, bitfile=xclbin)
    assert f"sha256 {sha256_of(xclbin)}" in str(err.value) and f"driver.json says {'cd' * 32}" in str(err.value)


def test_no_card(monkeypatch: pytest.MonkeyPatch, xclbin: Path) -> None:
    install(monkeypatch, FakeXrt(make_spec(), no_device=True))
    with pytest.raises(PlatformUnavailable, match=r"no Alveo card at index 1 \(Could not open device"):
        open_device("xrt", make_spec(), bitfile=xclbin, device_index=1)


def test_missing_kernel(monkeypatch: pytest.MonkeyPatch, xclbin: Path) -> None:
    install(monkeypatch, FakeXrt(make_spec(), kernels=("idma0", "odma0")))
    with pytest.raises(AcceleratorError, match="has no kernel 'odma1' for port m1_axis") as err:
        open_device("xrt", make_spec(), bitfile=xclbin)
    assert "its kernels: idma0, odma0" in str(err.value)


def test_happy_path(monkeypatch: pytest.MonkeyPatch, xclbin: Path) -> None:
    spec = make_spec(bitstream_sha256=sha256_of(xclbin))
    card = install(monkeypatch, FakeXrt(spec))
    x = frames(7)
    with open_accelerator("xrt", spec, batch_size=3, bitfile=xclbin) as acc:
        heads = acc.execute(x)
        assert acc.fclk_mhz == 200.0 and acc.last_run is not None and acc.last_run.wall_s > 0
    for got, want in zip(heads, expected(x)):
        np.testing.assert_array_equal(got, want)
    assert card.calls == ["odma0", "odma1", "idma0"] * 3  # the output kernels first


def test_output_kernel_timeout(monkeypatch: pytest.MonkeyPatch, xclbin: Path) -> None:
    install(monkeypatch, FakeXrt(make_spec(), stall=("odma1",)))
    acc = open_accelerator("xrt", make_spec(), batch_size=2, bitfile=xclbin, timeout_s=0.2)
    start = time.perf_counter()
    with pytest.raises(DmaTimeout, match=r"the output DMA kernel odma1 \(port m1_axis\) did not complete within "
                                         r"0\.2 s \(state ERT_CMD_STATE_RUNNING\)") as err:
        acc.execute(frames(2))
    assert time.perf_counter() - start < 5.0  # a bound on a hang, not a performance figure
    assert "fewer bytes than 8 bytes per frame x 2 frames" in str(err.value)


def test_a_stalled_input_is_named_first_and_the_card_refuses_until_reopened(monkeypatch: pytest.MonkeyPatch,
                                                                          xclbin: Path) -> None:
    install(monkeypatch, FakeXrt(make_spec(), stall=("idma0", "odma0", "odma1")))
    acc = open_accelerator("xrt", make_spec(), bitfile=xclbin, timeout_s=0.1)
    with pytest.raises(DmaTimeout, match=r"the input DMA kernel idma0 \(port s_axis\)") as err:
        acc.execute(frames(1))
    assert "(also not completed: odma0, odma1)" in str(err.value)
    with pytest.raises(AcceleratorError, match="a previous transfer failed on idma0"):
        acc.execute(frames(1))
