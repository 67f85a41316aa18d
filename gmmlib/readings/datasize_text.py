"""The data-size chapter's sentences: its answer, what the reading means for the paper's thesis, and the
data-path check in words, each generated from :mod:`.datasize`'s reading and read by the book's one rule.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from ..stats.inference import interval_text
from .datasize import DatasizeReading, _ruled_out

__all__ = ["datasize_answer", "datasize_meaning", "data_path_text"]


def _shown(r: Mapping[str, Any]) -> str:
    if r["seeds"] < 2:
        return f"{r['gain']:+.2f} (one seed, not read)"
    return f"{r['gain']:+.2f} {interval_text(r['low'], r['high'])} ({r['seeds']} seeds, {r['standing']})"


def datasize_answer(reading: DatasizeReading, standings: Sequence[Mapping[str, Any]]) -> str:
    """The chapter's answer, one Markdown paragraph: how many seeds are complete, the pre-stated trend test (read
    only on seeds with every size, and only once every planned seed is complete; until then the paragraph says it
    is interim and claims nothing), the GMM's gain at the two ends of the sizes, and the other priors there."""
    planned, complete = len(reading.planned_seeds), len(reading.complete_seeds)
    if reading.trend is None:
        return (
            "**Not yet answered.** Fewer than two training-set sizes have paired ViT and GMM-ViT runs, so there is "
            f"no gain to trend; the pre-stated test waits for all {planned} paired seeds at every size."
        )
    t = reading.trend
    test = (
        "the slope of the GMM's paired gain over the ViT against log2(train size), one slope per seed, read only on "
        "complete seeds (both arms at every size)"
    )
    if reading.interim:
        so_far = (
            f"; on those the slope is {t.slope:+.2f} points per doubling of the data {interval_text(*t.interval)}, "
            "shown for progress only"
            if complete >= 2 and t.interval
            else ""
        )
        head = (
            f"**Interim: this reading claims nothing yet.** The question is answered by a test fixed before the runs "
            f"finished, {test}, and only once all {planned} planned seeds are complete. So far "
            f"{complete} of the {planned} {'is' if complete == 1 else 'are'} complete{so_far}."
        )
    else:
        low, high = t.interval
        head = (
            f"**{t.reading[0].upper() + t.reading[1:]}**, at this scale. All {planned} planned paired seeds are "
            f"complete, and the test fixed before the runs finished, {test}, gives {t.slope:+.2f} points per "
            f"doubling of the data, 95 % interval {interval_text(low, high)}."
        )
    gains = {r["train_size"]: r for r in standings if r["what"] == "gain"}
    ends = [n for n in (min(t.sizes), max(t.sizes)) if n in gains]
    tail = (
        " The GMM's gain (best-epoch top-1, points) "
        + " and ".join(f"at {n:,} images is {_shown(gains[n])}" for n in ends)
        + "."
        if ends
        else ""
    )
    return head + tail + _priors_sentence(standings)


def _priors_sentence(standings: Sequence[Mapping[str, Any]]) -> str:
    """The other priors at the two ends in one sentence (each end read by the book's rule), or "" with none."""
    priors = [r for r in standings if r["what"] == "prior"]
    if not priors:
        return ""
    names = ", ".join(sorted({r["comparison"].rsplit(", ", 1)[0] for r in priors}))
    if any(r["seeds"] < 2 for r in priors):
        return f" The other priors at the two ends ({names}) are not read until each has its seeds."
    seeds = min(r["seeds"] for r in priors)
    shown = [r for r in priors if r["standing"] != "includes zero"]
    if not shown:
        return (
            f" The other priors at the two ends ({names}; {seeds} seeds or more each) show no effect either way at "
            f"either end: all {len(priors)} of their intervals include zero."
        )
    rest = len(priors) - len(shown)
    return (
        f" Of the other priors at the two ends ({names}), {len(shown)} of the {len(priors)} intervals "
        f"{'excludes' if len(shown) == 1 else 'exclude'} zero: "
        + "; ".join(f"{r['comparison']} {_shown(r)}" for r in shown)
        + (f"; the other {rest} include zero." if rest else ".")
    )


def datasize_meaning(reading: DatasizeReading) -> str:
    """What the reading means for the paper's thesis (a locality mask matters most when data are scarce), in
    plain words and no further than the slope's interval: one Markdown paragraph."""
    t = reading.trend
    if t is None or reading.interim:
        done = len(reading.complete_seeds)
        return (
            f"Nothing yet. With {done} of {len(reading.planned_seeds)} paired seeds complete the pre-stated test has "
            "not been read, and a trend read early, on the seeds that happened to finish first, would be a reading "
            "picked from partial looks. What the runs can say, once complete, is one of three things, fixed before "
            "they finished: the GMM's gain grows as the data shrink (what the thesis predicts), no trend is shown, or "
            "the gain shrinks as the data shrink."
        )
    low, high = t.interval
    scale = (
        " It is a reading of the cpu preset's small model and short schedule on CIFAR-10 between "
        f"{min(t.sizes):,} and {max(t.sizes):,} images; it neither confirms nor tests the paper's numbers, which "
        "come from another model at another scale."
    )
    if t.reading == "the gain grows as data shrink":
        body = (
            "The runs show what the thesis predicts: the fewer images a ViT trains on, the more the GMM adds, by "
            f"between {-high:.2f} and {-low:.2f} points of top-1 for each halving of the data (95 % interval). The "
            "mask pays most where data are scarce; whether through locality, this reading cannot say (chapter 8 "
            "reads what the masks learn)."
        )
    elif t.reading == "the gain shrinks as data shrink":
        body = (
            "The runs show the opposite of what the thesis predicts: the fewer images, the less the GMM adds, by "
            f"between {low:.2f} and {high:.2f} points for each halving of the data (95 % interval). Whatever the "
            "mask gives here, scarce data is not where it pays."
        )
    else:
        body = (
            "The runs do not show what the thesis predicts: the GMM's gain does not measurably change with the "
            f"amount of data. That is not evidence that it cannot: slopes between {low:+.2f} and {high:+.2f} points "
            f"per doubling remain possible. What the interval rules out is {_ruled_out(low, high)}."
        )
    return body + scale


def data_path_text(standings: Sequence[Mapping[str, Any]]) -> str:
    """The data-path check in words (one Markdown paragraph), from the "data path" rows of
    :func:`datasize_standings`: whether either arm trains differently on the batched path than on the workers."""
    rows = [r for r in standings if r["what"] == "data path"]
    if not rows:
        return "No seed has both a headline run (workers) and a 50,000-image `datasize` run (batched) yet."
    shown = "; ".join(f"{r['comparison'].split(':')[0]} {_shown(r)}" for r in rows)
    differ = [r for r in rows if r["standing"] in ("a lead", "holds after correction")]
    if differ:
        return (
            f"Batched minus workers, seed by seed (points of best-epoch top-1): {shown}. **The interval excludes "
            f"zero** for {' and '.join(r['comparison'].split(':')[0] for r in differ)}: a difference between the paths "
            "beyond the seed noise until shown otherwise, whose cause must be looked for before the batched runs are "
            "read beside the workers' ones."
        )
    if all(r["seeds"] < 2 for r in rows):
        return f"Batched minus workers (points of best-epoch top-1): {shown}. One seed: not read yet."
    return (
        f"Batched minus workers, seed by seed (points of best-epoch top-1): {shown}. Neither arm shows a difference "
        "between the paths beyond the seed noise; the intervals say how large a difference they leave possible."
    )
