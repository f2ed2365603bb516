"""W2A2 ablation: which change brings a 2-bit tinydet closest to float under the accuracy bench's budget?

Every row has the same data, epochs, batch size, learning rate and seed as ``bench.accuracy``:
- float and W2A2 with the old box-loss weight (0.05), and both again with 4x that (0.2, the default since);
- W2A2 (box x4) distilled from the box-x4 float model;
- W2A2 (box x4) warm-started: the first quarter of the epochs trains the float twin, the rest quantized;
- both of the above together;
- W2A2 (box x4) with only the head's weights at 8 bits, to size the head's share of the loss.

Writes ``bench/results/ablation_w2a2.{json,md,png}`` (``--name`` picks another stem).

    python -m bench.ablation_w2a2 --device cuda
    python -m bench.ablation_w2a2 --device cpu --images 1200 --epochs 16 --batch-size 32 --name ablation_w2a2_cpu
"""

from __future__ import annotations

from pathlib import Path

from bench.accuracy import Row, cli

# Box-loss weights as the rows were first measured: the old default and four times that (the default since).
BOX, BOX_X4 = 0.05, 0.2
ROWS = (
    Row("float", "float", box_weight=BOX),
    Row("float box x4", "float", box_weight=BOX_X4),
    Row("w2a2", "w2a2", box_weight=BOX),
    Row("w2a2 box x4", "w2a2", box_weight=BOX_X4),
    Row("w2a2 box x4 +kd", "w2a2", teacher="float box x4", box_weight=BOX_X4),
    Row("w2a2 box x4 warm start", "w2a2", box_weight=BOX_X4, float_share=0.25),
    Row("w2a2 box x4 +kd warm start", "w2a2", teacher="float box x4", box_weight=BOX_X4, float_share=0.25),
    Row("w2a2 box x4 head 8-bit", "w2a2,last=8", box_weight=BOX_X4),
)


def main() -> None:
    cli(__doc__, ROWS, "ablation_w2a2", "W2A2 ablation: tinydet, one synthetic split, same budget",
        Path("bench/work/ablation_w2a2"))


if __name__ == "__main__":
    main()
