"""Recorded runs as tables, beside the paper's numbers.

Every number the book shows comes from here: either a run of this library recorded in the
results store (read through :func:`gmmlib.experiments.recorded`) or the paper's published
value (:func:`gmmlib.stats.paper`), labelled as such. Where a run does not exist yet, the tables
say so and give the command that makes it.

The table helpers return ``pandas.DataFrame`` objects.
"""

from __future__ import annotations

import dataclasses
import json
import math
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from ..data.registry import PAPER_DATASETS, get_info
from ..experiments.grids import get_experiment, run_command, run_file_name
from ..experiments.status import missing_runs, recorded, stale_runs
from ..models.registry import PAPER_FAMILIES, display_name
from ..training.options import non_default_options
from ..training.provenance import hardware_kind
from .inference import Paired, p_value, paired
from .paper import paper

__all__ = [
    "Headline",
    "MODEL_NAMES",
    "DATASET_NAMES",
    "load",
    "label",
    "runs",
    "summary",
    "headline",
    "exp1_table",
    "gain_text",
    "exp1_pivot",
    "preset_of",
    "compare",
    "PAPER_TABLE",
    "missing",
    "stale",
]


# The paper's families and data sets with the names its tables print, in its order; the
# registries own both (ModelEntry.display_name, DatasetInfo.display_name).
MODEL_NAMES = {name: display_name(name) for name in PAPER_FAMILIES}


DATASET_NAMES = {name: get_info(name).display_name for name in PAPER_DATASETS}


# Options a label shows even at their default: the RetNet decay's variants differ in their distance.
_ALWAYS_SHOWN = {"retnet": ("distance",)}


_MASK_NAMES = {"gmm": "GMM", "elm": "ELM", "retnet": "RetNet", "alibi2d": "ALiBi-2D", "relpos": "RelPos"}


def _pandas():
    import pandas as pd  # a core dependency, imported when a table is made so that `import gmmlib` stays light

    return pd


def load(experiment: str, results: Optional[str | Path] = None) -> List[Dict[str, Any]]:
    """All recorded runs of an experiment (their records), sorted by run name."""
    return recorded(experiment, results)


def _subset_size(config: Dict[str, Any]) -> int:
    """The run's training-subset size, 0 when it trained on the whole split (records name the full size, or none)."""
    from ..training.config import RunConfig

    size = config.get("train_size")
    if not size:
        return 0
    try:
        full = RunConfig(model=config["model"], dataset=config["dataset"], preset=config["preset"]).full_train_size()
    except (KeyError, ValueError):
        return int(size)
    return 0 if int(size) >= full else int(size)


def label(config: Dict[str, Any]) -> str:
    """A readable name for a run's configuration, e.g. ``GMM-ViT (K=3, GAP)``."""
    name = display_name(config["model"])
    if config.get("mask"):
        name = f"{_MASK_NAMES.get(config['mask'], config['mask'])}-{name}"
    details = []
    options = config.get("mask_options") or {}
    always = _ALWAYS_SHOWN.get(config.get("mask"), ())
    try:  # options at their defaults say nothing, except the one that tells a mask's variants apart
        shown = {
            **non_default_options(config.get("mask"), options),
            **{k: v for k, v in options.items() if k in always},
        }
    except ValueError:
        shown = dict(options)
    for k, v in sorted(shown.items()):
        details.append(f"K={v}" if k == "num_kernels" else str(v) if k == "distance" else f"{k}={v}")
    if config.get("pool"):
        details.append(config["pool"].upper())
    if _subset_size(config):  # a subset of the training split (RunConfig.train_size); the whole split says nothing
        details.append(f"{config['train_size']:,} images")
    return name + (f" ({', '.join(details)})" if details else "")


def runs(experiment: str, results: Optional[str | Path] = None):
    """One row per recorded run: configuration, top-1, cost, speed and time."""
    return _runs_frame(load(experiment, results))


def _runs_frame(records: List[Dict[str, Any]]):
    pd = _pandas()
    rows = []
    for r in records:
        c = r["config"]
        rows.append(
            {
                "run": r["name"],
                "label": label(c),
                "model": c["model"],
                "mask": c["mask"] or "none",
                "mask_options": json.dumps(c.get("mask_options") or {}, sort_keys=True),
                "pool": c.get("pool") or "default",
                "dataset": c["dataset"],
                "train_size": _subset_size(c),  # 0: the whole training split
                "preset": c["preset"],
                "seed": c["seed"],
                "best_top1": r["best_top1"],
                "final_top1": r["final_top1"],
                "params": r["cost"]["params"],
                "macs": r["cost"]["macs"],
                "flops": r["cost"]["flops"],
                "images_per_second": statistics.mean(h["images_per_second"] for h in r["history"]),
                "minutes": r["wall_seconds"] / 60,
                "hardware": r["hardware"].get("gpu") or r["hardware"].get("cpu"),
                "hardware_kind": hardware_kind(r),
            }
        )
    return pd.DataFrame(rows)


def _nan(x: Optional[float]) -> float:
    return float("nan") if x is None else x


def _spread(values: List[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else float("nan")


def summary(experiment: str, results: Optional[str | Path] = None):
    """One row per configuration, aggregated over seeds (mean, sample std, min, max)."""
    return _summary_frame(runs(experiment, results))


def _summary_frame(df):
    pd = _pandas()
    if df.empty:
        return df
    keys = ["label", "model", "mask", "mask_options", "pool", "dataset", "train_size", "preset"]
    rows = []
    for k, g in df.groupby(keys, sort=False):
        best, final = g["best_top1"].tolist(), g["final_top1"].tolist()
        rows.append(
            {
                **dict(zip(keys, k)),
                "seeds": len(g),
                "best_mean": statistics.mean(best),
                "best_std": _spread(best),
                "best_min": min(best),
                "best_max": max(best),
                "final_mean": statistics.mean(final),
                "final_std": _spread(final),
                "params": int(g["params"].iloc[0]),
                "macs": int(g["macs"].iloc[0]),
                "flops": int(g["flops"].iloc[0]),
                "images_per_second": g["images_per_second"].mean(),
                "minutes": g["minutes"].mean(),
            }
        )
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class Headline:
    """The headline's ViT and GMM-ViT runs at one preset, paired by seed (arm a: ViT, arm b: GMM-ViT).

    Args:
        preset: the preset of the runs.
        seeds: the seeds with both runs, in order.
        best: best-epoch top-1, paired (:func:`gmmlib.stats.paired`).
        final: final-epoch top-1, paired.
    """

    preset: str
    seeds: Tuple[int, ...]
    best: Paired
    final: Paired


def headline(results: Optional[str | Path] = None, preset: Optional[str] = None) -> Optional[Headline]:
    """ViT against GMM-ViT (GAP, K = 5) seed by seed; None until a seed has both runs.

    Args:
        results: the results folder.
        preset: the preset to read (default: the one the book shows, :func:`preset_of`).
    """
    preset = preset or preset_of("headline", results)
    arms: Dict[str, Dict[int, Dict[str, Any]]] = {"none": {}, "gmm": {}}
    for r in load("headline", results):
        if r["config"]["preset"] == preset:
            arms[r["config"].get("mask") or "none"][int(r["config"]["seed"])] = r
    seeds = tuple(sorted(set(arms["none"]) & set(arms["gmm"])))
    if not seeds:
        return None
    a, b = [arms["none"][s] for s in seeds], [arms["gmm"][s] for s in seeds]
    return Headline(
        preset,
        seeds,
        best=paired([r["best_top1"] for r in a], [r["best_top1"] for r in b]),
        final=paired([r["final_top1"] for r in a], [r["final_top1"] for r in b]),
    )


def exp1_table(results: Optional[str | Path] = None, preset: str = "cpu"):
    """Experiment 1: the paper's top-1 beside ours, per model and data set.

    Columns: model, dataset, paper (no mask, GMM, gain), ours (no mask, GMM, gain), each side's
    cell as text (``paper_cell``, ``ours_cell``: :func:`gain_text`), and for rows whose runs do
    not exist the ``command`` that makes them (empty otherwise; ``note`` says "not rerun here: "
    before it).
    """
    pd = _pandas()
    table = paper()["main_table"]
    ours = summary("exp1", results)
    rows = []
    for model, values in table["rows"].items():
        for i, dataset in enumerate(table["datasets"]):
            row = {
                "model": MODEL_NAMES[model],
                "dataset": DATASET_NAMES[dataset],
                "paper_none": values["none"][i],
                "paper_gmm": values["gmm"][i],
                "paper_gain": round(values["gmm"][i] - values["none"][i], 2),
            }
            got = {}
            if not ours.empty:
                sel = ours[(ours["model"] == model) & (ours["dataset"] == dataset) & (ours["preset"] == preset)]
                got = {
                    m: sel[sel["mask"] == m]["best_mean"].iloc[0] for m in ("none", "gmm") if (sel["mask"] == m).any()
                }
            row["ours_none"] = got.get("none", float("nan"))
            row["ours_gmm"] = got.get("gmm", float("nan"))
            row["ours_gain"] = row["ours_gmm"] - row["ours_none"]
            row["paper_cell"] = gain_text(row["paper_none"], row["paper_gmm"], row["paper_gain"])
            row["ours_cell"] = gain_text(row["ours_none"], row["ours_gmm"], row["ours_gain"])
            row["command"] = "" if len(got) == 2 else run_command("exp1", preset, f"model={model},dataset={dataset}")
            row["note"] = "not rerun here: " + row["command"] if row["command"] else ""
            rows.append(row)
    return pd.DataFrame(rows)


def gain_text(none: float, gmm: float, gain: float) -> str:
    """One cell of the main table as text: ``"93.65 → 95.06 (+1.41)"``, or ``"not rerun"`` when the gain is NaN."""
    return "not rerun" if math.isnan(gain) else f"{none:.2f} → {gmm:.2f} ({gain:+.2f})"


def exp1_pivot(table, column: str):
    """One column of :func:`exp1_table` laid out as the paper's table: families down, data sets across, in its order."""
    models = [MODEL_NAMES[m] for m in paper()["main_table"]["rows"]]
    datasets = [DATASET_NAMES[d] for d in paper()["main_table"]["datasets"]]
    return table.pivot(index="model", columns="dataset", values=column).reindex(models)[datasets]


def preset_of(experiment: str, results: Optional[str | Path] = None) -> Optional[str]:
    """The preset whose runs of ``experiment`` the book shows: "paper" if any, else "cpu", else "quick".

    Returns None when the store lists no run for ``experiment``.
    """
    presets = {r["config"]["preset"] for r in load(experiment, results)}
    return next((p for p in ("paper", "cpu", "quick") if p in presets), None)


def _kernel_ablation_cell(config: Dict[str, Any]) -> float:
    """The paper's top-1 in its kernel ablation (GMM-ViT, official init) for this configuration, else NaN. Its K = 1
    column equals its ViT without a mask (``paper_numbers.json``'s caveats), so that is the unmasked row's value and
    no 1-kernel run has one."""
    ablation = paper()["kernel_ablation"]
    rows = ablation["rows"].get(config["dataset"])
    if rows is None or config["model"] != "vit" or config.get("pool") not in (None, "gap"):
        return float("nan")
    values = dict(zip(ablation["kernels"], rows))
    if not config.get("mask"):
        return values[1]
    options = dict(config.get("mask_options") or {})
    k = int(options.pop("num_kernels", 5))
    try:
        other = non_default_options("gmm", options) if config["mask"] == "gmm" else True
    except ValueError:
        other = True
    return values[k] if k in values and k != 1 and not other else float("nan")


# Experiments whose paper numbers come from another table of the paper than the main one, each gain then measured
# against that table's own baseline.
PAPER_TABLE = {"exp2-kernels": _kernel_ablation_cell}


def _paper_cell(config: Dict[str, Any], experiment: Optional[str] = None) -> float:
    """The paper's top-1 for this configuration, if its main table has that cell (else NaN); for an experiment in
    :data:`PAPER_TABLE`, from that table instead.

    The table's models use the family's default pooling (GAP for ViT, see the pooling
    confound in chapter 10), the GMM with its defaults (K = 5, official initialisation) and the whole training split.
    """
    if experiment in PAPER_TABLE:
        return PAPER_TABLE[experiment](config)
    table = paper()["main_table"]
    mask = config.get("mask") or "none"
    pool_ok = config.get("pool") in (None, "gap" if config["model"] == "vit" else None)
    try:
        default_options = not non_default_options(config.get("mask"), config.get("mask_options"))
    except ValueError:
        default_options = False
    if (
        config["model"] not in table["rows"]
        or config["dataset"] not in table["datasets"]
        or mask not in ("none", "gmm")
        or not default_options
        or not pool_ok
        or _subset_size(config)  # a run on part of the split has no cell in the paper
    ):
        return float("nan")
    return table["rows"][config["model"]][mask][table["datasets"].index(config["dataset"])]


def compare(experiment: str, results: Optional[str | Path] = None, preset: str = "cpu"):
    """Each configuration of an experiment beside its unmasked baseline and the paper.

    One row per configuration (its ``label``, ``model`` and ``mask`` kind, "none" for a baseline), over its seeds:
    best and final top-1 (mean, sample std),
    the gain over the run without a mask of the same model, pooling and data set (paired
    by seed: ``pairs`` seeds with both runs, mean and std of the per-seed differences and
    their 95% t-interval ``gain_low``..``gain_high``, NaN for one pair; ``final_gain`` the same on the final epoch;
    ``p_value`` of a paired t-test of the best-epoch gain, NaN for one pair), the paper's top-1 and gain where
    its main table has the cell (else NaN), cost and speed, and ``hardware``: the kinds of hardware the row's
    runs and their paired baselines trained on (:func:`gmmlib.training.provenance.hardware_kind`), joined by " + ", and
    ``mixed_hardware`` (True where that is more than one kind: a gain that mixes in the hardware's). Rows follow the
    experiment's grid (:mod:`gmmlib.experiments`), which lists each unmasked baseline
    before its masks; the baselines' own gain is NaN.
    """
    pd = _pandas()
    records = load(experiment, results)  # read once; the tables below are views of it
    all_runs = _runs_frame(records)
    if all_runs.empty or not (all_runs["preset"] == preset).any():
        return pd.DataFrame()
    df = all_runs[all_runs["preset"] == preset]
    configs = {r["name"]: r["config"] for r in records if r["config"]["preset"] == preset}
    rows = []
    # rows in the experiment's own order (its grid lists each baseline before its masks)
    grid = get_experiment(experiment).configs(preset)
    datasets = list(dict.fromkeys(c.dataset for c in grid))
    labels = list(dict.fromkeys(label(dataclasses.asdict(c)) for c in grid))
    # a grid over training-set sizes lists its sizes in the order they are trained; a table reads them ascending
    sizes = {label(dataclasses.asdict(c)): c.train_size or math.inf for c in grid}

    def position(items: List[str], item: str) -> int:
        return items.index(item) if item in items else len(items)

    table = _summary_frame(all_runs).query("preset == @preset").to_dict("records")
    table.sort(
        key=lambda r: (
            position(datasets, r["dataset"]),
            sizes.get(r["label"], math.inf),
            position(labels, r["label"]),
        )
    )
    for row in table:
        same = (
            (df["model"] == row["model"])
            & (df["pool"] == row["pool"])
            & (df["dataset"] == row["dataset"])
            & (df["train_size"] == row["train_size"])
        )
        mine = df[same & (df["label"] == row["label"])]
        base = df[same & (df["mask"] == "none")][["seed", "best_top1", "final_top1"]]
        both = mine[["seed", "best_top1", "final_top1"]].merge(base, on="seed", suffixes=("", "_base"))
        both = both.sort_values("seed")
        best = final = None
        if row["mask"] != "none" and len(both):  # seed by seed against the unmasked run of the same seed
            best = paired(both["best_top1_base"].tolist(), both["best_top1"].tolist())
            final = paired(both["final_top1_base"].tolist(), both["final_top1"].tolist())
        interval = best.interval if best is not None and best.interval else (float("nan"), float("nan"))
        # where the runs of this row and the baselines they are paired with trained: one kind, or a mix to flag
        baselines = df[same & (df["mask"] == "none") & df["seed"].isin(mine["seed"])] if row["mask"] != "none" else mine
        kinds = sorted(set(mine["hardware_kind"]) | set(baselines["hardware_kind"]))
        config = configs[mine["run"].iloc[0]]
        paper_value = _paper_cell(config, experiment)
        paper_base = _paper_cell({**config, "mask": None, "mask_options": {}}, experiment)
        rows.append(
            {
                "label": row["label"],
                "model": row["model"],
                "mask": row["mask"],
                "dataset": row["dataset"],
                "seeds": row["seeds"],
                "best_mean": row["best_mean"],
                "best_std": row["best_std"],
                "final_mean": row["final_mean"],
                "pairs": best.seeds if best else 0,
                "gain": best.gain if best else float("nan"),
                "gain_std": _nan(best.gain_std) if best else float("nan"),
                "gain_low": interval[0],
                "gain_high": interval[1],
                "final_gain": final.gain if final else float("nan"),
                "p_value": _nan(p_value(best)) if best else float("nan"),
                "paper": paper_value,
                "paper_gain": paper_value - paper_base if row["mask"] != "none" else float("nan"),
                "params": row["params"],
                "macs": row["macs"],
                "images_per_second": row["images_per_second"],
                "minutes": row["minutes"],
                "hardware": " + ".join(kinds),
                "mixed_hardware": len(kinds) > 1,
            }
        )
    return pd.DataFrame(rows)


def missing(experiment: str, preset: str = "cpu", results: Optional[str | Path] = None) -> List[str]:
    """Commands that would produce the runs of ``experiment`` not recorded yet.

    A run is recorded when the experiment lists a record with the key of its current
    configuration (:func:`gmmlib.experiments.missing_runs`); a record made under an older
    configuration does not count (see :func:`stale`).
    """
    return [run_command(experiment, preset, run_file_name(c)) for c in missing_runs(experiment, preset, results)]


def stale(experiment: str, preset: str = "cpu", results: Optional[str | Path] = None) -> List[str]:
    """Names of the runs ``experiment`` lists at ``preset`` that were recorded under an older configuration."""
    return [r["name"] for r in stale_runs(experiment, preset, results)]
