"""Loading one split as arrays (through the cache), describing its source, and class-balanced subsets."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .cache import cache_dir, cache_file, file_sha256, read_cache, write_cache
from .info import CorruptDataError, DatasetInfo, PathLike, Source, data_root
from .registry import get_info

__all__ = ["fetch", "load_arrays", "describe_source", "portable_source", "subset", "subset_indices", "RUN_SPLITS"]

# The splits a training run reads: it trains on one and reports top-1 on the other.
RUN_SPLITS: tuple[str, ...] = ("train", "test")


def _locate(name: str, split: str, root: PathLike | None, download: bool) -> tuple[DatasetInfo, str, Source]:
    info = get_info(name)
    split = info.canonical_split(split)
    assert info.locator is not None
    return info, split, info.locator(info, data_root(root), split, download)


def _validate(info: DatasetInfo, split: str, source: Source, x: np.ndarray, y: np.ndarray, check_counts: bool) -> None:
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


def fetch(name: str, root: PathLike | None = None, splits: Sequence[str] = RUN_SPLITS) -> list[str]:
    """Download a data set into the data root with torchvision, every split a run reads, where it is missing.

    CIFAR-10/100 come as one archive with both splits, SVHN as one file per split (each fetched), Tiny-ImageNet
    as one zip; the synthetic set needs nothing. Files already there are not fetched again.

    Args:
        name: Data set name (see ``DATASETS``).
        root: Data root; defaults to ``GMMLIB_DATA`` (see ``data_root``).
        splits: The splits to have (default: ``RUN_SPLITS``, train and test).

    Returns:
        The canonical names of the splits now in the root.

    Raises:
        ValueError: Unknown name or split.
        DataNotFoundError: A data set that cannot be downloaded (``cifar10-mini``).
    """
    info = get_info(name)
    done = []
    for split in splits:
        _locate(info.name, split, root, True)
        done.append(info.canonical_split(split))
    return done


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
    cfile = cache_file(info, split, source) if source.cache else None
    if cfile is not None:
        arrays = read_cache(cfile)
    if arrays is None:
        arrays = source.read(split)
        if cfile is not None:
            write_cache(cfile, *arrays)
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
        out["sha256"] = file_sha256(p) if sha256 else None
        return out
    files = sorted(f for f in p.rglob("*") if f.is_file())
    out["size_bytes"] = sum(f.stat().st_size for f in files)
    if len(files) <= 20:
        out["files"] = {
            f.relative_to(p).as_posix(): {"size_bytes": f.stat().st_size, "sha256": file_sha256(f) if sha256 else None}
            for f in files
        }
    else:
        out["files"] = {"count": len(files)}
    return out


def _round_robin(y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Every index, ordered round-robin over the classes (in a random class order), each class shuffled."""
    classes = np.unique(y)
    rank = np.empty(len(y), dtype=np.int64)  # position of each sample in a shuffled list of its class
    for c in classes:
        idx = rng.permutation(np.flatnonzero(y == c))
        rank[idx] = np.arange(len(idx))
    class_order = np.empty(int(classes.max()) + 1 if len(classes) else 0, dtype=np.int64)
    class_order[classes] = rng.permutation(len(classes))
    return np.lexsort((class_order[y], rank))


def _check_subset(n_x: int, y: np.ndarray, n: int) -> None:
    if n_x != len(y):
        raise ValueError(f"x has {n_x} samples but y has {len(y)}")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n <= 0:
        raise ValueError(f"subset size must be a positive int, got {n!r}")


def portable_source(source: dict[str, Any]) -> dict[str, Any]:
    """A :func:`describe_source` dict for a record: the data named by file name, size and sha256, never by
    where it lay on the machine that read it (no absolute path, no cache folder)."""
    out = {k: v for k, v in source.items() if k not in ("path", "cache_dir")}
    if source.get("path") is not None:
        out["file"] = Path(source["path"]).name
    return out


def subset_indices(y: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """The indices of a class-balanced subset of ``n`` samples; subsets of one seed are nested.

    The first ``n`` of a fixed round-robin over the classes (each class in a shuffled order), so
    classes get ``n // C`` or ``n // C + 1`` samples and the subset of 2,500 lies inside that of 5,000.

    Args:
        y: Integer labels.
        n: Number of samples wanted (all of them if ``n >= len(y)``).
        seed: Random seed; the same seed gives nested subsets.

    Raises:
        ValueError: If ``n`` is not a positive int.
    """
    y = np.asarray(y)
    _check_subset(len(y), y, n)
    return _round_robin(y, np.random.default_rng(seed))[: min(n, len(y))]


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
    _check_subset(len(x), y, n)
    rng = np.random.default_rng(seed)
    chosen = rng.permutation(_round_robin(y, rng)[: min(n, len(y))])
    return x[chosen], y[chosen]
