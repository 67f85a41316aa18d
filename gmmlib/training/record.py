"""What a finished run records: its configuration, history, top-1, cost, learned masks and provenance."""

from __future__ import annotations

import base64
import binascii
import hashlib
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional

import numpy as np
import torch
from torch import Tensor, nn

from .. import data as gdata
from .config import PRESETS, SUBSET_SEED, RunConfig
from .provenance import environment

if TYPE_CHECKING:  # the loop builds the run and calls result_record at its end
    from .loop import TrainingRun

__all__ = [
    "mask_parameters",
    "mask_parameters_problem",
    "pack_mask_parameters",
    "recorded_mask_parameters",
    "result_record",
]

# A record's "precision": float32 as the runs recorded before, autocast named by its dtype.
_PRECISION_LABELS = {"float32": "float32", "bfloat16": "bfloat16 autocast", "float16": "float16 autocast"}


# A parameter of more numbers than this (an ELM: 4,096 a layer) is packed; smaller ones (a GMM's alphas and sigmas,
# a decay's rates) stay lists a reader can read in the JSON. Packed, an ELM record is 64 KB instead of 178 KB: the
# tracked results travel to the GPU machine with the CIFAR-10 zip, under 64 MiB in all.
PACK_ABOVE = 256
_PACKING = "int32 millionths, little-endian, byte-shuffled, zlib, url-safe base64"


def mask_parameters(model: nn.Module) -> Dict[str, Dict[str, Any]]:
    """The learned parameters of every attention mask in ``model``, to 6 decimals, the large ones packed.

    Read them back as tensors with :func:`recorded_mask_parameters`.
    """
    from ..masks import AttentionMask

    out = {}
    for name, m in model.named_modules():
        if isinstance(m, AttentionMask):
            # 6 decimals: what a record keeps, and exactly what packing keeps
            out[name] = {k: v.detach().double().cpu().round(decimals=6).tolist() for k, v in m.named_parameters()}
            out[name]["kind"] = type(m).__name__
    return pack_mask_parameters(out)


def _pack(values: List[Any]) -> Dict[str, Any] | List[Any]:
    """A nested list of numbers (6 decimals) as ``{"shape", "packing", "millionths"}``: exact, as the
    millionths are integers; left a list when it is small, not finite, or beyond what an int32 of millionths
    holds."""
    array = np.asarray(values, dtype=np.float64)
    millionths = np.round(array * 1e6)
    if array.size <= PACK_ABOVE or not np.isfinite(millionths).all() or np.abs(millionths).max() >= 2**31:
        return values
    # byte shuffle (as HDF5 and Blosc do): the high bytes of small numbers are alike and compress well together
    raw = millionths.astype("<i4").view(np.uint8).reshape(-1, 4).T.tobytes()
    text = base64.urlsafe_b64encode(zlib.compress(raw, 9)).decode("ascii")
    return {"shape": list(array.shape), "packing": _PACKING, "millionths": text}


def _unpack(value: Any) -> Tensor:
    """A recorded parameter (a nested list, or what :func:`_pack` wrote) as a float64 tensor."""
    if not isinstance(value, Mapping):
        return torch.tensor(value, dtype=torch.float64)
    if value.get("packing") != _PACKING:
        raise ValueError(f"a recorded mask parameter packed as {value.get('packing')!r}; expected {_PACKING!r}")
    try:
        raw = np.frombuffer(zlib.decompress(base64.urlsafe_b64decode(value["millionths"])), dtype=np.uint8)
        millionths = raw.reshape(4, -1).T.copy().view("<i4").reshape(value["shape"])
    except (KeyError, TypeError, ValueError, binascii.Error, zlib.error) as e:
        raise ValueError(f"a packed mask parameter of shape {value.get('shape')} does not unpack ({e})") from None
    return torch.from_numpy(millionths.astype(np.float64) / 1e6)  # correctly rounded: the 6-decimal number itself


def pack_mask_parameters(recorded: Mapping[str, Mapping[str, Any]]) -> Dict[str, Dict[str, Any]]:
    """``mask_parameters`` of a record with every large parameter packed (records written as lists migrate
    through it unchanged in value)."""
    return {
        layer: {k: v if k == "kind" or isinstance(v, Mapping) else _pack(v) for k, v in params.items()}
        for layer, params in recorded.items()
    }


def mask_parameters_problem(result: Mapping[str, Any]) -> Optional[str]:
    """What makes a record's ``mask_parameters`` unreadable by :func:`recorded_mask_parameters` (one clause), or
    None: a record edited by hand, or cut short, is then named and set aside by the store."""
    recorded = result.get("mask_parameters", {})
    if not isinstance(recorded, Mapping) or not all(isinstance(p, Mapping) for p in recorded.values()):
        return "its mask_parameters are not {layer: {parameter: values}}"
    try:
        recorded_mask_parameters(result)
    except (ValueError, TypeError) as e:
        return f"its mask_parameters do not read: {e}"
    return None


def recorded_mask_parameters(result: Mapping[str, Any]) -> Dict[str, Dict[str, Tensor]]:
    """The learned mask parameters of a run record as float64 tensors, packed or not.

    Args:
        result: a run record, or a result :func:`gmmlib.training.loop.train` returned.

    Returns:
        ``{module name: {parameter name: tensor}}``, e.g. ``{"blocks.0.attn.mask": {"weight": (1, 64, 64)}}``.
    """
    return {
        layer: {k: _unpack(v) for k, v in params.items() if k != "kind"}
        for layer, params in result["mask_parameters"].items()
    }


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
