"""Paired gains against epoch: what a masked model gains over the unmasked one of the same seed, epoch by epoch.

Ten curves of two arms overplotted hide the point of a paired design; the per-seed difference shows it. Each seed
is a thin line, the mean over seeds a thick one, and its 95 % t-interval (:func:`gmmlib.stats.inference.paired` of
that epoch's values) a band; a line at zero marks no gain.

- :func:`epoch_pairs`: rows (one per masked run's seed and epoch) from records a chapter has already read.
- :func:`paired_gain_curves`: draw the rows' comparisons on one axes.
- :func:`paired_gain_panels`: one panel per comparison, at the book's column width.
"""

from __future__ import annotations

import textwrap
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from .style import COLUMN_WIDTH, mask_colour

__all__ = ["METRIC_LABELS", "epoch_pairs", "paired_gain_curves", "paired_gain_panels"]

# What the difference of a per-epoch metric is called on an axis.
METRIC_LABELS = {
    "test_top1": "gain in test top-1 (points)",
    "train_loss": "change in training loss",
}


def epoch_pairs(
    records: Sequence[Mapping[str, Any]], metric: str = "test_top1", preset: Optional[str] = None
) -> List[Dict[str, Any]]:
    """Rows for :func:`paired_gain_curves` from run records, paired by seed.

    Each masked run is paired with the unmasked run of the same model, pooling, data set, preset and seed (the
    pairing of :func:`gmmlib.stats.tables.compare`); a run listed twice (one record in two experiments) counts
    once. A masked run without its unmasked partner is left out.

    Args:
        records: run records, e.g. ``book.stats.load("headline")``.
        metric: a per-epoch field of the records' ``history``.
        preset: keep the runs of this preset (needed when the records hold several).

    Returns:
        One dict per masked run and epoch: ``arm`` (the run's label), ``mask``, ``seed``, ``epoch``,
        ``baseline`` and ``masked`` (the two runs' ``metric``) and ``metric``, in the records' order.

    Raises:
        ValueError: the records mix presets and ``preset`` is not given, or a history lacks ``metric``.
    """
    from ..stats.tables import label

    presets = sorted({r["config"]["preset"] for r in records})
    if preset is None and len(presets) > 1:
        raise ValueError(f"the records hold the presets {presets}; pass preset= to pair the runs of one")
    unique = {r["name"]: r for r in records if preset is None or r["config"]["preset"] == preset}

    def key(config: Mapping[str, Any]) -> Tuple:
        return (config["model"], config.get("pool"), config["dataset"], config["preset"], config["seed"])

    baselines = {key(r["config"]): r for r in unique.values() if not r["config"].get("mask")}
    rows: List[Dict[str, Any]] = []
    for r in unique.values():
        config = r["config"]
        base = baselines.get(key(config))
        if not config.get("mask") or base is None:
            continue
        try:
            before = {h["epoch"]: h[metric] for h in base["history"]}
            after = {h["epoch"]: h[metric] for h in r["history"]}
        except KeyError:
            raise ValueError(f"{r['name']} or {base['name']} has no {metric!r} in its history") from None
        for epoch in sorted(set(before) & set(after)):
            rows.append(
                {
                    "arm": label(config),
                    "mask": config["mask"],
                    "seed": config["seed"],
                    "epoch": epoch,
                    "baseline": before[epoch],
                    "masked": after[epoch],
                    "metric": metric,
                }
            )
    return rows


def _arms(rows: Sequence[Mapping[str, Any]]) -> List[str]:
    return list(dict.fromkeys(r["arm"] for r in rows))


def _per_epoch(rows: Sequence[Mapping[str, Any]], confidence: float):
    """The arm's per-seed differences and, per epoch, its paired comparison over the seeds of that epoch."""
    from ..stats.inference import paired

    by_epoch: Dict[Any, Dict[Any, Tuple[float, float]]] = {}
    for r in rows:
        by_epoch.setdefault(r["epoch"], {})[r["seed"]] = (r["baseline"], r["masked"])
    epochs = sorted(by_epoch)
    comparisons = []
    for e in epochs:
        seeds = sorted(by_epoch[e])
        comparisons.append(
            (e, paired([by_epoch[e][s][0] for s in seeds], [by_epoch[e][s][1] for s in seeds], confidence))
        )
    seeds = sorted({r["seed"] for r in rows})
    per_seed = {s: [(e, by_epoch[e][s][1] - by_epoch[e][s][0]) for e in epochs if s in by_epoch[e]] for s in seeds}
    return per_seed, comparisons


def paired_gain_curves(
    ax, rows: Sequence[Mapping[str, Any]], confidence: float = 0.95, ylabel: Optional[str] = None, legend: bool = True
) -> Dict[str, List[Tuple[Any, Any]]]:
    """Each comparison in ``rows``, epoch by epoch: one thin line per seed (its masked minus unmasked value), the
    mean over seeds as a thick line, and where there are two seeds or more, the mean's t-interval as a band.

    Args:
        ax: the axes to draw on.
        rows: :func:`epoch_pairs` rows (or dicts with ``arm``, ``mask``, ``seed``, ``epoch``, ``baseline`` and
            ``masked``); several arms share the axes, coloured by mask kind, or one colour each when two arms have
            the same mask kind.
        confidence: of the band.
        ylabel: the axis label (default: from the rows' ``metric``).
        legend: draw a legend naming each arm, its seeds, the thin lines and the band (above the figure's panels).

    Returns:
        Per arm, ``(epoch, Paired)`` for every epoch (:class:`gmmlib.stats.inference.Paired`: the band's numbers).

    Raises:
        ValueError: no rows.
    """
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    if not rows:
        raise ValueError("no paired rows to draw: no masked run has an unmasked partner of the same seed")
    arms = _arms(rows)
    masks = [next(r.get("mask") for r in rows if r["arm"] == a) for a in arms]
    by_mask = len(set(masks)) == len(masks)
    ax.axhline(0.0, color="black", linewidth=0.8)
    out: Dict[str, List[Tuple[Any, Any]]] = {}
    several = False
    for i, (arm, mask) in enumerate(zip(arms, masks)):
        colour = mask_colour(mask) if by_mask else f"C{i}"
        per_seed, comparisons = _per_epoch([r for r in rows if r["arm"] == arm], confidence)
        out[arm] = comparisons
        n = len(per_seed)
        for points in per_seed.values():
            if n > 1:
                ax.plot(*zip(*points), color=colour, linewidth=0.8, alpha=0.45)
        epochs = [e for e, _ in comparisons]
        ax.plot(
            epochs,
            [c.gain for _, c in comparisons],
            color=colour,
            linewidth=2 if n > 1 else 1.5,
            marker="o",
            markersize=3,
            label=f"{arm}: " + (f"mean of {n} seeds" if n > 1 else "one seed"),
        )
        banded = [(e, c.interval) for e, c in comparisons if c.interval is not None]
        if banded:
            several = True
            ax.fill_between(
                [e for e, _ in banded], [lo for _, (lo, _) in banded], [hi for _, (_, hi) in banded],
                color=colour, alpha=0.2, linewidth=0,
            )  # fmt: skip
    metric = rows[0].get("metric", "test_top1")
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel or METRIC_LABELS.get(metric, f"change in {metric}"))
    if legend:
        handles, _ = ax.get_legend_handles_labels()
        if several:  # neutral keys for what every arm's thin lines and band mean
            handles += [
                Line2D([], [], color="0.4", linewidth=0.8, label="one seed (masked minus unmasked)"),
                Patch(color="0.4", alpha=0.2, linewidth=0, label=f"{confidence * 100:g} % t-interval of the mean"),
            ]
        # on the figure, above every panel and title: no curve or title under it, and the layout makes room
        ax.figure.legend(
            handles=handles, loc="outside upper center", ncols=2 if len(handles) > 2 else len(handles), frameon=False
        )
    return out


def paired_gain_panels(
    rows: Sequence[Mapping[str, Any]],
    axes: Optional[Sequence[Any]] = None,
    ncols: int = 3,
    confidence: float = 0.95,
    ylabel: Optional[str] = None,
):
    """One panel per comparison in ``rows`` (:func:`paired_gain_curves` each) and one legend for the figure; a new
    figure is as wide as the book's column, its panels on one y scale.

    Args:
        rows: :func:`epoch_pairs` rows.
        axes: one axes per arm (default: a new figure, ``ncols`` panels a row, unused panels hidden).
        ncols: panels per row of a new figure.
        confidence: of the bands.
        ylabel: the y label of the first column (default: from the rows' ``metric``).

    Returns:
        The axes, one per arm in the rows' order.
    """
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    if not rows:
        raise ValueError("no paired rows to draw: no masked run has an unmasked partner of the same seed")
    arms = _arms(rows)
    if axes is None:
        nrows = -(-len(arms) // min(ncols, len(arms)))
        cols = -(-len(arms) // nrows)  # as few empty panels as the rows allow: 4 arms make 2 x 2, not 3 + 1
        fig, grid = plt.subplots(nrows, cols, figsize=(COLUMN_WIDTH, 0.7 + 2.3 * nrows), sharey=True, squeeze=False)
        for ax in grid.flat[len(arms) :]:
            ax.set_visible(False)
        axes, first_column = list(grid.flat[: len(arms)]), {id(row[0]) for row in grid}
    else:
        if len(axes) != len(arms):
            raise ValueError(f"got {len(axes)} axes for {len(arms)} comparisons; expected one axes per comparison")
        fig, first_column = axes[0].figure, {id(axes[0])}
    columns = len({round(ax.get_position().x0, 3) for ax in axes})
    chars = max(16, int(fig.get_size_inches()[0] / columns / 0.085))  # a 10 pt character is about 0.08 in wide
    several = False
    for ax, arm in zip(axes, arms):
        arm_rows = [r for r in rows if r["arm"] == arm]
        paired_gain_curves(ax, arm_rows, confidence=confidence, ylabel=ylabel, legend=False)
        seeds = len({r["seed"] for r in arm_rows})
        several |= seeds > 1
        ax.set_title(textwrap.fill(arm, chars) + f"\n({seeds} seed{'s' if seeds != 1 else ''})")
        if id(ax) not in first_column:
            ax.set_ylabel("")
    handles = [Line2D([], [], color="0.4", linewidth=2, marker="o", markersize=3, label="mean over seeds")]
    if several:
        handles += [
            Line2D([], [], color="0.4", linewidth=0.8, label="one seed"),
            Patch(color="0.4", alpha=0.2, linewidth=0, label=f"{confidence * 100:g} % interval of the mean"),
        ]
    fig.legend(handles=handles, loc="outside upper center", ncols=len(handles), frameon=False)
    return axes
