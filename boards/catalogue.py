"""The board catalogue: device resources, default clock, shell and utilisation budget of each supported board.

Figures are the parts' data-sheet counts (see ``shared/references.md``); block RAM is counted in BRAM18 halves,
the unit FINN's estimates use (one BRAM36 = two BRAM18). The default budget is FINN's own default share of the
device (70% LUT, 50% FF, 80% BRAM/URAM/DSP): the rest is left for the shell (DMA, interconnect, clocking) and for
routing headroom, so a design that fits the budget is expected to close timing.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from enum import Enum


class Shell(str, Enum):
    """How the accelerator is attached to its host."""

    ZYNQ = "zynq"  # ARM processing system on the same die; AXI DMA moves frames to and from DDR
    ALVEO = "alveo"  # PCIe card; XRT kernel with AXI master ports


class Family(str, Enum):
    """FPGA family, named as yosys' ``synth_xilinx -family`` spells it."""

    SERIES7 = "xc7"
    ULTRASCALE_PLUS = "xcup"


@dataclass(frozen=True)
class Resources:
    """An amount of FPGA resources (a device's total, a budget, or a design's use)."""

    lut: float
    ff: float
    bram18: float
    uram: float
    dsp: float

    def scaled(self, share: "Resources") -> "Resources":
        """Each resource multiplied by the matching share (e.g. a budget from device totals)."""
        return Resources(self.lut * share.lut, self.ff * share.ff, self.bram18 * share.bram18,
                         self.uram * share.uram, self.dsp * share.dsp)

    def as_dict(self) -> dict[str, float]:
        """Plain dict, for reports."""
        return {"lut": self.lut, "ff": self.ff, "bram18": self.bram18, "uram": self.uram, "dsp": self.dsp}


FINN_DEFAULT_SHARE = Resources(lut=0.7, ff=0.5, bram18=0.8, uram=0.8, dsp=0.8)


@dataclass(frozen=True)
class Board:
    """One board: its part, resources, default clock and shell.

    >>> BOARDS["pynq-z2"].budget.lut
    37240.0
    """

    name: str
    title: str
    part: str
    family: Family
    shell: Shell
    device: Resources
    clock_mhz: float
    share: Resources = field(default=FINN_DEFAULT_SHARE)

    @property
    def budget(self) -> Resources:
        """The resources a design may use on this board by default."""
        return self.device.scaled(self.share)

    def as_dict(self) -> dict[str, object]:
        """Plain dict, for reports and ``qdet boards --json``."""
        return {"name": self.name, "title": self.title, "part": self.part, "family": self.family.value,
                "shell": self.shell.value, "clock_mhz": self.clock_mhz, "device": self.device.as_dict(),
                "budget": self.budget.as_dict()}


def _board(name: str, title: str, part: str, family: Family, shell: Shell, lut: int, ff: int, bram36: int,
           uram: int, dsp: int, clock_mhz: float) -> Board:
    return Board(name, title, part, family, shell, Resources(lut, ff, 2 * bram36, uram, dsp), clock_mhz)


_Z7, _ZUP = Family.SERIES7, Family.ULTRASCALE_PLUS
BOARDS: dict[str, Board] = {b.name: b for b in (
    # Clocks are the ones used in practice on each board (BNN-PYNQ at 100 MHz on the Zynq-7020; UltraNet and
    # SkyNet at 167-214 MHz on the ZU3EG; FINN's MobileNet at 185-250 MHz on the larger UltraScale+ parts).
    _board("pynq-z1", "Digilent PYNQ-Z1", "xc7z020clg400-1", _Z7, Shell.ZYNQ, 53_200, 106_400, 140, 0, 220, 100.0),
    _board("pynq-z2", "TUL PYNQ-Z2", "xc7z020clg400-1", _Z7, Shell.ZYNQ, 53_200, 106_400, 140, 0, 220, 100.0),
    _board("ultra96-v2", "Avnet Ultra96-V2", "xczu3eg-sbva484-1-i", _ZUP, Shell.ZYNQ,
           70_560, 141_120, 216, 0, 360, 200.0),
    _board("kv260", "AMD Kria KV260", "xck26-sfvc784-2LV-c", _ZUP, Shell.ZYNQ, 117_120, 234_240, 144, 64, 1_248,
           200.0),
    _board("zcu104", "AMD ZCU104", "xczu7ev-ffvc1156-2-e", _ZUP, Shell.ZYNQ, 230_400, 460_800, 312, 96, 1_728,
           200.0),
    _board("u250", "AMD Alveo U250", "xcu250-figd2104-2L-e", _ZUP, Shell.ALVEO, 1_728_000, 3_456_000, 2_688,
           1_280, 12_288, 250.0),
)}


class UnknownBoardError(KeyError):
    """A board name that is not in the catalogue; the message lists the known ones."""

    def __str__(self) -> str:  # KeyError would otherwise print the message with quotes around it
        return str(self.args[0])


def get_board(name: str) -> Board:
    """The board called ``name`` (case-insensitive; ``_`` and ``-`` are the same).

    >>> get_board("Ultra96_V2").part
    'xczu3eg-sbva484-1-i'
    """
    key = name.strip().lower().replace("_", "-")
    if key in BOARDS:
        return BOARDS[key]
    close = difflib.get_close_matches(key, BOARDS, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise UnknownBoardError(f"unknown board {name!r}.{hint} Known boards: {', '.join(BOARDS)}.")
