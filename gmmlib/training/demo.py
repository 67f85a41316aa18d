"""A short end-to-end demo: a ViT and a GMM-ViT, their cost, a few training steps each.

python -m gmmlib demo
"""

from __future__ import annotations

import tempfile

from ..cost import profile
from ..models import create_model
from .config import RunConfig
from .loop import train


def main() -> int:
    print("Cost at 32 x 32 (MACs as the paper counts them; FLOPs include the attention products):")
    for mask in (None, "gmm"):
        cost = profile(create_model("vit", mask=mask))
        name = "GMM-ViT" if mask else "ViT"
        print(
            f"  {name:8s} {cost['params']:>9,d} params  {cost['macs'] / 1e6:7.2f}M MACs  {cost['flops'] / 1e6:7.1f}M FLOPs"
        )
    print("\nTraining the quick preset on the synthetic data set (seconds):")
    with tempfile.TemporaryDirectory() as tmp:
        for mask in (None, "gmm"):
            result = train(
                RunConfig(mask=mask, pool="gap", dataset="synthetic", preset="quick"), f"{tmp}/{mask}", progress=False
            )
            print(f"  {result['name']}: top-1 {result['final_top1']:.1f}% after {len(result['history'])} epochs")
    print("\nFull experiments: python -m gmmlib list; python -m gmmlib run headline --preset cpu")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
