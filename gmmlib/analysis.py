"""What a trained model attends to and what its masks learned: attention maps of every layer (all
five families), their locality, and the masks of a recorded run rebuilt on their layers' grids.

The maps are recorded, not recomputed: :func:`attention_maps` runs the model once inside
:func:`gmmlib.attention.recording`, and every attention layer (ViT's, PiT's and T2T's
:class:`~gmmlib.attention.MaskedAttention`, Swin's window attention, CaiT's talking heads,
and timm models patched by :func:`gmmlib.apply_mask`) hands over the probabilities it used.
Module hooks only say which layer was running, so no layer's maths is copied here.

A run record keeps every mask's learned parameters (``mask_parameters``);
:func:`layer_masks` puts them back into the masks of the run's own model, so each mask has
its layer's real grid (PiT's stages, T2T's token transformers), and :func:`mask_changes` and
:func:`profile_statistics` measure what training did to a GMM.

Example:
    >>> maps = attention_maps(model, images)            # {layer name: (B, H, T, S)}
    >>> mean_attention_distance(maps["blocks.0.attn"], (8, 8))   # (H,) in patches
    >>> layer_masks(record)["blocks.0.attn.mask"].profile()      # the trained GMM of layer 0
"""

from __future__ import annotations

import random
from typing import Any, Dict, List, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from .attention import recording
from .masks import AttentionMask, GaussianMixtureMask, pairwise_distance

__all__ = [
    "attention_maps",
    "mean_attention_distance",
    "layer_masks",
    "mask_changes",
    "profile_statistics",
    "locality_change",
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
    n = int(grid[0]) * int(grid[1])
    if probs.shape[-1] < n or probs.shape[-2] < n:
        raise ValueError(f"probabilities of shape {tuple(probs.shape)} cover fewer than the {n} tokens of {grid}")
    p = probs[..., -n:, -n:]
    p = p / p.sum(-1, keepdim=True)
    d = pairwise_distance(tuple(int(g) for g in grid), "euclidean").to(p)
    return (p * d).sum(-1).mean(dim=(0, 2))


def layer_masks(result: Mapping[str, Any], initial: bool = False) -> Dict[str, AttentionMask]:
    """Every attention mask of a recorded run, as trained or as the run started, on its layer's grid.

    The run's model is rebuilt from its configuration after seeding it as
    :func:`gmmlib.train.train` does, so the masks at step 0 are the run's own; for the trained
    masks the record's ``mask_parameters`` (6 decimals) are copied in. The caller's random state
    is left as it was.

    Args:
        result: a run record (:func:`gmmlib.results.load`).
        initial: the masks at step 0 instead of the trained ones.

    Returns:
        ``{module name: mask}`` in forward order, e.g. ``{"blocks.0.attn.mask": GaussianMixtureMask}``.
    """
    from .config import RunConfig
    from .train import seed_everything

    python_state, numpy_state = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        config = RunConfig.from_result(result)  # checking the config may draw random numbers too
        seed_everything(int(config.seed))
        model = config.build_model()
    random.setstate(python_state)
    np.random.set_state(numpy_state)
    masks = {name: m for name, m in model.named_modules() if isinstance(m, AttentionMask)}
    if not initial:
        recorded = result["mask_parameters"]
        if set(recorded) != set(masks):
            raise ValueError(
                f"{result.get('name')}: recorded masks {sorted(recorded)} are not the model's {sorted(masks)}"
            )
        with torch.no_grad():
            for name, mask in masks.items():
                for pname, p in mask.named_parameters():
                    p.copy_(torch.tensor(recorded[name][pname], dtype=p.dtype))
    return masks


def mask_changes(result: Mapping[str, Any]) -> List[Dict[str, Any]]:
    """How far training moved each GMM layer of a run from where it started.

    Args:
        result: a run record of a GMM model.

    Returns:
        One row per layer (its name without ``.attn.mask``): mean absolute change of alpha and
        of sigma over heads and kernels, and the number of heads whose multiplier at distance 0,
        ``M(0)``, is negative at step 0 and after training.
    """
    start, trained = layer_masks(result, initial=True), layer_masks(result)
    rows = []
    for name, after in trained.items():
        before = start[name]
        if not isinstance(after, GaussianMixtureMask):
            continue
        rows.append(
            {
                "layer": name.replace(".attn.mask", ""),
                "mean |alpha change|": (after.alpha - before.alpha).abs().mean().item(),
                "mean |sigma change|": (after.sigma - before.sigma).abs().mean().item(),
                "heads with M(0) < 0, start": int((before.profile()[:, 0] < 0).sum()),
                "heads with M(0) < 0, trained": int((after.profile()[:, 0] < 0).sum()),
            }
        )
    return rows


@torch.no_grad()
def profile_statistics(profile: Tensor) -> Dict[str, float]:
    """Locality and sign of one GMM layer from its profile (:meth:`GaussianMixtureMask.profile`).

    ``M(0)`` scales a patch's own logit (distance 0), ``M(far)`` those of the farthest patches;
    ``|M(0)| - |M(far)| > 0`` means a head scales near patches more strongly (local), whatever its sign.

    Args:
        profile: (H, U) mask per head over the grid's distinct distances, nearest first.

    Returns:
        ``{"heads with M(0) < 0", "mean |M(0)|", "mean |M(0)| - |M(far)|"}`` over the heads.
    """
    near, far = profile[:, 0].abs(), profile[:, -1].abs()
    return {
        "heads with M(0) < 0": int((profile[:, 0] < 0).sum()),
        "mean |M(0)|": near.mean().item(),
        "mean |M(0)| - |M(far)|": (near - far).mean().item(),
    }


def locality_change(result: Mapping[str, Any]) -> Dict[str, float]:
    """A GMM run's locality and scale at step 0 and after training, averaged over layers and heads.

    Locality is ``|M(0)| - |M(far)|`` (see :func:`profile_statistics`), scale ``|M(0)|``.

    Returns:
        ``{"locality, step 0", "locality, trained", "scale, step 0", "scale, trained"}``.
    """
    start, trained = layer_masks(result, initial=True), layer_masks(result)
    out: Dict[str, List[float]] = {}
    for name, after in trained.items():
        for state, mask in (("step 0", start[name]), ("trained", after)):
            stats = profile_statistics(mask.profile())
            out.setdefault(f"locality, {state}", []).append(stats["mean |M(0)| - |M(far)|"])
            out.setdefault(f"scale, {state}", []).append(stats["mean |M(0)|"])
    return {k: sum(v) / len(v) for k, v in out.items()}
