"""The data-size reading: the gain at each size and its trend over log2(size), seeds as the unit,
tested on synthetic runs whose answer is known."""

import math

import numpy as np
import pytest
from test_store import fake_record

from gmmlib.readings.datasize import data_path_check, datasize_reading, size_pairs
from gmmlib.stats.trend import TREND_READINGS, gain_trend, seed_slope
from gmmlib.store.records import Store
from gmmlib.training.config import RunConfig

SIZES = (2_500, 5_000, 10_000, 25_000, 50_000)


def _pairs(slope: float, noise: float, seeds: int = 5, seed: int = 0):
    """Per seed: a baseline, and a masked run whose gain is 1 + slope * log2(size / 50,000) plus noise."""
    rng = np.random.default_rng(seed)
    out = {}
    for s in range(seeds):
        base = 50 + rng.normal(0, 1)
        for n in SIZES:
            gain = 1.0 + slope * math.log2(n / 50_000) + rng.normal(0, noise)
            out.setdefault(n, {})[s] = (base, base + gain)
    return out


def test_a_seed_slope_is_points_per_doubling():
    assert seed_slope([1_000, 2_000, 4_000], [3.0, 2.0, 1.0]) == pytest.approx(-1.0)
    assert seed_slope([2_500, 50_000], [0.0, 0.0]) == 0.0
    with pytest.raises(ValueError, match="two sizes or more"):
        seed_slope([2_500, 2_500], [1.0, 2.0])


def test_the_trend_reads_each_known_answer():
    grows = gain_trend(_pairs(slope=-0.5, noise=0.1))
    assert grows.reading == TREND_READINGS[0] == "the gain grows as data shrink"
    assert grows.slope == pytest.approx(-0.5, abs=0.1) and grows.interval[1] < 0
    assert grows.seeds == (0, 1, 2, 3, 4) and len(grows.slopes) == 5
    assert grows.gains[2_500].seeds == 5 and grows.gains[2_500].gain > grows.gains[50_000].gain
    shrinks = gain_trend(_pairs(slope=+0.5, noise=0.1))
    assert shrinks.reading == "the gain shrinks as data shrink" and shrinks.interval[0] > 0
    flat = gain_trend(_pairs(slope=0.0, noise=0.1))
    assert flat.reading == "no trend shown" and flat.interval[0] < 0 < flat.interval[1]


def test_the_slope_is_read_over_complete_seeds_only_and_needs_two():
    pairs = _pairs(slope=-0.5, noise=0.1, seeds=3)
    del pairs[5_000][2]  # seed 2 lacks one size: it counts at the other sizes, not in the slope
    t = gain_trend(pairs)
    assert t.seeds == (0, 1) and t.gains[5_000].seeds == 2 and t.gains[2_500].seeds == 3
    one = gain_trend({n: {0: v[0]} for n, v in _pairs(-0.5, 0.1, seeds=1).items()})
    assert one.reading == "not enough seeds" and one.interval is None
    with pytest.raises(ValueError, match="two sizes or more"):
        gain_trend({2_500: {0: (50.0, 51.0)}})


def _store(tmp_path, pairs, mask="gmm"):
    store = Store(tmp_path)
    keys = []
    for n, seeds in pairs.items():
        for s, (base, masked) in seeds.items():
            for m, top1 in ((None, base), (mask, masked)):
                record = fake_record(RunConfig(mask=m, pool="gap", seed=s, train_size=n), top1=top1)
                store.put(record)
                keys.append(record["key"])
    store.add("datasize", keys)
    return store


def test_the_reading_comes_from_the_records(tmp_path):
    pairs = _pairs(slope=-0.5, noise=0.1)
    _store(tmp_path, pairs)
    reading = datasize_reading(tmp_path)
    assert reading.trend.reading == "the gain grows as data shrink"
    assert reading.trend.slope == pytest.approx(gain_trend(pairs).slope)
    assert "points per doubling" in reading.text and "**the gain grows as data shrink**" in reading.text
    assert set(size_pairs(Store(tmp_path).load("datasize"), "gmm")) == set(SIZES)


def test_other_priors_are_read_at_the_sizes_they_have(tmp_path):
    _store(tmp_path, _pairs(slope=0.0, noise=0.1))
    store = Store(tmp_path)
    for s in range(3):
        for n in (2_500, 50_000):
            record = fake_record(RunConfig(mask="elm", pool="gap", seed=s, train_size=n), top1=52.0)
            store.put(record)
            store.add("datasize", [record["key"]])
    priors = datasize_reading(tmp_path).priors
    assert set(priors) == {"ELM-ViT (GAP)"} and set(priors["ELM-ViT (GAP)"]) == {2_500, 50_000}
    assert priors["ELM-ViT (GAP)"][2_500].seeds == 3


def test_the_data_path_check_pairs_each_arm_by_seed(tmp_path):
    store = Store(tmp_path)
    keys = {"headline": [], "datasize": []}
    for s in range(3):
        for mask in (None, "gmm"):
            workers = fake_record(RunConfig(mask=mask, pool="gap", seed=s, data_path="workers"), top1=50.0 + s)
            batched = fake_record(RunConfig(mask=mask, pool="gap", seed=s, train_size=50_000), top1=50.5 + s)
            for experiment, record in (("headline", workers), ("datasize", batched)):
                store.put(record)
                keys[experiment].append(record["key"])
    for experiment, k in keys.items():
        store.add(experiment, k)
    check = data_path_check(tmp_path)
    assert set(check) == {"ViT (GAP)", "GMM-ViT (GAP)"}
    assert check["ViT (GAP)"].seeds == 3 and check["ViT (GAP)"].gain == pytest.approx(0.5)


def test_the_comparison_table_pairs_each_size_with_its_own_baseline(tmp_path):
    """stats.compare on the datasize grid: one row per arm and size, each GMM-ViT row paired with the ViT of the
    same size and seed only (never across sizes), labelled with its size; the whole split keeps the plain label."""
    from gmmlib.stats.tables import compare

    store = Store(tmp_path)
    for s in range(2):
        for n, lift in ((2_500, 1.0), (50_000, -1.0)):
            for mask, top1 in ((None, 50.0), ("gmm", 50.0 + lift + s / 10)):
                record = fake_record(RunConfig(mask=mask, pool="gap", seed=s, train_size=n), top1=top1)
                store.put(record)
                store.add("datasize", [record["key"]])
    table = compare("datasize", tmp_path, "cpu").set_index("label")
    assert table.loc["GMM-ViT (GAP, 2,500 images)", "pairs"] == 2
    assert table.loc["GMM-ViT (GAP, 2,500 images)", "gain"] == pytest.approx(1.05)
    assert table.loc["GMM-ViT (GAP)", "pairs"] == 2 and table.loc["GMM-ViT (GAP)", "gain"] == pytest.approx(-0.95)
