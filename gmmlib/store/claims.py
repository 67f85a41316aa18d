"""Claims on runs: one process at a time trains a run, whichever runner (or terminal, or machine) asks.

A claim is an exclusive ``flock`` on ``<folder>/.claims/<key>.lock`` (the results folder's, and the work
folder's while a run trains there), held from the moment a runner decides to train a run until its record
is written. The file names its holder (pid, host, since when) for the one line another runner prints when
it finds the run taken. The kernel drops a flock when its process ends, however it ends (kill -9, a power
cut): a claim a dead process left is simply taken over. The file is removed on release, so a results folder
holds no claim once nothing runs.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from pathlib import Path
from typing import Iterable, Optional

__all__ = ["CLAIMS", "Claim", "claim_path", "holder", "clear_left"]

CLAIMS = ".claims"


def claim_path(folder: os.PathLike | str, key: str) -> Path:
    """The lock file of run ``key``'s claim in ``folder`` (a results or work folder)."""
    return Path(folder) / CLAIMS / f"{key}.lock"


def holder(path: Path) -> str:
    """Who holds (or last held) the claim at ``path``, as a phrase: "pid 4242 on host-a (since 06:10:03)"."""
    try:
        who = json.loads(path.read_text())
        return f"pid {int(who['pid'])} on {who['host']} (since {who['since']})"
    except (OSError, ValueError, KeyError, TypeError):  # gone, or being written this instant
        return "another process"


class Claim:
    """A held claim (see the module's docstring); release it with :meth:`release` or as a context manager.

    Args:
        path: its lock file (:func:`claim_path`).
        fd: the open, flocked descriptor.
        took_over: the holder a file left by a process that died named, when this claim took it over.
    """

    def __init__(self, path: Path, fd: int, took_over: Optional[str] = None) -> None:
        self.path, self.fd, self.took_over = path, fd, took_over

    def __repr__(self) -> str:
        return f"Claim({str(self.path)!r})"

    @classmethod
    def take(cls, folder: os.PathLike | str, key: str, wait: bool = False) -> Optional["Claim"]:
        """Claim run ``key`` in ``folder``; None when another process holds it (``wait``: block until it is free).

        Raises:
            OSError: the folder cannot be written (checked before any run starts: see ``Store.check_writable``).
        """
        path = claim_path(folder, key)
        while True:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            except (FileNotFoundError, FileExistsError):  # a release removed the folder meanwhile: make it again
                if path.parent.is_file():
                    raise NotADirectoryError(f"{path.parent} is a file; the claims on runs need a folder there")
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                os.close(fd)
                return None
            except BaseException:  # interrupted while waiting: nothing held, nothing left open
                os.close(fd)
                raise
            try:
                # the holder before us unlinks the file before it lets go: a lock on a file no longer there
                # (or on one a third process made since) claims nothing; try again on the file that is there
                current = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                current = False
            if current:
                break
            os.close(fd)
        took_over = holder(path) if os.fstat(fd).st_size else None  # only a dead holder leaves its file
        me = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%d %H:%M:%S")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(me).encode(), 0)
        return cls(path, fd, took_over)

    def release(self) -> None:
        """Let the run go: the file leaves first (see :meth:`take`), then the lock, then an empty claims folder."""
        if self.fd < 0:
            return
        self.path.unlink(missing_ok=True)
        os.close(self.fd)
        self.fd = -1
        try:
            self.path.parent.rmdir()
        except OSError:  # another run's claim is in it, or it is gone
            pass

    def __enter__(self) -> "Claim":
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def clear_left(folder: os.PathLike | str, keys: Iterable[str]) -> None:
    """Remove the claims on ``keys`` that processes which died left in ``folder`` (for runs another process took up
    since, or that were done when it died); a claim held now is left alone."""
    for key in keys:
        if claim_path(folder, key).exists():
            claim = Claim.take(folder, key)
            if claim is not None:
                claim.release()
