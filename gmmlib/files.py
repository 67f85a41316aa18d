"""Atomic file writes and folder checks: every record, checkpoint and list is written whole or not at all."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Union

import torch

__all__ = ["PathLike", "atomic_write", "atomic_copy", "check_folder_writable", "write_json", "save_torch"]


PathLike = Union[str, os.PathLike]


def _fsync_dir(folder: Path) -> None:
    # The rename is durable only once the folder's entry is on disk too.
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:  # pragma: no cover - platforms without directory handles
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - file systems that refuse fsync on folders
        pass
    finally:
        os.close(fd)


def atomic_write(path: PathLike, write: Callable[[Path], None]) -> Path:
    """Write ``path`` through ``write(tmp)`` into a temporary sibling, fsync it, rename it, fsync the folder.

    A reader (or a run killed mid-write, or a machine losing power) sees the old file
    or the new one, never half.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; results are meant to be shared
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def atomic_copy(src: PathLike, dst: PathLike) -> Path:
    """Atomically copy the file ``src`` to ``dst`` (see :func:`atomic_write`)."""
    import shutil

    return atomic_write(dst, lambda p: shutil.copyfile(src, p))


def check_folder_writable(path: PathLike, what: str = "folder") -> None:
    """Raise a clear ValueError unless ``path`` is (or can be made) a writable folder, creating nothing.

    Args:
        path: the folder.
        what: how error messages name it (e.g. ``"--out"``).
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{what} {path} is a file, not a folder: choose another {what}")
    probe = path
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise ValueError(f"{what} {path} lies under {probe}, which is a file, not a folder: choose another {what}")
    denied = ValueError(f"{what} {path}: {probe} is read-only (no permission to write): choose another {what}")
    # root may write anywhere, but a folder with no write bit at all is meant to be read-only
    if not os.access(probe, os.W_OK | os.X_OK) or not probe.stat().st_mode & 0o222:
        raise denied
    try:  # os.access says yes to root even on a read-only file system: try it
        fd, tmp = tempfile.mkstemp(prefix=".gmmlib-probe-", dir=probe)
    except OSError as e:
        raise ValueError(f"{what} {path}: cannot write in {probe} ({e.strerror}): choose another {what}") from None
    os.close(fd)
    os.unlink(tmp)


def write_json(path: PathLike, data: Any) -> Path:
    """Atomically write ``data`` as indented JSON."""
    return atomic_write(path, lambda p: p.write_text(json.dumps(data, indent=1, sort_keys=False) + "\n"))


def save_torch(path: PathLike, obj: Any) -> Path:
    """Atomically ``torch.save`` an object."""
    return atomic_write(path, lambda p: torch.save(obj, p))
