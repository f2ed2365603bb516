"""Training curves as a PNG (matplotlib's Agg backend, chosen when drawing, not at import)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def plot_training_curves(history: list[dict[str, Any]], path: Path, title: str = "") -> None:
    """Loss and val mAP per epoch, side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [r["epoch"] for r in history]
    fig, (ax_loss, ax_map) = plt.subplots(1, 2, figsize=(9, 3.5))
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
    fig.tight_layout()
    fig.savefig(path, dpi=100, metadata={"Software": None})  # no version stamp: same run, same bytes
    plt.close(fig)
