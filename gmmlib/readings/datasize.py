"""Where locality pays: the masks' gains as the training set shrinks (the ``datasize`` experiment).

The analysis was written and committed before the runs finished; it reads whatever seeds are
recorded. For each training-set size the GMM's paired gain over the unmasked ViT (same seed, same
images in the same order) with its 95 % interval, and the trend over log2(size) with seeds as the
unit (:func:`gmmlib.stats.gain_trend`, whose docstring states the rule). The other priors are read
at the two ends. At 50,000 images the batched data path is set beside the headline's runs on the
workers, arm by arm and seed by seed: the check that the two data paths train alike. The chapter's
sentences about them are in :mod:`.datasize_text`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from ..stats.inference import Paired, holm, interval_text, p_value, paired
from ..stats.tables import label, load
from ..stats.trend import Trend, gain_trend

__all__ = [
    "DatasizeReading",
    "size_pairs",
    "datasize_reading",
    "data_path_check",
    "STAGING",
    "DatasizeSource",
    "datasize_source",
    "datasize_runs",
    "datasize_standings",
    "standings_table",
]


def size_pairs(
    records: Sequence[Mapping[str, Any]], mask: str, metric: str = "best_top1"
) -> Dict[int, Dict[int, Tuple[float, float]]]:
    """``{train size: {seed: (unmasked, masked)}}`` of ``metric`` for the runs of one mask kind (at its
    default options, as the grid trains it) and the unmasked runs of the same size and seed."""
    arms: Dict[Tuple[int, int], Dict[str, float]] = {}
    for r in records:
        c = r["config"]
        kind = c.get("mask") or "none"
        if kind not in ("none", mask):
            continue
        arms.setdefault((int(c["train_size"]), int(c["seed"])), {})[kind] = r[metric]
    out: Dict[int, Dict[int, Tuple[float, float]]] = {}
    for (size, seed), values in sorted(arms.items()):
        if {"none", mask} <= set(values):
            out.setdefault(size, {})[seed] = (values["none"], values[mask])
    return out


@dataclass
class DatasizeReading:
    """What the data-size runs say.

    Args:
        trend: the GMM's gain at each size and its slope over log2(size) (None until two sizes have runs).
        final_trend: the same on final-epoch top-1.
        priors: per other prior (its label), its paired gain at each end it has runs at.
        text: the reading, one Markdown paragraph (empty until there is a trend).
        trend_text: its part on the GMM's gain and trend (without the other priors).
        arm: the GMM arm's label (sizes aside).
        planned_sizes, planned_seeds: the sizes and paired seeds the grid plans for ViT and GMM-ViT.
    """

    trend: Optional[Trend] = None
    final_trend: Optional[Trend] = None
    priors: Dict[str, Dict[int, Paired]] = field(default_factory=dict)
    text: str = ""
    trend_text: str = ""
    arm: str = "GMM-ViT (GAP)"
    planned_sizes: Tuple[int, ...] = ()
    planned_seeds: Tuple[int, ...] = ()

    @property
    def complete_seeds(self) -> Tuple[int, ...]:
        """The seeds with both arms at every size the grid plans: the only ones the trend test reads."""
        if self.trend is None or set(self.trend.sizes) < set(self.planned_sizes):
            return ()
        return self.trend.seeds

    @property
    def interim(self) -> bool:
        """True until every seed the grid plans has every size: until then the reading claims nothing."""
        return len(self.complete_seeds) < max(len(self.planned_seeds), 2)


def _trend_text(t: Trend, what: str, planned: Optional[int] = None) -> str:
    """``planned``: the seeds the grid plans, when fewer are complete (the slope is then shown, not read)."""
    gains = "; ".join(
        f"{n:,} images {g.gain:+.2f}" + (f" {interval_text(*g.interval)}" if g.interval else "") + f" ({g.seeds})"
        for n, g in t.gains.items()
    )
    if t.interval is None:
        return f"{what} at each size (points, 95 % interval, seeds): {gains}. Too few complete seeds for a trend."
    low, high = t.interval
    if planned is not None:
        return (
            f"{what} at each size (points, 95 % interval, seeds): {gains}. Its slope over log2(train size), on the "
            f"{len(t.seeds)} seeds complete so far, is {t.slope:+.2f} points per doubling of the data "
            f"{interval_text(low, high)}: interim, not read until all {planned} planned seeds are complete."
        )
    return (
        f"{what} at each size (points, 95 % interval, seeds): {gains}. Its slope over log2(train size) is "
        f"{t.slope:+.2f} points per doubling of the data, 95 % interval {interval_text(low, high)} over "
        f"{len(t.seeds)} seeds: **{t.reading}**"
        + (f"; ruled out is {_ruled_out(low, high)}." if t.reading == "no trend shown" else ".")
    )


def _ruled_out(low: float, high: float) -> str:
    """What a slope interval ``[low, high]`` that contains 0 rules out, in words."""
    return (
        f"a gain that grows by more than {-low:.2f} points for each halving of the data (the direction the thesis "
        f"predicts) or shrinks by more than {high:.2f}"
    )


def datasize_reading(results: Optional[str | Path] = None, preset: str = "cpu") -> DatasizeReading:
    """The data-size experiment's reading at ``preset`` (best-epoch top-1 is the pre-stated metric)."""
    from ..experiments.grids import get_experiment

    records = [r for r in load("datasize", results) if r["config"]["preset"] == preset]
    grid = [c for c in get_experiment("datasize").configs(preset) if c.mask in (None, "gmm")]
    out = DatasizeReading(
        planned_sizes=tuple(sorted({c.train_size for c in grid})), planned_seeds=tuple(sorted({c.seed for c in grid}))
    )
    out.arm = next(
        (label({**r["config"], "train_size": None}) for r in records if r["config"].get("mask") == "gmm"), out.arm
    )
    best, final = size_pairs(records, "gmm"), size_pairs(records, "gmm", "final_top1")
    if len(best) < 2:
        return out
    out.trend, out.final_trend = gain_trend(best), gain_trend(final)
    for r in records:
        mask = r["config"].get("mask")
        if mask in (None, "gmm"):
            continue
        name = label({**r["config"], "train_size": None})  # one prior across the sizes
        if name in out.priors:
            continue
        pairs = size_pairs([x for x in records if x["config"].get("mask") in (None, mask)], mask)
        out.priors[name] = {
            n: paired([v[0] for v in seeds.values()], [v[1] for v in seeds.values()]) for n, seeds in pairs.items()
        }
    planned = len(out.planned_seeds) if out.interim else None
    text = [_trend_text(out.trend, "The GMM's paired gain over the ViT (best epoch)", planned)]
    if out.final_trend is not None and out.final_trend.interval is not None:
        text.append(
            f"On the final epoch the slope is {out.final_trend.slope:+.2f} points per doubling "
            f"{interval_text(*out.final_trend.interval)}."
        )
    out.trend_text = " ".join(text)
    for name, by_size in out.priors.items():
        text.append(
            f"{name}: "
            + ", ".join(
                f"{n:,} images {g.gain:+.2f}" + (f" {interval_text(*g.interval)}" if g.interval else " (one seed)")
                for n, g in sorted(by_size.items())
            )
            + "."
        )
    out.text = " ".join(text)
    return out


def data_path_check(
    results: Optional[str | Path] = None, preset: str = "cpu", workers_results: Optional[str | Path] = None
) -> Dict[str, Paired]:
    """Each arm at 50,000 images on the batched path (``datasize``) against the same arm and seed on the
    workers (``headline``): ``{"ViT (GAP)": Paired(a=workers, b=batched), "GMM-ViT (GAP)": ...}``.

    ``workers_results`` is the folder of the ``headline`` runs (default ``results``): the data-size runs may be
    staged in ``results/pending`` while the headline's are in ``results/``."""
    full = {}
    for experiment, path, folder in (
        ("headline", "workers", workers_results or results),
        ("datasize", "batched", results),
    ):
        for r in load(experiment, folder):
            c = r["config"]
            size = c.get("train_size")
            if c["preset"] != preset or c.get("mask") not in (None, "gmm"):
                continue
            if experiment == "datasize" and size != 50_000:
                continue
            full.setdefault(label({**c, "train_size": None}), {}).setdefault(path, {})[int(c["seed"])] = r["best_top1"]
    out = {}
    for name, paths in full.items():
        seeds = sorted(set(paths.get("workers", {})) & set(paths.get("batched", {})))
        if seeds:
            out[name] = paired([paths["workers"][s] for s in seeds], [paths["batched"][s] for s in seeds])
    return out


# ---- the chapter "Where locality pays": which folder it reads, and its readings -------------------------------

STAGING = "pending"  # the results store's staging folder: runs in progress, promoted when their grid is complete


@dataclass(frozen=True)
class DatasizeSource:
    """Where the chapter reads the ``datasize`` runs.

    Args:
        folder: the results folder holding them (``results/`` when they are promoted, else its staging folder).
        staged: True when they are read from the staging folder (runs in progress, not yet promoted).
        note: Markdown saying so, with how many of the grid's runs are staged (empty when not staged).
    """

    folder: Path
    staged: bool
    note: str


def datasize_source(results: Optional[str | Path] = None, preset: str = "cpu") -> DatasizeSource:
    """``results`` when it lists ``datasize`` runs, else its staging folder ``results/pending`` when that does
    (with a note that they are runs in progress), else ``results`` (nothing recorded yet)."""
    from ..experiments.grids import get_experiment
    from ..store.paths import results_dir
    from ..store.records import Store

    root = results_dir(results)
    if Store(root).experiment("datasize"):
        return DatasizeSource(root, False, "")
    staging = root / STAGING
    staged = Store(staging).experiment("datasize")
    if not staged:
        return DatasizeSource(root, False, "")
    planned = len(get_experiment("datasize").configs(preset))
    note = (
        f"**Runs in progress.** The `datasize` runs are not in `results/` yet: this chapter reads them from the "
        f"staging folder `results/{STAGING}/`, where they land one by one and from which the grid is promoted into "
        f"`results/` only when it is complete. {len(staged)} of the grid's {planned} runs are staged so far; every "
        "number below may change as the others land."
    )
    return DatasizeSource(staging, True, note)


def datasize_runs(results: Optional[str | Path] = None, preset: str = "cpu") -> List[Dict[str, Any]]:
    """One row per recorded ``datasize`` run, for the figures: ``arm`` (its label, sizes aside), ``mask``
    ("none" for the ViT), ``train_size`` (images it trained on), ``seed``, ``best_top1`` and ``final_top1``."""
    rows = []
    for r in load("datasize", results):
        c = r["config"]
        if c["preset"] != preset:
            continue
        rows.append(
            {
                "arm": label({**c, "train_size": None}),
                "mask": c.get("mask") or "none",
                "train_size": int(c["train_size"]),
                "seed": int(c["seed"]),
                "best_top1": r["best_top1"],
                "final_top1": r["final_top1"],
            }
        )
    # the ViT first, then the GMM, then the other priors: the order the figures draw and name them in
    return sorted(rows, key=lambda r: (r["mask"] != "none", r["mask"] != "gmm", r["arm"], r["train_size"], r["seed"]))


def _row(comparison: str, what: str, size: int, g: Paired) -> Dict[str, Any]:
    low, high = g.interval or (math.nan, math.nan)
    return {
        "comparison": comparison,
        "what": what,
        "train_size": size,
        "seeds": g.seeds,
        "gain": g.gain,
        "low": low,
        "high": high,
        "p_value": p_value(g),
    }


def datasize_standings(
    reading: DatasizeReading, check: Mapping[str, Paired], book_rows: Sequence[Mapping[str, Any]]
) -> List[Dict[str, Any]]:
    """The chapter's comparisons, each read by the book's one rule (:func:`gmmlib.readings.standing`).

    Rows (dicts): ``comparison``, ``what`` ("gain": the GMM at one size; "prior": another prior at one end;
    "data path": batched minus workers, one arm at the whole split), ``train_size``, ``seeds``, ``gain``,
    ``low``/``high`` (95 % interval, NaN for one seed), ``p_value``, ``holds`` and ``standing``. Holm's correction
    runs over the book's comparisons (``book_rows``: :func:`gmmlib.readings.comparisons`, any ``datasize`` rows
    there left out) together with these.
    """
    from .standard import standing

    rows = []
    if reading.trend is not None:
        rows += [_row(f"{reading.arm}, {n:,} images", "gain", n, g) for n, g in reading.trend.gains.items()]
    for name, by_size in reading.priors.items():
        rows += [_row(f"{name}, {n:,} images", "prior", n, g) for n, g in sorted(by_size.items())]
    unmasked_first = sorted(check.items(), key=lambda item: "-" in item[0].split(" ")[0])  # ViT, then GMM-ViT
    rows += [_row(f"{name}: batched minus workers", "data path", 50_000, g) for name, g in unmasked_first]
    family = [r for r in book_rows if r.get("experiment") != "datasize"]
    pvalues = [None if r["p_value"] is None or math.isnan(r["p_value"]) else r["p_value"] for r in family]
    holds = holm(pvalues + [r["p_value"] for r in rows])[len(family) :]
    for r, h in zip(rows, holds):
        r["holds"] = h
        r["standing"] = standing(r)
    return rows


def standings_table(rows: Sequence[Mapping[str, Any]]):
    """:func:`datasize_standings` rows as a table for reading (text in points; "one seed" where no interval)."""
    import pandas as pd

    return pd.DataFrame(
        [
            {
                "comparison": r["comparison"],
                "seeds": r["seeds"],
                "gain (points)": f"{r['gain']:+.2f}",
                "95 % interval": "one seed" if r["seeds"] < 2 else interval_text(r["low"], r["high"]),
                "reading": r["standing"],
            }
            for r in rows
        ]
    )
