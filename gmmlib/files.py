"""Atomic file writes and folder checks: every record, checkpoint and list is written whole or not at all.

A write that fails (a full disk, a read-only folder) raises :class:`NotWritten`, one line naming the folder, and
leaves the file as it was; :func:`written_together` makes several files one write (all of them, or none).
"""

from __future__ import annotations

import contextvars
import errno
import json
import os
import signal
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, List, Optional, Tuple, Union

import torch

__all__ = [
    "PathLike",
    "NotWritten",
    "atomic_write",
    "atomic_copy",
    "written_together",
    "check_folder_writable",
    "write_json",
    "save_torch",
]


PathLike = Union[str, os.PathLike]


class NotWritten(OSError):
    """A file could not be written (a full disk, a read-only folder, a quota): the message is one line naming the
    folder and the file, which stays as it was. An OSError, so that callers that catch those go on doing so."""

    def __str__(self) -> str:
        return str(self.strerror)


_FULL = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC), errno.EFBIG)
_READ_ONLY = (errno.EACCES, errno.EPERM, errno.EROFS)


def _not_written(path: Path, e: OSError) -> NotWritten:
    cause = os.strerror(e.errno) if e.errno else str(e)
    if e.errno in _FULL:
        hint = "free some space there or choose another folder"
    elif e.errno in _READ_ONLY:
        hint = "the folder is read-only: fix its permissions or choose another folder"
    else:
        hint = "check that disk or choose another folder"
    kept = f"{path.name} is unchanged" if path.exists() else f"no {path.name} was written"
    return NotWritten(e.errno, f"cannot write {path.name} in {path.parent} ({cause}): {kept}; {hint}")


def _ours(e: OSError, path: Path) -> bool:
    """Whether ``e`` is a fault of writing ``path`` (its folder, its temporary file, the disk), not of a file read
    while writing it (atomic_copy's source), nor one already named (a nested write)."""
    if isinstance(e, NotWritten):
        return False
    if e.filename is None:  # a write or fsync of the open temporary file: the disk
        return True
    failed = Path(os.fsdecode(e.filename))  # the folder, one above it, or a file in it (mkstemp's candidate)
    return failed in (path, *path.parents) or failed.parent == path.parent


# the renames that written_together() holds back until every file of the group is written: [(tmp, path), ...]
_together: contextvars.ContextVar[Optional[List[Tuple[Path, Path]]]] = contextvars.ContextVar("together", default=None)


@contextmanager
def written_together() -> Iterator[None]:
    """Every :func:`atomic_write` inside the block lands together at its end: all of them, or, when any write
    or the block fails (a full disk halfway through a promote), none, every file left as it was. A block inside
    another is part of the outer one. A file is not there to read until the block ends: write each once.
    """
    if _together.get() is not None:
        yield
        return
    pending: List[Tuple[Path, Path]] = []
    token = _together.set(pending)
    try:
        yield
    except BaseException:
        for tmp, _ in pending:
            tmp.unlink(missing_ok=True)
        raise
    finally:
        _together.reset(token)
    # renames need no space: once every file is whole on disk they all land, in the order they were written,
    # and a SIGINT or SIGTERM meanwhile waits for the last of them (a kill -9 leaves the first ones landed)
    with _signals_held():
        for i, (tmp, path) in enumerate(pending):
            try:
                os.replace(tmp, path)
            except OSError as e:
                for rest, _ in pending[i:]:
                    rest.unlink(missing_ok=True)
                raise _not_written(path, e) from e
    for folder in dict.fromkeys(path.parent for _, path in pending):
        _fsync_dir(folder)


@contextmanager
def _signals_held() -> Iterator[None]:
    """SIGINT and SIGTERM reach this thread only once the block ends."""
    held = {signal.SIGINT, signal.SIGTERM}
    before = signal.pthread_sigmask(signal.SIG_BLOCK, held) if hasattr(signal, "pthread_sigmask") else None
    try:
        yield
    finally:
        if before is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, before)


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
    or the new one, never half. Inside :func:`written_together` the rename waits for the block's end.

    Raises:
        NotWritten: the folder cannot be written (full, read-only): one line naming it; the file is as it was.
    """
    path, tmp = Path(path), None
    try:
        # through links: a results folder linked to one not made yet is made (mkdir of the link itself would fail)
        Path(os.path.realpath(path.parent)).mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        write(Path(tmp))
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; results are meant to be shared
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        pending = _together.get()
        if pending is not None:
            pending.append((Path(tmp), path))
            return path
        os.replace(tmp, path)
    except BaseException as e:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError) and _ours(e, path):
            raise _not_written(path, e) from e
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


def _json_text(data: Any, level: int = 0) -> str:
    """``json.dumps(data, indent=1)``, except that a list of plain values stays on one line: a learned ELM mask is
    4,096 numbers a layer, and a line each (with its indent) nearly doubled a record's size."""
    pad, inner = " " * level, " " * (level + 1)
    if isinstance(data, dict) and data:
        # keys as json writes them: a non-string key becomes the string of its JSON (1 -> "1", True -> "true")
        keys = (k if isinstance(k, str) else json.dumps(k) for k in data)
        items = (f"{inner}{json.dumps(k)}: {_json_text(v, level + 1)}" for k, v in zip(keys, data.values()))
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(data, (list, tuple)) and any(isinstance(x, (dict, list, tuple)) for x in data):
        return "[\n" + ",\n".join(inner + _json_text(x, level + 1) for x in data) + "\n" + pad + "]"
    return json.dumps(data)


def write_json(path: PathLike, data: Any) -> Path:
    """Atomically write ``data`` as indented JSON (lists of plain values on one line)."""
    return atomic_write(path, lambda p: p.write_text(_json_text(data) + "\n"))


def save_torch(path: PathLike, obj: Any) -> Path:
    """Atomically ``torch.save`` an object."""

    def save(tmp: Path) -> None:
        # through a Python file: a full disk is then an OSError (ENOSPC), not the C++ writer's RuntimeError
        with open(tmp, "wb") as f:
            try:
                torch.save(obj, f)
            except RuntimeError as e:
                # closing its archive after the failed write, torch raises its own error over the OSError
                if isinstance(e.__context__, OSError):
                    raise e.__context__ from None
                raise

    return atomic_write(path, save)
