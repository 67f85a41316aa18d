"""The paper's augmentation pipeline on PIL images (the CPU data path) and a Dataset over uint8 arrays."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision import transforms as T

from .registry import get_info

__all__ = ["ArrayDataset", "build_transforms"]


class ArrayDataset(Dataset):
    """Dataset over uint8 image arrays; the transform runs in ``__getitem__`` (so in DataLoader workers).

    Args:
        images: uint8 array ``(N, H, W, 3)``.
        labels: Integer labels ``(N,)``.
        transform: Applied to each image: a PIL image if ``to_pil`` else a uint8 ``(3, H, W)`` tensor.
            If ``None``, a float ``(3, H, W)`` tensor in ``[0, 1]`` is returned (``to_pil``) or the uint8 tensor.
        to_pil: Give the transform PIL images (for torchvision's PIL transforms) instead of tensors.
    """

    def __init__(
        self,
        images: np.ndarray,
        labels: np.ndarray | Sequence[int],
        transform: Callable[[Any], Any] | None = None,
        *,
        to_pil: bool = True,
    ) -> None:
        images = np.asarray(images)
        labels = np.asarray(labels, dtype=np.int64)
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(f"images must be uint8 (N, H, W, 3), got {images.dtype} {images.shape}")
        if labels.shape != (len(images),):
            raise ValueError(f"labels must have shape ({len(images)},), got {labels.shape}")
        self.images = images
        self.labels = labels
        self.transform = transform
        self.to_pil = to_pil

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        img = self.images[index]
        sample: Any = Image.fromarray(img) if self.to_pil else torch.tensor(img).permute(2, 0, 1)
        if self.transform is not None:
            sample = self.transform(sample)
        elif self.to_pil:
            sample = T.functional.to_tensor(sample)
        return sample, int(self.labels[index])


def build_transforms(name: str, train: bool, autoaugment: bool = True, random_erasing: float = 0.25) -> T.Compose:
    """The paper's (SPT-LSA's) augmentation pipeline for PIL images.

    Train: RandomCrop(size, padding=4) -> RandomHorizontalFlip -> AutoAugment(policy) -> ToTensor -> Normalize
    -> RandomErasing(p, scale=(0.02, 0.4), ratio=(0.3, 3.3), value=mean). The official code fills erased
    boxes with the dataset *mean* values in normalised space, so ``value`` is the mean tuple itself.
    Eval: ToTensor -> Normalize (images are stored at their final size, so no Resize).

    Args:
        name: Data set name (gives size, mean/std and AutoAugment policy).
        train: Training (augmented) or evaluation pipeline.
        autoaugment: Include AutoAugment in the training pipeline.
        random_erasing: Probability of RandomErasing in training (0 disables it).

    Raises:
        ValueError: Unknown name, or ``random_erasing`` outside ``[0, 1]``.
    """
    info = get_info(name)
    if not 0.0 <= random_erasing <= 1.0:
        raise ValueError(f"random_erasing must be a probability in [0, 1], got {random_erasing}")
    ops: list[Callable[[Any], Any]] = []
    if train:
        ops += [T.RandomCrop(info.image_size, padding=4), T.RandomHorizontalFlip()]
        if autoaugment:
            ops.append(T.AutoAugment(info.autoaugment_policy))
    ops += [T.ToTensor(), T.Normalize(info.mean, info.std)]
    if train and random_erasing > 0:
        ops.append(T.RandomErasing(p=random_erasing, scale=(0.02, 0.4), ratio=(0.3, 3.3), value=info.mean))
    return T.Compose(ops)
