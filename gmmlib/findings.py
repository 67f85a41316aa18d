"""What the recorded runs say: the headline verdict and the ablations' spread, as structured results and text.

Chapters 5 and 6 print these sentences; they are generated from ``results/`` here, so they stay
true when the runs change, and every rule that decides a word of them is tested
(``tests/test_results.py``).

Example:
    >>> v = verdict()                # reads the store
    >>> v.outcome, v.paired_gain     # ("not reproduced", -0.12)
    >>> print(v.text)                # the chapter's bullet list
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from .results import exp1_table, headline, load, paper, preset_of, run_command, runs
from .stats import expected_range, minimum_detectable_effect, range_tail, t_interval

__all__ = [
    "OUTCOMES",
    "Verdict",
    "judge",
    "seed_noise",
    "headline_verdict",
    "verdict",
    "setting_gains",
    "NOISE_SCALES",
    "SPREAD_VERDICTS",
    "Ablation",
    "ablation",
    "ablation_summary",
    "default_setting",
    "curves_gap",
]

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


def seed_noise(results: Optional[str | Path] = None, preset: str = "cpu") -> Optional[float]:
    """Seed-to-seed std of the headline's paired gain (points): the scale a one-seed gain is read against.

    Returns None when the headline runs at ``preset`` are missing.
    """
    h = headline(results, preset=preset)
    return h["paired_gain_best_top1"]["std"] if h else None


def _pm(x: float) -> str:
    return "" if math.isnan(x) else f" ± {x:.2f}"


def _what_the_seeds_tell(diffs: Sequence[float], std: float, paper_gain: float) -> str:
    """The interval of the paired gain, and the smallest gain this many seeds would detect."""
    n = len(diffs)
    lo, hi = t_interval(diffs)
    zero = "excludes zero" if lo > 0 or hi < 0 else "includes zero"
    paper_in = "inside" if lo <= paper_gain <= hi else "outside"
    text = (
        f"* **What {n} seeds can tell.** The 95 % interval of the paired gain (Student's t) is "
        f"[{lo:+.2f}, {hi:+.2f}] points: it {zero}, and the paper's {paper_gain:+.2f} lies {paper_in} it."
    )
    if lo < 0 < hi:
        text += (
            f" Any true gain from {lo:+.2f} to {hi:+.2f} points fits these runs: not reproduced here does not "
            f"mean no gain, and a gain of up to {hi:.1f} points is not ruled out at this scale."
        )
    if std > 0:
        mde = minimum_detectable_effect(std, n)
        text += (
            f" With this seed-to-seed spread, {n} seeds detect a true gain of {mde:.2f} points four times in five "
            "(a paired t-test at the 5 % level); a smaller one they would often miss."
        )
    return text


def headline_verdict(
    summary: Dict[str, Any],
    preset: str,
    paper_gain: float,
    scale: Optional[Dict[str, Any]] = None,
    data_notes: Sequence[str] = (),
) -> Verdict:
    """The verdict on the headline from :func:`gmmlib.results.headline`'s summary.

    Args:
        summary: ``headline(...)`` (empty when untested).
        preset: the preset of those runs.
        paper_gain: the paper's GMM-ViT minus ViT on CIFAR-10.
        scale: for a preset other than "paper": ``{"depth", "dim", "epochs"}`` of our ViT.
        data_notes: where the runs' data came from.
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
    paired = summary["paired_gain_best_top1"]
    diffs, n = paired["values"], len(paired["values"])
    base, gmm = summary["none_best_top1"], summary["gmm_best_top1"]
    outcome = judge(diffs)
    lines = [
        f"* {_HEADINGS[outcome]}: best-epoch top-1 {gmm['mean']:.2f}{_pm(gmm['std'])} % against "
        f"{base['mean']:.2f}{_pm(base['std'])} % ({n} paired seed{'s' if n != 1 else ''}, {preset} preset), "
        f"a paired gain of {paired['mean']:+.2f}{_pm(paired['std'])} points"
        + (f" (per seed: {', '.join(f'{d:+.2f}' for d in diffs)})" if n > 1 else "")
        + f". The paper reports {paper_gain:+.2f} points from one run."
    ]
    # the larger of the two models' seed-to-seed spreads is the noise the gain is read against
    spread = max(base["std"], gmm["std"])
    if n < 2:
        lines.append(
            "* **One seed cannot separate a gain of this size from run-to-run noise**; "
            "the other seeds are listed above."
        )
    elif not math.isnan(spread) and abs(paired["mean"]) < 2 * spread:
        lines.append(
            f"* **Small against the noise.** The seed-to-seed standard deviation of either model ({spread:.2f} "
            f"points) is of the same order as the gain; {n} seeds cannot pin the gain down more tightly than that."
        )
    if n >= 2:
        lines.append(_what_the_seeds_tell(diffs, paired["std"], paper_gain))
    final = summary["paired_gain_final_top1"]
    lines.append(
        f"* **Best or final epoch.** On the final epoch the paired gain is {final['mean']:+.2f}{_pm(final['std'])} "
        f"points, on the best epoch {paired['mean']:+.2f}."
    )
    if preset != "paper" and scale is not None:
        lines.append(
            f"* **Not the paper's scale.** Our models are {preset}-preset models (a {scale['depth']}-layer, "
            f"{scale['dim']}-wide ViT, {scale['epochs']} epochs): absolute accuracies of about {base['mean']:.0f} % "
            f"are far from the paper's {paper()['main_table']['rows']['vit']['none'][0]} % and are not comparable "
            "to it; only the sign and rough size of the gain are. Whether the gain grows or shrinks at full scale "
            "is open until the `paper` preset is run (chapter 10)."
        )
    if data_notes:
        lines.append(f"* **Data.** {'; '.join(sorted(s for s in data_notes if s))}.")
    return Verdict(outcome, paper_gain, paired["mean"], n, lines)


def verdict(results: Optional[str | Path] = None) -> Verdict:
    """Chapter 5's verdict: the headline, the other families of ``exp1``, the initialisations, the rest.

    Each experiment is read at the preset the book shows for it (:func:`gmmlib.results.preset_of`).
    """
    main = paper()["main_table"]
    paper_gain = main["rows"]["vit"]["gmm"][0] - main["rows"]["vit"]["none"][0]
    preset = preset_of("headline", results)
    summary = headline(results, preset=preset) if preset else {}
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
    result = headline_verdict(summary, preset, paper_gain, scale, notes)
    lines = result.lines

    exp1_preset = preset_of("exp1", results) or "cpu"
    exp1 = exp1_table(results, exp1_preset)
    cells = exp1[exp1["command"] == ""]
    others = cells[cells["model"] != "ViT"]
    if len(others):
        wins = int((others["ours_gain"] > 0).sum())
        gains = ", ".join(f"{m} {g:+.2f}" for m, g in zip(others["model"], others["ours_gain"]))
        paper_gains = ", ".join(f"{m} {g:+.2f}" for m, g in zip(others["model"], others["paper_gain"]))
        noise = (
            f"; the headline's paired gains vary by ± {summary['paired_gain_best_top1']['std']:.2f} from seed to seed"
            if summary
            else ""
        )
        lines.append(
            f"* **The other families on CIFAR-10** ({exp1_preset} preset, one seed each): the GMM helps "
            f"{wins} of {len(others)} ({gains}), against the paper's {paper_gains}{noise}."
        )
        std = summary["paired_gain_best_top1"]["std"] if summary else float("nan")
        large = [(m, g) for m, g in zip(others["model"], others["ours_gain"]) if abs(g) > 3 * std]
        if large:
            against = all(g < 0 for _, g in large)
            lines.append(
                f"* **Effects beyond the noise:** {', '.join(f'{m} {g:+.2f}' for m, g in large)} (one seed each) "
                f"{'are' if len(large) > 1 else 'is'} more than three times a gain's seed-to-seed std "
                f"({std:.2f}) from zero"
                + (", and point against the paper" if against else "")
                + ": the first thing to rerun with more seeds."
            )
    init_preset = preset_of("exp2-init", results)
    inits = setting_gains("exp2-init", "init", "official", results, init_preset) if init_preset else []
    if len(inits) > 1:
        shown = ", ".join(f"{r['value']} {_gain_with_interval(r)}" for r in inits)
        official = (
            f" The official initialisation is the headline's GMM-ViT: over the headline's {result.seeds} seeds its "
            f"gain is {result.paired_gain:+.2f}."
            if summary and result.seeds > 1
            else ""
        )
        lines.append(
            f"* **The initialisation.** In `exp2-init` (chapter 6, {init_preset} preset, one seed per setting "
            f"unless an interval is shown) GMM-ViT's gain over ViT is {shown}.{official} "
            "Chapter 6 reads these against the seed noise: they do not rank the initialisations."
        )
    lines.append(
        f"* **The rest of the table** ({len(exp1) - len(cells)} of {len(exp1)} cells: CIFAR-100, SVHN and "
        "Tiny-ImageNet, and any family not yet run) is not re-run here and remains the paper's claim alone."
        if len(cells) < len(exp1)
        else "* Every cell of the table has a rerun."
    )
    return result


def setting_gains(
    experiment: str, option: str, default: Any, results: Optional[str | Path] = None, preset: Optional[str] = None
) -> List[Dict[str, Any]]:
    """Each masked setting of an ablation with its paired gain over the unmasked ViT, in the grid's order: rows of
    :func:`gmmlib.results.compare` with ``value``, the setting's ``option`` (``default`` where a run leaves it out)."""
    from .results import compare, label

    preset = preset or preset_of(experiment, results)
    table = compare(experiment, results, preset) if preset else None
    if table is None or table.empty:
        return []
    configs = [r["config"] for r in load(experiment, results) if r["config"]["preset"] == preset]
    options = {label(c): c.get("mask_options") or {} for c in configs}
    rows = table[table["gain"].notna()].to_dict("records")
    return [{**r, "value": options[r["label"]].get(option, default)} for r in rows]


def _gain_with_interval(row: Dict[str, Any]) -> str:
    if row["pairs"] > 1:
        return f"{row['gain']:+.2f} [{row['gain_low']:+.2f}, {row['gain_high']:+.2f}] ({row['pairs']} seeds)"
    return f"{row['gain']:+.2f}"


# The scales of an ablation's spread, measured over the headline's seeds: the settings share one unmasked run,
# whose noise cancels between them, so a GMM-ViT run's seed std; and, beside it, the seed noise of a whole gain.
NOISE_SCALES = {"run": "a GMM-ViT run's seed std", "gain": "the seed noise of a gain"}
# The spread against noise, by on how many scales noise alone spreads as wide with a probability under 5 %.
SPREAD_VERDICTS = ("what noise alone gives", "at the edge", "wider than noise")
_READINGS = (
    " **The spread is what noise alone gives:** these runs show no effect of {} at this scale, and rank no "
    "setting above another.",
    " **The spread is at the edge of what noise gives**, depending on the scale: more seeds per setting would tell.",
    " **The spread is wider than noise alone gives** on both scales: some setting may differ, but these runs "
    "cannot say which one; more seeds per setting would.",
)


@dataclass
class Ablation:
    """What an ablation's gains support (:func:`ablation`); ``settings``, ``gains`` (points over the
    unmasked ViT) and ``pairs`` (paired seeds) per recorded setting in the grid's order, ``total``
    settings in the grid, their ``spread`` (max - min), the headline's ``noise_seeds``, and per key of
    :data:`NOISE_SCALES` in ``scales``: ``std`` (of one setting's gain), ``expected_range`` (the mean
    spread of as many settings that do not differ) and ``p`` (the probability that noise alone spreads
    them at least as wide). ``verdict`` is one of :data:`SPREAD_VERDICTS` (None when nothing can be
    read against noise); ``text`` is the Markdown bullet, which ranks no setting.
    """

    experiment: str
    name: str
    preset: Optional[str] = None
    settings: List[Any] = field(default_factory=list)
    gains: List[float] = field(default_factory=list)
    pairs: List[int] = field(default_factory=list)
    total: int = 0
    spread: Optional[float] = None
    noise_seeds: int = 0
    scales: Dict[str, Dict[str, float]] = field(default_factory=dict)
    verdict: Optional[str] = None
    text: str = ""


def _percent(p: float) -> str:
    return "under 0.1 %" if p < 0.001 else f"{100 * p:.1f} %" if p < 0.1 else f"{100 * p:.0f} %"


def ablation(experiment: str, option: str, default: Any, name: str, results: Optional[str | Path] = None) -> Ablation:
    """Read an ablation (chapter 6): each setting's gain over the unmasked ViT, and whether their spread is more
    than seed noise alone gives on both :data:`NOISE_SCALES`, computed exactly (:func:`gmmlib.stats.expected_range`,
    :func:`gmmlib.stats.range_tail`). It never ranks settings. ``option`` is the mask option the settings differ
    in (e.g. "num_kernels"), ``default`` its value where a run leaves it out, ``name`` how the text calls it ("K").
    With several seeds per setting the scales are divided by the root of the fewest seeds a setting has.
    """
    from .experiments import get_experiment

    preset = preset_of(experiment, results)
    rows = setting_gains(experiment, option, default, results, preset) if preset else []
    if not rows:
        return Ablation(experiment, name, text=f"* `{experiment}`: no runs recorded yet (`{run_command(experiment)}`).")
    gains, pairs = [float(r["gain"]) for r in rows], [int(r["pairs"]) for r in rows]
    total = len(get_experiment(experiment).configs(preset)) - 1  # the unmasked baseline is no setting
    out = Ablation(experiment, name, preset, [r["value"] for r in rows], gains, pairs, total)
    seeds = "one seed each" if max(pairs) == 1 else "95 % intervals where a setting has several seeds"
    shown = ", ".join(f"{name}={r['value']}: {_gain_with_interval(r)}{' (one seed)' * (r['pairs'] == 1)}" for r in rows)
    out.text = (
        f"* **`{experiment}`** ({len(rows)} of {total} settings recorded, {preset} preset, {seeds}), gain over "
        f"the unmasked ViT in points: {shown}."
    )
    summary = headline(results, preset=preset)
    stds = {"run": summary["gmm_best_top1"]["std"], "gain": seed_noise(results, preset)} if summary else {}
    if len(rows) < 2 or not stds or not all(s > 0 for s in stds.values()):  # NaN: fewer than two seeds
        out.text += (
            " One setting only: a spread needs two." if len(rows) < 2 else " No seed noise yet to read them against."
        )
        return out
    n, out.spread, out.noise_seeds = len(gains), max(gains) - min(gains), summary["gmm_best_top1"]["n"]
    for key, std in stds.items():
        s = std / math.sqrt(min(pairs))
        out.scales[key] = {"std": s, "expected_range": expected_range(n, s), "p": range_tail(n, s, out.spread)}
    run, gain = out.scales["run"], out.scales["gain"]
    fewest = "" if min(pairs) == 1 else f", each divided by √{min(pairs)} for the fewest seeds a setting has"
    wide = sum(s["p"] < 0.05 for s in out.scales.values())
    out.verdict = SPREAD_VERDICTS[wide]
    out.text += (
        f" Their spread, largest minus smallest, is {out.spread:.2f} points. {n} settings that do not differ at "
        f"all would spread by {run['expected_range']:.2f} points on average with {NOISE_SCALES['run']} "
        f"({run['std']:.2f}) as the scale, or {gain['expected_range']:.2f} with {NOISE_SCALES['gain']} "
        f"({gain['std']:.2f}), both measured over the headline's {out.noise_seeds} seeds{fewest}; the probability "
        f"that noise alone spreads them at least this wide is {_percent(run['p'])} and {_percent(gain['p'])}."
    ) + _READINGS[wide].format(name)
    if len({g > 0 for g in gains}) == 1 and all(gains):
        out.text += (
            f" All {n} gains are {'positive' if gains[0] > 0 else 'negative'}; they share one unmasked run, whose "
            "own noise moves them all together, so this says no more than the headline's gain does."
        )
    return out


def ablation_summary(experiment: str, option: str, default: Any, name: str, results=None) -> str:
    """The Markdown bullet of :func:`ablation`."""
    return ablation(experiment, option, default, name, results).text


def default_setting(experiment: str, option: str, default: Any, results: Optional[str | Path] = None) -> Dict[str, Any]:
    """An ablation's default setting is the headline's GMM-ViT (the same records): which of its seeds, where their
    gain lies among the headline's per-seed gains, and the gain over all its seeds. ``{}`` when a run is missing;
    else ``seeds``, ``per_seed`` ({seed: the headline's paired gain}), ``gain``, ``interval`` (95 % t, None for
    one seed), ``inside`` (how many of the ``others`` settings' gains lie in it) and ``text``.
    """
    preset = preset_of(experiment, results)
    keys = {r["key"] for r in load("headline", results)}
    mine = [r["config"] for r in load(experiment, results) if r["key"] in keys and r["config"]["preset"] == preset]
    seeds = sorted(
        c["seed"] for c in mine if c["mask"] and (c.get("mask_options") or {}).get(option, default) == default
    )
    df = runs("headline", results)
    arms = df[df["preset"] == preset].pivot_table(index="seed", columns="mask", values="best_top1") if seeds else {}
    per_seed = (arms["gmm"] - arms["none"]).dropna().to_dict() if {"gmm", "none"} <= set(arms) else {}
    if not per_seed:
        return {}
    n, gains = len(per_seed), list(per_seed.values())
    others = [r for r in setting_gains(experiment, option, default, results, preset) if r["value"] != default]
    out = {"seeds": seeds, "per_seed": per_seed, "gain": sum(gains) / n, "interval": None, "inside": 0}
    out["others"] = len(others)
    out["text"] = (
        f"The `{default}` row is not a run of its own: its configuration is the default GMM, so it is the "
        f"`headline` experiment's GMM-ViT of seed {', '.join(map(str, seeds))} (the same record)."
    )
    if len(seeds) == 1 and n > 1 and seeds[0] in per_seed:
        below = sum(g < per_seed[seeds[0]] for g in gains)
        place = {0: "the lowest", n - 1: "the highest"}.get(below, f"number {below + 1} from the bottom")
        listed = ", ".join(f"seed {s}: {g:+.2f}" for s, g in per_seed.items())
        out["text"] += f" Its gain is {place} of the headline's {n} per-seed gains ({listed})."
    if n > 1:
        lo, hi = out["interval"] = tuple(float(x) for x in t_interval(gains))
        out["inside"] = inside = sum(lo <= r["gain"] <= hi for r in others)
        out["text"] += (
            f" Over all {n} seeds the `{default}` setting's gain is the headline gain, {out['gain']:+.2f} points "
            f"(95 % interval [{lo:+.2f}, {hi:+.2f}])"
        )
        every = "every other setting's gain lies"
        if others:
            some = every if inside == len(others) else f"{inside} of the {len(others)} other settings' gains lie"
            out["text"] += f"; {some} inside that interval" + " (one seed each)" * all(r["pairs"] == 1 for r in others)
        out["text"] += "."
    return out


def curves_gap(experiment: str, results: Optional[str | Path] = None) -> Dict[str, Any]:
    """How far apart the runs of an experiment lie: ``runs`` and ``gaps`` ({epoch: largest minus smallest test
    top-1}) for the first and the last epoch they all have; ``{}`` with fewer than two runs."""
    preset = preset_of(experiment, results)
    records = [r for r in load(experiment, results) if r["config"]["preset"] == preset]
    curves = [{h["epoch"]: h["test_top1"] for h in r["history"]} for r in records]
    epochs = sorted(set.intersection(*map(set, curves))) if len(curves) > 1 else []
    gaps = {e: max(c[e] for c in curves) - min(c[e] for c in curves) for e in epochs[:1] + epochs[-1:]}
    return {"runs": len(curves), "gaps": gaps} if gaps else {}
