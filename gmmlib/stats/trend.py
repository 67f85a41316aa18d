"""How a paired gain changes along an axis (the training-set size): one slope per seed, read over seeds.

The test was fixed before the runs finished (chapter "Where locality pays"). Per seed, the gain
(masked minus unmasked top-1, both arms of that seed) at each training-set size is regressed on
log2(size) by least squares: one slope per seed, in points per doubling of the data. Seeds are the
independent unit (each seed's two arms share their initial weights, data order and augmentation),
so the slope is the mean of the per-seed slopes with its Student-t interval over seeds. Only seeds
with every size enter the slope. The reading:

* "the gain grows as data shrink": the slope's 95 % interval lies wholly below zero (a larger gain
  on fewer images, as the paper's thesis predicts);
* "the gain shrinks as data shrink": the interval lies wholly above zero;
* "no trend shown": the interval includes zero; the slopes it leaves out are stated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, Mapping, Optional, Sequence, Tuple

from .inference import Paired, paired, t_interval

__all__ = ["TREND_READINGS", "Trend", "seed_slope", "gain_trend"]

TREND_READINGS = ("the gain grows as data shrink", "no trend shown", "the gain shrinks as data shrink")


@dataclass(frozen=True)
class Trend:
    """A paired gain along the training-set size.

    Args:
        sizes: the sizes, ascending.
        gains: the paired comparison at each size (over the seeds that have it).
        seeds: the seeds with every size, which the slope uses.
        slopes: each of those seeds' slope (points per doubling of the training set).
        slope: their mean.
        interval: its 95 % t-interval over seeds (None with fewer than two seeds).
        reading: one of :data:`TREND_READINGS`, or "not enough seeds".
    """

    sizes: Tuple[int, ...]
    gains: Dict[int, Paired]
    seeds: Tuple[int, ...]
    slopes: Tuple[float, ...]
    slope: float
    interval: Optional[Tuple[float, float]]
    reading: str


def seed_slope(sizes: Sequence[int], gains: Sequence[float]) -> float:
    """Least-squares slope of ``gains`` on log2(``sizes``): points per doubling.

    Raises:
        ValueError: fewer than two distinct sizes, or lengths that differ.
    """
    if len(sizes) != len(gains) or len(set(sizes)) < 2:
        raise ValueError(f"a slope needs gains at two sizes or more, got sizes {list(sizes)} and {len(gains)} gains")
    x = [math.log2(s) for s in sizes]
    mx, my = sum(x) / len(x), sum(gains) / len(gains)
    return sum((a - mx) * (b - my) for a, b in zip(x, gains)) / sum((a - mx) ** 2 for a in x)


def gain_trend(pairs: Mapping[int, Mapping[int, Tuple[float, float]]], confidence: float = 0.95) -> Trend:
    """The paired gain at each size and its trend over log2(size), seeds as the unit.

    Args:
        pairs: ``{size: {seed: (unmasked top-1, masked top-1)}}``.
        confidence: of the intervals.

    Raises:
        ValueError: no size, or fewer than two sizes.
    """
    sizes = tuple(sorted(pairs))
    if len(sizes) < 2:
        raise ValueError(f"a trend needs two sizes or more, got {list(sizes)}")
    gains = {}
    for n in sizes:
        seeds = sorted(pairs[n])
        if seeds:
            gains[n] = paired([pairs[n][s][0] for s in seeds], [pairs[n][s][1] for s in seeds], confidence)
    complete = tuple(sorted(set.intersection(*(set(pairs[n]) for n in sizes))))
    slopes = tuple(seed_slope(sizes, [pairs[n][s][1] - pairs[n][s][0] for n in sizes]) for s in complete)
    slope = sum(slopes) / len(slopes) if slopes else float("nan")
    interval = t_interval(slopes, confidence) if len(slopes) >= 2 else None
    if interval is None:
        reading = "not enough seeds"
    elif interval[1] < 0:
        reading = TREND_READINGS[0]
    elif interval[0] > 0:
        reading = TREND_READINGS[2]
    else:
        reading = TREND_READINGS[1]
    return Trend(sizes, gains, complete, slopes, slope, interval, reading)
