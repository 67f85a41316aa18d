"""The data-size figures (gmmlib.book.figures_datasize), drawn from synthetic rows whose numbers are known."""

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.container import ErrorbarContainer  # noqa: E402

from gmmlib.book import figure_check, figures_datasize  # noqa: E402
from gmmlib.book.style import COLUMN_WIDTH  # noqa: E402
from gmmlib.stats.inference import t_interval  # noqa: E402
from gmmlib.stats.trend import gain_trend  # noqa: E402

pytestmark = pytest.mark.usefixtures("book_style")  # tests/conftest.py: the book's style, as chapters draw

SIZES = (2_500, 5_000, 10_000, 25_000, 50_000)


def _rows(seeds=5, slope=-0.5, sizes=SIZES, skip=()):
    """ViT and GMM-ViT rows (datasize_runs' fields): the gain is 1 + slope * log2(size / 50,000) plus noise."""
    rng = np.random.default_rng(0)
    rows = []
    for s in range(seeds):
        for n in sizes:
            base = 45 + math.log2(n / 2_500) + rng.normal(0, 0.5)
            gain = 1 + slope * math.log2(n / 50_000) + rng.normal(0, 0.2)
            for arm, mask, top1 in (("ViT (GAP)", "none", base), ("GMM-ViT (GAP)", "gmm", base + gain)):
                if (mask, n, s) not in skip:
                    rows.append(dict(arm=arm, mask=mask, train_size=n, seed=s, best_top1=top1, final_top1=top1 - 0.1))
    return rows


def _pairs(rows):
    out = {}
    for r in rows:
        out.setdefault(r["train_size"], {}).setdefault(r["seed"], {})[r["mask"]] = r["best_top1"]
    return {n: {s: (v["none"], v["gmm"]) for s, v in by.items() if len(v) == 2} for n, by in out.items()}


def _legend_texts(fig):
    return [t.get_text() for legend in fig.legends for t in legend.get_texts()]


def test_accuracy_draws_a_point_per_seed_and_the_mean_with_its_interval_on_a_log_axis():
    rows = _rows()
    drawn = figures_datasize.accuracy_against_size(rows)
    fig = plt.gcf()
    (ax,) = fig.axes
    assert ax.get_xscale() == "log" and [t.get_text() for t in ax.get_xticklabels()] == [f"{n:,}" for n in SIZES]
    seeds = [line for line in ax.lines if line.get_label() == "_seeds"]
    assert [len(line.get_xdata()) for line in seeds] == [25, 25]  # one point per seed and size, per arm
    bars = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    assert [c.get_label() for c in bars] == ["ViT (GAP)", "GMM-ViT (GAP)"]
    for arm, container in zip(("ViT (GAP)", "GMM-ViT (GAP)"), bars):
        values = {n: [r["best_top1"] for r in rows if r["arm"] == arm and r["train_size"] == n] for n in SIZES}
        assert container.lines[0].get_ydata() == pytest.approx([np.mean(values[n]) for n in SIZES])
        for n in SIZES:
            mean, interval, seeds_n = drawn[arm][n]
            assert seeds_n == 5 and mean == pytest.approx(np.mean(values[n]))
            assert interval == pytest.approx(t_interval(values[n]))
    assert {"ViT (GAP)", "GMM-ViT (GAP)", "one seed", "mean, 95 % interval"} <= set(_legend_texts(fig))
    assert fig.get_size_inches()[0] == pytest.approx(COLUMN_WIDTH)
    assert figure_check.figure_problems(fig) == []


def test_accuracy_with_one_seed_draws_no_interval():
    drawn = figures_datasize.accuracy_against_size(_rows(seeds=1))
    assert all(interval is None for arm in drawn.values() for _, interval, _ in arm.values())
    assert "mean, 95 % interval" not in _legend_texts(plt.gcf())


def test_the_gain_draws_each_seed_the_mean_and_the_pre_stated_slope():
    rows = _rows(slope=-0.5)
    trend = figures_datasize.gain_against_size(rows, planned_seeds=5)
    expected = gain_trend(_pairs(rows))
    assert trend.slope == pytest.approx(expected.slope) and trend.reading == "the gain grows as data shrink"
    fig = plt.gcf()
    (ax,) = fig.axes
    assert ax.get_xscale() == "log"
    assert len([line for line in ax.lines if line.get_label() == "_seed"]) == 5
    (bars,) = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    assert bars.lines[0].get_ydata() == pytest.approx([expected.gains[n].gain for n in SIZES])
    (fit,) = [line for line in ax.lines if line.get_linestyle() == "--"]
    x, y = np.log2(fit.get_xdata()), fit.get_ydata()
    assert (y[-1] - y[0]) / (x[-1] - x[0]) == pytest.approx(expected.slope)  # the line has the test's slope
    texts = _legend_texts(fig)
    assert {"one seed", "mean over seeds, 95 % interval"} <= set(texts)
    assert any("5 seeds: the gain grows as data shrink" in t for t in texts)
    assert figure_check.figure_problems(fig) == []


def test_the_gain_says_interim_while_planned_seeds_are_missing():
    rows = _rows(seeds=3, slope=-0.5, skip={("gmm", 25_000, 2)})  # seed 2 lacks one size: 2 complete seeds
    trend = figures_datasize.gain_against_size(rows, planned_seeds=5)
    assert trend.seeds == (0, 1)
    texts = _legend_texts(plt.gcf())
    assert any("interim (2 of 5 seeds), not read" in t for t in texts)
    assert not any("grows" in t for t in texts)
    per_seed = [line for line in plt.gca().lines if line.get_label() == "_seed"]
    assert [len(line.get_xdata()) for line in per_seed] == [5, 5, 4]  # seed 2's line skips its missing size


def test_the_gain_draws_no_slope_with_one_complete_seed_and_needs_two_sizes():
    figures_datasize.gain_against_size(_rows(seeds=1))
    assert not [line for line in plt.gca().lines if line.get_linestyle() == "--"]
    with pytest.raises(ValueError, match="two sizes or more"):
        figures_datasize.gain_against_size(_rows(sizes=(2_500,)))
    with pytest.raises(ValueError, match="rows are empty"):
        figures_datasize.gain_against_size([])
    with pytest.raises(ValueError, match=r"rows need the fields \['train_size'\]"):
        figures_datasize.accuracy_against_size([{"arm": "ViT", "mask": "none", "seed": 0, "best_top1": 50.0}])


def test_figures_draw_on_given_axes():
    fig, (left, right) = plt.subplots(1, 2, figsize=(COLUMN_WIDTH, 3))
    figures_datasize.accuracy_against_size(_rows(), ax=left)
    figures_datasize.gain_against_size(_rows(), ax=right, metric="final_top1")
    assert left.figure is fig and right.get_ylabel() == "gain in final-epoch top-1 (points)"
