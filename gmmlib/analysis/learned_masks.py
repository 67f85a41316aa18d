"""What a run's masks learned: the masks of a recorded run rebuilt on their layers' grids, and
what training changed in them.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping

import torch
from torch import Tensor

from ..masks import AttentionMask, GaussianMixtureMask

__all__ = ["layer_masks", "mask_changes", "curve_statistics", "locality_change"]


def layer_masks(result: Mapping[str, Any], initial: bool = False) -> Dict[str, AttentionMask]:
    """Every attention mask of a recorded run, as trained or as the run started, on its layer's grid.

    The run's model is rebuilt from its configuration after seeding it as
    :func:`gmmlib.training.loop.train` does, so the masks at step 0 are the run's own; for the trained
    masks the record's ``mask_parameters`` (6 decimals) are copied in. The caller's random state
    is left as it was.

    Args:
        result: a run record (:func:`gmmlib.stats.tables.load`).
        initial: the masks at step 0 instead of the trained ones.

    Returns:
        ``{module name: mask}`` in forward order, e.g. ``{"blocks.0.attn.mask": GaussianMixtureMask}``.
    """
    from ..training.rebuild import model_from_record

    model = model_from_record(result)
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
                "heads with M(0) < 0, start": int((before.distance_curve()[:, 0] < 0).sum()),
                "heads with M(0) < 0, trained": int((after.distance_curve()[:, 0] < 0).sum()),
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
    start, trained = layer_masks(result, initial=True), layer_masks(result)
    out: Dict[str, List[float]] = {}
    for name, after in trained.items():
        for state, mask in (("step 0", start[name]), ("trained", after)):
            stats = curve_statistics(mask.distance_curve())
            out.setdefault(f"locality, {state}", []).append(stats["mean |M(0)| - |M(far)|"])
            out.setdefault(f"scale, {state}", []).append(stats["mean |M(0)|"])
    return {k: sum(v) / len(v) for k, v in out.items()}
