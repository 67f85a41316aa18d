"""What the recorded runs say of the headline: its verdict, as structured results and text.

Chapters 5 and 11 print these sentences; they are generated from ``results/`` here, so they stay
true when the runs change, and every rule that decides a word of them is tested.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from ..experiments.grids import run_command
from ..stats.inference import excludes, interval_text, minimum_detectable_effect, t_interval
from ..stats.paper import paper
from ..stats.tables import Headline, compare, exp1_table, headline, load, preset_of
from .ablations import _apart_from_zero_text, _gain_with_interval, ablation
from .standard import comparisons, rows_for

__all__ = ["OUTCOMES", "Verdict", "judge", "headline_verdict", "families_with_seeds", "families_rerun", "verdict"]


# The headline's possible outcomes, from no evidence to a clear answer either way.
OUTCOMES = ("untested", "too early", "reproduced", "same direction", "not reproduced")


_HEADINGS = {
    "too early": "**Too early to judge.** Only one paired seed is recorded so far",
    "reproduced": "**Reproduced in direction.** GMM-ViT beats ViT in every one of the paired seeds",
    "same direction": "**Positive on average, not in every seed.** The gain is within run-to-run noise",
    "not reproduced": "**Not reproduced.** GMM-ViT does not beat ViT on average",
}


@dataclass
class Verdict:
    """The headline claim (GMM-ViT beats ViT on CIFAR-10) against our runs.

    Args:
        outcome: one of :data:`OUTCOMES`.
        paper_gain: the paper's gain in points (one run).
        paired_gain: our mean per-seed gain (None when untested).
        seeds: number of paired seeds.
        lines: the Markdown bullets chapter 5 shows.
    """

    outcome: str
    paper_gain: float
    paired_gain: Optional[float] = None
    seeds: int = 0
    lines: List[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def judge(paired_gains: Sequence[float]) -> str:
    """The outcome of the headline from its per-seed gains (GMM-ViT minus ViT, same seed).

    One seed cannot tell a gain from noise ("too early"); a gain in every seed reproduces the
    claim's direction ("reproduced"); a positive mean with a losing seed is "same direction";
    a mean at or below zero is "not reproduced". No seed at all is "untested".
    """
    if not paired_gains:
        return "untested"
    if len(paired_gains) < 2:
        return "too early"
    if all(d > 0 for d in paired_gains):
        return "reproduced"
    if sum(paired_gains) / len(paired_gains) > 0:
        return "same direction"
    return "not reproduced"


def _pm(x: Optional[float]) -> str:
    return "" if x is None or math.isnan(x) else f" ± {x:.2f}"


def _nan(x: Optional[float]) -> float:
    """A spread that one seed does not have, as NaN (which every comparison with it fails)."""
    return float("nan") if x is None else x


def _what_the_seeds_tell(diffs: Sequence[float], std: float, paper_gain: float, power: bool = True) -> str:
    """The interval of the paired gain, and (``power``) the smallest gain this many seeds would detect."""
    n = len(diffs)
    lo, hi = t_interval(diffs)
    zero = "excludes zero" if excludes(lo, hi) else "includes zero"
    # the paper's gain is for a 2.7M-parameter ViT after 300 passes: another quantity, never tested against ours
    text = (
        f"* **What {n} seeds can tell.** The 95 % interval of the paired gain (Student's t) is "
        f"{interval_text(lo, hi)} points: it {zero}."
    )
    if lo < 0 < hi:
        text += (
            f" Any true gain from {lo:+.2f} to {hi:+.2f} points fits these runs: at this scale they rule out "
            f"neither no gain at all nor a gain of up to {hi:.1f} points."
        )
    if power and std > 0:
        mde = minimum_detectable_effect(std, n)
        text += (
            f" With this seed-to-seed spread, {n} seeds detect a true gain of {mde:.2f} points four times in five "
            "(a paired t-test at the 5 % level); a smaller one they would often miss."
        )
    return text


def headline_verdict(
    summary: Optional[Headline],
    preset: str,
    paper_gain: float,
    scale: Optional[Dict[str, Any]] = None,
    data_notes: Sequence[str] = (),
    power: bool = True,
) -> Verdict:
    """The verdict on the headline from its paired seeds (:func:`gmmlib.stats.headline`).

    Args:
        summary: ``headline(...)`` (None when untested).
        preset: the preset of those runs.
        paper_gain: the paper's GMM-ViT minus ViT on CIFAR-10.
        scale: for a preset other than "paper": ``{"depth", "dim", "epochs"}`` of our ViT.
        data_notes: where the runs' data came from.
        power: say the smallest gain the seeds detect (a page that gives it elsewhere leaves it out).
    """
    if not summary:
        return Verdict(
            "untested",
            paper_gain,
            lines=[
                f"* **Not yet tested.** The paper's headline claim (GMM-ViT beats ViT on CIFAR-10 by {paper_gain:.2f} "
                "points) has no complete rerun in `results/` yet (it needs both models); run "
                f"`{run_command('headline', 'cpu')}`."
            ],
        )
    best = summary.best
    diffs, n = list(best.diffs), best.seeds
    outcome = judge(diffs)
    lines = [
        f"* {_HEADINGS[outcome]}: best-epoch top-1 {best.mean_b:.2f}{_pm(best.std_b)} % against "
        f"{best.mean_a:.2f}{_pm(best.std_a)} % ({n} paired seed{'s' if n != 1 else ''}, {preset} preset), "
        f"a paired gain of {best.gain:+.2f}{_pm(best.gain_std)} points"
        + (f" (per seed: {', '.join(f'{d:+.2f}' for d in diffs)})" if n > 1 else "")
        + f". The paper reports {paper_gain:+.2f} points from one run."
    ]
    # the larger of the two models' seed-to-seed spreads is the noise the gain is read against
    spread = max(_nan(best.std_a), _nan(best.std_b))
    if n < 2:
        lines.append(
            "* **One seed cannot separate a gain of this size from run-to-run noise**; "
            "the other seeds are listed above."
        )
    elif not math.isnan(spread) and abs(best.gain) < 2 * spread:
        lines.append(
            f"* **Small against the noise.** The models' seed-to-seed standard deviations (ViT "
            f"{_nan(best.std_a):.2f}, GMM-ViT {_nan(best.std_b):.2f} points) are of the same order as the gain; "
            f"{n} seeds cannot pin the gain down more tightly than that."
        )
    if n >= 2:
        lines.append(_what_the_seeds_tell(diffs, best.gain_std, paper_gain, power))
    final = summary.final
    lines.append(
        f"* **Best or final epoch.** On the final epoch the paired gain is {final.gain:+.2f}{_pm(final.gain_std)} "
        f"points, on the best epoch {best.gain:+.2f}."
    )
    if preset != "paper" and scale is not None:
        lines.append(
            f"* **Not the paper's scale.** Our models are {preset}-preset models (a {scale['depth']}-layer, "
            f"{scale['dim']}-wide ViT, {scale['epochs']} epochs): absolute accuracies of about {best.mean_a:.0f} % "
            f"are far from the paper's {paper()['main_table']['rows']['vit']['none'][0]} % and are not comparable "
            "to it, and neither is the gain: ours is another model's after another training, so it can neither "
            "confirm nor contradict the paper's. What the gain is at full scale is open until the `paper` preset "
            "is run (chapter 11)."
        )
    if data_notes:
        lines.append(f"* **Data.** {'; '.join(sorted(s for s in data_notes if s))}.")
    return Verdict(outcome, paper_gain, best.gain, n, lines)


def families_with_seeds(results: Optional[str | Path] = None, models: Optional[Sequence[str]] = None) -> str:
    """Markdown: each family of ``exp1-seeds`` with its paired GMM gain and 95 % interval, read against
    zero and the paper's gain; empty until a family there has two paired seeds.

    Args:
        results: the results folder (default: this checkout's).
        models: read only these families (e.g. ``["cait"]``); default all.
    """
    preset = preset_of("exp1-seeds", results)
    table = compare("exp1-seeds", results, preset) if preset else None
    rows = [] if table is None or table.empty else table[table["pairs"] > 1].to_dict("records")
    rows = [r for r in rows if models is None or r["model"] in models]
    if not rows:
        return ""
    standings = {c["label"]: c["standing"] for c in comparisons(results) if c["experiment"] == "exp1-seeds"}
    fresh = _unselected_gains(results, preset)
    readings = []
    for r in rows:
        way = "lowers" if r["gain_high"] < 0 else "raises"
        standing = standings.get(r["label"], "includes zero")
        where = {
            "holds after correction": f"the GMM {way} top-1 at this scale (it holds after Holm's correction)",
            "a lead": f"a lead that the GMM {way} top-1 at this scale: the interval excludes zero, but not after "
            "Holm's correction over the book's comparisons",
        }.get(standing, "the GMM neither clearly raises nor lowers top-1 at this scale")
        unselected = fresh.get(r["model"], [])
        readings.append(
            f"{r['label']} {_gain_with_interval(r)}: {where}"
            + (
                f" (the seeds added after the choice alone: {', '.join(f'{g:+.2f}' for g in unselected)})"
                if unselected
                else ""
            )
        )
    return (
        f"* **With seeds of their own** (`exp1-seeds`, {preset} preset, paired gain and its 95 % interval in "
        f"points): {'; '.join(readings)}. These families were given seeds because their seed-0 gains were the "
        "most extreme of the four in `exp1`; seed 0 chose them, so only the seeds added after are unselected."
    )


def families_rerun(results: Optional[str | Path] = None) -> str:
    """Markdown: the families of ``exp1`` that ``comparison-seeds`` reruns on seeds, each read by the book's one rule;
    empty until one has two paired seeds. Unlike ``exp1-seeds``, no first seed chose them: every one-seed comparison
    the book read was given seeds, so all of their seeds count."""
    from .family_standing import standing_phrase

    rows = [c for c in rows_for(["exp1"], comparisons(results)) if c["experiment"] == "comparison-seeds"]
    rows = [c for c in rows if c["seeds"] > 1]
    if not rows:
        return ""
    read = "; ".join(
        f"{c['label']} {c['gain']:+.2f} {interval_text(c['low'], c['high'])} ({c['seeds']} seeds): {standing_phrase(c)}"
        for c in rows
    )
    return (
        f"* **On seeds, every other family** (`comparison-seeds`, {rows[0]['preset']} preset, trained on "
        f"{rows[0]['hardware']}, paired gain and its 95 % interval in points): {read}. Every one-seed comparison the "
        "book read was given seeds there, none chosen by its first seed."
    )


def _unselected_gains(results: Optional[str | Path], preset: Optional[str]) -> Dict[str, List[float]]:
    """Per family of ``exp1-seeds``, the paired gains of the seeds other than 0 (the seed that selected it)."""
    arms: Dict[tuple, float] = {}
    for r in load("exp1-seeds", results):
        c = r["config"]
        if c["preset"] == preset and int(c["seed"]) != 0:
            arms[c["model"], int(c["seed"]), c.get("mask") or "none"] = r["best_top1"]
    out: Dict[str, List[float]] = {}
    for (model, seed, mask), top1 in sorted(arms.items()):
        if mask == "gmm" and (model, seed, "none") in arms:
            out.setdefault(model, []).append(top1 - arms[model, seed, "none"])
    return out


def verdict(results: Optional[str | Path] = None, power: bool = True) -> Verdict:
    """Chapter 5's verdict: the headline, the other families of ``exp1``, the initialisations, the rest.

    Each experiment is read at the preset the book shows for it (:func:`gmmlib.stats.tables.preset_of`).
    ``power=False`` leaves out the smallest gain the headline's seeds detect (for a page that gives it already).
    """
    main = paper()["main_table"]
    paper_gain = main["rows"]["vit"]["gmm"][0] - main["rows"]["vit"]["none"][0]
    preset = preset_of("headline", results)
    summary = headline(results, preset) if preset else None
    scale, notes = None, []
    if summary:
        records = load("headline", results)
        cfg = records[0]["config"]
        arch = cfg["architecture"]
        scale = {
            "depth": arch.get("depth"),
            "dim": arch.get("dim"),
            "epochs": cfg["epochs"] or cfg["preset_values"]["epochs"],
        }
        notes = sorted({r["data_source"].get("note") or r["data_source"]["kind"] for r in records})
    result = headline_verdict(summary, preset, paper_gain, scale, notes, power)
    lines = result.lines

    exp1_preset = preset_of("exp1", results) or "cpu"
    exp1 = exp1_table(results, exp1_preset)
    cells = exp1[exp1["command"] == ""]
    others = cells[cells["model"] != "ViT"]
    seeded, rerun = families_with_seeds(results), families_rerun(results)
    if len(others):
        wins = int((others["ours_gain"] > 0).sum())
        gains = ", ".join(f"{m} {g:+.2f}" for m, g in zip(others["model"], others["ours_gain"]))
        paper_gains = ", ".join(f"{m} {g:+.2f}" for m, g in zip(others["model"], others["paper_gain"]))
        noise = (
            f"; the headline's paired gains vary by ± {_nan(summary.best.gain_std):.2f} from seed to seed"
            if summary
            else ""
        )
        lines.append(
            f"* **The other families on CIFAR-10** ({exp1_preset} preset, one seed each): the gain is "
            f"positive for {wins} of {len(others)} ({gains}), against the paper's {paper_gains}{noise}: one "
            "draw each cannot say, family by family, whether the GMM helps or hurts"
            + ("; the bullets below read them on seeds." if rerun else ".")
        )
        std = _nan(summary.best.gain_std) if summary else float("nan")
        large = [(m, g) for m, g in zip(others["model"], others["ours_gain"]) if abs(g) > 3 * std]
        if large:
            against, several = all(g < 0 for _, g in large), len(large) > 1
            lines.append(
                f"* **Effects beyond the noise:** {', '.join(f'{m} {g:+.2f}' for m, g in large)} "
                f"({'one seed each' if several else 'one seed'}) {'are' if several else 'is'} more than three "
                f"times a gain's seed-to-seed std ({std:.2f}) from zero"
                + (
                    (", and point against the paper" if several else ", and points against the paper")
                    if against
                    else ""
                )
                + (
                    ": the next bullet gives them seeds of their own."
                    if seeded
                    else ": the first thing to rerun with more seeds (`exp1-seeds`)."
                )
            )
    if seeded:
        lines.append(seeded)
    if rerun:
        lines.append(rerun)
    spread = ablation("exp2-init", "init", "official", "init", results)
    inits, init_preset = spread.rows, spread.preset
    if len(inits) > 1:
        shown = ", ".join(f"{r['value']} {_gain_with_interval(r)}" for r in inits)
        official = (
            f" The official initialisation is the headline's GMM-ViT: over the headline's {result.seeds} seeds its "
            f"gain is {result.paired_gain:+.2f}."
            if summary and result.seeds > 1
            else ""
        )
        pairs = {r["pairs"] for r in inits}
        seeds = (
            f"{pairs.pop()} paired seeds per setting"
            if len(pairs) == 1 and min(pairs) > 1
            else "one seed per setting"
            if pairs == {1}
            else "one seed per setting unless an interval is shown"
        )
        reading = f" ({spread.verdict})" if spread.verdict else ""
        apart = _apart_from_zero_text(spread)
        lines.append(
            f"* **The initialisation.** In `exp2-init` (chapter 6, {init_preset} preset, {seeds}) GMM-ViT's gain "
            f"over ViT is {shown}.{official} Chapter 6 reads their spread against the seed noise{reading}: they do "
            f"not rank the initialisations.{apart}"
        )
    lines.append(
        f"* **The rest of the table** ({len(exp1) - len(cells)} of {len(exp1)} cells: CIFAR-100, SVHN and "
        "Tiny-ImageNet, and any family not yet run) is not re-run here and remains the paper's claim alone."
        if len(cells) < len(exp1)
        else "* Every cell of the table has a rerun."
    )
    return result
