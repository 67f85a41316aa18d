"""What a trained model attends to: the attention maps of every layer (all five families) and their locality.

The maps are recorded, not recomputed: :func:`attention_maps` runs the model once inside
:func:`gmmlib.attention.recording`, and every attention layer hands over the probabilities it used.
"""

from __future__ import annotations

from typing import Dict, List, Sequence

import torch
from torch import Tensor, nn

from ..attention import recording
from ..masks import pairwise_distance

__all__ = ["attention_maps", "mean_attention_distance"]


@torch.no_grad()
def attention_maps(model: nn.Module, images: Tensor) -> Dict[str, Tensor]:
    """The attention probabilities of every attention layer of ``model`` on ``images``.

    Args:
        model: any gmmlib model (or a timm model patched with :func:`gmmlib.apply_mask`).
        images: (B, 3, H, W) normalised images.

    Returns:
        ``{layer name: probabilities}`` in forward order. Self-attention gives (B, H, T, T);
        Swin's window attention gives (B * windows, H, w^2, w^2); CaiT's class attention
        gives (B, H, 1, 1 + N) (after its talking-heads mixing, as the layer uses them).

    Raises:
        ValueError: the model ran no attention layer.
    """
    running: List[str] = []
    maps: Dict[str, Tensor] = {}

    def probe(probs: Tensor) -> None:
        maps[running[-1]] = probs.detach()

    def enter(name: str):
        return lambda module, args: running.append(name)

    def leave(module: nn.Module, args: tuple, output: object) -> None:
        running.pop()

    handles = []
    for name, module in model.named_modules():
        handles.append(module.register_forward_pre_hook(enter(name or "model")))
        handles.append(module.register_forward_hook(leave))
    was_training = model.training
    model.eval()
    try:
        with recording(probe):
            model(images)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    if not maps:
        raise ValueError(f"{type(model).__name__} ran no attention layer that gmmlib can record")
    return maps


def mean_attention_distance(probs: Tensor, grid: Sequence[int]) -> Tensor:
    """Mean attention distance per head, in patches: ``sum_j P_ij d_ij`` averaged over queries and images.

    Prefix tokens (a CLS token) are left out: only patch-to-patch attention is measured, and
    each query row is renormalised over the patch tokens.

    Args:
        probs: (B, H, T, T) attention probabilities, the last N = h * w tokens being patches
            (for Swin, one window's tokens: ``grid`` is the window).
        grid: (h, w) of the patch grid.

    Returns:
        (H,) mean distance in units of patches.
    """
    n = int(grid[0]) * int(grid[1])
    if probs.shape[-1] < n or probs.shape[-2] < n:
        raise ValueError(f"probabilities of shape {tuple(probs.shape)} cover fewer than the {n} tokens of {grid}")
    p = probs[..., -n:, -n:]
    p = p / p.sum(-1, keepdim=True)
    d = pairwise_distance(tuple(int(g) for g in grid), "euclidean").to(p)
    return (p * d).sum(-1).mean(dim=(0, 2))
