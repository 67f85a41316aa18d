"""Where a result came from: the library's version, git commit, library versions and hardware."""

from __future__ import annotations

import functools
import hashlib
import os
import platform
import subprocess
from pathlib import Path
from typing import Any, Dict, Mapping

import torch

from ..files import PathLike

__version__ = "0.1.0"

__all__ = ["code_fingerprint", "git_commit", "environment", "hardware_kind"]


def git_commit(repo: PathLike | None = None) -> Dict[str, Any]:
    """Commit hash of the checkout holding gmmlib (or ``repo``) and whether it had local changes."""
    repo = Path(repo) if repo else Path(__file__).resolve().parents[2]
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


@functools.lru_cache(maxsize=None)
def code_fingerprint() -> str:
    """sha256 of the gmmlib package's source (every ``.py`` file, by path and content), computed once per process.

    A checkpoint carries the fingerprint of the code that made it, so that a run is continued only by
    the same code: a commit and a clean flag say less (a modified tree, a commit that changed nothing
    of gmmlib), and a tree outside git has neither.
    """
    package = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


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

    device = torch.device(device) if device is not None else torch.device("cpu")
    hw: Dict[str, Any] = {
        "device": str(device),
        "cpu": _cpu_name(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
    }
    if device.type == "cuda":
        hw["gpu"] = torch.cuda.get_device_name(device)
        major, minor = torch.cuda.get_device_capability(device)
        hw["gpu_capability"] = f"{major}.{minor}"  # what sets the precision and the compiled path
        hw["gpu_memory_gb"] = round(torch.cuda.get_device_properties(device).total_memory / 2**30, 1)
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
    """Where a run trained, as far as it changes the run: the device type, for a GPU its model and compute
    capability, and the data path (e.g. ``"cpu, workers"``, ``"cuda T4 7.5, batched"``), so that a comparison
    is checked for one kind throughout: a T4 (float16, eager) and an H100 (bfloat16, compiled) run differ.

    Records made before the capability was recorded say only ``"cuda, batched"``: which GPU they ran on
    cannot be told apart from what they recorded then.
    """
    from .config import data_path_name
    from .plan import gpu_spec

    hardware = record.get("hardware") or {}
    device = str(hardware.get("device", "cpu")).split(":")[0]
    if device == "cuda" and hardware.get("gpu_capability"):
        spec = gpu_spec(hardware.get("gpu"))
        device = f"cuda {spec.name if spec else hardware.get('gpu')} {hardware['gpu_capability']}"
    path = (record.get("config") or {}).get("data_path") or record.get("data_pipeline") or "workers"
    return f"{device}, {data_path_name(path)}"
