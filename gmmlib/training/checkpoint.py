"""Reading a run's checkpoint safely: tensors and plain data only, and a clear error naming what differs
(its configuration, or the code that made it)."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any, Dict, Mapping, Optional

import torch

from . import provenance
from .config import RunConfig

__all__ = ["load_checkpoint", "config_differences", "code_mismatch"]


def _flatten(d: Any, prefix: str = "") -> Dict[str, Any]:
    if not isinstance(d, dict):
        return {prefix: d}
    out: Dict[str, Any] = {}
    for k, v in d.items():
        out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


def config_differences(a: Dict[str, Any], b: Dict[str, Any]) -> Dict[str, tuple]:
    """``{dotted field: (value in a, value in b)}`` for every field where two resolved configs differ."""
    fa, fb = _flatten(a), _flatten(b)
    return {k: (fa.get(k), fb.get(k)) for k in sorted(fa.keys() | fb.keys()) if fa.get(k) != fb.get(k)}


def code_mismatch(path: Path, state: Optional[Mapping[str, Any]] = None) -> Optional[str]:
    """One line saying that the checkpoint at ``path`` was made by other code than this process runs, or None.

    The code is :func:`gmmlib.training.provenance.code_fingerprint`; a checkpoint written before checkpoints
    carried it counts as other code.

    Args:
        path: the checkpoint.
        state: its contents when already read (otherwise read here; an unreadable or missing file gives
            None: :func:`load_checkpoint` names it).
    """
    if state is None:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except (RuntimeError, EOFError, OSError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError):
            return None
        if not isinstance(state, dict):
            return None
    made_by, running = state.get("code"), provenance.code_fingerprint()
    if made_by == running:
        return None
    made = f"code {str(made_by)[:12]}" if made_by else "code that did not record its fingerprint"
    return f"{path} was made by other code ({made}; this code is {running[:12]})"


def load_checkpoint(path: Path, config: RunConfig) -> Dict[str, Any]:
    """Read a checkpoint of ``config`` (tensors and plain data only: ``weights_only=True``).

    Raises:
        ValueError: the file is not a readable checkpoint, or it belongs to another configuration
            (the message names the fields that differ).
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError) as e:
        raise ValueError(
            f"{path} is not a readable checkpoint ({type(e).__name__}); delete it to start this run afresh"
        ) from e
    if not isinstance(state, dict) or not {"key", "epoch", "model", "optimizer", "history"} <= set(state):
        raise ValueError(f"{path} is not a gmmlib checkpoint; delete it to start this run afresh")
    key = config.key()
    if state["key"] != key:
        recorded = state.get("config")
        if recorded is None:
            detail = "the checkpoint records no configuration"
        else:
            diff = config_differences(recorded, config.resolved())
            detail = "; ".join(f"{k}: checkpoint {a!r}, this run {b!r}" for k, (a, b) in diff.items()) or "same fields"
        raise ValueError(f"{path} belongs to another config (key {state['key']}, this run is {key}): {detail}")
    return state
