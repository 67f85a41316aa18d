"""This machine as a run sees it: where checkpoints and results go, and the run plan that ``gmmlib env`` prints.

One setting moves both output folders, so that a Colab session can keep them on Google Drive and lose
nothing to a disconnect: ``--output DIR`` or ``GMMLIB_OUTPUT=DIR`` puts results in ``DIR/results`` and
checkpoints of runs in progress in ``DIR/runs``. ``--results``/``--work-dir`` (and ``GMMLIB_RESULTS``
for the results) still name either folder on its own.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import List, Optional, Tuple

import torch

from .. import data as gdata
from ..store.paths import results_dir
from ..training.config import PRESETS, RunConfig
from ..training.plan import GPUS, RunPlan, gpu_spec, plan_for

__all__ = [
    "ASSUMED_SHARE_OF_PEAK",
    "OUTPUT_ENV",
    "describe_machine",
    "estimate_minutes",
    "output_folders",
    "paper_run_minutes",
]

OUTPUT_ENV = "GMMLIB_OUTPUT"

# The share of a GPU's dense peak that a paper-preset step sustains: a 2.7M-parameter model at batch 128 is
# launch-bound, far from the peak. Calibrated on this project's one GPU measurement (an H100, before the
# compiled path existed): the ViT eager 4,884 img/s end to end (DataLoader workers), about 0.5 % of its 989
# TFLOPS; the ViT step alone with CUDA graphs and fused AdamW 30.6k img/s, about 3 %. Other GPUs are scaled by
# their peak, which for a launch-bound model overstates the time on a small GPU; benchmarks/gpu_throughput.py
# on the GPU replaces the estimate.
ASSUMED_SHARE_OF_PEAK = {"compiled": 0.03, "eager": 0.005}

_ESTIMATED = RunConfig(model="vit", mask="gmm", pool="gap", dataset="cifar10", preset="paper")  # the headline's run


def output_folders(
    output: Optional[str | Path] = None, results: Optional[str | Path] = None, work_dir: Optional[str | Path] = None
) -> Tuple[Path, Path]:
    """The results folder and the folder of checkpoints of runs in progress.

    Args:
        output: one folder for both (``DIR/results``, ``DIR/runs``); default ``GMMLIB_OUTPUT``.
        results: the results folder itself (wins over ``output``); then ``GMMLIB_RESULTS``; default
            ``results/`` of this checkout.
        work_dir: the checkpoints' folder itself (wins over ``output``); default ``runs``.
    """
    from_flag = Path(output) if output is not None else None
    from_env = Path(os.environ[OUTPUT_ENV]) if os.environ.get(OUTPUT_ENV) else None
    if results is not None or from_flag is not None:
        res = Path(results) if results is not None else from_flag / "results"  # type: ignore[operator]
    elif os.environ.get("GMMLIB_RESULTS") or from_env is None:
        res = results_dir()
    else:
        res = from_env / "results"
    base = from_flag or from_env
    work = Path(work_dir) if work_dir is not None else (base / "runs" if base is not None else Path("runs"))
    return res, work


def estimate_minutes(plan: RunPlan, gpu: str, flops_per_image: float, images: int) -> Optional[float]:
    """Minutes of one run from the cost model: ``images`` x ``flops_per_image`` (forward) x 3 (forward and
    backward) at :data:`ASSUMED_SHARE_OF_PEAK` of the GPU's peak in the plan's precision; None for an unknown GPU."""
    spec = gpu_spec(gpu)
    if spec is None or plan.precision not in spec.peak_tflops:
        return None
    rate = spec.peak_tflops[plan.precision] * 1e12 * ASSUMED_SHARE_OF_PEAK["compiled" if plan.compile else "eager"]
    return images * 3 * flops_per_image / rate / 60


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _data_line(dataset: str, root: Optional[str]) -> str:
    try:
        source = gdata.describe_source(dataset, root, sha256=False)
    except gdata.DataNotFoundError:
        return f"{dataset}: missing (pass --download on a machine with internet, or put the files in the data root)"
    return f"{dataset}: present ({source['kind']})"


def describe_machine(
    gpu: Optional[str] = None,
    preset: str = "paper",
    torch_version: Optional[str] = None,
    device: Optional[str] = None,
    data: Optional[str] = None,
    dataset: str = "cifar10",
    data_path: Optional[str] = None,
    output: Optional[str] = None,
    results: Optional[str] = None,
    work_dir: Optional[str] = None,
) -> List[str]:
    """The lines ``gmmlib env`` prints: the plan for this machine (or for ``gpu``), its data and output folders.

    Args:
        gpu: a GPU of :data:`gmmlib.training.plan.GPUS` to plan for on any machine (None: this machine's device).
        preset: the preset whose plan is printed.
        torch_version: plan for this torch release instead of the installed one.
        device: this machine's device to plan for (default: CUDA when available).
        data, dataset: the data root and the data set whose files are looked for.
        data_path: "batched" or "workers".
        output, results, work_dir: the output folders (see :func:`output_folders`).

    Raises:
        ValueError: an unknown GPU or preset.
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choices: {', '.join(PRESETS)}")
    if gpu is not None and gpu not in GPUS:
        raise ValueError(f"unknown GPU {gpu!r}; choose one of: {', '.join(GPUS)}")
    if gpu is not None:
        spec = GPUS[gpu]
        dev, capability, where = torch.device("cuda"), spec.capability, f"cuda (the {gpu}'s plan, shown on any machine)"
        name = f"{spec.name} ({spec.memory_gb} GB)"
    else:
        dev, capability = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu")), None
        where = name = None

    def plan_of(preset_name: str) -> RunPlan:
        return plan_for(dev, PRESETS[preset_name], torch_version, capability, gpu_name=gpu, data_path=data_path)

    plan = plan_of(preset)
    where, name = where or plan.device, name or plan.gpu or "none"
    res, work = output_folders(output, results, work_dir)
    lines = [
        f"device: {where}",
        f"gpu: {name}",
        f"capability: {plan.capability or 'none'}",
        f"torch: {plan.torch}",
        f"precision: {plan.precision}",
        f"grad scaler: {_yes(plan.grad_scaler)}",
        f"compile: {_yes(plan.compile)}",
        f"cuda graphs: {_yes(plan.cuda_graphs)}",
        f"attention: {plan.attention}",
        f"data path: {plan.data_path}",
        f"workers: {plan.workers}",
        f"data root: {gdata.data_root(data)}",
        f"data: {_data_line(dataset, data)}",
        f"results: {res.absolute()}",
        f"checkpoints: {work.absolute()}",
    ]
    lines.append(_estimate_line(plan_of("paper")))
    lines += [f"note: {n}" for n in plan.notes]
    return lines


@functools.lru_cache(maxsize=1)
def _paper_work() -> Tuple[float, int]:
    """Forward FLOPs per image of the headline's GMM-ViT, and the images one paper-preset run trains on."""
    from ..cost import profile

    paper = PRESETS["paper"]
    images = paper.epochs * paper.passes_per_epoch * gdata.get_info("cifar10").expected_count("train")
    return profile(_ESTIMATED.build_model(), 32)["flops"], images


def paper_run_minutes(plan: RunPlan) -> Optional[float]:
    """The estimated minutes of the headline's paper-preset GMM-ViT run on CIFAR-10 under ``plan`` (a paper
    plan for a GPU of :data:`GPUS`), from the cost model; None for any other device."""
    if gpu_spec(plan.gpu) is None:
        return None
    return estimate_minutes(plan, plan.gpu or "", *_paper_work())


def _estimate_line(plan: RunPlan) -> str:
    spec, minutes = gpu_spec(plan.gpu), paper_run_minutes(plan)
    if spec is None or minutes is None:
        return f"minutes per paper run: no estimate for this device (see --gpu {'|'.join(GPUS)})"
    flops, images = _paper_work()
    share = ASSUMED_SHARE_OF_PEAK["compiled" if plan.compile else "eager"]
    return (
        f"minutes per paper run: {minutes:.0f} (an estimate, not a measurement: GMM-ViT, {3 * flops / 1e9:.2f} "
        f"GFLOP per training image x {images:,} images at an assumed {100 * share:g} % of the {spec.name}'s "
        f"{spec.peak_tflops[plan.precision]:g} TFLOPS {plan.precision} peak)"
    )
