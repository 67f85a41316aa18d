"""What a finished run records: its configuration, history, top-1, cost, learned masks and provenance."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Optional

import numpy as np
from torch import nn

from .. import data as gdata
from .config import PRESETS, SUBSET_SEED, RunConfig
from .provenance import environment

if TYPE_CHECKING:  # the loop builds the run and calls result_record at its end
    from .loop import TrainingRun

__all__ = ["mask_parameters", "result_record"]

# A record's "precision": float32 as the runs recorded before, autocast named by its dtype.
_PRECISION_LABELS = {"float32": "float32", "bfloat16": "bfloat16 autocast", "float16": "float16 autocast"}


def mask_parameters(model: nn.Module) -> Dict[str, Dict[str, Any]]:
    """The learned parameters of every attention mask in ``model``, as nested lists."""
    from ..masks import AttentionMask

    out = {}
    for name, m in model.named_modules():
        if isinstance(m, AttentionMask):
            # 6 decimals keep the JSON small (an ELM is 4,096 numbers per layer)
            out[name] = {k: v.detach().double().cpu().round(decimals=6).tolist() for k, v in m.named_parameters()}
            out[name]["kind"] = type(m).__name__
    return out


def _data_source(config: RunConfig, root: Optional[str | Path]) -> Dict[str, Any]:
    """The data files (by name, size and sha256) and, for a subset, what rebuilds it exactly."""
    source = gdata.portable_source(gdata.describe_source(config.dataset, root))
    if config.train_size is not None and config.train_size < config.full_train_size():
        _, y = gdata.load_arrays(config.dataset, "train", root, limit=PRESETS[config.preset].train_limit)
        chosen = gdata.subset_indices(y, config.train_size, SUBSET_SEED)
        source["train_subset"] = {
            "size": config.train_size,
            "of": len(y),
            "seed": SUBSET_SEED,
            "rule": "gmmlib.data.subset_indices(labels, size, seed): the first `size` of a class round-robin "
            "over per-class permutations, so every subset contains the smaller ones",
            "indices_sha256": hashlib.sha256(np.sort(chosen).astype("<i8").tobytes()).hexdigest(),
        }
    return source


def result_record(run: TrainingRun, root: Optional[str | Path] = None) -> Dict[str, Any]:
    """The finished run as a result dict: configuration, history, top-1, cost, learned masks, provenance."""
    tops = [h["test_top1"] for h in run.history]
    return {
        "name": run.config.name(),
        "key": run.key,
        "config": run.config.resolved(),
        "history": run.history,
        "best_top1": max(tops),
        "final_top1": tops[-1],
        "wall_seconds": sum(h["epoch_seconds"] for h in run.history),
        "cost": run.cost,
        "mask_parameters": mask_parameters(run.model),
        "data_source": _data_source(run.config, root),
        "data_pipeline": run.data_pipeline,
        # what actually ran (after any fallback to eager), not what was asked for
        "compiled": run.plan.compile,
        "precision": _PRECISION_LABELS[run.plan.precision],  # the official code: float32
        "run_plan": run.plan.as_record(),
        "distributed": {"world_size": run.distributed.world_size, "backend": run.distributed.backend},
        "seed": run.config.seed,
        **environment(run.device),
    }
