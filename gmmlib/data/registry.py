"""The registry of data sets: name -> :class:`DatasetInfo` (size, classes, statistics, AutoAugment policy, locator)."""

from __future__ import annotations

from torchvision.transforms import AutoAugmentPolicy

from .formats import locate_cifar, locate_mini, locate_svhn, locate_synthetic, locate_tiny
from .info import CIFAR10_CLASSES, DatasetInfo

__all__ = ["DATASETS", "PAPER_DATASETS", "get_info"]

# The paper's four data sets, in the order of its tables' columns.
PAPER_DATASETS: tuple[str, ...] = ("cifar10", "cifar100", "svhn", "tiny-imagenet")


_CIFAR10_MEAN, _CIFAR10_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)

DATASETS: dict[str, DatasetInfo] = {
    info.name: info
    for info in (
        DatasetInfo(
            "cifar10", 10, 32, _CIFAR10_MEAN, _CIFAR10_STD, AutoAugmentPolicy.CIFAR10,
            (("train", 50_000), ("test", 10_000)), classes=CIFAR10_CLASSES,
            description="CIFAR-10: cifar-10-batches-py/ (torchvision) or the offline cifar10-jpeg.zip",
            display_name="CIFAR-10", locator=locate_cifar,
        ),
        DatasetInfo(
            "cifar10-mini", 10, 32, _CIFAR10_MEAN, _CIFAR10_STD, AutoAugmentPolicy.CIFAR10,
            (("train", 10_000), ("test", 5_000)), classes=CIFAR10_CLASSES,
            description="class-balanced CIFAR-10 subset from cifar10-mini.npz (JPEG q75 source)",
            locator=locate_mini,
        ),
        DatasetInfo(
            "cifar100", 100, 32, (0.5070, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762), AutoAugmentPolicy.CIFAR10,
            (("train", 50_000), ("test", 10_000)),
            description="CIFAR-100 (fine labels): cifar-100-python/ (torchvision)",
            display_name="CIFAR-100", locator=locate_cifar,
        ),
        DatasetInfo(
            "svhn", 10, 32, (0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970), AutoAugmentPolicy.SVHN,
            (("train", 73_257), ("test", 26_032), ("extra", 531_131)), classes=tuple("0123456789"),
            description="SVHN cropped digits: {train,test,extra}_32x32.mat (torchvision), in the root or svhn/",
            display_name="SVHN", locator=locate_svhn,
        ),
        DatasetInfo(
            "tiny-imagenet", 200, 64, (0.4802, 0.4481, 0.3975), (0.2770, 0.2691, 0.2821), AutoAugmentPolicy.IMAGENET,
            (("train", 100_000), ("test", 10_000)), split_aliases=(("val", "test"),),
            description="Tiny-ImageNet-200: tiny-imagenet-200/ or tiny-imagenet-200.zip; test = official val set",
            display_name="Tiny-ImageNet", locator=locate_tiny,
        ),
        DatasetInfo(
            "synthetic", 10, 32, (0.5136, 0.4019, 0.5710), (0.2249, 0.2005, 0.2000), AutoAugmentPolicy.CIFAR10,
            (("train", 2_000), ("test", 500)),
            description="deterministic learnable random images with CIFAR shapes, for quick mode and CI",
            locator=locate_synthetic,
        ),
    )
}  # fmt: skip

_ALIASES = {"t-imnet": "tiny-imagenet", "tinyimagenet": "tiny-imagenet", "tiny-imagenet-200": "tiny-imagenet"}


def get_info(name: str) -> DatasetInfo:
    """Look up a data set.

    Args:
        name: Registry name (case-insensitive; ``_`` and ``-`` are interchangeable; ``T-IMNET`` works).

    Raises:
        ValueError: If the name is unknown; the message lists the choices.
    """
    key = str(name).strip().lower().replace("_", "-")
    key = _ALIASES.get(key, key)
    if key not in DATASETS:
        raise ValueError(f"unknown data set {name!r}; choose one of: {', '.join(DATASETS)}")
    return DATASETS[key]
