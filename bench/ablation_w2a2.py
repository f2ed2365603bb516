"""W2A2 ablation: which change brings a 2-bit tinydet closest to float under the accuracy bench's budget?

Rows (same data, epochs, batch size, learning rate and seed as ``bench.accuracy``): float (also the teacher), W2A2 as
in the accuracy bench, W2A2 distilled from the float model, and W2A2 with a 4x box-loss weight (the 2-bit head's
box regression is what stalls). Writes ``bench/results/ablation_w2a2.{json,md,png}``.

    python -m bench.ablation_w2a2 --device cuda
"""

from __future__ import annotations

from pathlib import Path

from bench.accuracy import Row, cli
from quant_models.loss import LossWeights

ROWS = (
    Row("float", "float"),
    Row("w2a2", "w2a2"),
    Row("w2a2+kd", "w2a2", distill=True),
    Row("w2a2 box x4", "w2a2", box_weight=4 * LossWeights().box),
)


def main() -> None:
    cli(__doc__, ROWS, "ablation_w2a2", "W2A2 ablation: tinydet, one synthetic split, same budget",
        Path("bench/work/ablation_w2a2"))


if __name__ == "__main__":
    main()
