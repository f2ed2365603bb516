"""boards/runtime/stream.py against FINN's own data-packing helpers (``finn.util.data_packing``), the reference a FINN
PYNQ driver packs with (``reverse_inner=True, reverse_endian=True``): on seeded random shapes and every DataType
the zoo and the flows put on a stream, our DMA bytes equal FINN's byte for byte (our ports may be wider: the extra
bytes are zero), FINN unpacks our bytes back to the tensor, and the int / hex word / byte forms agree.

The DataTypes, and where they come from:

- UINT8: the exported graph's pixel input (quant_models/export.py, flows/steps/verify.py, tests/flows/test_build.py);
  INT8 the host-quantized input of a float model (flows/transforms/host_input_quant.py, tests/flows/test_io_spec.py);
- UINT1/BINARY .. UINT8 and INT2 .. INT8: activations of the zoo's bit specs (quant_models/quantizers.py: 1..8
  bits) as the stream kernels carry them (sim/tb/{add,concat,fork,upsample}.py ``_TYPES``, tests/flows/test_joins.py,
  tests/hls/test_joins.py, tests/flows/test_fifo_sizing.py, tests/flows/test_identity_thresholds.py: UINT7);
- INT9 (a join's widened sum, tests/flows/test_joins.py), INT12 (tests/flows/test_fifo_sizing.py,
  tests/hls/test_gen.py), and the accumulator widths a head's output port takes from FINN's accumulator
  minimisation (INT10 .. INT24: sim/tb/mvau.py ``min_acc_bits=16``, hls/gen/ops.py ``accDataType``) up to INT32
  (FINN's default ``accDataType``, hls/gen/vvau.py, tests/flows/test_precision.py);
- TERNARY (2-bit narrow range, quant_models/quantizers.py): two's complement like INTn, so it packs the same.

BIPOLAR (-1 stored as bit 0) is not two's complement and never streams in qdet (hls/gen/pool.py, joins.py refuse it).

"fast mode": the FINN here (finn-plus 1.6.1) has no ``fast_mode`` keyword; it picks its packing path itself: a byte
view for 8/16/32-bit values in a native integer container, ``np.packbits`` for 1-bit values filling whole bytes, and
a general bit-level path (float32 container) for the rest; unpacking views the bytes for 8/16-bit types and goes
bit by bit otherwise. Both paths give the same bytes and values as ours (:func:`test_finn_general_path_is_the_same`);
the general path holds values in float32, so it is exact only up to 2**24 in magnitude: FINN itself turns INT32's
maximum into its minimum there (:func:`test_finn_general_path_rounds_int32_through_float32`), which is why the
INT32 comparisons use FINN's native-container path.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest
from finn.util import data_packing as dp
from qonnx.core.datatype import DataType

from boards.runtime.stream import frame_lanes, pack, pack_bytes, pack_words, unpack, unpack_bytes, unpack_words

DATATYPES = ["BINARY", "UINT1", "UINT2", "UINT3", "UINT4", "UINT5", "UINT6", "UINT7", "UINT8",
             "INT2", "INT3", "INT4", "INT5", "INT6", "INT7", "INT8", "INT9", "TERNARY",
             "INT10", "INT12", "INT14", "INT16", "INT17", "INT20", "INT24", "INT32"]

FINN_HAS_FAST_MODE = "fast_mode" in inspect.signature(dp.finnpy_to_packed_bytearray).parameters


def _cases(seed: int = 2024, count: int = 40) -> list[tuple[tuple[int, ...], int, int]]:
    """(outer dims, folds, elems per beat): 1-3 outer dims (batch first), 1-4 folds, 1..64 elements per beat; the
    edges (1, whole bytes of 1-bit values, 64) always included."""
    rng = np.random.default_rng(seed)
    fixed = [1, 2, 3, 7, 8, 16, 33, 64]
    cases = []
    for k in range(count):
        outer = tuple(int(d) for d in rng.integers(1, 5, size=int(rng.integers(1, 4))))
        folds = int(rng.integers(1, 5))
        elems = fixed[k] if k < len(fixed) else int(rng.integers(1, 65))
        cases.append((outer, folds, elems))
    return cases


CASES = _cases()


def _values(dt: DataType, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Random int64 values over the type's whole range, its minimum and maximum always among them."""
    lo, hi = int(dt.min()), int(dt.max())
    x = rng.integers(lo, hi + 1, size=shape, dtype=np.int64)
    flat = x.reshape(-1)
    flat[0] = lo
    flat[-1] = hi if flat.size > 1 else flat[-1]
    flat[len(flat) // 2] = hi
    return x


def _finn_bytes(n: int, elems: int) -> int:
    """FINN's packed innermost dimension: the beat's bits rounded up to whole bytes."""
    return -(-n * elems // 8)


def _port_bytes(exact: int) -> int:
    """A qdet port's bytes: a power of two holding the beat."""
    return 1 << (exact - 1).bit_length()


def _finn_pack(x: np.ndarray, dt: DataType) -> np.ndarray:
    """FINN's driver packing (reverse_inner, reverse_endian, its fast paths): values in their native container."""
    kw = {"fast_mode": True} if FINN_HAS_FAST_MODE else {}
    return dp.finnpy_to_packed_bytearray(x.astype(dt.to_numpy_dt()), dt, reverse_inner=True, reverse_endian=True,
                                         **kw)


def _finn_pack_general(x: np.ndarray, dt: DataType) -> np.ndarray:
    """FINN's bit-level (non-fast) packing path, values in a float32 container."""
    if FINN_HAS_FAST_MODE:
        return dp.finnpy_to_packed_bytearray(x.astype(np.float32), dt, reverse_inner=True, reverse_endian=True,
                                             fast_mode=False)
    return dp._pack_general(x.astype(np.float32), dt, True, True)


def _cases_for(name: str):
    """(case label, folded x, FINN DataType, bits) for every case, values seeded per type."""
    dt = DataType[name]
    rng = np.random.default_rng(sum(map(ord, name)))
    for outer, folds, elems in CASES:
        x = _values(dt, (*outer, folds, elems), rng)
        yield f"{name} shape={x.shape}", x, dt, dt.bitwidth()


def _our_bytes(x: np.ndarray, bits: int, nbytes: int) -> np.ndarray:
    return pack_bytes(frame_lanes(x, x.shape[-1]), bits, nbytes * 8)


# -- hand-computed cases (no FINN, no code under test in the expectation) ---------------------------------------------


@pytest.mark.parametrize("lanes, bits, width, expected", [
    ([[1, 2, 15]], 4, 16, [0x21, 0x0f]),  # 0xf21 little-endian
    ([[-1, 1]], 4, 8, [0x1f]),  # two's complement, element 0 in the low nibble
    ([[1, 1, 1, 0]], 1, 8, [0x07]),
    ([[-2048, 2047]], 12, 32, [0x00, 0xf8, 0x7f, 0x00]),  # 0x7ff800, then a zero pad byte
    ([[-1]], 32, 32, [0xff] * 4),
    ([[-8388608, 1]], 24, 64, [0, 0, 0x80, 1, 0, 0, 0, 0]),
    ([[3, 0, 1], [0, 2, 3]], 2, 8, [[0b010011], [0b111000]]),
])
def test_hand_packed_beats(lanes, bits, width, expected):
    got = pack_bytes(np.array(lanes), bits, width)
    assert got.dtype == np.uint8
    assert got.reshape(-1).tolist() == np.array(expected).reshape(-1).tolist()
    assert unpack_bytes(got, len(lanes[0]), bits, signed=min(min(r) for r in lanes) < 0).tolist() == lanes


def test_hand_case_matches_finn_docstring_examples():
    """FINN's own documented packing of [1, 1, 1, 0] as BINARY (0x0e, element 0 in the MSB; reversed: 0x07)."""
    assert dp.array2hexstring([1, 1, 1, 0], DataType["BINARY"], 8) == "0x0e"
    assert dp.array2hexstring([1, 1, 1, 0], DataType["BINARY"], 8, reverse=True) == "0x07"
    assert pack_words(np.array([[1, 1, 1, 0]]), 1) == ["7"]
    assert pack_bytes(np.array([[1, 1, 1, 0]]), 1, 8).tolist() == [[0x07]]


# -- against FINN, every DataType, random shapes ---------------------------------------------------------------------


@pytest.mark.parametrize("name", DATATYPES)
def test_pack_bytes_matches_finn(name):
    """(1) our DMA bytes == FINN's finnpy_to_packed_bytearray(folded, reverse_inner=True, reverse_endian=True), per
    beat; on a port padded to a power of two bytes the rest equals FINN's and the extra bytes are zero."""
    for label, x, dt, bits in _cases_for(name):
        elems = x.shape[-1]
        exact = _finn_bytes(bits, elems)
        finn = _finn_pack(x, dt)
        assert finn.shape == (*x.shape[:-1], exact), label
        finn_beats = np.ascontiguousarray(finn).reshape(-1, exact)
        ours = _our_bytes(x, bits, exact)
        np.testing.assert_array_equal(ours, finn_beats, err_msg=label)
        port = _port_bytes(exact)
        wide = _our_bytes(x, bits, port)
        assert wide.shape == (finn_beats.shape[0], port), label
        np.testing.assert_array_equal(wide[:, :exact], finn_beats, err_msg=label)
        assert not wide[:, exact:].any(), label


@pytest.mark.parametrize("name", DATATYPES)
def test_finn_unpacks_our_bytes(name):
    """(2) FINN's packed_bytearray_to_finnpy of our bytes is x (as FINN's float32: exact up to 24 bits); its bit-level
    unpacking also reads our padded port bytes, and gives INT32's exact bit patterns."""
    for label, x, dt, bits in _cases_for(name):
        elems = x.shape[-1]
        exact = _finn_bytes(bits, elems)
        packed = _our_bytes(x, bits, exact).reshape(*x.shape[:-1], exact)
        got = dp.packed_bytearray_to_finnpy(packed, dt, x.shape, reverse_inner=True, reverse_endian=True)
        assert got.shape == x.shape, label
        np.testing.assert_array_equal(got, x.astype(np.float32), err_msg=label)
        if bits <= 24:
            np.testing.assert_array_equal(got.astype(np.int64), x, err_msg=label)
        # the bit-level path on the full (zero-padded) port bytes: FINN drops the padding itself
        port = _our_bytes(x, bits, _port_bytes(exact)).reshape(*x.shape[:-1], -1)
        raw = dp.prepare_values(port, dt, x.shape, reverse_inner=True, reverse_endian=True)
        np.testing.assert_array_equal(raw.astype(np.int64), x & ((1 << bits) - 1), err_msg=label)


@pytest.mark.parametrize("name", DATATYPES)
def test_unpack_bytes_round_trips(name):
    """(3) unpack_bytes(pack_bytes(x)) == x, at the exact and the padded width; and it reads FINN's bytes too."""
    for label, x, dt, bits in _cases_for(name):
        elems = x.shape[-1]
        lanes = x.reshape(-1, elems)
        exact = _finn_bytes(bits, elems)
        for nbytes in (exact, _port_bytes(exact), exact + 3):
            back = unpack_bytes(_our_bytes(x, bits, nbytes), elems, bits, dt.signed())
            assert back.dtype == np.int64, label
            np.testing.assert_array_equal(back, lanes, err_msg=f"{label} {nbytes} bytes")
        finn = np.ascontiguousarray(_finn_pack(x, dt)).reshape(-1, exact)
        np.testing.assert_array_equal(unpack_bytes(finn, elems, bits, dt.signed()), lanes, err_msg=label)


@pytest.mark.parametrize("name", DATATYPES)
def test_words_and_ints_agree_with_bytes(name):
    """(4) per beat: the integer of pack(), the hex word of pack_words() and the little-endian integer of the DMA
    bytes (ours and FINN's) are the same number; unpack/unpack_words give the lanes back."""
    for label, x, dt, bits in _cases_for(name):
        elems = x.shape[-1]
        lanes = x.reshape(-1, elems)
        exact = _finn_bytes(bits, elems)
        words = pack_words(lanes, bits)
        ours = _our_bytes(x, bits, _port_bytes(exact))
        finn = np.ascontiguousarray(_finn_pack(x, dt)).reshape(-1, exact)
        assert len(words) == len(lanes), label
        for r, row in enumerate(lanes.tolist()):
            beat = pack(row, bits)
            assert int.from_bytes(ours[r].tobytes(), "little") == beat, label
            assert int.from_bytes(finn[r].tobytes(), "little") == beat, label
            assert len(words[r]) == -(-elems * bits // 4) and int(words[r], 16) == beat, label
            assert beat < 1 << (elems * bits), label
            assert unpack(beat, elems, bits, dt.signed()) == row, label
        np.testing.assert_array_equal(unpack_words(words, elems, bits, dt.signed()), lanes, err_msg=label)


@pytest.mark.parametrize("name", DATATYPES)
def test_finn_general_path_is_the_same(name):
    """FINN's non-fast (bit-level, float32-container) paths give the same bytes and values as its fast ones and as
    ours (values held within float32's exact 2**24 for the 32-bit type)."""
    for label, x, dt, bits in _cases_for(name):
        elems = x.shape[-1]
        if bits > 24:
            x = np.clip(x, -(1 << 24), 1 << 24)
        exact = _finn_bytes(bits, elems)
        general = _finn_pack_general(x, dt)
        fast = _finn_pack(x, dt)
        np.testing.assert_array_equal(general, fast, err_msg=label)
        np.testing.assert_array_equal(np.ascontiguousarray(general).reshape(-1, exact), _our_bytes(x, bits, exact),
                                      err_msg=label)
        packed = _our_bytes(x, bits, exact).reshape(*x.shape[:-1], exact)
        raw = dp.prepare_values(packed, dt, x.shape, reverse_inner=True, reverse_endian=True)
        if dt.name == "TERNARY":
            slow = dp.data_prepared_to_finnpy_ternary(raw)
        else:
            slow = dp.data_prepared_to_finnpy_int(raw, dt)
        np.testing.assert_array_equal(slow.astype(np.int64), x, err_msg=label)


def test_finn_general_path_rounds_int32_through_float32():
    """Why INT32 is compared on FINN's native-container path: its float32 path turns 2**31 - 1 into -2**31 and
    2**24 + 1 into 2**24, where the int32 container (and ours) keep them."""
    x = np.array([[2**31 - 1, 2**24 + 1]], dtype=np.int64)
    dt = DataType["INT32"]
    general = dp._pack_general(x.astype(np.float32), dt, True, True)
    assert general.tolist() == [[0, 0, 0, 0x80, 0, 0, 0, 1]]
    exact = [0xff, 0xff, 0xff, 0x7f, 1, 0, 0, 1]
    assert _finn_pack(x, dt).tolist() == [exact]
    assert pack_bytes(x, 32, 64).tolist() == [exact]


def test_frame_lanes_is_finn_stream_order():
    """frame_lanes of a folded batch walks FINN's folded order (N, H, W, folds, elems), C order, batch first."""
    x = np.arange(2 * 3 * 2 * 4).reshape(2, 3, 2, 4)  # N=2, H=3, folds=2, elems=4
    lanes = frame_lanes(x, 4)
    assert lanes.shape == (12, 4)
    assert lanes[0].tolist() == [0, 1, 2, 3] and lanes[1].tolist() == [4, 5, 6, 7]
    assert lanes[6].tolist() == x[1, 0, 0].tolist()
    with pytest.raises(ValueError, match="not a whole number of 5-element beats"):
        frame_lanes(x, 5)


def test_pack_bytes_refuses_a_port_too_narrow_or_not_whole_bytes():
    lanes = np.zeros((2, 3), np.int64)
    with pytest.raises(ValueError, match="cannot carry 3 x 4-bit"):
        pack_bytes(lanes, 4, 8)
    with pytest.raises(ValueError, match="cannot carry"):
        pack_bytes(lanes, 4, 12)
