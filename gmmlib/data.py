"""Small-image data sets for gmmlib: CIFAR-10/100, SVHN, Tiny-ImageNet, offline CIFAR-10 copies and a synthetic set.

Everything goes through one data root (``root=`` or the ``GMMLIB_DATA`` environment variable) and
one array format: ``load_arrays`` returns uint8 images ``(N, H, W, 3)`` (RGB) and int64 labels.
Sources that need JPEG decoding (the CIFAR-10 JPEG zip, Tiny-ImageNet) are decoded once and cached
as ``.npz`` files in ``GMMLIB_CACHE`` (default ``~/.cache/gmmlib``), keyed by the source's name,
size and modification time. The data root is only read, except when ``download=True``.

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

from __future__ import annotations

import hashlib
import io
import os
import pickle
import re
import tempfile
import warnings
import zipfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision import transforms as T
from torchvision.transforms import AutoAugmentPolicy

__all__ = [
    "CIFAR10_CLASSES",
    "DATASETS",
    "JPEG_NOTE",
    "ArrayDataset",
    "CorruptDataError",
    "DataNotFoundError",
    "DatasetInfo",
    "build_transforms",
    "cache_dir",
    "data_root",
    "describe_source",
    "get_info",
    "load_arrays",
    "subset",
]

PathLike = str | os.PathLike[str]
Arrays = tuple[np.ndarray, np.ndarray]

CIFAR10_CLASSES: tuple[str, ...] = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip
JPEG_NOTE = "JPEG q75 copy of CIFAR-10; accuracies may differ slightly from the official arrays"
_MINI_NOTE = (
    "class-balanced 15,000-image subset of the JPEG q75 copy of CIFAR-10 (10,000 train / 5,000 test); "
    "test accuracy is not directly comparable to published CIFAR-10 numbers"
)
_CACHE_VERSION = 1
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
_SYNTHETIC_SEED = 20230911
_TINY_URL = "http://cs231n.stanford.edu/tiny-imagenet-200.zip"


class DataNotFoundError(FileNotFoundError):
    """The files of a data set are not in the data root (and no download was asked for)."""


class CorruptDataError(RuntimeError):
    """A data file exists but is damaged, truncated or incomplete; the message names the file."""


# --------------------------------------------------------------------------------------------------
# Sources: where the bytes of a data set come from, and how to read one split of them.
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Source:
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


Locator = Callable[["DatasetInfo", Path, str, bool], _Source]


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
    locator: Locator | None = field(default=None, repr=False, compare=False)

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


# --------------------------------------------------------------------------------------------------
# Roots, cache, hashing
# --------------------------------------------------------------------------------------------------


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


def cache_dir() -> Path:
    """Return the folder for decoded-array caches: ``GMMLIB_CACHE`` or ``~/.cache/gmmlib``."""
    env = os.environ.get("GMMLIB_CACHE")
    return Path(env).expanduser().absolute() if env else Path.home() / ".cache" / "gmmlib"


def _fingerprint(path: Path) -> str:
    """Cache key part for a source: file name + size + mtime (for folders, a digest over all files)."""
    st = path.stat()
    if path.is_file():
        return f"{path.name}-{st.st_size}-{st.st_mtime_ns}"
    h = hashlib.sha1()
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames.sort()
        for fn in sorted(filenames):
            p = os.path.join(dirpath, fn)
            s = os.stat(p)
            h.update(f"{os.path.relpath(p, path)}\0{s.st_size}\0{s.st_mtime_ns}\n".encode())
    return f"{path.name}-{h.hexdigest()[:16]}"


def _cache_file(info: DatasetInfo, split: str, source: _Source) -> Path:
    assert source.path is not None
    return cache_dir() / f"{info.name}-{split}-{_fingerprint(source.path)}-v{_CACHE_VERSION}.npz"


def _read_cache(path: Path) -> Arrays | None:
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            return z["x"], z["y"]
    except Exception as e:  # noqa: BLE001 - any unreadable cache is simply rebuilt
        warnings.warn(f"ignoring unreadable cache file {path} ({e}); decoding again", stacklevel=3)
        return None


def _write_cache(path: Path, x: np.ndarray, y: np.ndarray) -> None:
    """Write ``x, y`` to ``path`` atomically (temp file + os.replace); warn and go on if that fails."""
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            np.savez(f, x=x, y=y)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600
        os.replace(tmp, path)
    except OSError as e:
        warnings.warn(f"could not write cache file {path} ({e}); data will be decoded again next time", stacklevel=3)
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


@lru_cache(maxsize=64)
def _sha256_file(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _sha256(path: Path) -> str:
    st = path.stat()
    return _sha256_file(str(path), st.st_size, st.st_mtime_ns)


# --------------------------------------------------------------------------------------------------
# Decoding helpers
# --------------------------------------------------------------------------------------------------


def _decode_images(read: Callable[[str], bytes], names: Sequence[str], size: int, container: Path) -> np.ndarray:
    """Decode image files to a uint8 ``(N, size, size, 3)`` RGB array.

    Args:
        read: Returns the bytes of a member name.
        names: Members to decode, in output order.
        size: Expected height and width.
        container: Zip file or folder the members come from (for error messages).

    Raises:
        CorruptDataError: If a member cannot be read or decoded, or has the wrong size.
    """
    out = np.empty((len(names), size, size, 3), dtype=np.uint8)
    for i, name in enumerate(names):
        try:
            blob = read(name)
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as e:
            raise CorruptDataError(f"{container}: cannot read {name!r} ({e}); the file is damaged") from e
        try:
            with Image.open(io.BytesIO(blob)) as im:
                arr = np.asarray(im.convert("RGB"))
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
            raise CorruptDataError(f"{container}: {name!r} is not a decodable image ({e})") from e
        if arr.shape != (size, size, 3):
            raise CorruptDataError(f"{container}: {name!r} is {arr.shape[1]}x{arr.shape[0]}, expected {size}x{size}")
        out[i] = arr
    return out


@contextmanager
def _open_zip(path: Path) -> Iterator[zipfile.ZipFile]:
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError) as e:
        raise CorruptDataError(f"{path} is not a readable zip archive ({e}); it may be truncated") from e
    with zf:
        yield zf


@contextmanager
def _open_tree(path: Path, marker: str) -> Iterator[tuple[list[str], Callable[[str], bytes]]]:
    """Open a folder or a zip as ``(relative member names, read)``.

    Args:
        path: Folder or zip file.
        marker: A file at the top of the tree (e.g. ``"wnids.txt"``); inside a zip its folder becomes the top.
    """
    if path.is_dir():
        names = []
        for dirpath, _, filenames in os.walk(path):
            rel = os.path.relpath(dirpath, path)
            names += [fn if rel == "." else f"{rel.replace(os.sep, '/')}/{fn}" for fn in filenames]
        yield names, lambda n: (path / n).read_bytes()
        return
    with _open_zip(path) as zf:
        hits = sorted((n for n in zf.namelist() if n == marker or n.endswith("/" + marker)), key=len)
        if not hits:
            raise CorruptDataError(f"{path}: no {marker} inside the zip; is this the right archive?")
        prefix = hits[0][: -len(marker)]
        names = [n[len(prefix) :] for n in zf.namelist() if n.startswith(prefix) and not n.endswith("/")]
        yield names, lambda n: zf.read(prefix + n)


def _missing(info: DatasetInfo, root: Path, wanted: str, extra: str = "") -> DataNotFoundError:
    return DataNotFoundError(
        f"{info.name}: no data found in {root}. Put {wanted} in {root} (set GMMLIB_DATA or pass root=)"
        + (extra if extra else ", or pass download=True on a machine with internet")
        + "."
    )


def _first_existing(root: Path, candidates: Sequence[str]) -> Path | None:
    for c in candidates:
        if (root / c).exists():
            return root / c
    return None


# --------------------------------------------------------------------------------------------------
# CIFAR (torchvision pickles), the offline CIFAR-10 JPEG zip and mini npz
# --------------------------------------------------------------------------------------------------


def _read_cifar_pickles(folder: Path, files: Sequence[str], label_key: str) -> Arrays:
    xs, ys = [], []
    for fn in files:
        p = folder / fn
        if not p.is_file():
            raise DataNotFoundError(f"{p} is missing; the folder {folder} is incomplete (fetch it again)")
        try:
            with open(p, "rb") as f:
                entry = pickle.load(f, encoding="latin1")
            entry = {k.decode() if isinstance(k, bytes) else k: v for k, v in entry.items()}
            data = np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
            labels = np.asarray(entry[label_key], dtype=np.int64).reshape(-1)
        except (pickle.UnpicklingError, EOFError, KeyError, ValueError, TypeError, AttributeError, OSError) as e:
            raise CorruptDataError(f"{p} is not a readable CIFAR pickle ({type(e).__name__}: {e})") from e
        if len(labels) != len(data):
            raise CorruptDataError(f"{p}: {len(data)} images but {len(labels)} labels")
        xs.append(data)
        ys.append(labels)
    x = np.ascontiguousarray(np.concatenate(xs).transpose(0, 2, 3, 1))
    return x, np.concatenate(ys)


def _cifar_batches(info: DatasetInfo, folder: Path, split: str) -> Arrays:
    from torchvision.datasets import CIFAR10, CIFAR100

    cls = CIFAR10 if info.num_classes == 10 else CIFAR100
    files = [fn for fn, _md5 in (cls.train_list if split == "train" else cls.test_list)]
    label_key = "labels" if info.num_classes == 10 else "fine_labels"
    return _read_cifar_pickles(folder, files, label_key)


_JPEG_MEMBER = re.compile(r"^(?:[^/]+/)?(train|test)/([^/]+)/[^/]+\.(?:jpe?g|png)$", re.IGNORECASE)


def _read_jpeg_zip(info: DatasetInfo, path: Path, split: str) -> Arrays:
    """Decode one split of an ImageFolder-in-zip archive (``train|test/<class>/*.jpg``)."""
    with _open_zip(path) as zf:
        members: dict[str, list[tuple[str, str]]] = {"train": [], "test": []}
        for n in zf.namelist():
            m = _JPEG_MEMBER.match(n)
            if m:
                members[m.group(1).lower()].append((n, m.group(2)))
        classes = sorted({c for _, c in members["train"]})  # alphabetical folder order = label (ImageFolder)
        if info.classes is not None and tuple(classes) != info.classes:
            raise CorruptDataError(
                f"{path}: class folders under train/ are {classes}, expected the {len(info.classes)} folders "
                f"{list(info.classes)}"
            )
        index = {c: i for i, c in enumerate(classes)}
        chosen = sorted(members[split])
        unknown = sorted({c for _, c in chosen} - index.keys())
        if unknown:
            raise CorruptDataError(f"{path}: {split}/ has class folders not in train/: {unknown}")
        if not chosen:
            raise CorruptDataError(f"{path}: no images under {split}/<class>/ in the archive")
        names = [n for n, _ in chosen]
        x = _decode_images(zf.read, names, info.image_size, path)
        y = np.fromiter((index[c] for _, c in chosen), dtype=np.int64, count=len(chosen))
    return x, y


def _locate_cifar(info: DatasetInfo, root: Path, split: str, download: bool) -> _Source:
    from torchvision.datasets import CIFAR10, CIFAR100

    cls = CIFAR10 if info.num_classes == 10 else CIFAR100
    folder = root / cls.base_folder
    if not folder.is_dir() and info.name == "cifar10" and (root / "cifar10-jpeg.zip").is_file():
        zpath = root / "cifar10-jpeg.zip"
        return _Source("jpeg-zip", zpath, lambda s: _read_jpeg_zip(info, zpath, s), cache=True, note=JPEG_NOTE)
    if not folder.is_dir() and download:
        cls(str(root), train=True, download=True)  # fetches and extracts both splits
    if not folder.is_dir():
        wanted = f"{cls.base_folder}/ (torchvision's {info.name} folder)"
        if info.name == "cifar10":
            wanted = f"cifar10-jpeg.zip or {wanted}"
        raise _missing(info, root, wanted)
    return _Source(cls.base_folder, folder, lambda s: _cifar_batches(info, folder, s))


def _read_mini_npz(info: DatasetInfo, path: Path, split: str) -> Arrays:
    try:
        with np.load(path, allow_pickle=False) as z:
            keys = set(z.files)
            if not {f"x_{split}", f"y_{split}"} <= keys:
                raise CorruptDataError(f"{path}: arrays x_{split}/y_{split} not found (it has {sorted(keys)})")
            x = z[f"x_{split}"]
            y = z[f"y_{split}"].astype(np.int64)
            classes = tuple(str(c) for c in z["classes"]) if "classes" in keys else None
    except CorruptDataError:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as e:
        raise CorruptDataError(f"{path} is not a readable .npz file ({type(e).__name__}: {e}); fetch it again") from e
    if classes is not None and info.classes is not None and classes != info.classes:
        raise CorruptDataError(f"{path}: classes {list(classes)} differ from {list(info.classes)}")
    return x, y


def _locate_mini(info: DatasetInfo, root: Path, split: str, download: bool) -> _Source:
    path = root / "cifar10-mini.npz"
    if not path.is_file():
        raise _missing(info, root, "cifar10-mini.npz", " (it cannot be downloaded; use 'cifar10' with download=True)")
    return _Source("npz", path, lambda s: _read_mini_npz(info, path, s), note=_MINI_NOTE)


# --------------------------------------------------------------------------------------------------
# SVHN (torchvision .mat files)
# --------------------------------------------------------------------------------------------------


def _read_svhn_mat(path: Path) -> Arrays:
    try:
        import scipy.io as sio
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("reading SVHN .mat files needs scipy: pip install scipy") from e
    try:
        mat = sio.loadmat(str(path))
        x = np.ascontiguousarray(np.asarray(mat["X"], dtype=np.uint8).transpose(3, 0, 1, 2))
        y = np.asarray(mat["y"], dtype=np.int64).reshape(-1)
    except Exception as e:  # noqa: BLE001 - scipy raises MatReadError, ValueError, OSError, KeyError, ...
        raise CorruptDataError(f"{path} is not a readable SVHN .mat file ({type(e).__name__}: {e})") from e
    y[y == 10] = 0  # SVHN stores digit 0 as label 10 (same fix as torchvision)
    return x, y


def _locate_svhn(info: DatasetInfo, root: Path, split: str, download: bool) -> _Source:
    from torchvision.datasets import SVHN

    filename = SVHN.split_list[split][1]
    path = _first_existing(root, [filename, f"svhn/{filename}"])
    if path is None and download:
        SVHN(str(root / "svhn"), split=split, download=True)
        path = root / "svhn" / filename
    if path is None:
        raise _missing(info, root, f"{filename} (torchvision's SVHN file; also looked in svhn/)")
    return _Source("svhn-mat", path, lambda s: _read_svhn_mat(path))


# --------------------------------------------------------------------------------------------------
# Tiny-ImageNet (folder or official zip)
# --------------------------------------------------------------------------------------------------


def _read_tiny(info: DatasetInfo, path: Path, split: str) -> Arrays:
    with _open_tree(path, "wnids.txt") as (names, read):
        try:
            wnids = sorted({w.strip() for w in read("wnids.txt").decode().splitlines() if w.strip()})
        except (KeyError, OSError, UnicodeDecodeError) as e:
            raise CorruptDataError(f"{path}: cannot read wnids.txt ({e})") from e
        if len(wnids) != info.num_classes:
            raise CorruptDataError(f"{path}: wnids.txt lists {len(wnids)} classes, expected {info.num_classes}")
        index = {w: i for i, w in enumerate(wnids)}  # sorted wnids = ImageFolder label order
        if split == "train":
            pat = re.compile(r"^train/([^/]+)/images/[^/]+$")
            chosen = sorted(
                (n, m.group(1)) for n in names if (m := pat.match(n)) and n.lower().endswith(_IMAGE_SUFFIXES)
            )
            unknown = sorted({w for _, w in chosen} - index.keys())
            if unknown:
                raise CorruptDataError(f"{path}: train/ has folders not in wnids.txt: {unknown[:5]}")
        else:
            try:
                lines = read("val/val_annotations.txt").decode().splitlines()
            except (KeyError, OSError, UnicodeDecodeError) as e:
                raise CorruptDataError(f"{path}: cannot read val/val_annotations.txt ({e})") from e
            present = set(names)
            chosen = []
            for ln in lines:
                parts = ln.split("\t")
                if len(parts) < 2:
                    continue
                fn, wnid = parts[0].strip(), parts[1].strip()
                member = f"val/images/{fn}"
                if member not in present:
                    raise CorruptDataError(f"{path}: {member} is listed in val/val_annotations.txt but missing")
                if wnid not in index:
                    raise CorruptDataError(f"{path}: val/val_annotations.txt uses {wnid!r}, not in wnids.txt")
                chosen.append((member, wnid))
        if not chosen:
            raise CorruptDataError(f"{path}: no {split} images found")
        x = _decode_images(read, [n for n, _ in chosen], info.image_size, path)
        y = np.fromiter((index[w] for _, w in chosen), dtype=np.int64, count=len(chosen))
    return x, y


def _locate_tiny(info: DatasetInfo, root: Path, split: str, download: bool) -> _Source:
    path = _first_existing(root, ["tiny-imagenet-200", "tiny-imagenet-200.zip"])
    if path is None and download:
        from torchvision.datasets.utils import download_url

        download_url(_TINY_URL, str(root), "tiny-imagenet-200.zip")
        path = root / "tiny-imagenet-200.zip"
    if path is None:
        raise _missing(info, root, "tiny-imagenet-200.zip or its unpacked folder tiny-imagenet-200/")
    kind = "tiny-imagenet-folder" if path.is_dir() else "tiny-imagenet-zip"
    return _Source(kind, path, lambda s: _read_tiny(info, path, s), cache=True)


# --------------------------------------------------------------------------------------------------
# Synthetic
# --------------------------------------------------------------------------------------------------


def _synthetic(info: DatasetInfo, split: str) -> Arrays:
    """Class = base colour + oriented stripe pattern; random phase, brightness and pixel noise."""
    n, c, s = info.expected_count(split), info.num_classes, info.image_size
    proto = np.random.default_rng(_SYNTHETIC_SEED)  # class prototypes, shared by all splits
    colours = proto.uniform(0.25, 0.75, size=(c, 3)).astype(np.float32)
    freqs = proto.uniform(1.5, 4.0, size=c).astype(np.float32)
    angles = (np.arange(c) * np.pi / c).astype(np.float32)
    rng = np.random.default_rng([_SYNTHETIC_SEED, info.splits.index(split) + 1])
    y = rng.permutation(np.arange(n) % c).astype(np.int64)  # balanced labels
    yy, xx = (np.mgrid[0:s, 0:s].astype(np.float32) / s)[:, None]
    proj = np.cos(angles[y])[:, None, None] * xx + np.sin(angles[y])[:, None, None] * yy
    phase = rng.uniform(0, 2 * np.pi, size=(n, 1, 1)).astype(np.float32)
    stripes = np.sin(2 * np.pi * freqs[y][:, None, None] * proj + phase)
    img = colours[y][:, None, None, :] + 0.15 * stripes[..., None]
    img += rng.normal(0.0, 0.06, size=(n, 1, 1, 1)).astype(np.float32)  # brightness
    img += rng.normal(0.0, 0.12, size=img.shape).astype(np.float32)  # pixel noise
    x = np.clip(np.rint(img * 255.0), 0, 255).astype(np.uint8)
    return x, y


def _locate_synthetic(info: DatasetInfo, root: Path, split: str, download: bool) -> _Source:
    note = f"deterministic synthetic data (seed {_SYNTHETIC_SEED}), not a real data set"
    return _Source("synthetic", None, lambda s: _synthetic(info, s), note=note)


# --------------------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------------------

_CIFAR10_MEAN, _CIFAR10_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)

DATASETS: dict[str, DatasetInfo] = {
    info.name: info
    for info in (
        DatasetInfo(
            "cifar10", 10, 32, _CIFAR10_MEAN, _CIFAR10_STD, AutoAugmentPolicy.CIFAR10,
            (("train", 50_000), ("test", 10_000)), classes=CIFAR10_CLASSES,
            description="CIFAR-10: cifar-10-batches-py/ (torchvision) or the offline cifar10-jpeg.zip",
            locator=_locate_cifar,
        ),
        DatasetInfo(
            "cifar10-mini", 10, 32, _CIFAR10_MEAN, _CIFAR10_STD, AutoAugmentPolicy.CIFAR10,
            (("train", 10_000), ("test", 5_000)), classes=CIFAR10_CLASSES,
            description="class-balanced CIFAR-10 subset from cifar10-mini.npz (JPEG q75 source)",
            locator=_locate_mini,
        ),
        DatasetInfo(
            "cifar100", 100, 32, (0.5070, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762), AutoAugmentPolicy.CIFAR10,
            (("train", 50_000), ("test", 10_000)),
            description="CIFAR-100 (fine labels): cifar-100-python/ (torchvision)",
            locator=_locate_cifar,
        ),
        DatasetInfo(
            "svhn", 10, 32, (0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970), AutoAugmentPolicy.SVHN,
            (("train", 73_257), ("test", 26_032), ("extra", 531_131)), classes=tuple("0123456789"),
            description="SVHN cropped digits: {train,test,extra}_32x32.mat (torchvision), in the root or svhn/",
            locator=_locate_svhn,
        ),
        DatasetInfo(
            "tiny-imagenet", 200, 64, (0.4802, 0.4481, 0.3975), (0.2770, 0.2691, 0.2821), AutoAugmentPolicy.IMAGENET,
            (("train", 100_000), ("test", 10_000)), split_aliases=(("val", "test"),),
            description="Tiny-ImageNet-200: tiny-imagenet-200/ or tiny-imagenet-200.zip; test = official val set",
            locator=_locate_tiny,
        ),
        DatasetInfo(
            "synthetic", 10, 32, (0.5136, 0.4019, 0.5710), (0.2249, 0.2005, 0.2000), AutoAugmentPolicy.CIFAR10,
            (("train", 2_000), ("test", 500)),
            description="deterministic learnable random images with CIFAR shapes, for quick mode and CI",
            locator=_locate_synthetic,
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


# --------------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------------


def _locate(name: str, split: str, root: PathLike | None, download: bool) -> tuple[DatasetInfo, str, _Source]:
    info = get_info(name)
    split = info.canonical_split(split)
    assert info.locator is not None
    return info, split, info.locator(info, data_root(root), split, download)


def _validate(info: DatasetInfo, split: str, source: _Source, x: np.ndarray, y: np.ndarray, check_counts: bool) -> None:
    where = source.path if source.path is not None else info.name
    s = info.image_size
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[1:] != (s, s, 3):
        raise CorruptDataError(f"{where}: images have shape {x.shape} {x.dtype}, expected (N, {s}, {s}, 3) uint8")
    if y.shape != (len(x),):
        raise CorruptDataError(f"{where}: {len(x)} images but labels of shape {y.shape}")
    if len(y) and (y.min() < 0 or y.max() >= info.num_classes):
        raise CorruptDataError(f"{where}: labels outside 0..{info.num_classes - 1}")
    expected = info.expected_count(split)
    if check_counts and len(x) != expected:
        raise CorruptDataError(
            f"{where}: found {len(x):,} {split} images for {info.name}, expected {expected:,}; the file looks "
            "incomplete (pass check_counts=False to load a partial copy on purpose)"
        )


def load_arrays(
    name: str,
    split: str = "train",
    root: PathLike | None = None,
    download: bool = False,
    *,
    limit: int | None = None,
    seed: int = 0,
    check_counts: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Load one split of a data set as arrays.

    Args:
        name: Data set name (see ``DATASETS``).
        split: ``"train"`` or ``"test"`` (``"val"`` = ``"test"`` for Tiny-ImageNet; SVHN also has ``"extra"``).
        root: Data root; defaults to ``GMMLIB_DATA`` (see ``data_root``).
        download: If the files are missing, fetch them into ``root`` with torchvision (needs internet).
        limit: If given, return a deterministic class-balanced shuffled subset of this many images.
        seed: Seed for ``limit``.
        check_counts: Require the official number of images in the split (guards against partial files).

    Returns:
        ``(images, labels)``: uint8 ``(N, H, W, 3)`` RGB and int64 ``(N,)``.

    Raises:
        ValueError: Unknown name or split.
        DataNotFoundError: The files are not in the data root.
        CorruptDataError: A file is damaged, truncated or incomplete.
    """
    info, split, source = _locate(name, split, root, download)
    arrays = None
    cfile = _cache_file(info, split, source) if source.cache else None
    if cfile is not None:
        arrays = _read_cache(cfile)
    if arrays is None:
        arrays = source.read(split)
        if cfile is not None:
            _write_cache(cfile, *arrays)
    x, y = arrays
    y = y.astype(np.int64, copy=False)
    _validate(info, split, source, x, y, check_counts)
    if limit is not None:
        x, y = subset(x, y, limit, seed)
    return x, y


def describe_source(
    name: str, root: PathLike | None = None, split: str = "train", sha256: bool = True
) -> dict[str, Any]:
    """Say which files a data set is loaded from, for logs and result tables.

    Args:
        name: Data set name.
        root: Data root (see ``data_root``).
        split: Split whose source to describe (matters for SVHN, which has one file per split).
        sha256: Compute sha256 of single files and of the files of small folders.

    Returns:
        Dict with ``name``, ``kind``, ``path``, ``size_bytes``, ``sha256`` (or ``None``), ``files``
        (per-file sizes/hashes for small folders), ``note`` (caveats, e.g. the JPEG copy) and ``cache_dir``.

    Raises:
        DataNotFoundError: The files are not in the data root.
    """
    info, split, source = _locate(name, split, root, False)
    out: dict[str, Any] = {
        "name": info.name,
        "kind": source.kind,
        "path": str(source.path) if source.path is not None else None,
        "size_bytes": None,
        "sha256": None,
        "files": None,
        "note": source.note,
        "cache_dir": str(cache_dir()) if source.cache else None,
    }
    p = source.path
    if p is None:
        return out
    if p.is_file():
        out["size_bytes"] = p.stat().st_size
        out["sha256"] = _sha256(p) if sha256 else None
        return out
    files = sorted(f for f in p.rglob("*") if f.is_file())
    out["size_bytes"] = sum(f.stat().st_size for f in files)
    if len(files) <= 20:
        out["files"] = {
            f.relative_to(p).as_posix(): {"size_bytes": f.stat().st_size, "sha256": _sha256(f) if sha256 else None}
            for f in files
        }
    else:
        out["files"] = {"count": len(files)}
    return out


def subset(x: np.ndarray, y: np.ndarray, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic class-balanced, shuffled subset (never a prefix slice).

    Classes get ``n // C`` or ``n // C + 1`` images each; a class with too few images gives all it has
    and the others fill up. The result is shuffled.

    Args:
        x: Images, first axis = samples.
        y: Integer labels.
        n: Number of samples wanted (all of them, shuffled, if ``n >= len(y)``).
        seed: Random seed.

    Raises:
        ValueError: If ``n`` is not positive or ``x`` and ``y`` differ in length.
    """
    y = np.asarray(y)
    if len(x) != len(y):
        raise ValueError(f"x has {len(x)} samples but y has {len(y)}")
    if n <= 0:
        raise ValueError(f"subset size must be positive, got {n}")
    rng = np.random.default_rng(seed)
    classes = np.unique(y)
    rank = np.empty(len(y), dtype=np.int64)  # position of each sample in a shuffled list of its class
    for c in classes:
        idx = rng.permutation(np.flatnonzero(y == c))
        rank[idx] = np.arange(len(idx))
    class_order = np.empty(int(classes.max()) + 1 if len(classes) else 0, dtype=np.int64)
    class_order[classes] = rng.permutation(len(classes))
    order = np.lexsort((class_order[y], rank))  # round-robin over classes
    chosen = rng.permutation(order[: min(n, len(y))])
    return x[chosen], y[chosen]


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
