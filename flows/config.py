"""The typed, frozen configuration of a build."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from boards.catalogue import Board, get_board
from flows.build import BuildLayout
from flows.errors import FlowError

__all__ = ["FlowConfig", "FlowError"]


@dataclass(frozen=True)
class FlowConfig:
    """Everything a build depends on besides the input model.

    ``start``/``stop`` name steps (checked against the flow's step list when the build starts): a build resumed
    with ``start`` reads the checkpoint the step before it left, and one with ``stop`` ends after that step.
    """

    out: Path
    board: str = "pynq-z2"
    clock_mhz: float | None = None  # None: the board's default clock
    target_fps: float | None = None  # None: the highest FPS that fits the board budget (--max-fps)
    verify_images: int = 16
    verify_data: Path | None = None  # a data set's val split for verification; None: random images
    checkpoint: Path | None = None  # the Brevitas checkpoint the model was exported from (the golden reference)
    seed: int = 0
    # A JSON file {node: {attr: value}} fixing some layers' folding (e.g. a published design); None: qdet's folder.
    folding: Path | None = None
    start: str | None = None
    stop: str | None = None
    # Replace a finished (or partial) build in ``out`` when starting from the first step; without it, such a build
    # is refused (resume it with ``start`` instead).
    overwrite: bool = False
    # Depth of the FIFO in front of each layer before the consumer's and the reconvergent paths' needs deepen it.
    fifo_depth: int = 32

    def __post_init__(self) -> None:
        get_board(self.board)  # an unknown board fails here, with the list of known ones
        if self.clock_mhz is not None and not 1.0 <= self.clock_mhz <= 1000.0:
            raise FlowError(f"--clock-mhz {self.clock_mhz:g} is out of range (1..1000 MHz)")
        if self.target_fps is not None and not self.target_fps > 0:
            raise FlowError(f"--target-fps must be > 0, got {self.target_fps:g}")
        if self.target_cycles is not None and self.target_cycles < 1:
            raise FlowError(f"--target-fps {self.target_fps:g} is above one frame per clock cycle at "
                            f"{self.clock:g} MHz ({self.clock * 1e6:g} FPS); ask for less, or use --max-fps")
        if self.folding is not None and self.target_fps is not None:
            raise FlowError("--folding and --target-fps exclude each other: the folding file decides the throughput")
        if self.fifo_depth < 2:
            raise FlowError(f"--fifo-depth must be >= 2, got {self.fifo_depth}")
        if self.verify_images < 0:
            raise FlowError(f"--verify must be >= 0, got {self.verify_images}")
        for option, path, kind in (("--folding", self.folding, "file"), ("--checkpoint", self.checkpoint, "file"),
                                   ("--verify-data", self.verify_data, "dir")):
            if path is not None and not (Path(path).is_file() if kind == "file" else Path(path).is_dir()):
                raise FlowError(f"{option} {path}: no such {'file' if kind == 'file' else 'directory'}")

    @property
    def layout(self) -> BuildLayout:
        """The build directory's layout: every path of the build."""
        return BuildLayout(Path(self.out))

    @property
    def target(self) -> Board:
        """The board record."""
        return get_board(self.board)

    @property
    def target_cycles(self) -> int | None:
        """Cycles per frame the target FPS allows at the clock (None for max FPS)."""
        return None if self.target_fps is None else int(self.clock * 1e6 // self.target_fps)

    @property
    def clock(self) -> float:
        """The clock in MHz the build is planned for."""
        return self.clock_mhz if self.clock_mhz is not None else self.target.clock_mhz
