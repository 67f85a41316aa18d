"""How far a handful of seeds lets us read a gain: paired differences, t-intervals, the smallest detectable effect.

A comparison in this book is paired: both arms share the seed (and so the data order and the
augmentation draws), and the quantity of interest is the per-seed gain ``b - a``. With n seeds its
mean has the Student-t interval ``mean +- t_{1-alpha/2, n-1} * sd / sqrt(n)``; with three seeds
``t = 4.30``, so an interval is wide, and a claim should say so.

Example:
    >>> c = paired([49.75, 49.58, 50.06], [49.19, 50.05, 49.80])   # ViT, GMM-ViT, seeds 0-2
    >>> c.gain, c.interval          # (-0.117, (-1.43, 1.20))
    >>> minimum_detectable_effect(c.gain_std, c.seeds)   # the smallest gain 3 such seeds would detect
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

from scipy import stats as _scipy

__all__ = [
    "Paired",
    "paired",
    "t_interval",
    "excludes",
    "interval_text",
    "minimum_detectable_effect",
    "seeds_needed",
    "expected_range",
    "range_tail",
    "largest_abs_quantile",
    "p_value",
    "holm",
    "pooled_std",
    "pooled_test",
]


def t_interval(values: Sequence[float], confidence: float = 0.95) -> Tuple[float, float]:
    """The Student-t confidence interval of the mean of ``values`` (needs at least two).

    Raises:
        ValueError: fewer than two values, or a confidence outside (0, 1).
    """
    n = len(values)
    if n < 2:
        raise ValueError(f"an interval needs at least 2 values, got {n}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = _scipy.t.ppf(0.5 + confidence / 2, n - 1) * sd / math.sqrt(n)
    return mean - half, mean + half


def excludes(low: float, high: float, value: float = 0.0) -> bool:
    """Whether the interval ``[low, high]`` leaves out ``value`` (zero by default: a gain's sign is settled)."""
    return not low <= value <= high


def interval_text(low: float, high: float) -> str:
    """An interval as the book prints it: ``"[-0.53, +1.31]"`` (points, signed, two decimals)."""
    return f"[{low:+.2f}, {high:+.2f}]"


@dataclass(frozen=True)
class Paired:
    """A paired comparison of arm ``b`` against arm ``a`` over the same seeds.

    Args:
        seeds: number of paired seeds n.
        mean_a, std_a, mean_b, std_b: per-arm mean and sample std (std None for one seed).
        gain: mean of the per-seed differences b - a.
        gain_std: their sample std (None for one seed).
        interval: the t-interval of ``gain`` at ``confidence`` (None for one seed).
        confidence: e.g. 0.95.
        diffs: the per-seed differences b - a, in seed order.
    """

    seeds: int
    mean_a: float
    std_a: Optional[float]
    mean_b: float
    std_b: Optional[float]
    gain: float
    gain_std: Optional[float]
    interval: Optional[Tuple[float, float]]
    confidence: float
    diffs: Tuple[float, ...] = ()

    @property
    def excludes_zero(self) -> bool:
        """Whether the interval lies wholly on one side of zero (False without an interval)."""
        return self.interval is not None and (self.interval[0] > 0 or self.interval[1] < 0)


def _std(values: Sequence[float]) -> Optional[float]:
    n = len(values)
    if n < 2:
        return None
    mean = sum(values) / n
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))


def paired(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> Paired:
    """Compare ``b`` with ``a``, seed by seed (``a[i]`` and ``b[i]`` share seed i).

    Raises:
        ValueError: the arms differ in length or are empty.
    """
    if len(a) != len(b) or not a:
        raise ValueError(f"paired arms need the same seeds, got {len(a)} and {len(b)} values")
    diffs = [y - x for x, y in zip(a, b)]
    n = len(diffs)
    return Paired(
        seeds=n,
        mean_a=sum(a) / n,
        std_a=_std(a),
        mean_b=sum(b) / n,
        std_b=_std(b),
        gain=sum(diffs) / n,
        gain_std=_std(diffs),
        interval=t_interval(diffs, confidence) if n >= 2 else None,
        confidence=confidence,
        diffs=tuple(diffs),
    )


def minimum_detectable_effect(gain_std: float, seeds: int, alpha: float = 0.05, power: float = 0.8) -> float:
    """The smallest true mean gain a two-sided paired t-test on ``seeds`` seeds detects with ``power``.

    Solved exactly with the noncentral t distribution: the effect d (in points) for which
    ``P(|T| > t_crit) = power`` when ``T`` has noncentrality ``d * sqrt(n) / gain_std``.

    Args:
        gain_std: the std of one per-seed gain (from pilot seeds).
        seeds: n >= 2.
        alpha: the test's level.
        power: the wanted probability of detecting the effect.

    Raises:
        ValueError: fewer than two seeds, or a non-positive std.
    """
    if seeds < 2:
        raise ValueError(f"a paired t-test needs at least 2 seeds, got {seeds}")
    if not gain_std > 0:
        raise ValueError(f"gain_std must be positive, got {gain_std}")
    df = seeds - 1
    crit = _scipy.t.ppf(1 - alpha / 2, df)

    def power_at(nc: float) -> float:
        return _scipy.nct.sf(crit, df, nc) + _scipy.nct.cdf(-crit, df, nc)

    lo, hi = 0.0, 1.0
    while power_at(hi) < power:
        hi *= 2
    for _ in range(100):  # bisection on the noncentrality
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if power_at(mid) < power else (lo, mid)
    return hi * gain_std / math.sqrt(seeds)


def seeds_needed(effect: float, gain_std: float, alpha: float = 0.05, power: float = 0.8, limit: int = 1000) -> int:
    """The fewest paired seeds whose t-test detects a true gain of ``effect`` points with ``power``.

    Args:
        effect: the true mean gain to detect, e.g. the paper's +1.41 (its sign does not matter).
        gain_std: the std of one per-seed gain.
        limit: give up beyond this many seeds (raises).
    """
    if effect == 0:
        raise ValueError("an effect of 0 cannot be detected; expected a non-zero gain")
    for n in range(2, limit + 1):
        if minimum_detectable_effect(gain_std, n, alpha, power) <= abs(effect):
            return n
    raise ValueError(f"more than {limit} seeds are needed to detect {effect} with a gain std of {gain_std}")


def expected_range(n: int, std: float) -> float:
    """The expected range (max - min) of ``n`` independent normal draws with standard deviation ``std``.

    The spread that pure noise gives ``n`` settings that do not differ at all: an ablation whose
    one-seed gains spread by about this much shows no effect of its setting. Computed as
    ``std * integral(1 - Phi(x)^n - (1 - Phi(x))^n) dx``.
    """
    if n < 2:
        raise ValueError(f"a range needs at least 2 draws, got {n}")
    from scipy import integrate

    def tail(x: float) -> float:
        p = _scipy.norm.cdf(x)
        return 1.0 - p**n - (1.0 - p) ** n

    value, _ = integrate.quad(tail, -12, 12, limit=200)
    return std * value


def range_tail(n: int, std: float, spread: float) -> float:
    """The probability that the range (max - min) of ``n`` independent normal draws with standard
    deviation ``std`` is at least ``spread``: how often settings that do not differ at all spread
    as wide as observed, from seed noise alone.

    Exact: ``P(range <= r) = n * integral(phi(x) * (Phi(x + r / std) - Phi(x))^(n - 1)) dx`` (the
    lowest draw at x, the other n - 1 within r / std above it).
    """
    if n < 2:
        raise ValueError(f"a range needs at least 2 draws, got {n}")
    if not std > 0:
        raise ValueError(f"std must be positive, got {std}")
    if spread <= 0:
        return 1.0
    from scipy import integrate

    w = spread / std
    norm = _scipy.norm

    def lowest_at(x: float) -> float:
        return n * norm.pdf(x) * (norm.cdf(x + w) - norm.cdf(x)) ** (n - 1)

    inside, _ = integrate.quad(lowest_at, -12, 12, limit=200, epsabs=1e-12)
    return min(1.0, max(0.0, 1.0 - inside))


def largest_abs_quantile(n: int, q: float = 0.95) -> float:
    """The ``q`` quantile of the largest ``|z|`` among ``n`` independent standard normal draws.

    How far from zero the largest of ``n`` one-seed gains of pure noise lies (in units of a gain's
    seed std) in all but ``1 - q`` of draws: a gain beyond it is a candidate, not yet a finding.
    Exact: ``P(max |z| <= x) = (2 Phi(x) - 1)^n``, so ``x = Phi^-1((1 + q^(1/n)) / 2)``.
    """
    if n < 1:
        raise ValueError(f"n must be at least 1 draw, got {n}")
    if not 0 < q < 1:
        raise ValueError(f"q must lie strictly between 0 and 1, got {q}")
    return float(_scipy.norm.ppf((1 + q ** (1 / n)) / 2))


def p_value(comparison: Paired) -> Optional[float]:
    """Two-sided p-value of a paired t-test that the mean gain is zero (None for one seed).

    A gain whose seeds agree exactly has p = 0 (or 1 when it is zero): the t statistic is infinite.
    """
    if comparison.seeds < 2 or comparison.gain_std is None:
        return None
    if comparison.gain_std == 0:
        return 0.0 if comparison.gain != 0 else 1.0
    t = comparison.gain / (comparison.gain_std / math.sqrt(comparison.seeds))
    return float(2 * _scipy.t.sf(abs(t), comparison.seeds - 1))


def holm(p_values: Sequence[Optional[float]], alpha: float = 0.05) -> list:
    """Holm's step-down correction: which of several tests reject at family-wise level ``alpha``.

    The p-values are sorted; the i-th smallest (from 0) rejects while it is at most ``alpha / (m - i)``,
    and every larger one is kept once one fails. ``m`` counts the tests that have a p-value; a None
    (one seed, no test) stays None.

    Returns:
        Per input, True (holds after the correction), False, or None.
    """
    tested = sorted((p, i) for i, p in enumerate(p_values) if p is not None)
    out: list = [None] * len(p_values)
    m, rejecting = len(tested), True
    for rank, (p, i) in enumerate(tested):
        rejecting = rejecting and p <= alpha / (m - rank)
        out[i] = rejecting
    return out


def pooled_std(stds: Sequence[Optional[float]], seeds: Sequence[int]) -> Tuple[float, int]:
    """The pooled standard deviation of several comparisons' per-seed gains, and its degrees of freedom.

    Where comparisons share a noise scale (the settings of one ablation: one backbone, the same seeds, the same
    unmasked runs), each comparison's gains vary about their own mean by the same seed noise, so their variances
    are pooled as one-way analysis of variance pools them: ``sum((n_i - 1) s_i^2) / sum(n_i - 1)``, with
    ``sum(n_i - 1)`` degrees of freedom. With three seeds a lone std rests on 2 degrees of freedom and can be
    small by luck; the pooled one does not. Comparisons of one seed (std None) add nothing.

    Raises:
        ValueError: the lists differ in length, or no comparison has two seeds.
    """
    if len(stds) != len(seeds):
        raise ValueError(f"one std per comparison expected, got {len(stds)} stds and {len(seeds)} seed counts")
    terms = [(n - 1, s) for s, n in zip(stds, seeds) if s is not None and n >= 2]
    df = sum(d for d, _ in terms)
    if df == 0:
        raise ValueError("pooling needs at least one comparison with 2 seeds or more")
    return math.sqrt(sum(d * s * s for d, s in terms) / df), df


def pooled_test(
    gain: float, seeds: int, std: float, df: int, confidence: float = 0.95
) -> Tuple[Tuple[float, float], float]:
    """A comparison's interval and two-sided p-value from a pooled std (:func:`pooled_std`) with ``df`` degrees
    of freedom: ``gain +- t_{df} * std / sqrt(seeds)``. Returns ``((low, high), p)``.

    Raises:
        ValueError: fewer than two seeds, a std that is not positive, or df < 1.
    """
    if seeds < 2:
        raise ValueError(f"a pooled interval needs at least 2 seeds, got {seeds}")
    if not std > 0 or df < 1:
        raise ValueError(f"expected a positive pooled std on df >= 1, got std={std}, df={df}")
    se = std / math.sqrt(seeds)
    half = _scipy.t.ppf(0.5 + confidence / 2, df) * se
    return (gain - half, gain + half), float(2 * _scipy.t.sf(abs(gain) / se, df))
