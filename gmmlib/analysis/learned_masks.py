"""What a run's masks learned: the masks of a recorded run rebuilt on their layers' grids, what
training changed in them (per layer and per head), how hard the loss pulls on them, and how much of a
learned ELM the distance between patches explains.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..masks import AttentionMask, GaussianMixtureMask, pairwise_distance

__all__ = [
    "layer_masks",
    "mask_changes",
    "head_changes",
    "head_curves",
    "curve_statistics",
    "locality_change",
    "mask_gradients",
    "explained_share",
    "elm_structure",
]


def layer_masks(result: Mapping[str, Any], initial: bool = False) -> Dict[str, AttentionMask]:
    """Every attention mask of a recorded run, as trained or as the run started, on its layer's grid.

    The run's model is rebuilt from its configuration after seeding it as
    :func:`gmmlib.training.loop.train` does, so the masks at step 0 are the run's own; for the trained
    masks the record's ``mask_parameters`` (6 decimals, read by :func:`gmmlib.training.recorded_mask_parameters`)
    are copied in. The caller's random state is left as it was.

    Args:
        result: a run record (:func:`gmmlib.stats.tables.load`).
        initial: the masks at step 0 instead of the trained ones.

    Returns:
        ``{module name: mask}`` in forward order, e.g. ``{"blocks.0.attn.mask": GaussianMixtureMask}``.
    """
    from ..training.rebuild import model_from_record
    from ..training.record import recorded_mask_parameters

    model = model_from_record(result)
    masks = {name: m for name, m in model.named_modules() if isinstance(m, AttentionMask)}
    if not initial:
        recorded = recorded_mask_parameters(result)
        if set(recorded) != set(masks):
            raise ValueError(
                f"{result.get('name')}: recorded masks {sorted(recorded)} are not the model's {sorted(masks)}"
            )
        with torch.no_grad():
            for name, mask in masks.items():
                for pname, p in mask.named_parameters():
                    p.copy_(recorded[name][pname])
    return masks


def _gmm_pairs(result: Mapping[str, Any]):
    """(layer name without ``.attn.mask``, mask at step 0, trained mask) for every GMM layer of a run."""
    start, trained = layer_masks(result, initial=True), layer_masks(result)
    return [
        (name.replace(".attn.mask", ""), start[name], after)
        for name, after in trained.items()
        if isinstance(after, GaussianMixtureMask)
    ]


@torch.no_grad()
def head_changes(result: Mapping[str, Any]) -> List[Dict[str, Any]]:
    """What training did to every head of every GMM layer of a run, one row per (layer, head).

    Returns:
        Rows ``{"layer", "head", "alpha, step 0", "sigma, step 0", "|alpha change|", "|sigma change|", "M(0), step 0",
        "M(0), trained", "locality, step 0", "locality, trained"}``: the head's K alphas and sigmas at
        step 0 (lists), the mean absolute change of its alphas and sigmas over the K kernels, its multiplier
        at distance 0 and its locality ``|M(0)| - |M(far)|`` (:func:`curve_statistics`) before and after.
        An ELM run has no rows.
    """
    rows = []
    for layer, before, after in _gmm_pairs(result):
        curves = {"step 0": before.distance_curve(), "trained": after.distance_curve()}
        for head in range(after.alpha.shape[1]):
            row = {
                "layer": layer,
                "head": head,
                "alpha, step 0": before.alpha[:, head].tolist(),
                "sigma, step 0": before.sigma[:, head].tolist(),
                "|alpha change|": (after.alpha - before.alpha)[:, head].abs().mean().item(),
                "|sigma change|": (after.sigma - before.sigma)[:, head].abs().mean().item(),
            }
            for state, curve in curves.items():
                row[f"M(0), {state}"] = curve[head, 0].item()
                row[f"locality, {state}"] = (curve[head, 0].abs() - curve[head, -1].abs()).item()
            rows.append(row)
    return rows


def mask_changes(result: Mapping[str, Any]) -> List[Dict[str, Any]]:
    """How far training moved each GMM layer of a run from where it started (:func:`head_changes` per layer).

    Returns:
        One row per layer: the mean absolute change of alpha and of sigma over heads and kernels,
        and the number of heads whose multiplier at distance 0, ``M(0)``, is negative at step 0
        and after training.
    """
    layers: Dict[str, List[Dict[str, Any]]] = {}
    for row in head_changes(result):
        layers.setdefault(row["layer"], []).append(row)
    return [
        {
            "layer": layer,
            "mean |alpha change|": sum(r["|alpha change|"] for r in heads) / len(heads),
            "mean |sigma change|": sum(r["|sigma change|"] for r in heads) / len(heads),
            "heads with M(0) < 0, start": sum(r["M(0), step 0"] < 0 for r in heads),
            "heads with M(0) < 0, trained": sum(r["M(0), trained"] < 0 for r in heads),
        }
        for layer, heads in layers.items()
    ]


@torch.no_grad()
def head_curves(result: Mapping[str, Any]) -> List[Dict[str, Any]]:
    """Every head's GMM as a function of the distance between patches, at step 0 and trained.

    Returns:
        Rows ``{"layer", "head", "distance", "step 0", "trained"}``, one per (GMM layer, head):
        the grid's distinct distances in patches (nearest first) and the mask's value at each.
    """
    rows = []
    for layer, before, after in _gmm_pairs(result):
        distance = after.sq_dist_values.sqrt().tolist()
        start, trained = before.distance_curve(), after.distance_curve()
        for head in range(trained.shape[0]):
            rows.append(
                {
                    "layer": layer,
                    "head": head,
                    "distance": distance,
                    "step 0": start[head].tolist(),
                    "trained": trained[head].tolist(),
                }
            )
    return rows


@torch.no_grad()
def curve_statistics(curve: Tensor) -> Dict[str, float]:
    """Locality and sign of one GMM layer from its distance curve (:meth:`GaussianMixtureMask.distance_curve`).

    ``M(0)`` scales a patch's own logit (distance 0), ``M(far)`` those of the farthest patches;
    ``|M(0)| - |M(far)| > 0`` means a head scales near patches more strongly (local), whatever its sign.

    Args:
        curve: (H, U) mask per head over the grid's distinct distances, nearest first.

    Returns:
        ``{"heads with M(0) < 0", "mean |M(0)|", "mean |M(0)| - |M(far)|"}`` over the heads.
    """
    near, far = curve[:, 0].abs(), curve[:, -1].abs()
    return {
        "heads with M(0) < 0": int((curve[:, 0] < 0).sum()),
        "mean |M(0)|": near.mean().item(),
        "mean |M(0)| - |M(far)|": (near - far).mean().item(),
    }


def locality_change(result: Mapping[str, Any]) -> Dict[str, float]:
    """A GMM run's locality and scale at step 0 and after training, averaged over layers and heads.

    Locality is ``|M(0)| - |M(far)|`` (see :func:`curve_statistics`), scale ``|M(0)|``.

    Returns:
        ``{"locality, step 0", "locality, trained", "scale, step 0", "scale, trained"}``.
    """
    out: Dict[str, List[float]] = {}
    for _, before, after in _gmm_pairs(result):
        for state, mask in (("step 0", before), ("trained", after)):
            stats = curve_statistics(mask.distance_curve())
            out.setdefault(f"locality, {state}", []).append(stats["mean |M(0)| - |M(far)|"])
            out.setdefault(f"scale, {state}", []).append(stats["mean |M(0)|"])
    return {k: sum(v) / len(v) for k, v in out.items()}


def mask_gradients(model: nn.Module, images: Tensor, labels: Tensor) -> List[Dict[str, Any]]:
    """How hard the loss pulls on every GMM layer's alpha and sigma: the cross-entropy's gradient on one batch.

    The model runs in eval mode (no drop path, so the number does not depend on a random draw) and
    its ``.grad`` fields are left untouched (``torch.autograd.grad``).

    Args:
        model: a model with GMM masks.
        images: (B, 3, H, W) normalised images.
        labels: (B,) class indices.

    Returns:
        One row per GMM layer: ``{"layer", "mean |dL/dalpha|", "mean |dL/dsigma|", "largest |dL/dsigma|",
        "mean sigma"}`` (means over heads and kernels).

    Raises:
        ValueError: the model has no GMM mask.
    """
    gmms = {name: m for name, m in model.named_modules() if isinstance(m, GaussianMixtureMask)}
    if not gmms:
        raise ValueError(f"{type(model).__name__} has no GMM mask to take a gradient of")
    params = [p for m in gmms.values() for p in (m.alpha, m.sigma)]
    was_training = model.training
    model.eval()
    try:
        loss = F.cross_entropy(model(images), labels)
        grads = torch.autograd.grad(loss, params)
    finally:
        model.train(was_training)
    rows = []
    for i, (name, mask) in enumerate(gmms.items()):
        d_alpha, d_sigma = grads[2 * i].abs(), grads[2 * i + 1].abs()
        rows.append(
            {
                "layer": name.replace(".attn.mask", ""),
                "mean |dL/dalpha|": d_alpha.mean().item(),
                "mean |dL/dsigma|": d_sigma.mean().item(),
                "largest |dL/dsigma|": d_sigma.max().item(),
                "mean sigma": mask.sigma.detach().mean().item(),
            }
        )
    return rows


def explained_share(values: Tensor, groups: Tensor) -> float:
    """The share of the variance of ``values`` that the mean of each group explains (one-way R^2).

    1 when every group is constant (the values depend on the group only), about 0 when the groups
    are unrelated to the values.

    Args:
        values: any shape.
        groups: integer group labels 0..G-1, the shape of ``values``.
    """
    if values.shape != groups.shape:
        raise ValueError(
            f"values of shape {tuple(values.shape)} need groups of the same shape, got {tuple(groups.shape)}"
        )
    flat, g = values.flatten().float(), groups.flatten().long()
    counts = torch.bincount(g).float().clamp(min=1)
    means = torch.zeros(len(counts)).index_add_(0, g, flat) / counts
    return (1 - (flat - means[g]).var() / flat.var()).item()


@torch.no_grad()
def elm_structure(mask: Tensor, grid: Sequence[int], shuffles: int = 200, seed: int = 0) -> Dict[str, float]:
    """How much of a learned (N, N) ELM the distance between patches explains, and how much single patches do.

    Args:
        mask: the (N, N) mask of one layer (N = h * w patches, no prefix token).
        grid: (h, w) of the patch grid.
        shuffles: how many random shuffles of the entries give the chance level of the distance's share.
        seed: the shuffles' seed.

    Returns:
        ``{"distance", "distance, shuffled (95%)", "query (row)", "key (column)", "diagonal mean",
        "off-diagonal mean", "std", "largest |M|"}``: :func:`explained_share` by the distance (1 for
        a mask of the distance only, like the GMM), its 95th percentile over shuffled entries, the
        shares of the query alone and the key alone, and the diagonal (a patch with itself) against the rest.
    """
    n = int(grid[0]) * int(grid[1])
    if tuple(mask.shape) != (n, n):
        raise ValueError(f"an ELM on a {grid[0]} x {grid[1]} grid is ({n}, {n}), got {tuple(mask.shape)}")
    m = mask.detach().float()
    by_distance = torch.unique(pairwise_distance(tuple(int(g) for g in grid), "squared"), return_inverse=True)[1]
    rows, columns = torch.arange(n)[:, None].expand(n, n), torch.arange(n)[None, :].expand(n, n)
    generator = torch.Generator().manual_seed(seed)
    chance = torch.tensor(
        [
            explained_share(m.flatten()[torch.randperm(n * n, generator=generator)].reshape(n, n), by_distance)
            for _ in range(shuffles)
        ]
    )
    off = ~torch.eye(n, dtype=torch.bool)
    return {
        "distance": explained_share(m, by_distance),
        "distance, shuffled (95%)": chance.quantile(0.95).item(),
        "query (row)": explained_share(m, rows),
        "key (column)": explained_share(m, columns),
        "diagonal mean": m.diagonal().mean().item(),
        "off-diagonal mean": m[off].mean().item(),
        "std": m.std().item(),
        "largest |M|": m.abs().max().item(),
    }
