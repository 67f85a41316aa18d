"""How scarce the smallest training set is for the model that trains on it (chapter "Where locality pays").

The data-size test asks whether a mask pays more as the data shrink. The question bites where the data are
scarce *for the model*: where fewer images cost the unmasked ViT accuracy and let it fit its training images
more closely, because it sees each of them more often. Both are read from the ``datasize`` records: per size,
the ViT's best-epoch test top-1 and its training loss at the last epoch (under the recipe's augmentation), each
the mean over the seeds recorded at that size.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Sequence

__all__ = ["SizeRow", "unmasked_by_size", "scarcity_text", "scarcity_summary", "CLOSER_FIT"]

CLOSER_FIT = 0.10
"""The relative drop in final training loss, smallest size against the largest, from which the text says the ViT
fits its smallest subset "more closely" (below it: "hardly more closely")."""


@dataclass(frozen=True)
class SizeRow:
    """The unmasked ViT at one training-set size.

    Args:
        size: images it trained on.
        seeds: seeds recorded at that size.
        test_top1: mean best-epoch test top-1 over those seeds.
        train_loss: mean training loss of the last epoch (augmented, label-smoothed batches).
        passes: how often each training image is seen (every size takes the same steps).
        params: the model's parameters.
    """

    size: int
    seeds: int
    test_top1: float
    train_loss: float
    passes: float
    params: int


def unmasked_by_size(records: Sequence[Mapping[str, Any]], preset: str = "cpu") -> List[SizeRow]:
    """One :class:`SizeRow` per training-set size of the unmasked ViT's ``datasize`` records, ascending.

    Args:
        records: the ``datasize`` records (:func:`gmmlib.stats.load`).
        preset: the preset whose runs are read.
    """
    by_size: Dict[int, List[Mapping[str, Any]]] = {}
    for r in records:
        c = r["config"]
        if c["preset"] == preset and not c.get("mask") and c.get("train_size") and r.get("history"):
            by_size.setdefault(int(c["train_size"]), []).append(r)
    if not by_size:
        return []
    from ..training.config import RunConfig

    rows = []
    for size, runs in sorted(by_size.items()):
        c = runs[0]["config"]
        whole = RunConfig(model=c["model"], dataset=c["dataset"], preset=c["preset"]).full_train_size()
        epochs = len(runs[0]["history"]) * c.get("preset_values", {}).get("passes_per_epoch", 1)
        rows.append(
            SizeRow(
                size=size,
                seeds=len(runs),
                test_top1=statistics.fmean(r["best_top1"] for r in runs),
                train_loss=statistics.fmean(r["history"][-1]["train_loss"] for r in runs),
                # every size takes the whole split's steps, spread over this subset
                passes=epochs * whole / size,
                params=int(runs[0].get("cost", {}).get("params", 0)),
            )
        )
    return rows


def _ends(rows: Sequence[SizeRow]) -> tuple:
    """The smallest and largest sizes, the top-1 the cut costs, and how much lower the training loss is (a fraction)."""
    small, large = rows[0], rows[-1]
    return small, large, large.test_top1 - small.test_top1, (large.train_loss - small.train_loss) / large.train_loss


def scarcity_summary(rows: Sequence[SizeRow]) -> str:
    """One sentence for a chapter's answer: what the cut costs the unmasked ViT and how scarce that makes the data
    (empty with fewer than two sizes)."""
    if len(rows) < 2:
        return ""
    small, large, drop, fit = _ends(rows)
    how = "hardly more closely" if fit < CLOSER_FIT else "more closely"
    regime = "only mildly scarce" if fit < CLOSER_FIT else "scarce at the small end"
    return (
        f"For scale: over the {large.size / small.size:.0f}-fold cut from {large.size:,} to {small.size:,} images, the "
        f"unmasked ViT loses {drop:.2f} points of top-1 and fits its smallest subset {how} (training loss "
        f"{100 * fit:.0f} % lower), so for this model the data are {regime}."
    )


def scarcity_text(rows: Sequence[SizeRow]) -> str:
    """One Markdown paragraph: how much the smallest subset costs the unmasked ViT, and whether it fits those
    images more closely (its final training loss at least :data:`CLOSER_FIT` lower than at the largest size)."""
    if len(rows) < 2:
        return "Fewer than two sizes of the unmasked ViT are recorded yet: how scarce the data are is not read."
    small, large, drop, fit = _ends(rows)
    model = f"the {small.params:,}-parameter ViT" if small.params else "the ViT"
    text = (
        f"**How scarce the data are for this model.** From {large.size:,} to {small.size:,} images, a "
        f"{large.size / small.size:.0f}-fold cut, the unmasked ViT's test top-1 falls by {drop:.2f} points "
        f"({large.test_top1:.2f} to {small.test_top1:.2f}, over {large.seeds} and {small.seeds} seeds). Its training loss "
        f"at the last epoch, under the recipe's augmentation, is {small.train_loss:.2f} at {small.size:,} images "
        f"against {large.train_loss:.2f} at {large.size:,} ({100 * fit:.0f} % lower). "
    )
    if fit < CLOSER_FIT:
        return text + (
            f"Seeing each of {small.size:,} images {small.passes:.0f} times, {model} fits them hardly more closely "
            f"than {large.size:,} images seen {large.passes:.0f} times: with this model and schedule even the "
            "smallest subset does not starve it, so the whole axis lies where data are only mildly scarce for it. "
            "A trend, or its absence, is read in that regime; the one the paper's argument is most about, a model "
            "that could memorise its images, is not reached here."
        )
    return text + (
        f"Seeing each of {small.size:,} images {small.passes:.0f} times, {model} fits them more closely than "
        f"{large.size:,} images seen {large.passes:.0f} times: at the small end of the axis the data are scarce "
        "for it, the regime the paper's argument is about."
    )
