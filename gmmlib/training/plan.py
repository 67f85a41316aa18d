"""The run plan: how one run executes on this device, chosen once from its compute capability and torch release.

Every choice that depends on the hardware is made here, in one table each, and recorded as it ran:

* precision: bfloat16 autocast only where bf16 is native (compute capability >= 8.0); float16 autocast
  with a ``GradScaler`` on 7.x (a Colab T4: Triton has no bf16 there, and emulated bf16 is slower than
  float32); float32 below 7.0, on CPU and on MPS, as the official code.
* compilation (``torch.compile``), CUDA graphs and FlexAttention for the multiplicative masks: only on
  capability >= 8.0 with torch >= :data:`COMPILE_MIN_TORCH` (2.12), the first release surely branched
  after the fixes this path needs (captured mask buffers that need gradients, pytorch/pytorch#145460;
  head dimensions that are no power of two, PiT's 48; the mixed-dtype backward of a float32 mask beside
  bf16 queries, pytorch/pytorch#174018, fixed by #174251 in February 2026, around 2.11's branch cut).
  Older torch releases keep ``pyproject.toml``'s lower bound (2.5) and train eagerly: the path is gated
  on the version, not the install.
* CUDA graphs never under torchrun (pytorch/pytorch#113809, #128218) until verified on real GPUs.
* DataLoader workers (the "workers" data path only): the preset's count, or, where the preset leaves it
  open (``None``, the paper preset), one per CPU core beside the training process, at most 8.

``gmmlib env`` prints the plan of this machine, or with ``--gpu`` the plan of a GPU of :data:`GPUS`.
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass, replace
from typing import Any, Dict, Mapping, Optional, Tuple

import torch

from ..attention import FLEX_MIN_CAPABILITY, FLEX_MIN_TORCH
from .config import Preset, data_path_name

__all__ = [
    "COMPILE_MIN_TORCH",
    "GPUS",
    "GpuSpec",
    "PRECISIONS",
    "RunPlan",
    "gpu_spec",
    "plan_for",
    "precision_for",
    "torch_release",
    "workers_for",
]

Capability = Tuple[int, int]

# The compiled path (inductor, CUDA graphs, FlexAttention for GMM/ELM) is on by default only from here.
COMPILE_MIN_TORCH: Tuple[int, int] = FLEX_MIN_TORCH
COMPILE_MIN_CAPABILITY: Capability = FLEX_MIN_CAPABILITY

# Autocast dtype per precision (float32: no autocast).
PRECISIONS: Dict[str, Optional[torch.dtype]] = {"float32": None, "float16": torch.float16, "bfloat16": torch.bfloat16}

# The lowest compute capability of each precision, best first: the first one a device reaches is its own.
_PRECISION_BY_CAPABILITY: Tuple[Tuple[Capability, str], ...] = (((8, 0), "bfloat16"), ((7, 0), "float16"))

_MAX_AUTO_WORKERS = 8  # the official recipe's loader; more gain nothing at batch 128 on 32 x 32 images


@dataclass(frozen=True)
class GpuSpec:
    """A GPU that ``gmmlib env --gpu`` knows: its capability, memory and dense peak TFLOPS per precision.

    The peaks are the vendor's dense tensor-core figures (no sparsity), used only for the labelled estimate
    of minutes per run in ``gmmlib env``.
    """

    name: str
    capability: Capability
    memory_gb: int
    peak_tflops: Mapping[str, float]


GPUS: Dict[str, GpuSpec] = {
    g.name: g
    for g in (
        GpuSpec("T4", (7, 5), 15, {"float16": 65.0, "float32": 8.1}),
        GpuSpec("L4", (8, 9), 24, {"bfloat16": 121.0, "float16": 121.0, "float32": 30.3}),
        GpuSpec("A100", (8, 0), 40, {"bfloat16": 312.0, "float16": 312.0, "float32": 19.5}),
        GpuSpec("H100", (9, 0), 80, {"bfloat16": 989.0, "float16": 989.0, "float32": 67.0}),
        GpuSpec("H200", (9, 0), 141, {"bfloat16": 989.0, "float16": 989.0, "float32": 67.0}),
    )
}


def gpu_spec(name: Optional[str]) -> Optional[GpuSpec]:
    """The entry of :data:`GPUS` that a device name such as ``"Tesla T4"`` or ``"NVIDIA H100 80GB HBM3"`` names.

    A whole word must match, so that an L40S is not taken for an L4; None for any other GPU.
    """
    if not name:
        return None
    for short, spec in GPUS.items():
        if re.search(rf"(?<![A-Za-z0-9]){short}(?![0-9])", name, flags=re.IGNORECASE):
            return spec
    return None


def torch_release(version: Optional[str] = None) -> Tuple[int, int]:
    """``(major, minor)`` of a torch version string (``"2.14.1+cu130"``, ``"2.12.0a0+git..."``); default: installed.

    Raises:
        ValueError: a string that does not start with ``MAJOR.MINOR``.
    """
    text = torch.__version__ if version is None else str(version)
    found = re.match(r"\s*(\d+)\.(\d+)", text)
    if found is None:
        raise ValueError(f"torch version {text!r} does not start with MAJOR.MINOR (e.g. 2.12)")
    return int(found.group(1)), int(found.group(2))


def precision_for(device_type: str, capability: Optional[Capability]) -> str:
    """The training precision of a device: "bfloat16" (CUDA >= 8.0), "float16" (7.x) or "float32"."""
    if device_type != "cuda" or capability is None:
        return "float32"
    return next((p for lowest, p in _PRECISION_BY_CAPABILITY if tuple(capability) >= lowest), "float32")


def _cpu_count() -> int:
    """The cores this process may run on (a container's share, not the host's count)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def workers_for(preset: Preset, data_path: str, cpu_count: Optional[int] = None) -> int:
    """DataLoader workers of a run: 0 on the batched path; the preset's count; or, left open, one per spare core."""
    if data_path_name(data_path) != "workers":
        return 0
    if preset.num_workers is not None:
        return preset.num_workers
    cpus = cpu_count if cpu_count is not None else _cpu_count()
    return max(0, min(_MAX_AUTO_WORKERS, cpus - 1))  # one core stays with the training process


@dataclass(frozen=True)
class RunPlan:
    """How one run executes; :func:`plan_for` chooses it, and a run records what actually ran.

    Args:
        device: the torch device ("cpu", "cuda:0", ...).
        gpu: the GPU's name (None on CPU).
        capability: the GPU's compute capability as "major.minor" (None on CPU).
        torch: the torch version the plan was made for.
        precision: "float32", "float16" or "bfloat16" (the autocast dtype; float32: no autocast).
        grad_scaler: float16 autocast scales the loss (``torch.amp.GradScaler``).
        compile: the training step is compiled with ``torch.compile``.
        cuda_graphs: compiled with ``mode="reduce-overhead"`` (CUDA graphs).
        attention: the path of multiplicative masks: "fused" (the hand-written kernel, eager), "flex"
            (FlexAttention inside the compiled model) or "inductor" (plain ops that inductor fuses).
        fused_optimizer: AdamW's fused CUDA kernel.
        data_path: "batched" or "workers".
        workers: DataLoader worker processes (the workers data path only).
        world_size: processes of the run (torchrun).
        notes: why a path is off, one short line each.
    """

    device: str
    gpu: Optional[str]
    capability: Optional[str]
    torch: str
    precision: str
    grad_scaler: bool
    compile: bool
    cuda_graphs: bool
    attention: str
    fused_optimizer: bool
    data_path: str
    workers: int
    world_size: int = 1
    notes: Tuple[str, ...] = ()

    @property
    def autocast_dtype(self) -> Optional[torch.dtype]:
        """The autocast dtype (None: float32, no autocast)."""
        return PRECISIONS[self.precision]

    @property
    def compile_mode(self) -> Optional[str]:
        """``torch.compile``'s mode: "reduce-overhead" (CUDA graphs) or None (inductor's default)."""
        return "reduce-overhead" if self.cuda_graphs else None

    def eager(self, why: str) -> "RunPlan":
        """This plan without compilation (what runs after compilation failed or fell back), ``why`` noted."""
        return replace(self, compile=False, cuda_graphs=False, attention="fused", notes=(*self.notes, why))

    def as_record(self) -> Dict[str, Any]:
        """The plan as a result records it (JSON types)."""
        out = asdict(self)
        out["notes"] = list(self.notes)
        return out


def _capability_text(capability: Optional[Capability]) -> Optional[str]:
    return None if capability is None else f"{capability[0]}.{capability[1]}"


def plan_for(
    device: torch.device | str,
    preset: Preset,
    torch_version: Optional[str] = None,
    capability: Optional[Capability] = None,
    world_size: int = 1,
    compile: Optional[bool] = None,
    data_path: Optional[str] = None,
    gpu_name: Optional[str] = None,
    cpu_count: Optional[int] = None,
) -> RunPlan:
    """The plan of a run of ``preset`` on ``device``.

    Args:
        device: the torch device (for CUDA without ``capability``, the device is asked).
        preset: the run's preset; the paper preset alone compiles by default.
        torch_version: the torch release to plan for (default: the installed one).
        capability: the GPU's compute capability, e.g. (7, 5) (default: asked from the device).
        world_size: processes of the run (torchrun): more than one turns CUDA graphs off.
        compile: force compilation on or off (None: the table's choice).
        data_path: "batched" (default) or "workers".
        gpu_name: the GPU's name (default: asked from the device).
        cpu_count: CPU cores for the worker count (default: this process's).
    """
    dev = torch.device(device)
    version = torch.__version__ if torch_version is None else str(torch_version)
    release = torch_release(version)
    cuda = dev.type == "cuda"
    if cuda and capability is None:  # this machine's GPU (a simulated one comes with its capability)
        capability = tuple(torch.cuda.get_device_capability(dev))  # type: ignore[assignment]
        gpu_name = gpu_name or torch.cuda.get_device_name(dev)
    capability = tuple(capability) if cuda and capability is not None else None  # type: ignore[assignment]
    notes = []
    precision = precision_for(dev.type, capability)
    fast = cuda and capability is not None and capability >= COMPILE_MIN_CAPABILITY
    recent = release >= COMPILE_MIN_TORCH
    if cuda and not fast:
        notes.append(f"capability {_capability_text(capability)} < 8.0: no bf16, no compiled path by default")
    if cuda and fast and not recent:
        notes.append(f"torch {version} < {COMPILE_MIN_TORCH[0]}.{COMPILE_MIN_TORCH[1]}: the compiled path stays off")
    compiled = bool(compile) if compile is not None else (fast and recent and preset.name == "paper")
    graphs = compiled and fast and recent and world_size == 1
    if compiled and cuda and world_size > 1:
        notes.append("torchrun: no CUDA graphs until verified on real GPUs")
    attention = "fused"
    if compiled:
        attention = "flex" if fast and recent else "inductor"
    path = data_path_name(data_path)
    return RunPlan(
        device=str(dev),
        gpu=gpu_name if cuda else None,
        capability=_capability_text(capability),
        torch=version,
        precision=precision,
        grad_scaler=precision == "float16",
        compile=compiled,
        cuda_graphs=graphs,
        attention=attention,
        fused_optimizer=cuda,
        data_path=path,
        workers=workers_for(preset, path, cpu_count),
        world_size=world_size,
        notes=tuple(notes),
    )
