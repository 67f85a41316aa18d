"""The training batches of each epoch, for either data pipeline and any number of processes.

Every epoch's order is one permutation per pass, drawn from a generator seeded by (seed, epoch)
alone, so a resumed run replays what an uninterrupted one would have drawn. Under torchrun each
rank takes its slice of every global batch of that order.
"""

from __future__ import annotations

import hashlib
import random
from typing import Callable, Iterator, Optional, Tuple

import numpy as np
import torch
from torch.utils.data import DataLoader

from .. import data as gdata
from .config import Preset, RunConfig
from .runtime import Distributed

__all__ = ["epoch_seed", "epoch_order", "rank_order", "cpu_batches", "device_batches", "DATA_PATHS", "batches_for"]

Batches = Callable[[int], Iterator[Tuple[torch.Tensor, torch.Tensor]]]


def epoch_seed(seed: int, epoch: int) -> int:
    # Every epoch's randomness depends on (seed, epoch) only: resuming at an epoch
    # boundary replays exactly what an uninterrupted run would have drawn.
    return int.from_bytes(hashlib.sha256(f"{seed}:{epoch}".encode()).digest()[:4], "little")


def _worker_init(worker_id: int) -> None:
    s = torch.initial_seed() % 2**32
    random.seed(s)
    np.random.seed(s)


def epoch_order(seed: int, n: int, passes: int, length: Optional[int] = None) -> Tuple[torch.Generator, torch.Tensor]:
    """One epoch's visiting order over ``n`` images: ``passes`` permutations drawn from a generator seeded by ``seed``.

    With ``length`` (images per epoch, for a subset smaller than the training set) as many
    permutations as it takes, cut at ``length``; for the whole set it is the same order.
    """
    if length is not None:
        passes = -(-length // n)
    gen = torch.Generator().manual_seed(seed)
    order = torch.cat([torch.randperm(n, generator=gen) for _ in range(passes)])
    return gen, order if length is None else order[:length]


def rank_order(order: torch.Tensor, batch_size: int, ddp: Distributed) -> torch.Tensor:
    """This rank's slice of every global batch of ``order`` (all of it in a single process)."""
    if ddp.world_size == 1:
        return order
    per_rank = batch_size // ddp.world_size
    usable = len(order) // batch_size * batch_size
    batches = order[:usable].view(-1, batch_size)
    return batches[:, ddp.rank * per_rank : (ddp.rank + 1) * per_rank].reshape(-1)


def cpu_batches(
    run_config: RunConfig,
    preset: Preset,
    x,
    y,
    device: torch.device,
    ddp: Distributed,
    images_per_epoch: Optional[int] = None,
) -> Batches:
    """Batches from DataLoader workers applying torchvision's transforms (the "workers" data path)."""
    dataset = gdata.ArrayDataset(
        x,
        y,
        gdata.build_transforms(
            run_config.dataset, train=True, autoaugment=preset.autoaugment, random_erasing=preset.random_erasing
        ),
    )

    def batches(epoch: int) -> Iterator[Tuple[torch.Tensor, torch.Tensor]]:
        seed = epoch_seed(run_config.seed, epoch)
        gen, order = epoch_order(seed, len(dataset), preset.passes_per_epoch, images_per_epoch)
        loader = DataLoader(
            dataset,
            batch_size=preset.batch_size // ddp.world_size,
            sampler=rank_order(order, preset.batch_size, ddp).tolist(),
            drop_last=True,
            num_workers=preset.num_workers,
            worker_init_fn=_worker_init,
            generator=gen,
            pin_memory=device.type == "cuda",
            prefetch_factor=4 if preset.num_workers > 0 else None,
        )
        for xb, yb in loader:
            yield xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)

    return batches


def device_batches(
    run_config: RunConfig,
    preset: Preset,
    x,
    y,
    device: torch.device,
    ddp: Distributed,
    images_per_epoch: Optional[int] = None,
) -> Batches:
    """Batches augmented in large chunks on the device (the "batched" data path)."""
    augment = gdata.BatchedAugment(
        gdata.get_info(run_config.dataset), autoaugment=preset.autoaugment, random_erasing=preset.random_erasing
    )
    loader = gdata.DeviceLoader(x, y, augment, preset.batch_size // ddp.world_size, device)

    def batches(epoch: int) -> Iterator[Tuple[torch.Tensor, torch.Tensor]]:
        seed = epoch_seed(run_config.seed, epoch)
        _, order = epoch_order(seed, len(loader), preset.passes_per_epoch, images_per_epoch)  # the workers' order
        return loader.epoch(rank_order(order, preset.batch_size, ddp), seed + ddp.rank)

    return batches


# Each data path (RunConfig.data_path) and what builds its batches; both take the same arguments and visit the
# images in the same (seed, epoch) order.
DATA_PATHS = {"workers": cpu_batches, "batched": device_batches}


def batches_for(data_path: str) -> Callable[..., Batches]:
    """The batch builder of a data path (:data:`DATA_PATHS`).

    Raises:
        ValueError: an unknown data path, named with the known ones.
    """
    if data_path not in DATA_PATHS:
        raise ValueError(f"unknown data path {data_path!r}; expected one of {sorted(DATA_PATHS)}")
    return DATA_PATHS[data_path]
