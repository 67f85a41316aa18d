"""The data-size reading: the gain at each size and its trend over log2(size), seeds as the unit,
tested on synthetic runs whose answer is known."""

import math

import numpy as np
import pytest
from test_store import fake_record

from gmmlib.readings.datasize import data_path_check, datasize_reading, size_pairs
from gmmlib.stats.inference import paired
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
    # the paper's table is of the whole split: a subset's row has no paper cell to stand beside
    assert table.loc["GMM-ViT (GAP)", "paper_gain"] == pytest.approx(95.06 - 93.65)
    assert math.isnan(table.loc["GMM-ViT (GAP, 2,500 images)", "paper_gain"])


def test_the_tables_list_sizes_ascending_and_name_the_whole_split(tmp_path, monkeypatch):
    """The grid trains its ends first (2,500, 50,000, then the middle); its table reads the sizes ascending, and
    the book's table names the whole split's size, which the plain label leaves out."""
    from gmmlib.book import tables
    from gmmlib.stats.tables import compare

    _store(tmp_path, _pairs(slope=0.0, noise=0.1, seeds=2))
    labels = list(compare("datasize", tmp_path, "cpu")["label"])
    assert labels[:2] == ["ViT (GAP, 2,500 images)", "GMM-ViT (GAP, 2,500 images)"]
    sizes = [int(x.split(", ")[1].split(" images")[0].replace(",", "")) for x in labels if "images" in x]
    assert sizes == sorted(sizes) and labels[-2:] == ["ViT (GAP)", "GMM-ViT (GAP)"]
    shown = {}
    monkeypatch.setattr("gmmlib.book.display._display", lambda styled, text: shown.setdefault("text", text))
    tables.show_comparison("datasize", tmp_path, note_missing=False, columns=["seeds", "gain"])
    assert "GMM-ViT (GAP, 50,000 images, the whole split)" in shown["text"]
    shown.clear()
    other = Store(tmp_path / "other")
    for mask, top1 in ((None, 50.0), ("gmm", 51.0)):
        record = fake_record(RunConfig(mask=mask, pool="gap", seed=0), top1=top1)
        other.put(record)
        other.add("headline", [record["key"]])
    tables.show_comparison("headline", other.root, note_missing=False, columns=["seeds", "gain"])
    assert "GMM-ViT (GAP)" in shown["text"] and "whole split" not in shown["text"]  # one size: labels as they were


# ---- the chapter's readings: which folder, the answer, the standings, the rows the figures draw -------------


def test_the_chapter_reads_results_when_datasize_is_promoted_else_the_staging_folder(tmp_path):
    from gmmlib.readings.datasize import STAGING, datasize_source

    nothing = datasize_source(tmp_path)
    assert nothing.folder == tmp_path and not nothing.staged and nothing.note == ""
    _store(tmp_path / STAGING, {2_500: {0: (50.0, 51.0)}, 50_000: {0: (52.0, 52.5)}})
    staged = datasize_source(tmp_path)
    assert staged.folder == tmp_path / STAGING and staged.staged
    assert "Runs in progress" in staged.note and "results/pending/" in staged.note
    assert "4 of the grid's 68 runs are staged" in staged.note  # 2 sizes x 2 arms of the 5x5x2 + 3x2x3 grid
    _store(tmp_path, {2_500: {0: (50.0, 51.0)}, 50_000: {0: (52.0, 52.5)}})
    promoted = datasize_source(tmp_path)
    assert promoted.folder == tmp_path and not promoted.staged and promoted.note == ""


def test_the_answer_is_interim_and_claims_nothing_until_every_planned_seed_is_complete(tmp_path):
    from gmmlib.readings.datasize import datasize_standings
    from gmmlib.readings.datasize_text import datasize_answer, datasize_meaning

    pairs = _pairs(slope=-0.5, noise=0.1, seeds=3)  # a clear trend, but 3 of the 5 planned seeds
    _store(tmp_path, pairs)
    reading = datasize_reading(tmp_path)
    assert reading.planned_seeds == (0, 1, 2, 3, 4) and reading.planned_sizes == SIZES
    assert reading.complete_seeds == (0, 1, 2) and reading.interim
    answer = datasize_answer(reading, datasize_standings(reading, {}, []))
    assert answer.startswith("**Interim: this reading claims nothing yet.**")
    assert "So far 3 of the 5 are complete" in answer and "shown for progress only" in answer
    assert not any(words in answer for words in TREND_READINGS)
    assert "at 2,500 images is" in answer and "at 50,000 images is" in answer
    assert "interim, not read" in reading.text and "**" not in reading.text
    assert reading.trend_text and reading.text.startswith(reading.trend_text)
    assert datasize_meaning(reading).startswith("Nothing yet. With 3 of 5 paired seeds complete")


def test_a_seed_lacking_one_size_is_not_complete(tmp_path):
    pairs = _pairs(slope=-0.5, noise=0.1, seeds=5)
    del pairs[25_000][4]
    _store(tmp_path, pairs)
    reading = datasize_reading(tmp_path)
    assert reading.complete_seeds == (0, 1, 2, 3) and reading.interim
    del pairs[25_000]  # a size no seed has yet: no seed is complete, whatever the others have
    _store(tmp_path / "other", pairs)
    assert datasize_reading(tmp_path / "other").complete_seeds == ()


@pytest.mark.parametrize(
    "slope, reading, meaning",
    [(-0.5, "The gain grows as data shrink", "show what the thesis predicts"),
     (0.0, "No trend shown", "do not show what the thesis predicts"),
     (+0.5, "The gain shrinks as data shrink", "the opposite of what the thesis predicts")],
)  # fmt: skip
def test_the_answer_reads_the_pre_stated_test_once_every_seed_is_complete(tmp_path, slope, reading, meaning):
    from gmmlib.readings.datasize import datasize_standings
    from gmmlib.readings.datasize_text import datasize_answer, datasize_meaning

    _store(tmp_path, _pairs(slope=slope, noise=0.1))
    r = datasize_reading(tmp_path)
    assert not r.interim and r.complete_seeds == (0, 1, 2, 3, 4)
    answer = datasize_answer(r, datasize_standings(r, {}, []))
    assert answer.startswith(f"**{reading}**, at this scale. All 5 planned paired seeds are complete")
    assert f"{r.trend.slope:+.2f} points per doubling" in answer and "Interim" not in answer
    assert f"**{reading[0].lower() + reading[1:]}**" in r.text
    text = datasize_meaning(r)
    assert meaning in text and "neither confirms nor tests the paper's numbers" in text
    low, high = r.trend.interval
    if slope < 0:  # a growing gain is read per halving of the data: the interval's ends, negated
        assert f"between {-high:.2f} and {-low:.2f} points" in text
    if slope == 0:  # no trend: what the interval rules out, in the thesis's direction first
        assert f"grows by more than {-low:.2f} points for each halving of the data" in text
        assert f"shrinks by more than {high:.2f}" in text and f"grows by more than {-low:.2f} points" in r.text


def test_an_answer_before_two_sizes_have_runs(tmp_path):
    from gmmlib.readings.datasize_text import datasize_answer

    _store(tmp_path, {2_500: {0: (50.0, 51.0)}})
    assert datasize_answer(datasize_reading(tmp_path), []).startswith("**Not yet answered.**")


def _three_seeds(tmp_path):
    """Gains +1.0, +1.1, +0.9 at 2,500 images (paired t-test p = 0.0033) and +0.0, +0.5, -0.5 at 50,000."""
    gains = {2_500: (1.0, 1.1, 0.9), 50_000: (0.0, 0.5, -0.5)}
    _store(tmp_path, {n: {s: (50.0, 50.0 + g) for s, g in enumerate(by_seed)} for n, by_seed in gains.items()})
    return datasize_reading(tmp_path)


def test_each_comparison_is_read_by_the_books_rule_with_holm_over_the_books_comparisons(tmp_path):
    from gmmlib.readings.datasize import datasize_standings, standings_table

    reading = _three_seeds(tmp_path)
    alone = {r["train_size"]: r for r in datasize_standings(reading, {}, [])}
    assert alone[2_500]["p_value"] == pytest.approx(0.0033, abs=2e-4)
    assert alone[2_500]["standing"] == "holds after correction" and alone[50_000]["standing"] == "includes zero"
    book = [{"experiment": "exp2-kernels", "p_value": 0.5}] * 20  # 22 tests: 0.0033 > 0.05 / 22
    assert {r["train_size"]: r for r in datasize_standings(reading, {}, book)}[2_500]["standing"] == "a lead"
    own = [{"experiment": "datasize", "p_value": 0.5}] * 20  # the chapter's own rows are not counted twice
    assert {r["train_size"]: r for r in datasize_standings(reading, {}, own)}[2_500]["standing"] == (
        "holds after correction"
    )
    one = datasize_standings(reading, {"ViT (GAP)": paired([50.0], [50.4])}, [])[-1]
    assert one["what"] == "data path" and one["standing"] == "one seed"
    table = standings_table(datasize_standings(reading, {}, []))
    assert list(table["95 % interval"])[0] == "[+0.75, +1.25]" and list(table["reading"])[1] == "includes zero"


def test_the_answer_sums_up_the_other_priors_at_the_two_ends(tmp_path):
    from gmmlib.readings.datasize import datasize_standings
    from gmmlib.readings.datasize_text import datasize_answer

    reading = _three_seeds(tmp_path)
    rows = datasize_standings(reading, {}, [])
    assert "other priors" not in datasize_answer(reading, rows)  # none recorded
    prior = dict(rows[0], what="prior", seeds=3, low=-0.5, high=0.7, standing="includes zero")
    ends = [dict(prior, comparison=f"{name}, {n:,} images") for name in ("ELM-ViT (GAP)", "ALiBi-2D-ViT (GAP)")
            for n in (2_500, 50_000)]  # fmt: skip
    assert datasize_answer(reading, rows + ends).endswith(
        " The other priors at the two ends (ALiBi-2D-ViT (GAP), ELM-ViT (GAP); 3 seeds or more each) show no effect "
        "either way at either end: all 4 of their intervals include zero."
    )
    ends[0].update(gain=1.0, low=0.4, high=1.6, standing="a lead")
    assert datasize_answer(reading, rows + ends).endswith(
        "(ALiBi-2D-ViT (GAP), ELM-ViT (GAP)), 1 of the 4 intervals excludes zero: ELM-ViT (GAP), 2,500 images "
        "+1.00 [+0.40, +1.60] (3 seeds, a lead); the other 3 include zero."
    )
    ends[1].update(seeds=1)
    assert datasize_answer(reading, rows + ends).endswith("are not read until each has its seeds.")


def test_the_data_path_check_reads_the_headline_from_another_folder(tmp_path):
    store = Store(tmp_path / "pending")
    home = Store(tmp_path)
    for s in range(2):
        workers = fake_record(RunConfig(mask=None, pool="gap", seed=s, data_path="workers"), top1=50.0)
        batched = fake_record(RunConfig(mask=None, pool="gap", seed=s, train_size=50_000), top1=50.3)
        home.put(workers)
        home.add("headline", [workers["key"]])
        store.put(batched)
        store.add("datasize", [batched["key"]])
    assert data_path_check(tmp_path / "pending") == {}
    check = data_path_check(tmp_path / "pending", workers_results=tmp_path)
    assert check["ViT (GAP)"].seeds == 2 and check["ViT (GAP)"].gain == pytest.approx(0.3)


def test_the_figures_rows_are_one_per_run_and_average_as_the_comparison_table(tmp_path):
    from gmmlib.readings.datasize import datasize_runs
    from gmmlib.stats.tables import compare

    _three_seeds(tmp_path)
    rows = datasize_runs(tmp_path)
    assert len(rows) == 12 and [r["mask"] for r in rows[:6]] == ["none"] * 6  # the ViT first
    assert {r["train_size"] for r in rows} == {2_500, 50_000}
    table = compare("datasize", tmp_path, "cpu").set_index("label")
    mean = np.mean([r["best_top1"] for r in rows if r["mask"] == "gmm" and r["train_size"] == 2_500])
    assert table.loc["GMM-ViT (GAP, 2,500 images)", "best_mean"] == pytest.approx(mean)


def test_the_data_path_check_is_read_in_words_by_the_same_rule(tmp_path):
    from gmmlib.readings.datasize import datasize_standings
    from gmmlib.readings.datasize_text import data_path_text

    reading = _three_seeds(tmp_path)
    assert data_path_text(datasize_standings(reading, {}, [])).startswith("No seed has both")
    alike = {"ViT (GAP)": paired([50.0, 51.0, 49.0], [50.2, 50.6, 49.3])}
    text = data_path_text(datasize_standings(reading, alike, []))
    assert "ViT (GAP) +0.03 [" in text and "Neither arm shows a difference" in text
    apart = {"GMM-ViT (GAP)": paired([50.0, 51.0, 49.0], [51.0, 52.1, 49.9])}  # +1.0 on every seed
    text = data_path_text(datasize_standings(reading, {**alike, **apart}, []))
    assert "**The interval excludes zero** for GMM-ViT (GAP):" in text and "ViT (GAP) and" not in text
    one = data_path_text(datasize_standings(reading, {"ViT (GAP)": paired([50.0], [50.5])}, []))
    assert "One seed: not read yet." in one


def test_the_verdicts_answer_says_the_data_size_test_only_when_every_planned_seed_is_complete(tmp_path):
    from gmmlib.readings.evidence import answer
    from gmmlib.stats.inference import interval_text

    _store(tmp_path / "two", _pairs(slope=-0.5, noise=0.1, seeds=2))
    assert "is still running (2 of 5 planned seeds complete): it claims nothing yet." in answer(tmp_path / "two")
    pairs = _pairs(slope=-0.5, noise=0.1)
    _store(tmp_path / "all", pairs)
    t = gain_trend(pairs)
    assert (
        f"The data-size test (chapter 9): the GMM's gain changes by {t.slope:+.2f} points per doubling of the "
        f"training set {interval_text(*t.interval)} over 5 paired seeds: the gain grows as data shrink."
    ) in answer(tmp_path / "all")
