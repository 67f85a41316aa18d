"""Reading a run's checkpoint safely: tensors and plain data only, and a clear error naming what differs
(its configuration, the model its weights belong to, or the code that made it); and a run stopped by SIGINT or
SIGTERM (:class:`Interrupted`) at a point its last checkpoint resumes from."""

from __future__ import annotations

import pickle
import random
import signal
import threading
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterator, Mapping, Optional

import numpy as np
import torch
from torch import nn

from . import provenance
from .config import RunConfig

__all__ = [
    "load_checkpoint",
    "config_differences",
    "code_mismatch",
    "checkpointed_epochs",
    "model_mismatch",
    "load_weights",
    "Interrupted",
    "interrupt_on_signals",
]


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM stopped the command (see :func:`interrupt_on_signals`).

    A KeyboardInterrupt, so that no ``except Exception`` takes it for a failed run. ``exit_status`` is the shell's
    128 + the signal (130, 143); ``left`` says what the command leaves for the same command to go on from (set by
    whoever knows it: :func:`gmmlib.training.train`, the runner).
    """

    def __init__(self, signum: int, left: str = "") -> None:
        super().__init__(signum)
        self.signum, self.left = signum, left

    @property
    def exit_status(self) -> int:
        return 128 + self.signum

    def __str__(self) -> str:
        stopped = f"stopped by {signal.Signals(self.signum).name}"
        return f"{stopped}: {self.left}" if self.left else stopped


@contextmanager
def interrupt_on_signals() -> Iterator[None]:
    """Within the block, SIGINT and SIGTERM raise :class:`Interrupted` (SIGTERM would otherwise end the process
    where it stands): ``finally`` blocks run, so temporary files, locks and claims go, every file stays whole
    (written atomically) and the last epoch's checkpoint is there to resume from. Only in the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: Any) -> None:
        raise Interrupted(signum)

    before = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in before.items():
            signal.signal(s, signal.SIG_DFL if handler is None else handler)


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


def checkpointed_epochs(path: Path) -> int:
    """The epochs that the checkpoint at ``path`` holds for this code to continue (0 without one: none there, an
    unreadable one, or one of other code, which a resume trains afresh)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except (RuntimeError, EOFError, OSError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError):
        return 0
    if not isinstance(state, dict) or code_mismatch(path, state) is not None:
        return 0
    return int(state.get("epoch", -1)) + 1


def model_mismatch(weights: Any, model: nn.Module) -> Optional[str]:
    """One clause saying how ``weights`` are not a state dict of ``model`` (tensors it lacks, tensors it does not
    have, tensors of another shape), or None when they load into it.

    Args:
        weights: what a checkpoint or weights file holds as the model.
        model: the model they should load into.
    """
    if not isinstance(weights, Mapping):
        return f"its weights are {type(weights).__name__}, not a state dict"
    mine = model.state_dict()
    lacking = [k for k in mine if k not in weights]
    foreign = [k for k in weights if k not in mine]
    reshaped = [
        k for k in mine if k in weights and (not torch.is_tensor(weights[k]) or weights[k].shape != mine[k].shape)
    ]
    parts = []
    if lacking:
        parts.append(f"{len(lacking)} of this model's tensors missing (e.g. {lacking[0]})")
    if foreign:
        parts.append(f"{len(foreign)} tensors this model does not have (e.g. {foreign[0]})")
    if reshaped:
        k = reshaped[0]
        theirs = tuple(weights[k].shape) if torch.is_tensor(weights[k]) else type(weights[k]).__name__
        parts.append(f"{len(reshaped)} of another shape (e.g. {k}: {theirs}, this model's {tuple(mine[k].shape)})")
    return "; ".join(parts) or None


def _fresh_model(config: RunConfig) -> nn.Module:
    # only its tensors' names and shapes are read: the caller's random state is left as it was
    python_state, numpy_state = random.getstate(), np.random.get_state()
    try:
        with torch.random.fork_rng(devices=[]):
            return config.build_model()
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)


def load_weights(model: nn.Module, path: Path) -> nn.Module:
    """Load the state dict file ``path`` (``weights.pt``, ``records/<key>.weights.pt``) into ``model``.

    Raises:
        ValueError: one line naming the file when it is unreadable or holds another model's weights.
    """
    try:
        weights = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError) as e:
        raise ValueError(f"{path} is not a readable weights file ({type(e).__name__})") from e
    mismatch = model_mismatch(weights, model)
    if mismatch is not None:
        raise ValueError(f"{path} holds the weights of another model than {type(model).__name__}: {mismatch}")
    model.load_state_dict(weights)
    return model


def load_checkpoint(path: Path, config: RunConfig, model: Optional[nn.Module] = None) -> Dict[str, Any]:
    """Read a checkpoint of ``config`` (tensors and plain data only: ``weights_only=True``).

    Args:
        path: the checkpoint.
        config: the run it should continue.
        model: the run's model, to check the checkpoint's weights against (default: one built from ``config``).

    Raises:
        ValueError: the file is not a readable checkpoint, it belongs to another configuration
            (the message names the fields that differ), or its weights or optimiser are another model's.
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
    # the key can say this run while the tensors are another model's (a file copied over, edited, half migrated):
    # caught here, in one line, rather than as load_state_dict's page of missing and unexpected keys
    model = _fresh_model(config) if model is None else model
    mismatch = model_mismatch(state["model"], model)
    groups = state["optimizer"].get("param_groups") if isinstance(state["optimizer"], Mapping) else None
    if mismatch is None and isinstance(groups, list):
        held, wanted = sum(len(g.get("params", ())) for g in groups), len(list(model.parameters()))
        mismatch = None if held == wanted else f"its optimiser holds {held} parameter tensors, this model has {wanted}"
    if mismatch is not None:
        raise ValueError(
            f"{path} holds another model's weights than this run's ({mismatch}); delete it to start this run afresh"
        )
    return state
