"""The book's one standard for reading a comparison: every masked-vs-unmasked comparison recorded, once each, with
its paired gain, its interval (pooled over a grid's settings where they share a noise scale), and its standing after
Holm's correction over all of them. Every chapter, the verdict and ``gmmlib report`` read comparisons from here.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

from ..stats.inference import excludes, holm, pooled_std, pooled_test
from ..stats.tables import PAPER_TABLE, load, preset_of

__all__ = [
    "SHARED_NOISE",
    "pool_noise",
    "setting_gains",
    "VERDICT_EXPERIMENTS",
    "STANDINGS",
    "comparisons",
    "rows_for",
    "standing",
]


# The grids whose comparisons share one noise scale: settings of one mask on one backbone, trained on the same
# seeds against the same unmasked runs. Their intervals use the std pooled over the grid's settings.
SHARED_NOISE = ("exp2-kernels", "exp2-init")


def pool_noise(rows: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Rows of :func:`gmmlib.stats.tables.compare` (masked ones) with their intervals and p-values taken from the
    std of the per-seed gains pooled over every row of two seeds or more (:func:`gmmlib.stats.pooled_std`);
    each such row gains ``pooled_std`` and ``pooled_df``. Rows of one seed are returned as they are."""
    tested = [r for r in rows if r["pairs"] >= 2 and not math.isnan(r["gain_std"])]
    if not tested:
        return rows
    sd, df = pooled_std([r["gain_std"] for r in tested], [int(r["pairs"]) for r in tested])
    if not sd > 0:
        return rows
    out = []
    for r in rows:
        if r in tested:
            (low, high), p = pooled_test(r["gain"], int(r["pairs"]), sd, df)
            r = {**r, "gain_low": low, "gain_high": high, "p_value": p, "pooled_std": sd, "pooled_df": df}
        out.append(r)
    return out


def setting_gains(
    experiment: str, option: str, default: Any, results: Optional[str | Path] = None, preset: Optional[str] = None
) -> List[Dict[str, Any]]:
    """Each masked setting of an ablation with its paired gain over the unmasked ViT, in the grid's order: rows of
    :func:`gmmlib.stats.tables.compare` with ``value``, the setting's ``option`` (``default`` where a run leaves it
    out); the intervals of a grid in :data:`SHARED_NOISE` come from the pooled std (:func:`pool_noise`)."""
    from ..stats.tables import compare, label

    preset = preset or preset_of(experiment, results)
    table = compare(experiment, results, preset) if preset else None
    if table is None or table.empty:
        return []
    configs = [r["config"] for r in load(experiment, results) if r["config"]["preset"] == preset]
    options = {label(c): c.get("mask_options") or {} for c in configs}
    rows = table[table["gain"].notna()].to_dict("records")
    if experiment in SHARED_NOISE:
        rows = pool_noise(rows)
    return [{**r, "value": options[r["label"]].get(option, default)} for r in rows]


# The experiments the verdict chapter reads, in the book's order; a comparison that several list
# (the headline's GMM-ViT is also exp2's default setting) is shown once, under the first, so an experiment
# with more seeds for a comparison comes before one with fewer.
VERDICT_EXPERIMENTS = (
    "headline",
    "headline-paper",
    "exp1-seeds",  # before exp1: its CaiT and PiT rows have seeds where exp1's have one
    "comparison-seeds",  # before exp1, pooling, elm, retnet and beyond: their one-seed rows, on 3 seeds
    "exp1",
    "pooling",
    "exp2-kernels",
    "exp2-init",
    "elm",
    "exp3",
    "retnet",
    "beyond",
    "datasize",  # after the headline: its 50,000-image pair is the headline's label, read there
)


def comparisons(results: Optional[str | Path] = None) -> List[Dict[str, Any]]:
    """Every masked-vs-unmasked comparison recorded, once each, with its paired gain and the paper's.

    Each row: ``experiment``, ``label``, ``mask``, ``dataset``, ``preset``, ``seeds`` (paired
    seeds), ``gain`` (mean paired best-epoch gain, points), ``low``/``high`` (its 95 % t-interval, NaN for
    one seed), ``final_gain`` (the same on the final epoch), ``p_value`` (paired t-test), ``holds`` (it survives
    Holm's correction over all the rows; None for one seed), ``standing`` (:func:`standing`), ``paper_gain``
    (NaN where the paper has no such cell) and ``paper_source`` (the paper table it is computed in, against that
    table's own baseline: "main table" or "K ablation"; None without a paper gain), ``pooled_std`` (the pooled std
    the interval uses, for a grid in :data:`SHARED_NOISE`; else None), ``hardware`` (where its runs trained, data path
    included) and ``mixed_hardware``, and ``experiments``: every experiment that holds the comparison, the one it is
    read in first. A comparison that several grids hold is read on the one with the most seeds (the first of
    them on a tie), in the place of its first row: a one-seed comparison that another grid reruns on seeds is
    read there (:func:`rows_for`).
    Experiments are read at every preset they hold (the ``paper`` preset's runs are their own rows).
    """
    from ..stats.tables import compare

    rows: List[Dict[str, Any]] = []
    seen: Dict[Any, Dict[str, Any]] = {}
    for experiment in VERDICT_EXPERIMENTS:
        presets = sorted({r["config"]["preset"] for r in load(experiment, results)})
        for preset in presets:
            table = compare(experiment, results, preset)
            if table.empty:
                continue
            masked = table[table["gain"].notna()].to_dict("records")
            for r in pool_noise(masked) if experiment in SHARED_NOISE else masked:
                key = (r["label"], r["dataset"], preset)  # exp1's ViT cell is the headline's seed 0
                held = seen.get(key)
                if held is not None and held["seeds"] >= r["pairs"]:
                    held["experiments"].append(experiment)
                    continue
                row = {
                    "experiment": experiment,
                    "label": r["label"],
                    "mask": r["mask"],
                    "dataset": r["dataset"],
                    "preset": preset,
                    "seeds": int(r["pairs"]),
                    "gain": r["gain"],
                    "low": r["gain_low"],
                    "high": r["gain_high"],
                    "paper_gain": r["paper_gain"],
                    # each paper gain against its own table's baseline (the kernel ablation's is its K = 1 point)
                    "paper_source": None
                    if math.isnan(r["paper_gain"])
                    else ("K ablation" if experiment in PAPER_TABLE else "main table"),
                    "hardware": r["hardware"],
                    "mixed_hardware": r["mixed_hardware"],
                    "final_gain": r["final_gain"],
                    "p_value": r["p_value"],
                    "pooled_std": r.get("pooled_std"),
                    "experiments": [experiment],
                }
                if held is None:
                    seen[key] = row
                    rows.append(row)
                else:  # a later grid holds it on more seeds: read there, in the place the row had
                    row["experiments"] += held["experiments"]
                    held.clear()
                    held.update(row)
    # one standard for every reading: Holm's correction over every comparison the book reads that has a test
    holds = holm([None if math.isnan(r["p_value"]) else r["p_value"] for r in rows])
    for r, h in zip(rows, holds):
        r["holds"] = h
        r["standing"] = standing(r)
    return rows


def rows_for(experiments: Sequence[str], rows: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """The rows of :func:`comparisons` that belong to any of ``experiments``, wherever they are read: a comparison
    that ``comparison-seeds`` reruns on seeds is ``elm``'s, ``retnet``'s or ``beyond``'s too, read on its seeds."""
    return [r for r in rows if set(r["experiments"]) & set(experiments)]


STANDINGS = ("one seed", "includes zero", "a lead", "holds after correction")


def standing(row: Mapping[str, Any]) -> str:
    """How far a comparison's gain is established, by one rule for the whole book (:data:`STANDINGS`).

    "one seed": no interval. "includes zero": its 95 % interval includes zero. "a lead": the interval
    excludes zero but the paired t-test does not survive Holm's correction over every comparison the book
    reads (with many intervals, some exclude zero by chance). "holds after correction": it does.
    """
    if row["seeds"] < 2:
        return STANDINGS[0]
    if not excludes(row["low"], row["high"]):
        return STANDINGS[1]
    return STANDINGS[3] if row.get("holds") else STANDINGS[2]
