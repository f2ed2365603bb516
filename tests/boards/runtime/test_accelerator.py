"""boards/runtime/accelerator.py (FINN's driver names over a Device) and spec.py (StreamPort / DriverSpec), with a fake
in-test device: it decodes the DMA bytes with Python integers (not qdet's packing), computes known functions of each
frame and encodes them back, counting transfers. Expected values come from numpy on the frames, FINN's
data-packing helpers, or hand-written shapes."""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import pytest
from finn.util import data_packing as dp
from qonnx.core.datatype import DataType

from boards.runtime.accelerator import Accelerator, open_accelerator
from boards.runtime.device import AcceleratorError, PlatformUnavailable, RunStats, open_device, platform_name
from boards.runtime.spec import DriverSpec, SpecError, StreamPort

FINN_KEYS = {"runtime[ms]", "throughput[images/s]", "DRAM_in_bandwidth[MB/s]", "DRAM_out_bandwidth[MB/s]",
             "fclk[mhz]", "batch_size", "fold_input[ms]", "pack_input[ms]", "copy_input_data_to_device[ms]",
             "copy_output_data_from_device[ms]", "unpack_output[ms]", "unfold_output[ms]"}

H, W, C = 3, 4, 8


def _in_port(width: int = 16, datatype: str = "UINT4", bits: int = 4, signed: bool = False) -> StreamPort:
    """UINT4 (1, 3, 4, 8), 4 elements per beat: 16 data bits, 24 beats a frame."""
    return StreamPort(name="s_axis", datatype=datatype, shape=(1, H, W, C), elems=4, bits=bits, width=width,
                      signed=signed, beats_per_frame=H * W * C // 4, dma="dma")


# Output 0: INT12 (1, 3, 4, 8), 2 per beat (24 bits on a 32-bit port). Output 1: UINT8 (1, 3, 4, 1), 1 per beat.
OUT0 = StreamPort(name="m_axis", datatype="INT12", shape=(1, H, W, C), elems=2, bits=12, width=32, signed=True,
                  beats_per_frame=H * W * C // 2, dma="dma")
OUT1 = StreamPort(name="m1_axis", datatype="UINT8", shape=(1, H, W, 1), elems=1, bits=8, width=8, signed=False,
                  beats_per_frame=H * W, dma="dma1")


def f0(x: np.ndarray) -> np.ndarray:
    """Output 0 of the fake accelerator: spans most of INT12, negatives included."""
    return x * 200 - 1500


def f1(x: np.ndarray) -> np.ndarray:
    """Output 1: the channel sum (<= 8 * 15 = 120, a UINT8)."""
    return x.sum(axis=-1, keepdims=True)


def _spec(width: int = 16, outputs: tuple[StreamPort, ...] = (OUT0, OUT1), **port) -> DriverSpec:
    return DriverSpec(inputs=(_in_port(width, **port),), outputs=outputs, board="pynq-z2", clock_mhz=100.0,
                      top="qdet_top", source_sha256="ab" * 32, bitstream_sha256="cd" * 32, backend="cpp")


def _decode(buf: np.ndarray, port: StreamPort, frames: int) -> np.ndarray:
    """DMA bytes -> (frames, H, W, C) integers, beat by beat with Python ints; the bits above the data must be 0."""
    mask = (1 << port.bits) - 1
    vals = []
    for row in buf:
        word = int.from_bytes(row.tobytes(), "little")
        assert word >> (port.elems * port.bits) == 0, f"nonzero padding in beat {row.tolist()}"
        for i in range(port.elems):
            v = (word >> (i * port.bits)) & mask
            vals.append(v - (1 << port.bits) if port.signed and v >> (port.bits - 1) else v)
    return np.array(vals, np.int64).reshape(frames, *port.shape[1:])


def _encode(y: np.ndarray, port: StreamPort) -> np.ndarray:
    """(frames, H, W, C) integers -> DMA bytes, beat by beat with Python ints."""
    mask = (1 << port.bits) - 1
    rows = []
    for beat in y.reshape(-1, port.elems).tolist():
        word = sum((int(v) & mask) << (i * port.bits) for i, v in enumerate(beat))
        rows.append(list(word.to_bytes(port.beat_bytes, "little")))
    return np.array(rows, np.uint8).reshape(-1, port.beat_bytes)


class FakeDevice:
    """A Device whose 'accelerator' is (f0, f1) on each frame; records the frames of every transfer."""

    name = "fake"

    def __init__(self, spec: DriverSpec, wall_s: float = 0.002, cycles: int | None = None,
                 power_w: float | None = None, fclk_mhz: float = 125.0):
        self.spec = spec
        self.fns = [f0, f1][:len(spec.outputs)]
        self.wall_s, self.cycles, self.power_w, self.fclk_mhz = wall_s, cycles, power_w, fclk_mhz
        self.transfers: list[int] = []
        self.inputs: list[np.ndarray] = []
        self.closed = False

    def transfer(self, frames: int, inp: np.ndarray, outs: Sequence[np.ndarray]) -> RunStats:
        port = self.spec.inputs[0]
        assert inp.dtype == np.uint8 and inp.shape == (frames * port.beats_per_frame, port.beat_bytes)
        assert len(outs) == len(self.spec.outputs)
        x = _decode(inp, port, frames)
        self.inputs.append(x)
        for o, p, fn in zip(outs, self.spec.outputs, self.fns):
            assert o.dtype == np.uint8 and o.shape == (frames * p.beats_per_frame, p.beat_bytes)
            o[...] = _encode(fn(x), p)
        self.transfers.append(frames)
        return RunStats(wall_s=self.wall_s, cycles=self.cycles, power_w=self.power_w)

    def close(self) -> None:
        self.closed = True


def _frames(n: int, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).integers(0, 16, size=(n, H, W, C), dtype=np.int64)
    x.reshape(-1)[:2] = [0, 15]
    return x


def _acc(batch_size: int = 1, width: int = 16, **kw) -> Accelerator:
    spec = _spec(width)
    return Accelerator(spec, FakeDevice(spec, **kw), batch_size=batch_size)


# -- FINN's shapes ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 4])
def test_finn_shapes(n):
    acc = _acc(n)
    assert acc.batch_size == n and acc.num_inputs == 1 and acc.num_outputs == 2
    assert acc.idt() == "UINT4" and acc.odt(0) == "INT12" and acc.odt(1) == "UINT8"
    assert acc.ishape_normal() == (n, 3, 4, 8)
    assert acc.ishape_folded() == (n, 3, 4, 2, 4)
    assert acc.ishape_packed() == (n, 3, 4, 2, 2)  # 4 x 4 bits = 2 bytes a beat
    assert acc.oshape_normal(0) == (n, 3, 4, 8) and acc.oshape_normal(1) == (n, 3, 4, 1)
    assert acc.oshape_folded(0) == (n, 3, 4, 4, 2) and acc.oshape_folded(1) == (n, 3, 4, 1, 1)
    assert acc.oshape_packed(0) == (n, 3, 4, 4, 4) and acc.oshape_packed(1) == (n, 3, 4, 1, 1)
    assert acc.fclk_mhz == 125.0


def test_finn_packed_shape_is_finns_when_the_port_is_exact():
    """FINN's driver takes ishape_packed from finnpy_to_packed_bytearray of a folded tensor: the same shape here."""
    acc = _acc(4)
    folded = np.zeros(acc.ishape_folded(), np.float32)
    assert acc.ishape_packed() == dp.finnpy_to_packed_bytearray(folded, DataType["UINT4"], True, True).shape


def test_batch_size_setter_changes_the_shapes():
    acc = _acc(1)
    acc.batch_size = 3
    assert acc.ishape_normal() == (3, 3, 4, 8) and acc.oshape_packed(1) == (3, 3, 4, 1, 1)


def test_fold_and_unfold_follow_finn_order():
    acc = _acc(2)
    x = _frames(2)
    folded = acc.fold_input(x)
    assert folded.shape == (2, 3, 4, 2, 4)
    for idx in [(0, 0, 0, 0, 0), (1, 2, 3, 1, 3), (0, 1, 2, 1, 0)]:
        n, h, w, f, e = idx
        assert folded[idx] == x[n, h, w, f * 4 + e]
    y = np.arange(2 * 3 * 4 * 4 * 2).reshape(2, 3, 4, 4, 2)
    normal = acc.unfold_output(y, 0)
    assert normal.shape == (2, 3, 4, 8) and normal[1, 2, 3, 5] == y[1, 2, 3, 2, 1]


# -- packing against FINN --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 4])
@pytest.mark.parametrize("width", [16, 32])
def test_pack_input_matches_finn(n, width):
    """pack_input == FINN's finnpy_to_packed_bytearray(folded, reverse_inner=True, reverse_endian=True); a 32-bit
    port carries FINN's two bytes and two zero bytes."""
    acc = _acc(n, width)
    x = _frames(n, seed=n + width)
    folded = acc.fold_input(x)
    finn = dp.finnpy_to_packed_bytearray(folded.astype(np.float32), DataType["UINT4"], reverse_inner=True,
                                         reverse_endian=True)
    ours = acc.pack_input(folded)
    assert ours.dtype == np.uint8 and ours.shape == (n, 3, 4, 2, width // 8)
    np.testing.assert_array_equal(ours[..., :2], finn)
    assert not ours[..., 2:].any()


def test_pack_input_of_a_signed_input_matches_finn():
    spec = _spec(16, datatype="INT4", signed=True)
    acc = Accelerator(spec, FakeDevice(spec), batch_size=2)
    x = np.random.default_rng(5).integers(-8, 8, size=(2, H, W, C))
    x.reshape(-1)[:2] = [-8, 7]
    folded = acc.fold_input(x)
    finn = dp.finnpy_to_packed_bytearray(folded.astype(np.float32), DataType["INT4"], True, True)
    np.testing.assert_array_equal(acc.pack_input(folded), finn)


def test_unpack_output_reads_finns_bytes():
    """Bytes FINN packs (zero-padded to the 32-bit port) unpack to the INT12 values, then unfold to normal."""
    acc = _acc(2)
    y = np.random.default_rng(1).integers(-2048, 2048, size=acc.oshape_folded(0))
    y.reshape(-1)[:2] = [-2048, 2047]
    finn = dp.finnpy_to_packed_bytearray(y.astype(np.float32), DataType["INT12"], True, True)
    assert finn.shape[-1] == 3
    port_bytes = np.concatenate([finn, np.zeros((*finn.shape[:-1], 1), np.uint8)], axis=-1)
    got = acc.unpack_output(port_bytes, 0)
    assert got.shape == (2, 3, 4, 4, 2)
    np.testing.assert_array_equal(got, y)
    np.testing.assert_array_equal(acc.unfold_output(got, 0), y.reshape(2, 3, 4, 8))


# -- execute ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("width", [16, 32])
def test_execute_batches_and_matches_batch_size_1(width):
    """7 frames: batch_size 4 is two transfers (4 + 3), batch_size 1 seven; both give f0, f1 of the frames."""
    x = _frames(7, seed=3)
    acc4, acc1 = _acc(4, width), _acc(1, width)
    out4, out1 = acc4.execute(x), acc1.execute(x)
    assert acc4.device.transfers == [4, 3] and acc1.device.transfers == [1] * 7
    assert isinstance(out4, list) and len(out4) == 2
    for got4, got1, ref in zip(out4, out1, (f0(x), f1(x))):
        assert got4.shape == ref.shape
        np.testing.assert_array_equal(got4, ref)
        np.testing.assert_array_equal(got1, ref)
    np.testing.assert_array_equal(np.concatenate(acc4.device.inputs), x)  # the device saw exactly the frames
    assert out4[0].min() == -1500 and out4[0].max() == 1500


def test_execute_one_output_returns_an_array():
    spec = _spec(outputs=(OUT0,))
    acc = Accelerator(spec, FakeDevice(spec), batch_size=2)
    x = _frames(3)
    out = acc.execute(x)
    assert isinstance(out, np.ndarray)
    np.testing.assert_array_equal(out, f0(x))
    assert acc.device.transfers == [2, 1]


def test_execute_a_single_frame_without_batch_axis():
    acc = _acc(4)
    x = _frames(1)[0]
    out = acc.execute(x)
    assert out[0].shape == (1, 3, 4, 8) and acc.device.transfers == [1]
    np.testing.assert_array_equal(out[1][0], f1(x))


def test_execute_packed_is_one_transfer_and_sets_last_run():
    acc = _acc(2, cycles=777)
    x = _frames(2)
    outs = acc.execute_packed(acc.pack_input(acc.fold_input(x)))
    assert acc.device.transfers == [2] and acc.last_run == RunStats(wall_s=0.002, cycles=777)
    assert [o.shape for o in outs] == [(2, 3, 4, 4, 4), (2, 3, 4, 1, 1)]
    finn0 = dp.packed_bytearray_to_finnpy(np.ascontiguousarray(outs[0][..., :3]), DataType["INT12"],
                                          (2, 3, 4, 4, 2), reverse_inner=True, reverse_endian=True)
    np.testing.assert_array_equal(finn0.reshape(2, 3, 4, 8), f0(x))


def test_execute_packed_refuses_bytes_of_the_wrong_packed_shape():
    """FINN's own packed bytes of a 16-bit beat on a 32-bit port are half the buffer the port needs: refused before
    the device is called (here the fake device would fail its own shape assertion instead)."""
    acc = _acc(1, width=32)
    folded = acc.fold_input(_frames(1))
    finn = dp.finnpy_to_packed_bytearray(folded.astype(np.float32), DataType["UINT4"], True, True)
    assert finn.shape == (1, 3, 4, 2, 2) != acc.ishape_packed()
    with pytest.raises(AcceleratorError, match=r"s_axis.*\(1, 3, 4, 2, 4\)"):
        acc.execute_packed(finn)
    assert acc.device.transfers == []


def test_execute_of_no_frames():
    acc = _acc(2)
    try:
        out = acc.execute(np.zeros((0, H, W, C), np.int64))
    except AcceleratorError:
        return
    assert [o.shape for o in out] == [(0, 3, 4, 8), (0, 3, 4, 1)] and acc.device.transfers == []


def test_context_manager_closes_the_device():
    acc = _acc(1)
    with acc as a:
        assert a is acc
    assert acc.device.closed


# -- throughput_test -------------------------------------------------------------------------------------------------


def test_throughput_test_has_finns_keys():
    acc = _acc(4)
    res = acc.throughput_test()
    assert set(res) == FINN_KEYS
    assert acc.device.transfers == [4]
    assert res["batch_size"] == 4 and res["fclk[mhz]"] == 125.0
    assert res["runtime[ms]"] == pytest.approx(2.0)
    assert res["throughput[images/s]"] == pytest.approx(4 / 0.002)
    # per frame: 24 beats x 2 bytes in; 48 beats x 4 bytes + 12 beats x 1 byte out
    assert res["DRAM_in_bandwidth[MB/s]"] == pytest.approx(4 * 48 * 1e-6 / 0.002)
    assert res["DRAM_out_bandwidth[MB/s]"] == pytest.approx(4 * (192 + 12) * 1e-6 / 0.002)
    for key in ("fold_input[ms]", "pack_input[ms]", "unpack_output[ms]", "unfold_output[ms]"):
        assert res[key] >= 0.0
    assert 0 <= acc.device.inputs[0].min() and acc.device.inputs[0].max() <= 15  # random frames of UINT4


def test_throughput_test_reports_cycles_when_the_device_counts_them():
    acc = _acc(2, cycles=5000, fclk_mhz=200.0)
    res = acc.throughput_test()
    assert set(res) == FINN_KEYS | {"cycles", "throughput_cycles[images/s]"}
    assert res["cycles"] == 5000
    assert res["throughput_cycles[images/s]"] == pytest.approx(2 * 200e6 / 5000)


def test_throughput_test_reports_power_only_when_measured():
    res = _acc(1, power_w=1.5).throughput_test()
    assert set(res) == FINN_KEYS | {"power[W]"} and res["power[W]"] == 1.5


# -- errors ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [0, -1])
def test_batch_size_must_be_positive(bad):
    with pytest.raises(AcceleratorError, match=f"batch_size must be >= 1, got {bad}"):
        _acc(bad)
    acc = _acc(2)
    with pytest.raises(AcceleratorError, match="batch_size must be >= 1"):
        acc.batch_size = bad
    assert acc.batch_size == 2


def test_wrong_frame_shape_names_the_port_and_both_shapes():
    acc = _acc(2)
    with pytest.raises(AcceleratorError) as exc:
        acc.execute(np.zeros((2, 4, 3, 8), np.int64))
    msg = str(exc.value)
    assert "s_axis" in msg and "(3, 4, 8)" in msg and "(4, 3, 8)" in msg
    assert acc.device.transfers == []
    with pytest.raises(AcceleratorError, match=r"s_axis.*\(3, 4, 8\).*\(3, 4, 7\)"):
        acc.fold_input(np.zeros((1, 3, 4, 7)))


@pytest.mark.parametrize("value", [16, -1, 1.5, 300])
def test_values_outside_the_datatype_are_refused(value):
    acc = _acc(1)
    x = _frames(2).astype(np.float64)
    x[1, 2, 3, 4] = value
    with pytest.raises(AcceleratorError, match="quantize on the host") as exc:
        acc.execute(x)
    assert "UINT4" in str(exc.value) and "s_axis" in str(exc.value)
    assert acc.device.transfers == []


def test_a_bipolar_port_is_refused():
    # BIPOLAR stores -1 as bit 0: not two's complement, so no port of it can be described (packing would be wrong).
    with pytest.raises(SpecError, match="BIPOLAR is not an integer type"):
        _spec(16, datatype="BIPOLAR", bits=1)


def test_a_port_whose_bits_disagree_with_its_datatype_is_refused():
    with pytest.raises(SpecError, match="INT8 is 8-bit signed, the port says 4-bit signed"):
        _spec(16, datatype="INT8", bits=4, signed=True)


@pytest.mark.parametrize("fields, what", [
    ({"shape": (1, 3, 4, 6)}, "does not fold"),  # 6 channels, 4 per beat
    ({"beats_per_frame": 23}, "does not fold"),
    ({"width": 8}, "cannot carry 4 x 4-bit"),
    ({"width": 20}, "20 bits cannot carry"),
])
def test_a_port_that_does_not_fold_is_a_spec_error(fields, what):
    base = dict(name="s_axis", datatype="UINT4", shape=(1, 3, 4, 8), elems=4, bits=4, width=16, signed=False,
                beats_per_frame=24, dma="dma")
    with pytest.raises(SpecError, match=what) as exc:
        StreamPort(**{**base, **fields})
    assert "port s_axis" in str(exc.value)


# -- driver.json -----------------------------------------------------------------------------------------------------


def test_driver_spec_save_load_round_trip(tmp_path):
    spec = _spec(32)
    path = tmp_path / "driver.json"
    spec.save(path)
    back = DriverSpec.load(path)
    assert back == spec
    assert isinstance(back.inputs[0].shape, tuple) and back.outputs[1].shape == (1, 3, 4, 1)
    data = json.loads(path.read_text())
    assert data["inputs"][0]["shape"] == [1, 3, 4, 8] and data["clock_mhz"] == 100.0
    assert path.read_text() == spec.to_json() == back.to_json()


def test_missing_driver_json_names_the_file(tmp_path):
    path = tmp_path / "deploy" / "driver.json"
    with pytest.raises(SpecError, match="does not exist") as exc:
        DriverSpec.load(path)
    assert str(path) in str(exc.value)


def _corrupt(data: dict, how: str) -> str:
    if how == "truncated":
        return json.dumps(data)[:40]
    if how == "empty":
        return ""
    if how == "no outputs":
        data.pop("outputs")
    elif how == "port without elems":
        data["inputs"][0].pop("elems")
    elif how == "unknown field":
        data["speed"] = 3
    elif how == "port is a list":
        data["inputs"] = [[1, 2]]
    elif how == "top-level list":
        return json.dumps([data])
    return json.dumps(data)


@pytest.mark.parametrize("how", ["truncated", "empty", "no outputs", "port without elems", "unknown field",
                                 "port is a list", "top-level list"])
def test_corrupt_driver_json_is_a_spec_error_naming_the_file(tmp_path, how):
    path = tmp_path / "driver.json"
    path.write_text(_corrupt(json.loads(_spec().to_json()), how))
    with pytest.raises(SpecError, match="is not a qdet driver spec") as exc:
        DriverSpec.load(path)
    assert str(path) in str(exc.value)


@pytest.mark.parametrize("content", [b"\xff\xfe\x00\x01garbage", b'"driver"', b"null", b"42", None])
def test_undecodable_or_non_object_driver_json_is_a_spec_error(tmp_path, content):
    path = tmp_path / "driver.json"
    if content is None:
        path.mkdir()  # a folder where the file should be
    else:
        path.write_bytes(content)
    with pytest.raises(SpecError) as exc:
        DriverSpec.load(path)
    assert str(path) in str(exc.value)


def test_driver_json_with_a_port_that_does_not_fold_names_the_file(tmp_path):
    data = json.loads(_spec().to_json())
    data["inputs"][0]["beats_per_frame"] = 23
    path = tmp_path / "driver.json"
    path.write_text(json.dumps(data))
    with pytest.raises(SpecError) as exc:
        DriverSpec.load(path)
    assert "s_axis" in str(exc.value) and str(path) in str(exc.value)


# -- platforms -------------------------------------------------------------------------------------------------------


def test_an_unknown_platform_lists_the_platforms():
    with pytest.raises(AcceleratorError) as exc:
        open_device("nope", _spec())
    msg = str(exc.value)
    assert "'nope'" in msg
    for name in ("cpp-sim", "rtl-sim", "pynq", "xrt"):
        assert name in msg
    with pytest.raises(AcceleratorError, match="cpp-sim"):
        open_accelerator("nope", _spec())


@pytest.mark.parametrize("alias, name", [("csim", "cpp-sim"), ("rtlsim", "rtl-sim"), ("zynq", "pynq"),
                                         ("alveo", "xrt"), ("cpp-sim", "cpp-sim")])
def test_aliases_resolve(alias, name):
    assert platform_name(alias) == name


def test_csim_alias_opens_the_cpp_sim_platform(tmp_path):
    """"csim" reaches the C-simulation device, which names the library it cannot find."""
    lib = tmp_path / "libqdet_top.so"
    with pytest.raises(PlatformUnavailable, match="C-simulation library") as exc:
        open_device("csim", _spec(), library=lib)
    assert str(lib) in str(exc.value)


def test_open_accelerator_opens_a_registered_platform_with_its_options(monkeypatch):
    """A platform is a dotted path imported when opened; options reach its constructor, batch_size the accelerator."""
    from boards.runtime import device

    monkeypatch.setitem(device.PLATFORMS, "fake", f"{__name__}:FakeDevice")
    acc = open_accelerator("fake", _spec(), batch_size=4, cycles=99, fclk_mhz=50.0)
    assert acc.device.name == "fake" and acc.device.cycles == 99 and acc.fclk_mhz == 50.0
    assert acc.batch_size == 4 and acc.ishape_normal() == (4, 3, 4, 8)
    out = acc.execute(_frames(5))
    assert acc.device.transfers == [4, 1]
    np.testing.assert_array_equal(out[1], f1(_frames(5)))
