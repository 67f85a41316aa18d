"""Where a result came from: atomic file writes, versions, git commit and hardware."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Callable, Dict, Mapping, Union

import torch

__all__ = [
    "check_folder_writable",
    "atomic_write",
    "atomic_copy",
    "write_json",
    "save_torch",
    "environment",
    "git_commit",
    "hardware_kind",
]

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


def git_commit(repo: PathLike | None = None) -> Dict[str, Any]:
    """Commit hash of the checkout holding gmmlib (or ``repo``) and whether it had local changes."""
    repo = Path(repo) if repo else Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--", "gmmlib"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        return {"commit": commit, "gmmlib_modified": bool(dirty)}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "gmmlib_modified": None}


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(device: torch.device | str | None = None) -> Dict[str, Any]:
    """Library versions, git commit and hardware, for the provenance of a result."""
    import numpy
    import timm
    import torchvision

    from . import __version__

    device = torch.device(device) if device is not None else torch.device("cpu")
    hw: Dict[str, Any] = {
        "device": str(device),
        "cpu": _cpu_name(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
    }
    if device.type == "cuda":
        hw["gpu"] = torch.cuda.get_device_name(device)
    return {
        "versions": {
            "gmmlib": __version__,
            "python": platform.python_version(),
            "torch": torch.__version__,
            "torchvision": torchvision.__version__,
            "timm": timm.__version__,
            "numpy": numpy.__version__,
        },
        "git": git_commit(),
        "hardware": hw,
        "platform": platform.platform(),
    }


def hardware_kind(record: Mapping[str, Any]) -> str:
    """Where a run trained, as far as it changes the run: the device type and the data path (e.g.
    ``"cpu, workers"``, ``"cuda, batched"``), so that a comparison is checked for one kind throughout."""
    from .config import data_path_name

    device = str((record.get("hardware") or {}).get("device", "cpu")).split(":")[0]
    path = (record.get("config") or {}).get("data_path") or record.get("data_pipeline") or "workers"
    return f"{device}, {data_path_name(path)}"
