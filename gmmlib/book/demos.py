"""The chapters' live demos: small runs trained in seconds, a recorded run's model rebuilt."""

from __future__ import annotations

import os
from typing import Any, Dict, Optional, Sequence

from torch import Tensor, nn

from .settings import BookSettings

__all__ = ["row_as_image", "run_demo", "model_from_result"]


def row_as_image(mask: Tensor, grid: Sequence[int], query: int | Sequence[int]) -> Tensor:
    """Row ``query`` of an (N, N) mask, laid out on the (h, w) patch grid: what one query sees.

    Args:
        mask: (N, N) tensor (or (1, N, N)).
        grid: (h, w) of the patch grid.
        query: token index, or a (row, column) position on the grid.
    """
    h, w = int(grid[0]), int(grid[1])
    if not isinstance(query, int):
        query = int(query[0]) * w + int(query[1])
    m = mask.reshape(-1, h * w, h * w)[0]
    return m[query].reshape(h, w).detach()


def run_demo(settings: BookSettings, **config: Any) -> Dict[str, Any]:
    """Train one small live demo in a temporary folder and return its result dict.

    Args:
        settings: from :func:`mode` (data set, preset, epochs, device, seed).
        **config: :class:`~gmmlib.training.loop.RunConfig` fields, e.g. ``model="vit", mask="gmm", pool="gap"``.
    """
    import tempfile

    from ..training.config import RunConfig
    from ..training.loop import train

    fields = dict(dataset=settings.dataset, preset=settings.preset, epochs=settings.demo_epochs, seed=settings.seed)
    fields.update(config)
    with tempfile.TemporaryDirectory(prefix="gmmlib-demo-") as tmp:
        return train(RunConfig(**fields), tmp, progress=False, device=settings.device)


def model_from_result(
    result: Dict[str, Any], results: Optional[str | os.PathLike] = None, initial: bool = False
) -> Optional[nn.Module]:
    """Rebuild the model of a recorded run: trained (from its saved weights) or as it started.

    Args:
        result: a run record (from :func:`gmmlib.stats.tables.load`).
        results: the results folder (default :func:`gmmlib.experiments.results_dir`).
        initial: build the model at step 0 instead: the run's seed is set before the
            model is built, exactly as :func:`gmmlib.training.loop.train` does, so the
            initial weights (masks included) are the run's own.

    Returns:
        The model in eval mode, or None when trained weights are asked for and the store
        kept none for this run (it keeps them only for the runs a chapter loads).
    """
    from ..store.paths import results_dir
    from ..store.records import Store
    from ..training.rebuild import model_from_record

    path = None
    if not initial:
        path = Store(results_dir(results)).weights_path(result["key"])
        if not result.get("weights_file") or not path.is_file():
            return None
    return model_from_record(result, path)
