"""The book's figure style: one module, so every chapter draws alike.

- :func:`apply_style`: matplotlib defaults (150 dpi, fonts of at least 9 pt, a figure as wide as the book's
  column, no top/right spines): a figure at its default width shows its fonts at their own size on the page.
- :func:`mask_colour`: one colour per mask kind in every figure (GMM is always the same blue).
- :func:`heatmaps`: mask or attention heatmaps on one shared colour scale with a colorbar
  (centred on zero for signed values, so the sign of a GMM is not lost).
- :func:`gain_axis`: gains on one axis, with zero and the seed noise drawn as a band.
- :func:`forest`: paired gains with their intervals beside the paper's gains, grouped by experiment.
- :func:`plot_curves`, :func:`plot_kernels`: the experiments' curves and the kernel ablation.
- :mod:`gmmlib.book.figures_gains` (re-exported here): per-seed paired gains against epoch.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Dict, Mapping, Optional, Sequence

from .figures_gains import METRIC_LABELS, epoch_pairs, paired_gain_curves, paired_gain_panels
from . import style as _style
from .style import COLUMN_PX, COLUMN_WIDTH, MASK_COLOURS, MASK_NAMES, PAPER_MARKER, STYLE, apply_style, mask_colour  # noqa: F401

__all__ = [
    *_style.__all__,  # the book's style, re-exported: chapters reach it as book.figures.COLUMN_WIDTH and so on
    "GROUP_NAMES",
    "heatmaps",
    "gain_axis",
    "forest",
    "forest_size",
    "plot_curves",
    "plot_kernels",
    "METRIC_LABELS",
    "epoch_pairs",
    "paired_gain_curves",
    "paired_gain_panels",
]


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


# The headings of the forest's groups: the experiments of gmmlib.readings.comparisons, named for a reader.
GROUP_NAMES: Dict[str, str] = {
    "headline": "Headline: GMM-ViT against ViT",
    "headline-paper": "Headline at the paper's preset",
    "exp1-seeds": "Experiment 1: families given more seeds",
    "exp1": "Experiment 1: the other families",
    "pooling": "Pooling: a class token instead of GAP",
    "exp2-kernels": "Experiment 2: number of kernels K",
    "exp2-init": "Experiment 2: initialisation",
    "elm": "The element-wise mask (ELM)",
    "exp3": "Experiment 3: Swin and CaiT",
    "retnet": "RetNet's decay masks",
    "beyond": "Other position biases",
}
_ROW_INCHES = 0.21  # one row of the forest: a 9 pt label and some air


def _forest_layout(rows: Sequence[Mapping[str, Any]]):
    """The forest's lines from top to bottom: ("heading", group) where a group starts, ("row", row) for each row."""
    lines, last = [], object()
    for r in rows:
        group = r.get("group", r.get("experiment"))
        if group is not None and group != last:
            lines.append(("heading", group))
        last = group
        lines.append(("row", r))
    return lines


def forest_size(rows: Sequence[Mapping[str, Any]]) -> tuple:
    """The ``figsize`` of a forest of ``rows``: the book's column width, and a height that keeps every label apart."""
    return (COLUMN_WIDTH, _ROW_INCHES * len(_forest_layout(rows)) + 1.5)


def forest(
    ax, rows: Sequence[Mapping[str, Any]], noise: Optional[float] = None, groups: Optional[Mapping[str, str]] = None
):
    """Paired gains with their intervals (ours) beside the paper's gains, one row per comparison, in groups.

    Rows of one ``group`` (default: their ``experiment``) in a row get a bold heading (``groups`` or
    :data:`GROUP_NAMES` names it). Each row's colour is its mask kind, named in the figure's legend beside what a
    dot, a bar, a hollow diamond and the grey band mean. Size the figure with :func:`forest_size`.

    Args:
        rows: dicts with ``label``, ``gain``, ``low``, ``high`` (NaN for one seed: a dot
            without a bar), ``seeds``, ``paper_gain`` (NaN when the paper has no cell),
            ``mask`` (for the colour) and ``experiment`` or ``group`` (for the headings; optional).
        noise: the seed std of one gain; each row gets the band its own mean moves in from noise alone,
            ±noise/√seeds (a 5-seed mean moves less than one seed's gain).
        groups: headings for the groups, by group key (default :data:`GROUP_NAMES`; a key it lacks is shown as is).
    """
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    names = {**GROUP_NAMES, **(groups or {})}
    lines = _forest_layout(rows)
    n = len(lines)
    ax.axvline(0.0, color="black", linewidth=0.8)
    labels, headings = [], []
    for i, (kind, item) in enumerate(lines):
        y = n - 1 - i
        if kind == "heading":
            labels.append(names.get(item, str(item)))
            headings.append(y)
            if i:
                ax.axhline(y + 0.5, color="0.8", linewidth=0.6)
            continue
        r, colour = item, mask_colour(item.get("mask"))
        seeds = int(r.get("seeds", 1))
        labels.append(f"{r['label']} ({seeds} seed{'s' if seeds != 1 else ''})")
        if noise is not None and noise == noise:
            band = noise / math.sqrt(max(seeds, 1))
            ax.fill_betweenx([y - 0.4, y + 0.4], -band, band, color="0.88", zorder=0, linewidth=0)
        low, high = r.get("low", float("nan")), r.get("high", float("nan"))
        if low == low and high == high:
            ax.plot([low, high], [y, y], color=colour, linewidth=2)
        ax.plot([r["gain"]], [y], "o", color=colour)
        if r.get("paper_gain") is not None and r.get("paper_gain") == r.get("paper_gain"):
            ax.plot([r["paper_gain"]], [y], color=colour, **PAPER_MARKER)
    ax.set_yticks(range(n), labels[::-1])  # bottom to top
    for y, text in enumerate(ax.get_yticklabels()):
        if y in headings:
            text.set_fontweight("bold")
    ax.tick_params(axis="y", length=0)
    ax.set_ylim(-0.6, n - 0.4)
    ax.set_xlabel("gain in top-1 over no mask (points)")  # no wider than the axes: the layout cannot move it
    kinds = list(dict.fromkeys(r.get("mask") or "none" for r in rows))
    handles = [Line2D([], [], color=mask_colour(k), marker="o", label=MASK_NAMES.get(k, k)) for k in kinds]
    handles.append(Line2D([], [], color="0.3", marker="o", label="ours: mean paired gain, 95 % interval"))
    if any(r.get("paper_gain") is not None and r.get("paper_gain") == r.get("paper_gain") for r in rows):
        handles.append(Line2D([], [], color="0.3", **PAPER_MARKER, label="paper's gain (orientation only)"))
    if noise is not None and noise == noise:
        handles.append(Patch(color="0.88", label=f"seed noise of a mean: ±{noise:.2f}/√seeds"))
    # above the axes, on the figure: never over a row, and the layout makes room for it
    ax.figure.legend(handles=handles, loc="outside upper center", ncols=2, frameon=False)
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
