"""The book's figure style (gmmlib.book.figures): what every chapter's figures rely on."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from gmmlib import masks  # noqa: E402
from gmmlib.book import figures


def test_style_is_sharp_and_readable():
    figures.apply_style()
    rc = matplotlib.rcParams
    assert rc["figure.dpi"] >= 150 and rc["savefig.dpi"] >= 150
    for name in ("font.size", "axes.titlesize", "axes.labelsize", "xtick.labelsize", "legend.fontsize"):
        assert float(rc[name]) >= 8, name


def test_one_distinct_colour_per_mask_kind():
    kinds = ["none", *masks.list_masks()]
    colours = [figures.mask_colour(k) for k in kinds]
    assert len(set(colours)) == len(kinds)
    assert figures.mask_colour(None) == figures.mask_colour("none")


def test_heatmaps_share_one_scale_and_keep_the_sign():
    fig, axes = plt.subplots(1, 2)
    flat, peaked = np.full((4, 4), 0.1), np.linspace(-2.0, 1.0, 16).reshape(4, 4)
    bar = figures.heatmaps(axes, [flat, peaked], titles=["flat", "peaked"], label="M")
    limits = {im.get_clim() for ax in axes for im in ax.get_images()}
    assert limits == {(-2.0, 2.0)}  # shared, and centred on zero because the values change sign
    assert bar.ax.get_ylabel() == "M" and axes[1].get_title() == "peaked"
    fig, axes = plt.subplots(1, 2)
    figures.heatmaps(axes, [np.ones((2, 2)), 3 * np.ones((2, 2))])
    assert {im.get_clim() for ax in axes for im in ax.get_images()} == {(1.0, 3.0)}
    with pytest.raises(ValueError, match="2 axes for 1 images"):
        figures.heatmaps(axes, [flat])


def test_forest_draws_intervals_only_for_several_seeds_and_the_papers_gain():
    fig, ax = plt.subplots()
    rows = [
        dict(label="ViT", mask="gmm", gain=0.1, low=-1.0, high=1.2, seeds=5, paper_gain=1.41),
        dict(
            label="CaiT", mask="gmm", gain=-2.0, low=float("nan"), high=float("nan"), seeds=1, paper_gain=float("nan")
        ),
    ]
    figures.forest(ax, rows, noise=0.5)
    bars = [tuple(line.get_xdata()) for line in ax.get_lines() if len(line.get_xdata()) == 2]
    assert sorted(bars) == [(-1.0, 1.2), (0.0, 0.0)]  # ViT's interval and the zero line; none for one seed
    papers = [line for line in ax.get_lines() if line.get_marker() == "D"]
    assert [tuple(p.get_xdata()) for p in papers] == [(1.41,)]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["CaiT (1 seed)", "ViT (5 seeds)"]


def test_the_noise_band_is_that_of_the_mean_it_surrounds():
    """A 3-seed mean moves by noise/√3 from noise alone, not by one seed's noise."""
    import math

    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    figures.gain_axis(ax, 0.74, seeds=3)
    band = ax.patches[0]
    low, high = band.get_y(), band.get_y() + band.get_height()
    assert (low, high) == pytest.approx((-0.74 / math.sqrt(3), 0.74 / math.sqrt(3)), abs=1e-9)
    fig, ax = plt.subplots()
    rows = [
        {"label": "a", "gain": 0.4, "low": -0.5, "high": 1.3, "seeds": 5, "mask": "gmm", "paper_gain": 1.41},
        {"label": "b", "gain": 0.7, "low": float("nan"), "high": float("nan"), "seeds": 1, "mask": "elm"},
    ]
    figures.forest(ax, rows, noise=0.74)
    widths = sorted(round(c.get_paths()[0].get_extents().x1, 6) for c in ax.collections)
    assert widths == sorted([round(0.74 / math.sqrt(5), 6), 0.74])
    plt.close("all")
