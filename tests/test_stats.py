"""The statistics the book's claims go through: paired gains, t-intervals, the minimum detectable effect."""

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from gmmlib.stats.inference import excludes, interval_text, minimum_detectable_effect, paired, t_interval


def test_t_interval_is_students():
    values = [0.3, -0.2, 0.9, 0.1, 0.4]
    lo, hi = t_interval(values, 0.9)
    ref = scipy_stats.t.interval(0.9, 4, loc=np.mean(values), scale=scipy_stats.sem(values))
    assert (lo, hi) == pytest.approx(ref)
    with pytest.raises(ValueError, match="at least 2 values, got 1"):
        t_interval([1.0])
    with pytest.raises(ValueError, match="confidence must lie in \\(0, 1\\), got 95"):
        t_interval([1.0, 2.0], 95)


def test_an_interval_excludes_a_value_only_strictly_outside_its_ends():
    """Zero on an end of an interval does not settle the gain's sign; the paper's gain is read the same way."""
    assert excludes(0.1, 0.9) and excludes(-0.9, -0.1)
    assert not excludes(-0.5, 0.5) and not excludes(0.0, 0.9) and not excludes(-0.9, 0.0)
    assert excludes(-0.5, 0.5, 1.41) and not excludes(-0.5, 1.5, 1.41)


def test_an_interval_prints_signed_with_two_decimals():
    assert interval_text(-0.534, 1.306) == "[-0.53, +1.31]"
    assert interval_text(0.0, 2.0) == "[+0.00, +2.00]"


def test_paired_comparison_of_the_cpu_headline():
    """ViT and GMM-ViT, seeds 0-2 (best top-1 as recorded): a gain of -0.12 whose 95% interval
    spans about [-1.43, +1.20], so a gain of a point either way is not ruled out."""
    vit, gmm = [49.75, 49.58, 50.06], [49.19, 50.05, 49.80]
    c = paired(vit, gmm)
    assert c.seeds == 3 and c.gain == pytest.approx(-0.1167, abs=1e-3)
    assert c.gain_std == pytest.approx(0.530, abs=1e-3)
    assert c.interval == pytest.approx((-1.434, 1.200), abs=2e-3)
    assert not c.excludes_zero
    assert c.mean_a == pytest.approx(np.mean(vit)) and c.std_b == pytest.approx(np.std(gmm, ddof=1))
    one = paired([50.0], [51.0])
    assert one.gain == 1.0 and one.interval is None and one.gain_std is None and not one.excludes_zero
    assert paired([1.0, 2.0, 3.0], [2.0, 3.1, 3.9]).excludes_zero
    with pytest.raises(ValueError, match="same seeds, got 2 and 3 values"):
        paired([1.0, 2.0], [1.0, 2.0, 3.0])


def test_minimum_detectable_effect_has_the_power_it_claims():
    rng = np.random.default_rng(0)
    for seeds, sd in ((3, 0.53), (5, 0.53), (10, 1.0)):
        mde = minimum_detectable_effect(sd, seeds)
        diffs = rng.normal(mde, sd, size=(40_000, seeds))
        t = diffs.mean(1) / (diffs.std(1, ddof=1) / math.sqrt(seeds))
        rejected = np.abs(t) > scipy_stats.t.ppf(0.975, seeds - 1)
        assert rejected.mean() == pytest.approx(0.8, abs=0.01), seeds
    # many seeds: the normal approximation (z_0.975 + z_0.8) * sd / sqrt(n)
    assert minimum_detectable_effect(1.0, 400) == pytest.approx((1.95996 + 0.84162) / 20, rel=0.01)
    assert minimum_detectable_effect(0.53, 5) < minimum_detectable_effect(0.53, 3)
    with pytest.raises(ValueError, match="at least 2 seeds, got 1"):
        minimum_detectable_effect(0.5, 1)
    with pytest.raises(ValueError, match="gain_std must be positive, got 0"):
        minimum_detectable_effect(0, 3)


def test_expected_range_of_pure_noise():
    from gmmlib.stats.inference import expected_range

    assert expected_range(2, 1.0) == pytest.approx(2 / math.sqrt(math.pi), rel=1e-6)  # E|X - Y|, X, Y ~ N(0, 1)
    assert expected_range(7, 1.0) == pytest.approx(2.704, abs=1e-3)  # the d2 constant of quality control
    assert expected_range(7, 0.5) == pytest.approx(0.5 * expected_range(7, 1.0))
    rng = np.random.default_rng(0)
    draws = rng.normal(0.0, 0.53, size=(20000, 5))
    assert expected_range(5, 0.53) == pytest.approx(np.ptp(draws, axis=1).mean(), rel=0.02)
    with pytest.raises(ValueError, match="at least 2 draws, got 1"):
        expected_range(1, 1.0)


def test_seeds_needed_is_the_smallest_n_that_detects_the_effect():
    from gmmlib.stats.inference import minimum_detectable_effect, seeds_needed

    n = seeds_needed(1.41, 0.53)
    assert minimum_detectable_effect(0.53, n) <= 1.41 < minimum_detectable_effect(0.53, n - 1) or n == 2
    assert seeds_needed(-1.41, 0.53) == n  # the sign of a gain does not matter
    assert seeds_needed(0.3, 0.53) > seeds_needed(1.0, 0.53)
    with pytest.raises(ValueError, match="effect of 0"):
        seeds_needed(0.0, 0.53)


def test_range_tail_is_exact():
    from gmmlib.stats.inference import expected_range, range_tail

    # two draws: the range is |X - Y| with X - Y ~ N(0, 2 std^2)
    assert range_tail(2, 0.5, 0.8) == pytest.approx(2 * scipy_stats.norm.sf(0.8 / (0.5 * math.sqrt(2))), rel=1e-9)
    rng = np.random.default_rng(0)
    for n, std, spread in ((7, 0.44, 1.12), (4, 0.53, 1.18), (3, 1.0, 2.5)):
        ranges = np.ptp(rng.normal(0.0, std, size=(200_000, n)), axis=1)
        assert range_tail(n, std, spread) == pytest.approx((ranges >= spread).mean(), abs=0.005)
    # its mean is the expected range: integral of P(range >= r) dr
    from scipy import integrate

    mean, _ = integrate.quad(lambda r: range_tail(5, 0.53, r), 0, 10)
    assert mean == pytest.approx(expected_range(5, 0.53), rel=1e-6)
    assert range_tail(5, 1.0, 0.0) == 1.0 and range_tail(5, 1.0, 20.0) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="at least 2 draws, got 1"):
        range_tail(1, 1.0, 1.0)
    with pytest.raises(ValueError, match="std must be positive, got 0"):
        range_tail(3, 0.0, 1.0)


def test_largest_abs_quantile_is_exact():
    from gmmlib.stats.inference import largest_abs_quantile

    assert largest_abs_quantile(1) == pytest.approx(scipy_stats.norm.ppf(0.975), rel=1e-12)  # 1.96
    rng = np.random.default_rng(0)
    for n in (3, 8):
        largest = np.abs(rng.standard_normal((200_000, n))).max(axis=1)
        x = largest_abs_quantile(n)
        assert (largest > x).mean() == pytest.approx(0.05, abs=0.002)
    assert largest_abs_quantile(8, 0.5) < largest_abs_quantile(8) < largest_abs_quantile(20)
    with pytest.raises(ValueError, match="at least 1 draw, got 0"):
        largest_abs_quantile(0)
    with pytest.raises(ValueError, match="strictly between 0 and 1, got 1"):
        largest_abs_quantile(3, 1)


def test_a_paired_p_value_is_the_t_tests():
    from gmmlib.stats.inference import p_value

    c = paired([49.75, 49.58, 50.06], [49.19, 50.05, 49.80])
    t = c.gain / (c.gain_std / math.sqrt(3))
    assert p_value(c) == pytest.approx(2 * scipy_stats.t.sf(abs(t), 2))
    assert p_value(paired([50.0], [51.0])) is None
    assert p_value(paired([1.0, 2.0], [2.0, 3.0])) == 0.0  # every seed agrees: an infinite t
    assert p_value(paired([1.0, 2.0], [1.0, 2.0])) == 1.0


def test_holm_steps_down_and_stops_at_the_first_that_fails():
    from gmmlib.stats.inference import holm

    # m = 4 tested: 0.01 <= 0.05/4, 0.015 <= 0.05/3, then 0.03 > 0.05/2 stops; 0.04 is not reached
    assert holm([0.01, 0.04, 0.015, 0.03, None]) == [True, False, True, False, None]
    assert holm([0.04, 0.015]) == [True, True]  # 0.015 <= 0.05/2, then 0.04 <= 0.05/1
    assert holm([0.04, 0.03]) == [False, False]  # the smallest already fails 0.05/2
    assert holm([]) == [] and holm([None]) == [None]
    # uncorrected, four p-values under 0.05 would all pass; Holm over ten tests keeps none of them
    assert holm([0.04, 0.015, 0.012, 0.009] + [0.5] * 6)[:4] == [False, False, False, False]


def test_a_reading_says_one_seed_includes_zero_a_lead_or_holds():
    from gmmlib.readings.standard import standing

    row = {"seeds": 3, "low": 0.1, "high": 0.9, "holds": True}
    assert standing(row) == "holds after correction"
    assert standing({**row, "holds": False}) == "a lead"
    assert standing({**row, "low": -0.1}) == "includes zero"
    assert standing({**row, "seeds": 1}) == "one seed"


def test_pooled_std_is_the_one_way_anova_residual_and_its_test_uses_its_degrees_of_freedom():
    """Three settings of three seeds each: the pooled std is sqrt(sum((n-1) s^2) / sum(n-1)) on 6 degrees of
    freedom, equal to the residual std of a one-way ANOVA on the same gains; one-seed settings add nothing."""
    from gmmlib.stats.inference import pooled_std, pooled_test

    groups = [[0.1, 0.2, 0.3], [1.0, 2.0, 0.0], [0.5, 0.5, 0.8]]
    stds = [float(np.std(g, ddof=1)) for g in groups]
    sd, df = pooled_std(stds + [None], [3, 3, 3, 1])
    residual = sum(((np.array(g) - np.mean(g)) ** 2).sum() for g in groups) / (9 - 3)
    assert df == 6 and sd == pytest.approx(math.sqrt(residual))
    (low, high), p = pooled_test(0.2, 3, sd, df)
    half = scipy_stats.t.ppf(0.975, 6) * sd / math.sqrt(3)
    assert (low, high) == pytest.approx((0.2 - half, 0.2 + half))
    assert p == pytest.approx(2 * scipy_stats.t.sf(0.2 / (sd / math.sqrt(3)), 6))
    with pytest.raises(ValueError, match="at least one comparison with 2 seeds"):
        pooled_std([None], [1])
    with pytest.raises(ValueError, match="got 2 stds and 1 seed counts"):
        pooled_std([0.1, 0.2], [3])
    with pytest.raises(ValueError, match="at least 2 seeds, got 1"):
        pooled_test(0.2, 1, sd, df)
