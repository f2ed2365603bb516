"""PNG figures: training curves, and the figure helper every benchmark plot uses.

matplotlib's Agg backend is chosen when drawing, not at import.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def png_figure(path: Path, ncols: int = 1, figsize: tuple[float, float] = (6, 4)) -> Iterator[tuple[Any, Any]]:
    """Yield ``(figure, axes)`` (``plt.subplots(1, ncols)``); on a clean exit, write ``path`` as a PNG.

    Tight layout, 100 dpi and no version stamp in the file: the same data gives the same bytes.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, ncols, figsize=figsize)
    try:
        yield fig, axes
        fig.tight_layout()
        fig.savefig(path, dpi=100, metadata={"Software": None})
    finally:
        plt.close(fig)


def plot_training_curves(history: list[dict[str, Any]], path: Path, title: str = "") -> None:
    """Loss and val mAP per epoch, side by side."""
    epochs = [r["epoch"] for r in history]
    with png_figure(path, 2, (9, 3.5)) as (fig, (ax_loss, ax_map)):
        ax_loss.plot(epochs, [r["loss"] for r in history], marker="o", label="total")
        for key in ("loss_box", "loss_obj", "loss_cls", "loss_kd"):
            if any(r.get(key) for r in history):
                ax_loss.plot(epochs, [r.get(key, 0.0) for r in history], linestyle="--", label=key[5:])
        ax_loss.set_xlabel("epoch")
        ax_loss.set_ylabel("training loss")
        ax_loss.legend()
        evaluated = [r for r in history if r["val_map50"] is not None]
        val_epochs = [r["epoch"] for r in evaluated]
        ax_map.plot(val_epochs, [r["val_map50"] for r in evaluated], marker="o", label="mAP@0.5")
        ax_map.plot(val_epochs, [r["val_map50_95"] for r in evaluated], marker="s", label="mAP@0.5:0.95")
        ax_map.set_xlabel("epoch")
        ax_map.set_ylabel("val mAP")
        ax_map.set_ylim(0, 1)
        ax_map.legend()
        fig.suptitle(title)
