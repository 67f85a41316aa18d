"""The GPU data path: a training split kept on the device as uint8, augmented there in large chunks.

CIFAR-10's 50,000 training images are 150 MB as uint8, so they fit on any GPU. Each epoch walks
the same index order as the CPU DataLoader path (one permutation per pass, drawn from the
(seed, epoch) generator), gathers a chunk of images, augments the whole chunk at once with
:class:`~gmmlib.data.batched_augment.BatchedAugment` (a few dozen kernel launches per chunk,
whatever its size) and yields batches of it. No worker processes, no host-to-device copies: on
Colab's 2 CPU cores the GPU no longer waits for the CPU.

The same code runs on CPU tensors, which is how the test suite checks it.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch import Tensor

from .batched_augment import BatchedAugment

__all__ = ["DeviceLoader", "default_chunk_size"]


def default_chunk_size(device: torch.device, batch_size: int) -> int:
    """Images augmented per chunk: large on a GPU (launches amortised), small on a CPU (caches)."""
    target = 16_384 if device.type == "cuda" else 2_048
    return max(batch_size, target // batch_size * batch_size)


class DeviceLoader:
    """Augmented training batches from uint8 images held on ``device``.

    Args:
        images: uint8 (N, H, W, 3) array or tensor (the layout ``load_arrays`` returns).
        labels: (N,) integer labels.
        augment: the batched augmentation (``None``: batches are the raw uint8 images, for
            measuring the bare gather).
        batch_size: images per batch; the last incomplete batch of an epoch is dropped.
        device: where the images live and are augmented.
        chunk_size: images augmented at once (a multiple of ``batch_size``; default
            :func:`default_chunk_size`).
    """

    def __init__(
        self,
        images: np.ndarray | Tensor,
        labels: np.ndarray | Tensor,
        augment: BatchedAugment | None,
        batch_size: int,
        device: torch.device | str,
        chunk_size: int | None = None,
    ) -> None:
        self.device = torch.device(device)
        images = torch.as_tensor(images)
        if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[-1] != 3:
            raise ValueError(f"images must be uint8 (N, H, W, 3), got {images.dtype} {tuple(images.shape)}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.images = images.permute(0, 3, 1, 2).contiguous().to(self.device)
        self.labels = torch.as_tensor(labels, dtype=torch.long).to(self.device)
        if len(self.labels) != len(self.images):
            raise ValueError(f"{len(self.images)} images but {len(self.labels)} labels")
        self.augment = augment
        self.batch_size = batch_size
        chunk = chunk_size or default_chunk_size(self.device, batch_size)
        self.chunk_size = max(batch_size, chunk // batch_size * batch_size)

    def __len__(self) -> int:
        return len(self.images)

    def epoch(self, order: Tensor, seed: int) -> Iterator[tuple[Tensor, Tensor]]:
        """The batches of one epoch.

        Args:
            order: indices into the images, in visiting order (e.g. one permutation per pass).
            seed: seeds the device generator that draws every augmentation of this epoch.

        Yields:
            ``(x, y)``: augmented float (B, 3, H, W) images and (B,) labels, on the device.
        """
        generator = torch.Generator(device=self.device).manual_seed(seed)
        order = order.to(self.device)
        usable = len(order) // self.batch_size * self.batch_size
        for start in range(0, usable, self.chunk_size):
            idx = order[start : min(start + self.chunk_size, usable)]
            x = self.images[idx]
            if self.augment is not None:
                x = self.augment(x, generator)
            y = self.labels[idx]
            for b in range(0, len(idx), self.batch_size):
                yield x[b : b + self.batch_size], y[b : b + self.batch_size]
