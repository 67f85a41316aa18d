"""What a trained model attends to: the attention maps of every layer (all five families) and their locality.

The maps are recorded, not recomputed: :func:`attention_maps` runs the model once inside
:func:`gmmlib.attention.recording`, and every attention layer hands over the probabilities it used.
:func:`head_locality` turns them into one row per head (mean distance, weight on the own patch),
:func:`query_attention` into what one query sees, head by head; :func:`load_test_images` gives the
images, normalised as a run's training data were.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor, nn

from ..attention import recording
from ..data import get_info, load_arrays
from ..data.batched_augment import normalize
from ..masks import pairwise_distance

__all__ = [
    "attention_maps",
    "mean_attention_distance",
    "own_patch_weight",
    "head_locality",
    "query_attention",
    "load_test_images",
]


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
    p = _patch_attention(probs, grid)
    d = pairwise_distance(tuple(int(g) for g in grid), "euclidean").to(p)
    return (p * d).sum(-1).mean(dim=(0, 2))


def own_patch_weight(probs: Tensor, grid: Sequence[int]) -> Tensor:
    """The weight a query puts on its own patch, per head, averaged over queries and images (uniform: 1/N).

    A head whose mask is negative at distance 0 reverses the sign of a patch's logit with itself
    (``q_i . k_i``, usually the largest): such a head looks away from its own patch, below 1/N.

    Args:
        probs: (B, H, T, T) attention probabilities, the last N = h * w tokens being patches.
        grid: (h, w) of the patch grid.

    Returns:
        (H,) mean of ``P_ii`` over the patch queries (rows renormalised over patches, as in
        :func:`mean_attention_distance`).
    """
    p = _patch_attention(probs, grid)
    return p.diagonal(dim1=-2, dim2=-1).mean(dim=(0, 2))


def _patch_attention(probs: Tensor, grid: Sequence[int]) -> Tensor:
    """Patch-to-patch attention: prefix tokens dropped, each query row renormalised over the patches."""
    n = int(grid[0]) * int(grid[1])
    if probs.dim() != 4 or probs.shape[-1] < n or probs.shape[-2] < n:
        raise ValueError(f"probabilities of shape {tuple(probs.shape)} cover fewer than the {n} tokens of {grid}")
    p = probs[..., -n:, -n:]
    return p / p.sum(-1, keepdim=True)


def head_locality(model: nn.Module, images: Tensor, grid: Sequence[int]) -> List[Dict[str, Any]]:
    """How local every head of ``model`` is on ``images``: one row per (layer, head).

    Args:
        model: a model whose attention layers all work on the same patch grid (ViT, CaiT's
            self-attention; not PiT or Swin, whose grids change).
        images: (B, 3, H, W) normalised images.
        grid: (h, w) of the patch grid.

    Returns:
        Rows ``{"layer": index, "name", "head", "distance", "own patch"}``: the mean attention
        distance in patches (:func:`mean_attention_distance`) and the weight on the own patch
        (:func:`own_patch_weight`), in forward order.
    """
    rows = []
    for layer, (name, probs) in enumerate(attention_maps(model, images).items()):
        distance, own = mean_attention_distance(probs, grid).tolist(), own_patch_weight(probs, grid).tolist()
        rows += [
            {"layer": layer, "name": name, "head": h, "distance": d, "own patch": o}
            for h, (d, o) in enumerate(zip(distance, own))
        ]
    return rows


def query_attention(model: nn.Module, images: Tensor, query: Sequence[int], grid: Sequence[int]) -> Dict[str, Tensor]:
    """Where one query patch looks, head by head, in every layer, averaged over ``images``.

    Args:
        model: as for :func:`head_locality`.
        images: (B, 3, H, W) normalised images (or one (3, H, W) image).
        query: (row, column) of the query patch on the grid.
        grid: (h, w) of the patch grid.

    Returns:
        ``{layer name: (H, h, w)}``: each head's attention from the query to every patch (renormalised
        over the patches), the mean over the images.
    """
    h, w = int(grid[0]), int(grid[1])
    if not (0 <= int(query[0]) < h and 0 <= int(query[1]) < w):
        raise ValueError(f"query {tuple(query)} lies outside the {h} x {w} grid")
    index = int(query[0]) * w + int(query[1])
    maps = attention_maps(model, images if images.dim() == 4 else images[None])
    return {name: _patch_attention(p, grid)[:, :, index].mean(0).reshape(-1, h, w) for name, p in maps.items()}


def load_test_images(dataset: str, n: int, like: Mapping[str, Any]) -> Tuple[Tensor, Tensor, np.ndarray]:
    """``n`` test images of ``dataset`` (a fixed class-balanced subset), normalised like ``like``'s training data.

    Args:
        dataset: a data set name (:func:`gmmlib.data.load_arrays`), e.g. ``"cifar10"`` or ``"synthetic"``.
        n: how many images.
        like: a run record: its data set's mean and std normalise the images.

    Returns:
        ``(images, labels, raw)``: the (n, 3, H, W) float tensor for the model, the (n,) labels and
        the (n, H, W, 3) uint8 array to draw.
    """
    raw, labels = load_arrays(dataset, "test", limit=n, seed=0)
    info = get_info(like["config"]["dataset"])
    images = normalize(torch.from_numpy(raw).permute(0, 3, 1, 2), info.mean, info.std)
    return images, torch.as_tensor(labels, dtype=torch.long), raw
