"""Small-image data sets for gmmlib: CIFAR-10/100, SVHN, Tiny-ImageNet, offline CIFAR-10 copies and a synthetic set.

Everything goes through one data root (``root=`` or the ``GMMLIB_DATA`` environment variable) and
one array format: ``load_arrays`` returns uint8 images ``(N, H, W, 3)`` (RGB) and int64 labels.
Sources that need JPEG decoding (the CIFAR-10 JPEG zip, Tiny-ImageNet) are decoded once and cached
as ``.npz`` files in ``GMMLIB_CACHE`` (default ``~/.cache/gmmlib``), keyed by the source's name,
size and modification time. The data root is only read, except when ``download=True`` or by
``fetch(name)``, which downloads every split a run reads.

Supported names (see ``DATASETS``):

* ``cifar10``: torchvision's ``cifar-10-batches-py/`` if present, else the offline ``cifar10-jpeg.zip``
  (ImageFolder layout ``train|test/<class>/*.jpg`` inside a zip).
* ``cifar10-mini``: ``cifar10-mini.npz`` (``x_train, y_train, x_test, y_test, classes``).
* ``cifar100``: torchvision's ``cifar-100-python/`` (fine labels).
* ``svhn``: torchvision's ``train_32x32.mat`` / ``test_32x32.mat`` / ``extra_32x32.mat`` in the root or
  ``<root>/svhn/`` (reading needs scipy).
* ``tiny-imagenet``: ``tiny-imagenet-200/`` or ``tiny-imagenet-200.zip``; split ``test`` (alias ``val``)
  is the labelled official validation set, as in the paper. Labels follow the sorted wnids (ImageFolder order).
* ``synthetic``: a deterministic, learnable random set with CIFAR shapes for quick runs and CI.

Example:
    >>> x, y = load_arrays("synthetic", "train")
    >>> ds = ArrayDataset(x, y, build_transforms("synthetic", train=True))
"""

from .batched_augment import BatchedAugment
from .cache import cache_dir
from .device_loader import DeviceLoader
from .info import CIFAR10_CLASSES, JPEG_NOTE, CorruptDataError, DataNotFoundError, DatasetInfo, data_root
from .load import RUN_SPLITS, describe_source, fetch, load_arrays, portable_source, subset, subset_indices
from .registry import DATASETS, get_info
from .transforms import ArrayDataset, build_transforms

__all__ = [
    "CIFAR10_CLASSES",
    "DATASETS",
    "JPEG_NOTE",
    "RUN_SPLITS",
    "ArrayDataset",
    "BatchedAugment",
    "CorruptDataError",
    "DataNotFoundError",
    "DatasetInfo",
    "DeviceLoader",
    "build_transforms",
    "cache_dir",
    "data_root",
    "describe_source",
    "fetch",
    "get_info",
    "load_arrays",
    "portable_source",
    "subset",
    "subset_indices",
]
