"""Speed, read from recorded benchmarks (``results/benchmarks/<name>.json``), never from training logs.

A training log's images per second measure the machine as much as the model: whatever else ran at the time
slows one run and not its partner, so two runs' logged speeds are not a comparison. A benchmark times both arms
in the same interleaved rounds, and its ratio is what the book reads; its record (written by the script's
``--record PATH``, see ``benchmarks/_record.py``) says which command, machine, date and commit made it.

Example:
    >>> record = load_benchmark("gmm_overhead")
    >>> training_overhead(record, "paper").ratio      # GMM-ViT's training step over ViT's, side by side
    >>> print(gmm_speed_text("cpu"))                    # the sentence a chapter prints
"""

from __future__ import annotations

import datetime
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

from ..store.paths import results_dir

__all__ = [
    "BENCHMARK_COMMANDS",
    "BenchmarkError",
    "benchmark_path",
    "load_benchmark",
    "not_recorded",
    "machine_text",
    "Overhead",
    "training_overhead",
    "overhead_text",
    "attention_call_rows",
    "family_step_rows",
    "families_speed_text",
    "gmm_speed_text",
    "paper_run_time",
]

# How each record the book reads is made (the settings its figures were recorded with are in the record).
BENCHMARK_COMMANDS: Dict[str, str] = {
    "gmm_overhead": (
        "python benchmarks/gmm_overhead.py --threads 1 --rounds 12 --family-rounds 5 --attention-rounds 20 "
        "--record results/benchmarks/gmm_overhead.json"
    ),
    "throughput_cpu_paper": (
        "python benchmarks/gpu_throughput.py --device cpu --preset paper --data-epochs 0 --parallel 1 --steps 2 "
        "--rounds 3 --warmup 1 --threads 1 --record results/benchmarks/throughput_cpu_paper.json"
    ),
}
_REQUIRED = ("benchmark", "command", "date", "git", "machine", "settings", "figures")
_SIZES = {"paper": "the paper's ViT", "cpu": "the `cpu` preset's ViT"}


class BenchmarkError(ValueError):
    """A benchmark record that cannot be read (not JSON, or missing what every record holds)."""


def benchmark_path(name: str, results: Optional[str | Path] = None) -> Path:
    """Where the record ``name`` lives: ``<results>/benchmarks/<name>.json``."""
    return results_dir(results) / "benchmarks" / f"{name}.json"


def load_benchmark(name: str, results: Optional[str | Path] = None) -> Optional[Dict[str, Any]]:
    """The record ``name``, or None when it has not been recorded.

    Raises:
        BenchmarkError: the file is not JSON, or lacks one of the keys every record holds (named).
    """
    path = benchmark_path(name, results)
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise BenchmarkError(f"benchmark record {path.name} cannot be read: {e}") from e
    missing = [k for k in _REQUIRED if k not in record] if isinstance(record, dict) else list(_REQUIRED)
    if missing:
        raise BenchmarkError(f"benchmark record {path.name} lacks {', '.join(missing)}: record it again")
    return record


def not_recorded(name: str) -> str:
    """The sentence a chapter prints in place of a reading whose benchmark is not recorded."""
    command = BENCHMARK_COMMANDS.get(name, f"python benchmarks/<script>.py --record results/benchmarks/{name}.json")
    return f"The benchmark `{name}` is not recorded yet: `{command}` records it."


def machine_text(record: Mapping[str, Any], detail: bool = True) -> str:
    """Where and when a benchmark ran, in one phrase: CPU (or GPU), cores, threads, torch, date, commit and the
    note recorded with it; without ``detail``, only the CPU (or GPU), threads and date."""
    m = record["machine"]
    where = m.get("gpu") or m["cpu"]
    threads = f"{m['torch_threads']} torch thread{'s' if m['torch_threads'] != 1 else ''}"
    commit = (record["git"].get("commit") or "")[:7]
    when = datetime.date.fromisoformat(record["date"][:10]).strftime("%d %B %Y").lstrip("0")
    if not detail:
        return f"{where}, {threads}, {when}"
    text = f"{where}, {m['cores']} cores, {threads}, torch {m['torch']}; {when}" + (
        f", commit {commit}" if commit else ""
    )
    return text + (f"; {m['note']}" if m.get("note") else "")


@dataclass(frozen=True)
class Overhead:
    """GMM-ViT's training step over ViT's, timed side by side (``benchmarks/gmm_overhead.py``).

    Attributes:
        size: ``"paper"`` (the paper's ViT) or ``"cpu"`` (the ``cpu`` preset's).
        ratio: median over rounds of the per-round ratio of wall times; ``ratio_min``/``ratio_max``: its range.
        cpu_time_ratio: the same for process CPU time (nan where not recorded).
        rounds: interleaved rounds; ``images_per_second``: each arm's median, for scale only.
        goal: the largest ratio the library aims at.
    """

    size: str
    ratio: float
    ratio_min: float
    ratio_max: float
    cpu_time_ratio: float
    rounds: int
    images_per_second: Dict[str, float]
    goal: float

    @property
    def meets_goal(self) -> bool:
        return self.ratio <= self.goal

    @property
    def extra_percent(self) -> float:
        """The extra time per step, in percent of the ViT's (negative: faster)."""
        return 100 * (self.ratio - 1)


def _device_figures(record: Mapping[str, Any], device: str) -> Dict[str, Any]:
    figures = record["figures"].get(device)
    if figures is None:
        raise BenchmarkError(f"the {record['benchmark']} record has no figures for {device!r}")
    return figures


def training_overhead(record: Mapping[str, Any], size: str = "paper", device: str = "cpu") -> Overhead:
    """The training-step ratio of one model size in a ``gmm_overhead`` record.

    Raises:
        BenchmarkError: the record has no figures for that device or size.
    """
    steps = _device_figures(record, device)["training_step"]
    if size not in steps:
        raise BenchmarkError(f"the {record['benchmark']} record measured sizes {', '.join(steps)}, not {size!r}")
    s = steps[size]
    return Overhead(
        size=size,
        ratio=s["ratio"],
        ratio_min=s["ratio_min"],
        ratio_max=s["ratio_max"],
        cpu_time_ratio=s.get("cpu_time_ratio", math.nan),
        rounds=len(s["round_ratios"]),
        images_per_second=dict(s["images_per_second"]),
        goal=record["figures"].get("goal", 1.05),
    )


def _overhead_phrase(o: Overhead) -> str:
    cpu = "" if math.isnan(o.cpu_time_ratio) else f"; in process CPU time {o.cpu_time_ratio:.2f}"
    return (
        f"{o.ratio:.2f} times the ViT's (median of {o.rounds} interleaved rounds, which ranged from "
        f"{o.ratio_min:.2f} to {o.ratio_max:.2f}{cpu})"
    )


def overhead_text(record: Optional[Mapping[str, Any]], size: str = "paper", detail: bool = True) -> str:
    """Chapter 4's check of the overhead goal: the ratio of one size, against the goal, with its machine."""
    if record is None:
        return not_recorded("gmm_overhead")
    o = training_overhead(record, size)
    verdict = (
        f"within the goal of at most {o.goal:.2f}"
        if o.meets_goal
        else f"above the goal of at most {o.goal:.2f}: on this machine the goal is not met"
    )
    return (
        f"A full training step of {_SIZES.get(size, size)} with the GMM took {_overhead_phrase(o)}, "
        f"{verdict} (`benchmarks/gmm_overhead.py`, recorded in `results/benchmarks/gmm_overhead.json` on "
        f"{machine_text(record, detail)})."
    )


def attention_call_rows(record: Mapping[str, Any], device: str = "cpu") -> List[Dict[str, Any]]:
    """The attention-call timings of a ``gmm_overhead`` record: one row per variant, median milliseconds and
    the median per-round ratio to the call without a mask. Empty when the record has none."""
    call = _device_figures(record, device).get("attention_call")
    if not call:
        return []
    return [
        {"variant": k, "median (ms)": ms, "time / no mask": call["ratio_to_no_mask"][k]}
        for k, ms in call["median_ms"].items()
    ]


def family_step_rows(record: Mapping[str, Any], device: str = "cpu") -> List[Dict[str, Any]]:
    """The paper-size families' training steps in a ``gmm_overhead`` record: one row per model, its
    parameters, median step time and median per-round ratio to the ViT's. Empty when not measured."""
    fam = _device_figures(record, device).get("families")
    if not fam:
        return []
    return [
        {"model": k, "params": fam["params"][k], "median step (ms)": ms, "time / ViT": fam["ratio_to_vit"][k]}
        for k, ms in fam["median_step_ms"].items()
    ]


def families_speed_text(results: Optional[str | Path] = None, detail: bool = True) -> str:
    """Chapter 7's speed sentence: the paper-size GMM-ViT, Swin and CaiT's training steps against the ViT's,
    timed in the same rounds by ``benchmarks/gmm_overhead.py`` (``--family-rounds``)."""
    record = load_benchmark("gmm_overhead", results)
    if record is None:
        return not_recorded("gmm_overhead")
    rows = [r for r in family_step_rows(record) if r["model"] != "ViT"]
    if not rows:
        return "The recorded `gmm_overhead` benchmark did not time the families (`--family-rounds`)."
    fam = record["figures"]["cpu"]["families"]
    ratios = [f"{r['model']}'s {r['time / ViT']:.2f}" for r in rows]
    return (
        f"On this book's CPU, a training step of the paper-size models took, in times the ViT's, "
        f"{', '.join(ratios[:-1])} and {ratios[-1]} (median of {record['settings'].get('family_rounds', '?')} "
        f"interleaved rounds, batch {fam['batch']}; `benchmarks/gmm_overhead.py`, {machine_text(record, detail)})."
    )


def gmm_speed_text(size: str = "cpu", results: Optional[str | Path] = None, detail: bool = True) -> str:
    """What the book says about the GMM's training speed: the side-by-side ratio of ``size`` (``"cpu"``: the
    models the experiments train; ``"paper"``: the paper's), its machine, and that logs are not read."""
    record = load_benchmark("gmm_overhead", results)
    if record is None:
        return not_recorded("gmm_overhead")
    o = training_overhead(record, size)
    return (
        f"Speed is measured side by side, not read from the training logs: a training step of "
        f"{_SIZES.get(size, size)} with the GMM took {_overhead_phrase(o)} in `benchmarks/gmm_overhead.py` "
        f"({machine_text(record, detail)})."
    )


def paper_run_time(record: Optional[Mapping[str, Any]], model: str = "ViT") -> Optional[Dict[str, float]]:
    """One ``paper``-preset run at the training speed a ``gpu_throughput`` record measured for ``model``:
    ``{"images", "images_per_second", "hours"}``; None without a record.

    Raises:
        BenchmarkError: the record is not of the ``paper`` preset, or did not time ``model``.
    """
    if record is None:
        return None
    if record["settings"].get("preset") != "paper":
        raise BenchmarkError(f"the record is of the {record['settings'].get('preset')!r} preset, not 'paper'")
    side = record["figures"]["side_by_side"]
    if model not in side["images_per_second"]:
        raise BenchmarkError(f"the record timed {', '.join(side['images_per_second'])}, not {model!r}")
    rate = side["images_per_second"][model]
    return {"images": side["images_per_run"], "images_per_second": rate, "hours": side["images_per_run"] / rate / 3600}
