"""W2A2 ablation: which change brings a 2-bit tinydet closest to float under the accuracy bench's budget?

Rows (same data, epochs, batch size, learning rate and seed as ``bench.accuracy``): float (also the teacher), W2A2 as
in the accuracy bench, W2A2 distilled from the float model, and W2A2 with a 4x box-loss weight (the 2-bit head's
box regression is what stalls). Writes ``bench/results/ablation_w2a2.{json,md,png}``.

    python -m bench.ablation_w2a2 --device cuda
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from bench.accuracy import RESULTS, BenchConfig, Row, run, save, to_markdown
from quant_models.loss import LossWeights

ROWS = (
    Row("float", "float"),
    Row("w2a2", "w2a2"),
    Row("w2a2+kd", "w2a2", distill=True),
    Row("w2a2 box x4", "w2a2", box_weight=4 * LossWeights().box),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--images", type=int, default=BenchConfig.images)
    parser.add_argument("--epochs", type=int, default=BenchConfig.epochs)
    parser.add_argument("--workers", type=int, default=BenchConfig.workers)
    parser.add_argument("--work", type=Path, default=Path("bench/work/ablation_w2a2"))
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args()
    cfg = BenchConfig(images=args.images, epochs=args.epochs, device=args.device, workers=args.workers,
                      work=args.work)
    torch.backends.cudnn.benchmark = True
    record = run(cfg, args.results, ROWS, "ablation_w2a2", "W2A2 ablation: tinydet, one synthetic split, same budget")
    save(record, args.results, "ablation_w2a2")
    print(to_markdown(record))


if __name__ == "__main__":
    main()
