"""Accuracy and the paired gain against the size of the training set (chapter "Where locality pays").

Both figures take the rows of :func:`gmmlib.readings.datasize_runs` (one per run: ``arm``, ``mask``,
``train_size``, ``seed`` and the top-1 metrics) and draw; they load nothing. The x axis is logarithmic (base 2, so
equal steps are doublings of the data) with a tick at each size the rows have.

- :func:`accuracy_against_size`: each arm's top-1 at each size, one small point per seed, the mean over seeds
  with its 95 % t-interval.
- :func:`gain_against_size`: the masked arm minus the unmasked one, seed by seed (one thin line per seed), the
  mean with its interval at each size, and the pre-stated trend test (:func:`gmmlib.stats.gain_trend`) drawn as
  the mean of the per-seed least-squares lines, with its reading.
"""

from __future__ import annotations

import math
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

from .style import COLUMN_WIDTH, mask_colour

__all__ = ["METRIC_NAMES", "size_axis", "accuracy_against_size", "gain_against_size"]

# What each metric is called on an axis.
METRIC_NAMES = {"best_top1": "top-1, best epoch (%)", "final_top1": "top-1, final epoch (%)"}

_SPREAD = 0.09  # the arms' side-by-side offset at one size, in doublings (log2 units)


def _new_axes(height: float):
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=(COLUMN_WIDTH, height))
    return ax


def size_axis(ax, sizes: Sequence[int]) -> None:
    """A base-2 logarithmic x axis with one labelled tick per training-set size ("2,500") and no minor ticks."""
    from matplotlib.ticker import FixedLocator, NullLocator

    sizes = sorted(set(sizes))
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_locator(FixedLocator(sizes))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticklabels([f"{n:,}" for n in sizes])
    ax.set_xlim(sizes[0] / 2**0.4, sizes[-1] * 2**0.4)
    ax.set_xlabel("training images (log scale)")


def _check(rows: Sequence[Mapping[str, Any]], metric: str) -> None:
    if not rows:
        raise ValueError("no runs to draw: the rows are empty")
    missing = {"arm", "mask", "train_size", "seed", metric} - set(rows[0])
    if missing:
        raise ValueError(f"rows need the fields {sorted(missing)} (rows of gmmlib.readings.datasize_runs)")


def accuracy_against_size(
    rows: Sequence[Mapping[str, Any]],
    ax=None,
    metric: str = "best_top1",
    confidence: float = 0.95,
) -> Dict[str, Dict[int, Tuple[float, Optional[Tuple[float, float]], int]]]:
    """Each arm's top-1 against the training-set size: a small point per seed, the mean with its t-interval.

    Args:
        rows: :func:`gmmlib.readings.datasize_runs` rows (any arms; each gets its mask's colour, or one of its own
            when two arms share a mask kind), drawn in the rows' order of arms.
        ax: the axes (default: a new figure as wide as the book's column).
        metric: ``"best_top1"`` or ``"final_top1"``.
        confidence: of the intervals.

    Returns:
        Per arm and size, ``(mean, interval or None for one seed, seeds)``: what the means and bars show.
    """
    from matplotlib.lines import Line2D

    from ..stats.inference import t_interval

    _check(rows, metric)
    ax = ax if ax is not None else _new_axes(3.4)
    arms = list(dict.fromkeys(r["arm"] for r in rows))
    masks = [next(r["mask"] for r in rows if r["arm"] == a) for a in arms]
    by_mask = len(set(masks)) == len(masks)
    out: Dict[str, Dict[int, Tuple[float, Optional[Tuple[float, float]], int]]] = {}
    several = False
    for i, (arm, mask) in enumerate(zip(arms, masks)):
        colour = mask_colour(mask) if by_mask else f"C{i}"
        shift = 2 ** ((i - (len(arms) - 1) / 2) * _SPREAD)  # side by side at each size, so the bars do not overlap
        mine = [r for r in rows if r["arm"] == arm]
        ax.plot(
            [r["train_size"] * shift for r in mine],
            [r[metric] for r in mine],
            "o",
            color=colour,
            markersize=3.5,
            alpha=0.45,
            label="_seeds",
        )
        out[arm] = {}
        for n in sorted({r["train_size"] for r in mine}):
            values = [r[metric] for r in mine if r["train_size"] == n]
            interval = t_interval(values, confidence) if len(values) >= 2 else None
            out[arm][n] = (sum(values) / len(values), interval, len(values))
            several |= interval is not None
        sizes = sorted(out[arm])
        means = [out[arm][n][0] for n in sizes]
        below = [m - out[arm][n][1][0] if out[arm][n][1] else 0.0 for n, m in zip(sizes, means)]
        above = [out[arm][n][1][1] - m if out[arm][n][1] else 0.0 for n, m in zip(sizes, means)]
        ax.errorbar(
            [n * shift for n in sizes], means, yerr=[below, above], color=colour, marker="D", markersize=5,
            linewidth=1.2, capsize=3, label=arm,
        )  # fmt: skip
    size_axis(ax, [r["train_size"] for r in rows])
    ax.set_ylabel(METRIC_NAMES.get(metric, metric))
    handles, _ = ax.get_legend_handles_labels()
    handles += [Line2D([], [], color="0.4", marker="o", markersize=3.5, alpha=0.45, linestyle="none", label="one seed")]
    if several:
        handles += [
            Line2D([], [], color="0.4", marker="D", markersize=5, label=f"mean, {confidence * 100:g} % interval")
        ]
    ax.figure.legend(handles=handles, loc="outside upper center", ncols=2, frameon=False)
    return out


def _pairs(rows: Sequence[Mapping[str, Any]], mask: str, metric: str) -> Dict[int, Dict[int, Tuple[float, float]]]:
    """``{size: {seed: (unmasked, masked)}}`` from the rows of the unmasked arm and the ``mask`` arm."""
    arms: Dict[Tuple[int, int], Dict[str, float]] = {}
    for r in rows:
        if r["mask"] in ("none", mask):
            arms.setdefault((r["train_size"], r["seed"]), {})[r["mask"]] = r[metric]
    out: Dict[int, Dict[int, Tuple[float, float]]] = {}
    for (n, seed), values in sorted(arms.items()):
        if {"none", mask} <= set(values):
            out.setdefault(n, {})[seed] = (values["none"], values[mask])
    return out


def gain_against_size(
    rows: Sequence[Mapping[str, Any]],
    ax=None,
    mask: str = "gmm",
    metric: str = "best_top1",
    planned_seeds: Optional[int] = None,
    confidence: float = 0.95,
):
    """The paired gain (``mask`` arm minus the unmasked arm, same seed and size) against the training-set size,
    with the pre-stated trend test.

    One thin line per seed through its gains; at each size the mean gain with its t-interval (the
    :class:`gmmlib.stats.inference.Paired` of :func:`gmmlib.stats.gain_trend`); a line at zero; and, with two
    complete seeds or more, a dashed line: the mean of the complete seeds' least-squares lines, whose slope is the
    test's, with the slope's interval and reading in the legend. While fewer than ``planned_seeds`` seeds are
    complete the legend says the slope is interim and gives no reading.

    Args:
        rows: :func:`gmmlib.readings.datasize_runs` rows (other arms are ignored).
        ax: the axes (default: a new figure as wide as the book's column).
        mask: the masked arm's mask kind.
        metric: ``"best_top1"`` (the pre-stated metric) or ``"final_top1"``.
        planned_seeds: the seeds the grid plans (None: read the slope on whatever seeds are complete).
        confidence: of the intervals.

    Returns:
        The :class:`gmmlib.stats.trend.Trend` drawn.

    Raises:
        ValueError: no rows, or fewer than two sizes with paired runs.
    """
    from matplotlib.lines import Line2D

    from ..stats.inference import interval_text
    from ..stats.trend import gain_trend

    _check(rows, metric)
    pairs = _pairs(rows, mask, metric)
    if len(pairs) < 2:
        raise ValueError(f"a gain against size needs paired runs at two sizes or more, got {sorted(pairs)}")
    trend = gain_trend(pairs, confidence)
    ax = ax if ax is not None else _new_axes(3.6)
    colour = mask_colour(mask)
    ax.axhline(0.0, color="black", linewidth=0.8)
    seeds = sorted({s for by_seed in pairs.values() for s in by_seed})
    for s in seeds:
        points = [(n, pairs[n][s][1] - pairs[n][s][0]) for n in trend.sizes if s in pairs[n]]
        ax.plot(*zip(*points), color=colour, linewidth=0.8, alpha=0.45, marker="o", markersize=3, label="_seed")
    sizes = list(trend.gains)
    means = [trend.gains[n].gain for n in sizes]
    below = [g.gain - g.interval[0] if g.interval else 0.0 for g in trend.gains.values()]
    above = [g.interval[1] - g.gain if g.interval else 0.0 for g in trend.gains.values()]
    ax.errorbar(
        sizes, means, yerr=[below, above], color=colour, marker="D", markersize=5, linewidth=0, elinewidth=1.5,
        capsize=3, label=f"mean over seeds, {confidence * 100:g} % interval",
    )  # fmt: skip
    handles = [Line2D([], [], color=colour, linewidth=0.8, alpha=0.45, marker="o", markersize=3, label="one seed")]
    handles += ax.get_legend_handles_labels()[0]
    if trend.interval is not None:
        x = [math.log2(n) for n in trend.sizes]
        centre = sum(x) / len(x)
        # the mean of the complete seeds' least-squares lines passes through their mean gain at the mean log2(size)
        level = sum(pairs[n][s][1] - pairs[n][s][0] for n in trend.sizes for s in trend.seeds) / (
            len(trend.sizes) * len(trend.seeds)
        )
        fit = [level + trend.slope * (v - centre) for v in x]
        interim = planned_seeds is not None and len(trend.seeds) < planned_seeds
        said = (
            f"interim ({len(trend.seeds)} of {planned_seeds} seeds), not read"
            if interim
            else f"{len(trend.seeds)} seeds: {trend.reading}"
        )
        (line,) = ax.plot(
            list(trend.sizes), fit, "--", color="black", linewidth=1.2,
            label=f"slope {trend.slope:+.2f} {interval_text(*trend.interval)} per doubling; {said}",
        )  # fmt: skip
        handles.append(line)
    size_axis(ax, list(trend.sizes))
    ax.set_ylabel("gain in top-1 (points)" if metric == "best_top1" else "gain in final-epoch top-1 (points)")
    ax.figure.legend(handles=handles, loc="outside upper center", ncols=1, frameon=False)
    return trend
