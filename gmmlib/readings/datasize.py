"""Where locality pays: the masks' gains as the training set shrinks (the ``datasize`` experiment).

The analysis was written and committed before the runs finished; it reads whatever seeds are
recorded. For each training-set size the GMM's paired gain over the unmasked ViT (same seed, same
images in the same order) with its 95 % interval, and the trend over log2(size) with seeds as the
unit (:func:`gmmlib.stats.gain_trend`, whose docstring states the rule). The other priors are read
at the two ends. At 50,000 images the batched data path is set beside the headline's runs on the
workers, arm by arm and seed by seed: the check that the two data paths train alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

from ..stats.inference import Paired, interval_text, paired
from ..stats.tables import label, load
from ..stats.trend import Trend, gain_trend

__all__ = ["DatasizeReading", "size_pairs", "datasize_reading", "data_path_check"]


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
    """

    trend: Optional[Trend] = None
    final_trend: Optional[Trend] = None
    priors: Dict[str, Dict[int, Paired]] = field(default_factory=dict)
    text: str = ""


def _trend_text(t: Trend, what: str) -> str:
    gains = "; ".join(
        f"{n:,} images {g.gain:+.2f}" + (f" {interval_text(*g.interval)}" if g.interval else "") + f" ({g.seeds})"
        for n, g in t.gains.items()
    )
    if t.interval is None:
        return f"{what} at each size (points, 95 % interval, seeds): {gains}. Too few complete seeds for a trend."
    low, high = t.interval
    return (
        f"{what} at each size (points, 95 % interval, seeds): {gains}. Its slope over log2(train size) is "
        f"{t.slope:+.2f} points per doubling of the data, 95 % interval {interval_text(low, high)} over "
        f"{len(t.seeds)} seeds: **{t.reading}**"
        + (
            f"; slopes beyond {max(abs(low), abs(high)):.2f} points per doubling either way are ruled out."
            if t.reading == "no trend shown"
            else "."
        )
    )


def datasize_reading(results: Optional[str | Path] = None, preset: str = "cpu") -> DatasizeReading:
    """The data-size experiment's reading at ``preset`` (best-epoch top-1 is the pre-stated metric)."""
    records = [r for r in load("datasize", results) if r["config"]["preset"] == preset]
    out = DatasizeReading()
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
    text = [_trend_text(out.trend, "The GMM's paired gain over the ViT (best epoch)")]
    if out.final_trend is not None and out.final_trend.interval is not None:
        text.append(f"On the final epoch the slope is {out.final_trend.slope:+.2f} points per doubling.")
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


def data_path_check(results: Optional[str | Path] = None, preset: str = "cpu") -> Dict[str, Paired]:
    """Each arm at 50,000 images on the batched path (``datasize``) against the same arm and seed on the
    workers (``headline``): ``{"ViT (GAP)": Paired(a=workers, b=batched), "GMM-ViT (GAP)": ...}``."""
    full = {}
    for experiment, path in (("headline", "workers"), ("datasize", "batched")):
        for r in load(experiment, results):
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
