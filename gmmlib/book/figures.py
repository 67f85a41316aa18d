"""The book's figure style: one module, so every chapter draws alike.

- :func:`apply_style`: matplotlib defaults (150 dpi, fonts of at least 8 pt, no top/right spines).
- :func:`mask_colour`: one colour per mask kind in every figure (GMM is always the same blue).
- :func:`heatmaps`: mask or attention heatmaps on one shared colour scale with a colorbar
  (centred on zero for signed values, so the sign of a GMM is not lost).
- :func:`gain_axis`: gains on one axis, with zero and the seed noise drawn as a band.
- :func:`forest`: paired gains with their intervals beside the paper's gains.
- :func:`plot_curves`, :func:`plot_kernels`: the experiments' curves and the kernel ablation.
"""

from __future__ import annotations

import math

from typing import Any, Callable, Dict, Mapping, Optional, Sequence

__all__ = [
    "STYLE",
    "MASK_COLOURS",
    "PAPER_MARKER",
    "apply_style",
    "mask_colour",
    "heatmaps",
    "gain_axis",
    "forest",
    "plot_curves",
    "plot_kernels",
]

STYLE: Dict[str, Any] = {
    "figure.dpi": 150,
    "savefig.dpi": 150,
    "figure.figsize": (6.4, 3.6),
    "figure.constrained_layout.use": True,
    "font.size": 9,
    "axes.titlesize": 9,
    "axes.labelsize": 9,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "image.cmap": "viridis",
}

# One colour per mask kind, in every chapter ("none" is the unmasked model).
MASK_COLOURS: Dict[str, str] = {
    "none": "#555555",
    "gmm": "#1f77b4",
    "elm": "#2ca02c",
    "retnet": "#9467bd",
    "alibi2d": "#8c564b",
    "relpos": "#e377c2",
}
_OTHER = "#17becf"

# The paper's numbers are drawn as hollow diamonds in the colour of their mask, ours as filled dots.
PAPER_MARKER: Dict[str, Any] = {"marker": "D", "markerfacecolor": "none", "linestyle": "none"}


def apply_style() -> None:
    """Set the book's matplotlib defaults (:data:`STYLE`)."""
    import matplotlib as mpl

    mpl.rcParams.update(STYLE)


def mask_colour(mask: Optional[str]) -> str:
    """The colour of a mask kind (None or "none" for the unmasked model)."""
    return MASK_COLOURS.get(mask or "none", _OTHER)


def heatmaps(
    axes: Sequence[Any],
    images: Sequence[Any],
    titles: Optional[Sequence[str]] = None,
    label: str = "",
    centred: Optional[bool] = None,
    cmap: Optional[str] = None,
):
    """Draw ``images`` (2-D arrays or tensors) on ``axes`` with one shared colour scale and one colorbar.

    Args:
        axes: one matplotlib axis per image.
        images: the arrays, e.g. one mask row per layer.
        titles: a title per panel.
        label: the colorbar's label.
        centred: a diverging scale symmetric about 0 (default: when the values change sign).
        cmap: colour map (default: "RdBu_r" when centred, else viridis).

    Returns:
        The colorbar.
    """
    import numpy as np

    if len(axes) != len(images):
        raise ValueError(f"got {len(axes)} axes for {len(images)} images; expected one axis per image")
    arrays = [np.asarray(getattr(x, "detach", lambda: x)()) for x in images]
    low, high = min(float(a.min()) for a in arrays), max(float(a.max()) for a in arrays)
    if centred is None:
        centred = low < 0 < high
    if centred:
        bound = max(abs(low), abs(high)) or 1.0
        low, high, cmap = -bound, bound, cmap or "RdBu_r"
    shown = None
    for i, (ax, a) in enumerate(zip(axes, arrays)):
        shown = ax.imshow(a, vmin=low, vmax=high, cmap=cmap)
        ax.set_xticks([])
        ax.set_yticks([])
        if titles is not None:
            ax.set_title(titles[i])
    return axes[0].figure.colorbar(shown, ax=list(axes), label=label, shrink=0.8)


def gain_axis(ax, noise: Optional[float] = None, label: str = "gain over no mask (points)", seeds: int = 1):
    """Prepare an axis for gains: a line at zero and, given ``noise`` (the seed std of one gain), the band a mean
    over ``seeds`` seeds moves in from noise alone: ±noise/√seeds."""
    ax.axhline(0.0, color="black", linewidth=0.8)
    if noise is not None and noise == noise:
        band = noise / math.sqrt(max(seeds, 1))
        what = "of a gain" if seeds <= 1 else f"of a mean over {seeds} seeds"
        ax.axhspan(-band, band, color="0.85", zorder=0, label=f"seed noise {what} (±{band:.2f})")
    ax.set_ylabel(label)
    return ax


def forest(ax, rows: Sequence[Mapping[str, Any]], noise: Optional[float] = None):
    """Paired gains with their intervals (ours) beside the paper's gains, one row per comparison.

    Args:
        rows: dicts with ``label``, ``gain``, ``low``, ``high`` (NaN for one seed: a dot
            without a bar), ``seeds``, ``paper_gain`` (NaN when the paper has no cell) and
            ``mask`` (for the colour).
        noise: the seed std of one gain; each row gets the band its own mean moves in from noise alone,
            ±noise/√seeds (a 5-seed mean moves less than one seed's gain).
    """
    n = len(rows)
    ax.axvline(0.0, color="black", linewidth=0.8)
    for i, r in enumerate(rows):
        y, colour = n - 1 - i, mask_colour(r.get("mask"))
        if noise is not None and noise == noise:
            band = noise / math.sqrt(max(int(r.get("seeds", 1)), 1))
            ax.fill_betweenx(
                [y - 0.45, y + 0.45], -band, band, color="0.88", zorder=0, linewidth=0,
                label=f"seed noise of each row's mean (±{noise:.2f}/√seeds)" if i == 0 else None,
            )  # fmt: skip
        low, high = r.get("low", float("nan")), r.get("high", float("nan"))
        if low == low and high == high:
            ax.plot([low, high], [y, y], color=colour, linewidth=2)
        ax.plot([r["gain"]], [y], "o", color=colour, label="ours: mean paired gain, 95% interval" if i == 0 else None)
        if r.get("paper_gain") == r.get("paper_gain") and r.get("paper_gain") is not None:
            ax.plot([r["paper_gain"]], [y], color=colour, **PAPER_MARKER, label="paper" if i == 0 else None)
    ax.set_yticks(range(n))
    ax.set_yticklabels([f"{r['label']} ({r['seeds']} seed{'s' if r['seeds'] != 1 else ''})" for r in rows][::-1])
    ax.set_xlabel("gain in top-1 over the same model without a mask (points)")
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3, frameon=False)  # above: never over a row
    return ax


def plot_curves(
    records: Sequence[Mapping[str, Any]],
    ax=None,
    metric: str = "test_top1",
    select: Optional[Callable[[Dict[str, Any]], bool]] = None,
):
    """Per-epoch curves of run records: one line per run, one colour per mask kind.

    Args:
        records: run records (e.g. ``book.stats.load("headline")``).
        ax: the axes to draw on (default: the current ones).
        metric: a per-epoch field of the records' ``history``.
        select: keep only the runs whose config dict it accepts, e.g.
            ``lambda c: c["model"] == "swin"``.
    """
    import matplotlib.pyplot as plt

    from ..stats.tables import label

    ax = ax or plt.gca()
    records = [r for r in records if select is None or select(r["config"])]
    names = list(dict.fromkeys(label(r["config"]) for r in records))
    kinds = {label(r["config"]): r["config"].get("mask") for r in records}
    # several configurations with one mask kind (K = 1..10) share its colour, told apart by line style
    styles = ["-", "--", ":", "-."]
    style_of = {n: styles[[m for m in names if kinds[m] == kinds[n]].index(n) % len(styles)] for n in names}
    for r in records:
        name = label(r["config"])
        epochs = [h["epoch"] for h in r["history"]]
        ax.plot(
            epochs,
            [h[metric] for h in r["history"]],
            color=mask_colour(kinds[name]),
            linestyle=style_of[name],
            alpha=0.8,
            label=name,
        )
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles))
    if unique:
        ax.legend(unique.values(), unique.keys())
    ax.set_xlabel("epoch")
    ax.set_ylabel({"test_top1": "test top-1 (%)", "train_loss": "train loss"}.get(metric, metric))
    return ax


def plot_kernels(rows: Sequence[Mapping[str, Any]], noise: Optional[float], ax=None, preset: str = "cpu"):
    """Gain of GMM-ViT over the ViT without a mask for each number of kernels K: ours and the paper's, on one axis.

    Ours is the mean paired gain over seeds with its 95% interval where there are several
    seeds. The paper's K = 1 point is left out: its value equals the paper's no-mask
    baseline on all four data sets (see ``paper_numbers.json``), so the paper's gains are
    measured from it and start at K = 2.

    Args:
        rows: our gains per K (:func:`gmmlib.readings.setting_gains` of ``exp2-kernels``).
        noise: the seed noise of a gain, drawn as a band (None: no band).
        ax: the axes to draw on.
        preset: the preset of our runs, for the legend.
    """
    import matplotlib.pyplot as plt

    from ..stats.paper import paper

    ax = ax or plt.gca()
    abl = paper()["kernel_ablation"]
    base = abl["rows"]["cifar10"][0]
    ks = abl["kernels"][1:]
    ax.plot(ks, [v - base for v in abl["rows"]["cifar10"][1:]], color=mask_colour("gmm"), **PAPER_MARKER)
    ax.plot([], [], color=mask_colour("gmm"), label="paper, CIFAR-10", **PAPER_MARKER)
    rows = sorted(rows, key=lambda r: r["value"])
    seeds = min((r["pairs"] for r in rows if r.get("pairs")), default=1)
    if rows:
        ks = [r["value"] for r in rows]
        ax.plot(ks, [r["gain"] for r in rows], "o-", color=mask_colour("gmm"), label=f"ours ({preset} preset)")
        for k, r in zip(ks, rows):
            if r["gain_low"] == r["gain_low"]:
                ax.plot([k, k], [r["gain_low"], r["gain_high"]], color=mask_colour("gmm"), linewidth=2)
    gain_axis(ax, noise, seeds=seeds)
    ax.set_xlabel("number of Gaussian kernels K")
    ax.legend()
    return ax
