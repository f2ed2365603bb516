import pytest

from boards.catalogue import BOARDS, Family, Shell, UnknownBoardError, get_board

# Data-sheet figures, typed in from shared/references.md (BRAM in BRAM36 there; the catalogue counts BRAM18).
PUBLISHED = {
    "pynq-z1": ("xc7z020clg400-1", 53_200, 106_400, 140, 0, 220),
    "pynq-z2": ("xc7z020clg400-1", 53_200, 106_400, 140, 0, 220),
    "ultra96-v2": ("xczu3eg-sbva484-1-i", 70_560, 141_120, 216, 0, 360),
    "kv260": ("xck26-sfvc784-2LV-c", 117_120, 234_240, 144, 64, 1_248),
    "zcu104": ("xczu7ev-ffvc1156-2-e", 230_400, 460_800, 312, 96, 1_728),
    "u250": ("xcu250-figd2104-2L-e", 1_728_000, 3_456_000, 2_688, 1_280, 12_288),
}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_board_figures_match_the_data_sheets(name):
    part, lut, ff, bram36, uram, dsp = PUBLISHED[name]
    board = BOARDS[name]
    assert (board.part, board.device.lut, board.device.ff, board.device.bram18, board.device.uram,
            board.device.dsp) == (part, lut, ff, 2 * bram36, uram, dsp)


def test_default_budget_is_finns_share():
    b = BOARDS["ultra96-v2"].budget
    assert (b.lut, b.ff, b.bram18, b.dsp) == pytest.approx((0.7 * 70_560, 0.5 * 141_120, 0.8 * 432, 0.8 * 360))


def test_families_and_shells():
    assert BOARDS["pynq-z2"].family is Family.SERIES7
    assert {BOARDS[n].family for n in ("ultra96-v2", "kv260", "zcu104", "u250")} == {Family.ULTRASCALE_PLUS}
    assert BOARDS["u250"].shell is Shell.ALVEO and BOARDS["kv260"].shell is Shell.ZYNQ


def test_board_records_are_frozen():
    with pytest.raises(AttributeError):
        BOARDS["pynq-z2"].clock_mhz = 300.0


def test_lookup_is_forgiving_about_case_and_underscores():
    assert get_board(" PYNQ_Z2 ").name == "pynq-z2"


def test_unknown_board_lists_the_known_ones():
    with pytest.raises(UnknownBoardError) as info:
        get_board("ultra69")
    message = str(info.value)
    assert "'ultra69'" in message and "Did you mean 'ultra96-v2'?" in message
    assert all(name in message for name in BOARDS)
