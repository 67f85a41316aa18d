"""What a run costs in images and time: chapter 1's reading of why the book trains scaled-down models.

The images a run sees follow from its preset; the minutes a recorded run took are a fact of its record
(``wall_seconds``, on the machine its record names). Neither is a speed comparison: two runs' minutes differ
with whatever else ran beside them. How fast the paper-size ViT trains comes from a benchmark
(``results/benchmarks/throughput_cpu_paper.json``, :mod:`gmmlib.readings.speed`), never from a training log.

Example:
    >>> print(scale_answer())            # chapter 1's answer paragraph
    >>> budget = cpu_run_budget()         # the recorded cpu-preset runs: minutes, images, top-1
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

from ..data import get_info
from ..stats.paper import paper
from ..stats.tables import load
from ..training.config import PRESETS
from .speed import load_benchmark, machine_text, not_recorded, paper_run_time

__all__ = [
    "images_per_epoch",
    "images_seen",
    "paper_images",
    "RunBudget",
    "cpu_run_budget",
    "paper_run_text",
    "demo_text",
    "scale_answer",
]


def _split_size(dataset: str, split: str) -> int:
    return dict(get_info(dataset).split_sizes)[split]


def images_per_epoch(run: Mapping[str, Any]) -> int:
    """Training images one epoch of a run (a record or a result) sees: whole batches only, as the loop trains."""
    preset, config = run["config"]["preset_values"], run["config"]
    n = _split_size(config["dataset"], "train")
    if preset.get("train_limit"):
        n = min(n, int(preset["train_limit"]))
    return n * preset["passes_per_epoch"] // preset["batch_size"] * preset["batch_size"]


def images_seen(run: Mapping[str, Any]) -> List[int]:
    """Training images seen by the end of each recorded epoch of a run."""
    return [h["epoch"] * images_per_epoch(run) for h in run["history"]]


def paper_images(dataset: str = "cifar10") -> int:
    """Training images one ``paper``-preset run sees: epochs x passes x the training split (before batching)."""
    p = PRESETS["paper"]
    return p.epochs * p.passes_per_epoch * _split_size(dataset, "train")


@dataclass(frozen=True)
class RunBudget:
    """The recorded ``cpu``-preset runs of one experiment, as a budget.

    Attributes:
        runs: the records read (every arm and seed on the named device).
        minutes: each run's wall time (minutes), in the records' order.
        machines: the CPUs (and torch threads) the runs trained on, as their records name them.
        baseline: the unmasked model's records among them (what chapter 1's figure draws).
    """

    runs: List[Dict[str, Any]]
    minutes: List[float]
    machines: List[str]
    baseline: List[Dict[str, Any]]

    @property
    def median_minutes(self) -> float:
        return statistics.median(self.minutes) if self.minutes else math.nan

    @property
    def baseline_final(self) -> List[float]:
        return [r["final_top1"] for r in self.baseline]

    @property
    def images(self) -> int:
        """Training images one run of the baseline sees (all its epochs)."""
        return images_seen(self.baseline[0])[-1] if self.baseline else 0

    def minutes_text(self) -> str:
        """How long the runs took, from their records: count, range, median and machine (a clause, lower case)."""
        if not self.minutes:
            return ""
        lo, hi = min(self.minutes), max(self.minutes)
        return (
            f"the {len(self.minutes)} recorded `cpu`-preset runs of the `headline` experiment (ViT and GMM-ViT) "
            f"took {lo:.0f} to {hi:.0f} minutes each, median {self.median_minutes:.0f}, by their records' wall "
            f"time, on {' and '.join(self.machines)}"
        )


def cpu_run_budget(
    experiment: str = "headline", device: str = "cpu", results: Optional[str | Path] = None
) -> RunBudget:
    """The recorded ``cpu``-preset runs of ``experiment`` trained on ``device``; empty until recorded."""
    runs = [
        r for r in load(experiment, results) if r["config"]["preset"] == "cpu" and r["hardware"].get("device") == device
    ]
    machines = list(
        dict.fromkeys(
            f"{r['hardware'].get('cpu', 'an unnamed CPU')} ({r['hardware'].get('torch_threads', '?')} torch "
            f"thread{'s' if r['hardware'].get('torch_threads') != 1 else ''})"
            for r in runs
        )
    )
    return RunBudget(
        runs=runs,
        minutes=[r["wall_seconds"] / 60 for r in runs],
        machines=machines,
        baseline=[r for r in runs if not r["config"]["mask"]],
    )


def paper_run_text(results: Optional[str | Path] = None, detail: bool = True) -> str:
    """How long one ``paper``-preset run would take on this book's CPU: its images over the paper-size ViT's
    training speed as ``benchmarks/gpu_throughput.py`` recorded it (data path and augmentation included)."""
    bench = load_benchmark("throughput_cpu_paper", results)
    estimate = paper_run_time(bench)
    if estimate is None:
        return not_recorded("throughput_cpu_paper")
    return (
        f"The paper-size ViT trains at {estimate['images_per_second']:.0f} images per second on this book's CPU, "
        f"augmentation included (`benchmarks/gpu_throughput.py`, recorded on {machine_text(bench, detail)}), so "
        f"one run would take about {estimate['hours']:.0f} hours ({estimate['hours'] / 24:.1f} days)."
    )


def demo_text(result: Mapping[str, Any], budget: RunBudget, real_data: bool, command: str) -> str:
    """Chapter 1's reading of its live demo: what it trained and reached, against chance and one test image,
    then the recorded ``cpu``-preset runs beside it (``budget``) and the paper's recipe.

    Args:
        result: the demo's result (``gmmlib.training.loop.train``'s).
        budget: :func:`cpu_run_budget`.
        real_data: whether the demo trained on (a subset of) CIFAR-10 rather than synthetic images.
        command: the command line of one recorded run, for the reader to rerun.
    """
    cfg, dataset = result["config"]["preset_values"], result["config"]["dataset"]
    train = min(_split_size(dataset, "train"), cfg["train_limit"] or math.inf)
    test = min(_split_size(dataset, "test"), cfg["test_limit"] or math.inf)
    chance = 100 / get_info(dataset).num_classes
    passes = len(result["history"]) * cfg["passes_per_epoch"]
    steps = images_per_epoch(result) // cfg["batch_size"] * len(result["history"])
    text = (
        f"**What the demo shows.** A ViT of {result['cost']['params']:,} parameters, trained for {steps} steps of "
        f"{cfg['batch_size']} images ({passes} passes over {train} training images of `{dataset}`), ends at "
        f"{result['final_top1']:.1f} % top-1 on {test} test images; chance is {chance:.0f} %, and one test image "
        f"is {100 / test:.2f} points. "
    )
    text += (
        "That is far too little training to learn CIFAR-10: the number checks that the pipeline runs, it is not "
        "a result."
        if real_data
        else "These are synthetic images, easy even for a tiny model: the number says nothing about CIFAR-10."
    )
    if not budget.baseline:
        return text + "\n\nNo `cpu`-preset ViT run is recorded in `results/` yet."
    r = budget.baseline[0]
    finals = budget.baseline_final
    spread = f"mean of {len(finals)} seeds, std {statistics.stdev(finals):.2f}" if len(finals) > 1 else "one seed"
    table = paper()["main_table"]
    paper_vit = table["rows"]["vit"]["none"][table["datasets"].index("cifar10")]
    return text + (
        f"\n\nThe recorded `cpu`-preset runs (lines) train a ViT of {r['cost']['params']:,} parameters for "
        f"{budget.images // r['config']['preset_values']['batch_size']:,} steps on all "
        f"{_split_size('cifar10', 'train'):,} CIFAR-10 training images: they see "
        f"{budget.images / images_seen(result)[-1]:.0f} times as many images as the demo and end at "
        f"{statistics.mean(finals):.2f} % top-1 on the {_split_size('cifar10', 'test'):,} test images ({spread}). "
        f"The paper's recipe sees {paper_images() / budget.images:.0f} times as many images again, with the "
        f"paper-size ViT, and its README reports {paper_vit:.2f} % for the ViT (diamond). One such `cpu`-preset "
        f"run (the plain ViT, seed 0) is `{command}`, with the data root in `GMMLIB_DATA`."
    )


def scale_answer(results: Optional[str | Path] = None) -> str:
    """Chapter 1's answer: what a paper-scale run would cost here, what a cpu-scale run costs and reaches, and
    therefore what the book compares. Every number from a record (runs, benchmark) or the paper's README."""
    budget = cpu_run_budget(results=results)
    table = paper()["main_table"]
    paper_vit = table["rows"]["vit"]["none"][table["datasets"].index("cifar10")]
    question = (
        "**Question:** why does a ViT struggle on small data, and what can a book trained on two CPU cores afford "
        "to test? **Answer:** a ViT has to learn from data that near patches belong together, and the paper's "
        f"remedy is a mask on attention. One run of the paper's recipe sees {paper_images() / 1e6:.0f} million "
        f"images. {paper_run_text(results, detail=False)}"
    )
    if not budget.baseline:
        return question + " No `cpu`-preset run is recorded yet."
    finals = budget.baseline_final
    return (
        f"{question} So this book trains scaled-down models (the `cpu` preset: the same token grids, fewer and "
        f"narrower layers, {PRESETS['cpu'].epochs} epochs): {budget.minutes_text()}. Its plain ViT ends at "
        f"{statistics.mean(finals):.1f} % top-1 on CIFAR-10 ({len(finals)} seeds), far below the paper's "
        f"{paper_vit:.2f} %, so the book compares the *difference* a mask makes under the same budget, over "
        "several seeds, and never a cpu-scale accuracy with the paper's."
    )
