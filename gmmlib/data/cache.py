"""Decoded-array caches (one ``.npz`` per source and split, keyed by the source's fingerprint) and file hashes."""

from __future__ import annotations

import hashlib
import os
import warnings
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..files import atomic_write
from .info import Arrays, DatasetInfo, Source

__all__ = ["cache_dir", "cache_file", "read_cache", "write_cache", "file_sha256"]

_CACHE_VERSION = 1


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


def cache_file(info: DatasetInfo, split: str, source: Source) -> Path:
    assert source.path is not None
    return cache_dir() / f"{info.name}-{split}-{_fingerprint(source.path)}-v{_CACHE_VERSION}.npz"


def read_cache(path: Path) -> Arrays | None:
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            return z["x"], z["y"]
    except Exception as e:  # noqa: BLE001 - any unreadable cache is simply rebuilt
        warnings.warn(f"ignoring unreadable cache file {path} ({e}); decoding again", stacklevel=3)
        return None


def write_cache(path: Path, x: np.ndarray, y: np.ndarray) -> None:
    """Write ``x, y`` to ``path`` atomically; warn and go on if that fails (the data is decoded again next time)."""

    def save(tmp: Path) -> None:
        with open(tmp, "wb") as f:  # a file object: given a path, np.savez would append ".npz"
            np.savez(f, x=x, y=y)

    try:
        atomic_write(path, save)
    except OSError as e:
        warnings.warn(f"could not write cache file {path} ({e}); data will be decoded again next time", stacklevel=3)


@lru_cache(maxsize=64)
def _sha256_file(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def file_sha256(path: Path) -> str:
    """sha256 of a file, memoised on (path, size, mtime)."""
    st = path.stat()
    return _sha256_file(str(path), st.st_size, st.st_mtime_ns)
