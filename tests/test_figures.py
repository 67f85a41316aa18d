"""The book's figure style (gmmlib.book.figures): what every chapter's figures rely on."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from gmmlib import masks  # noqa: E402
from gmmlib.book import figure_check, figures  # noqa: E402
from gmmlib.stats import inference  # noqa: E402


pytestmark = pytest.mark.usefixtures("book_style")  # tests/conftest.py: the book's style, as chapters draw


def test_style_is_sharp_and_readable():
    """Fonts of 9 pt and up in a figure as wide as the column: the page shows them at 9 pt and up."""
    figures.apply_style()
    rc = matplotlib.rcParams
    assert rc["figure.dpi"] >= 150 and rc["savefig.dpi"] >= 150
    names = ("font.size", "axes.titlesize", "axes.labelsize", "xtick.labelsize", "ytick.labelsize", "legend.fontsize")
    for name in names:
        assert matplotlib.font_manager.FontProperties(size=rc[name]).get_size_in_points() >= 9, name
    assert rc["figure.figsize"][0] == figures.COLUMN_WIDTH
    fig, ax = plt.subplots()
    ax.plot([0, 1], label="a")
    ax.legend()
    ax.set(title="title", xlabel="x")
    assert figure_check.figure_problems(fig) == []
    plt.close("all")


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
    assert labels == ["CaiT (1 seed)", "ViT (5 seeds)"]  # bottom to top: the first row on top


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


def _forest_rows():
    nan = float("nan")
    return [
        dict(experiment="headline", label="GMM-ViT (GAP)", mask="gmm", gain=0.4, low=-0.5, high=1.3, seeds=5,
             paper_gain=1.41),
        dict(experiment="exp2-kernels", label="GMM-ViT (K=1, GAP)", mask="gmm", gain=0.2, low=-0.5, high=0.9,
             seeds=3, paper_gain=nan),
        dict(experiment="exp2-kernels", label="GMM-ViT (K=10, GAP)", mask="gmm", gain=0.3, low=-0.4, high=1.0,
             seeds=3, paper_gain=0.6),
        dict(experiment="retnet", label="RetNet-ViT (euclidean, rates=retnet, GAP)", mask="retnet", gain=0.05,
             low=nan, high=nan, seeds=1, paper_gain=nan),
        dict(experiment="beyond", label="ALiBi-2D-ViT (GAP)", mask="alibi2d", gain=0.8, low=nan, high=nan, seeds=1,
             paper_gain=nan),
    ]  # fmt: skip


def test_forest_labels_its_groups_and_explains_its_colours_at_column_width():
    rows = _forest_rows()
    fig, ax = plt.subplots(figsize=figures.forest_size(rows))
    figures.forest(ax, rows, noise=0.74, groups={"beyond": "Other position biases"})
    labels = [t.get_text() for t in ax.get_yticklabels()][::-1]  # top to bottom
    assert labels == [
        figures.GROUP_NAMES["headline"],
        "GMM-ViT (GAP) (5 seeds)",
        figures.GROUP_NAMES["exp2-kernels"],
        "GMM-ViT (K=1, GAP) (3 seeds)",
        "GMM-ViT (K=10, GAP) (3 seeds)",
        figures.GROUP_NAMES["retnet"],
        "RetNet-ViT (euclidean, rates=retnet, GAP) (1 seed)",
        "Other position biases",
        "ALiBi-2D-ViT (GAP) (1 seed)",
    ]
    bold = [t.get_text() for t in ax.get_yticklabels() if t.get_fontweight() == "bold"]
    assert sorted(bold) == sorted(labels[i] for i in (0, 2, 5, 7))
    legend = [t.get_text() for lg in fig.legends for t in lg.get_texts()]
    for kind in ("gmm", "retnet", "alibi2d"):  # every colour named
        assert figures.MASK_NAMES[kind] in legend
    assert figures.MASK_NAMES["elm"] not in legend  # and no colour that is not drawn
    assert any("paper" in t for t in legend) and any("0.74" in t for t in legend)
    assert figure_check.figure_problems(fig) == []  # 9 pt and up as shown, every colour in the legend
    plt.close("all")


def _record(name, mask, seed, values, preset="cpu", model="vit"):
    return {
        "name": name,
        "config": {"model": model, "mask": mask, "mask_options": {}, "pool": "gap", "dataset": "cifar10",
                   "preset": preset, "seed": seed},
        "history": [{"epoch": e + 1, "test_top1": v, "train_loss": 2.0 - v / 100} for e, v in enumerate(values)],
    }  # fmt: skip


def _gain_records():
    rng = np.random.default_rng(0)
    records = []
    for seed in range(3):
        base = 40 + 5 * np.arange(4) + rng.normal(0, 1, 4)
        records.append(_record(f"vit-none-s{seed}", None, seed, base.tolist()))
        records.append(_record(f"vit-gmm-s{seed}", "gmm", seed, (base + 0.5 + rng.normal(0, 0.7, 4)).tolist()))
    return records


def test_epoch_pairs_pair_each_masked_run_with_the_unmasked_run_of_its_seed():
    records = _gain_records()
    shuffled = records[::-1] + [records[1]]  # order does not pair; a run listed twice counts once
    shuffled.append(_record("vit-gmm-s7", "gmm", 7, [1, 2, 3, 4]))  # no unmasked seed 7: left out
    rows = figures.epoch_pairs(shuffled)
    assert len(rows) == 3 * 4 and {r["seed"] for r in rows} == {0, 1, 2}
    base = {(r["config"]["seed"], h["epoch"]): h["test_top1"] for r in records if not r["config"]["mask"]
            for h in r["history"]}  # fmt: skip
    for r in rows:
        assert r["baseline"] == base[(r["seed"], r["epoch"])] and r["arm"] == "GMM-ViT (GAP)"
    with pytest.raises(ValueError, match="presets"):
        figures.epoch_pairs(records + [_record("x", None, 0, [1, 2, 3, 4], preset="paper")])
    with pytest.raises(ValueError, match="'nope'"):
        figures.epoch_pairs(records, metric="nope")


def test_paired_gain_curves_draw_each_seed_and_the_t_interval_of_the_mean():
    records = _gain_records()
    rows = figures.epoch_pairs(records)
    fig, ax = plt.subplots()
    out = figures.paired_gain_curves(ax, rows)
    diffs = {}  # seed -> per-epoch masked minus unmasked, from the records themselves
    for seed in range(3):
        a, b = (next(r for r in records if r["name"] == f"vit-{k}-s{seed}")["history"] for k in ("none", "gmm"))
        diffs[seed] = [y["test_top1"] - x["test_top1"] for x, y in zip(a, b)]
    thin = [line for line in ax.get_lines() if line.get_linewidth() == 0.8 and line.get_color() != "black"]
    assert len(thin) == 3  # one line per seed
    assert sorted(tuple(np.round(line.get_ydata(), 9)) for line in thin) == sorted(
        tuple(np.round(d, 9)) for d in diffs.values()
    )
    mean = next(line for line in ax.get_lines() if line.get_label().startswith("GMM-ViT (GAP)"))
    assert np.allclose(mean.get_ydata(), np.mean(list(diffs.values()), axis=0))
    band = ax.collections[0].get_paths()[0].vertices
    for e in range(4):
        low, high = inference.t_interval([diffs[s][e] for s in range(3)])
        ys = band[np.isclose(band[:, 0], e + 1), 1]
        assert ys.min() == pytest.approx(low) and ys.max() == pytest.approx(high)
        assert out["GMM-ViT (GAP)"][e][1].interval == pytest.approx((low, high))
    assert any(line.get_ydata()[0] == 0 and line.get_color() == "black" for line in ax.get_lines())  # zero line
    legend = [t.get_text() for lg in fig.legends for t in lg.get_texts()]
    assert "GMM-ViT (GAP): mean of 3 seeds" in legend and any("interval" in t for t in legend)
    assert ax.get_ylabel() == "gain in test top-1 (points)" and ax.get_xlabel() == "epoch"
    assert figure_check.figure_problems(fig) == []
    with pytest.raises(ValueError, match="no paired rows"):
        figures.paired_gain_curves(ax, [])
    plt.close("all")


def test_one_seed_draws_one_line_and_no_band():
    rows = [r for r in figures.epoch_pairs(_gain_records()) if r["seed"] == 0]
    fig, ax = plt.subplots()
    figures.paired_gain_curves(ax, rows)
    assert not ax.collections
    data = [line for line in ax.get_lines() if line.get_color() != "black"]
    assert len(data) == 1 and data[0].get_label() == "GMM-ViT (GAP): one seed"
    plt.close("all")


def test_paired_gain_panels_one_panel_per_comparison_at_column_width():
    records = _gain_records()
    for r in _gain_records():  # a second arm on the same seeds, another initialisation
        if r["config"]["mask"]:
            r = {**r, "name": r["name"] + "-zeros", "config": {**r["config"], "mask_options": {"init": "zeros"}}}
            records.append(r)
    rows = figures.epoch_pairs(records)
    axes = figures.paired_gain_panels(rows)
    fig = axes[0].figure
    assert len(axes) == 2 and fig.get_size_inches()[0] == pytest.approx(figures.COLUMN_WIDTH)
    assert ["GMM-ViT (GAP)" in axes[0].get_title(), "init=zeros" in axes[1].get_title()] == [True, True]
    assert all("(3 seeds)" in ax.get_title() for ax in axes)
    assert axes[0].get_shared_y_axes().joined(axes[0], axes[1])
    assert figure_check.figure_problems(fig) == []
    with pytest.raises(ValueError, match="one axes per comparison"):
        figures.paired_gain_panels(rows, axes=[axes[0]])
    plt.close("all")
