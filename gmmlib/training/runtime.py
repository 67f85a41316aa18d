"""Where and how a run executes: the device, the data pipeline, compilation, and the torchrun process group.

Each choice is resolved once, before any data loads, with an error that names the bad value.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional

import torch
from torch import distributed as dist

from .config import Preset, data_path_name

__all__ = [
    "Distributed",
    "init_distributed",
    "resolve_compile",
    "resolve_data_pipeline",
    "resolve_device",
]


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


def resolve_compile(compile: Optional[bool], device: torch.device, preset: Preset) -> bool:
    """Whether to ``torch.compile`` the training step: by default only for the paper preset on CUDA,
    where the minute of compilation pays back many times over."""
    return bool(compile) if compile is not None else (device.type == "cuda" and preset.name == "paper")


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
