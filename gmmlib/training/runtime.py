"""Where and how a run executes: the device, the data pipeline, the run plan's autocast, loss scaling and
compilation, and the torchrun process group.

Each choice is resolved once, before any data loads, with an error that names the bad value; the
hardware-dependent ones come from the run plan (:mod:`gmmlib.training.plan`).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Iterator, Optional, Tuple

import torch
from torch import distributed as dist
from torch import nn

from ..attention import use_flex_attention
from .config import Preset, data_path_name
from .plan import PRECISIONS, RunPlan, plan_for

__all__ = [
    "COMPILE_BACKEND",
    "Distributed",
    "autocast",
    "compile_model",
    "compiled_graphs",
    "grad_scaler",
    "init_distributed",
    "resolve_compile",
    "resolve_data_pipeline",
    "resolve_device",
]

# torch.compile's backend for the training step; tests on CPU swap in "eager" or "aot_eager" to stay fast.
COMPILE_BACKEND = "inductor"


def resolve_device(device: Optional[str | torch.device] = None) -> torch.device:
    """The torch device to train on: ``device``, or CUDA when available, else CPU.

    Raises:
        ValueError: an unknown device name, or a CUDA device on a machine without one.
    """
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise ValueError(f"unknown device {device!r}; use cpu, cuda or cuda:N") from e
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r} asked for, but this machine has no CUDA GPU; use --device cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"device {device!r}: this machine has {torch.cuda.device_count()} CUDA GPU(s)")
    elif dev.type != "cpu" and dev.type != "mps":
        raise ValueError(f"unsupported device {device!r}; use cpu, cuda or cuda:N")
    return dev


def resolve_data_pipeline(pipeline: Optional[str], device: torch.device) -> str:
    """``"batched"`` (augment large chunks on the device, the default) or ``"workers"`` (DataLoader
    workers); the old names ``"gpu"``, ``"cpu"`` and ``"auto"`` are read as these. ValueError for any other."""
    return data_path_name(pipeline)


def resolve_compile(
    compile: Optional[bool],
    device: torch.device,
    preset: Preset,
    capability: Optional[Tuple[int, int]] = None,
    torch_version: Optional[str] = None,
) -> bool:
    """Whether to ``torch.compile`` the training step: ``compile``, or the run plan's default (the paper
    preset on a GPU of capability >= 8.0 with a recent enough torch; see :func:`gmmlib.training.plan.plan_for`).

    Args:
        compile: True/False to force it, None for the plan's choice.
        device: the training device.
        preset: the run's preset.
        capability, torch_version: simulate another GPU or torch release (default: this machine's).
    """
    return plan_for(device, preset, torch_version, capability, compile=compile).compile


@contextlib.contextmanager
def autocast(precision: str, device_type: str) -> Iterator[None]:
    """Autocast to ``precision`` ("bfloat16" or "float16") around a forward pass; nothing for "float32"."""
    dtype = PRECISIONS[precision]
    with torch.autocast(device_type, dtype=dtype or torch.bfloat16, enabled=dtype is not None):
        yield


def grad_scaler(plan: RunPlan, device_type: str) -> Optional[torch.amp.GradScaler]:
    """A loss scaler for float16 autocast (its small range underflows gradients otherwise); None otherwise."""
    return torch.amp.GradScaler(device_type) if plan.grad_scaler else None


def compiled_graphs() -> int:
    """Graphs torch.compile has captured in this process so far: after the reset of :func:`compile_model`, a
    compiled step that adds none ran uncompiled (a frame past the recompile limit, say)."""
    from torch._dynamo.utils import counters

    return int(counters["stats"]["unique_graphs"])


def compile_model(model: nn.Module, plan: RunPlan) -> nn.Module:
    """``torch.compile`` of ``model`` in the plan's mode, from a clean compiler state.

    The compiler's caches are reset first: the graphs, guards and CUDA-graph pools of earlier runs in this
    process would otherwise count against the recompile limit (8), after which a run silently trains
    uncompiled. The plan also decides whether multiplicative masks take FlexAttention.
    """
    torch._dynamo.reset()
    use_flex_attention(plan.attention == "flex")
    mode = {"mode": plan.compile_mode} if COMPILE_BACKEND == "inductor" else {}  # modes are inductor's
    return torch.compile(model, backend=COMPILE_BACKEND, **mode)


@dataclass(frozen=True)
class Distributed:
    """This process's place in a torchrun job: rank, world size, local rank and backend (1 process: rank 0 of 1)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: Optional[str] = None


def init_distributed(device: Optional[str]) -> Distributed:
    """Join the process group that ``torchrun`` describes in the environment (nccl on CUDA, else gloo).

    Without torchrun's variables (or with ``WORLD_SIZE=1``) this is a single process and nothing happens.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Distributed()
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    cuda = torch.cuda.is_available() and (device is None or str(device).startswith("cuda"))
    if not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
    if cuda:
        torch.cuda.set_device(local)
    return Distributed(rank, world, local, dist.get_backend())
