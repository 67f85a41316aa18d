"""What a data set is: its facts (:class:`DatasetInfo`), a located source of its bytes, the data root, the errors."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from torchvision.transforms import AutoAugmentPolicy

__all__ = [
    "CIFAR10_CLASSES",
    "JPEG_NOTE",
    "CorruptDataError",
    "DataNotFoundError",
    "DatasetInfo",
    "Source",
    "data_root",
]

PathLike = str | os.PathLike[str]
Arrays = tuple[np.ndarray, np.ndarray]

CIFAR10_CLASSES: tuple[str, ...] = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip
JPEG_NOTE = "JPEG q75 copy of CIFAR-10; accuracies may differ slightly from the official arrays"


class DataNotFoundError(FileNotFoundError):
    """The files of a data set are not in the data root (and no download was asked for)."""


class CorruptDataError(RuntimeError):
    """A data file exists but is damaged, truncated or incomplete; the message names the file."""


@dataclass(frozen=True)
class Source:
    """A located data source.

    Args:
        kind: Short format name (e.g. ``"cifar-10-batches-py"``, ``"jpeg-zip"``).
        path: File or folder that was found (``None`` for generated data).
        read: Function ``split -> (images, labels)`` that decodes the split from ``path``.
        cache: Whether decoded arrays are worth caching (JPEG sources).
        note: Caveat to report with results.
    """

    kind: str
    path: Path | None
    read: Callable[[str], Arrays]
    cache: bool = False
    note: str = ""


Locator = Callable[["DatasetInfo", Path, str, bool], Source]


@dataclass(frozen=True)
class DatasetInfo:
    """Static facts about one data set.

    Args:
        name: Registry key.
        num_classes: Number of classes.
        image_size: Height = width of the images in pixels.
        mean: Per-channel normalisation mean (RGB, 0..1 scale).
        std: Per-channel normalisation std.
        autoaugment_policy: torchvision AutoAugment policy used for training.
        split_sizes: ``(split, expected number of images)`` for each canonical split.
        split_aliases: ``(alias, canonical split)`` pairs accepted by ``load_arrays``.
        classes: Class names indexed by label, where they are fixed.
        description: One line about the data set and its sources.
        display_name: The name tables print (``"CIFAR-10"``); empty means ``name``.
        locator: Finds the source files in a data root (internal).
    """

    name: str
    num_classes: int
    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    autoaugment_policy: AutoAugmentPolicy
    split_sizes: tuple[tuple[str, int], ...]
    split_aliases: tuple[tuple[str, str], ...] = ()
    classes: tuple[str, ...] | None = None
    description: str = ""
    display_name: str = ""
    locator: Locator | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.display_name:  # a data set without a printed name is shown by its registry name
            object.__setattr__(self, "display_name", self.name)

    @property
    def splits(self) -> tuple[str, ...]:
        """Canonical split names."""
        return tuple(s for s, _ in self.split_sizes)

    def expected_count(self, split: str) -> int:
        """Expected number of images in a split.

        Args:
            split: Split name (aliases allowed).
        """
        return dict(self.split_sizes)[self.canonical_split(split)]

    def canonical_split(self, split: str) -> str:
        """Map a split name or alias to its canonical name.

        Args:
            split: Split name such as ``"train"``, ``"test"`` or an alias (``"val"`` for Tiny-ImageNet).

        Raises:
            ValueError: If the split is unknown for this data set.
        """
        key = str(split).lower()
        key = dict(self.split_aliases).get(key, key)
        if key not in self.splits:
            choices = ", ".join(self.splits + tuple(a for a, _ in self.split_aliases))
            raise ValueError(f"unknown split {split!r} for data set {self.name!r}; choose one of: {choices}")
        return key


def data_root(root: PathLike | None = None) -> Path:
    """Return the data root folder.

    Args:
        root: Explicit folder; if ``None`` the ``GMMLIB_DATA`` environment variable is used, else ``./data``.

    Returns:
        The folder as an absolute path (it need not exist).
    """
    if root is None:
        root = os.environ.get("GMMLIB_DATA") or "data"
    return Path(root).expanduser().absolute()
