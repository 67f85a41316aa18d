"""The ablations' readings (chapter 6): each setting's paired gain, and whether their spread is more than
seed noise alone gives, computed exactly; the default setting against the headline's seeds; the curves' gap.

None of these ranks settings that noise can explain. :mod:`gmmlib.readings.headline` re-exports them beside the
headline's verdict, which reads them for the initialisation bullet.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Dict, List, Optional

from ..experiments.grids import run_command
from ..stats.inference import excludes, expected_range, interval_text, range_tail, t_interval
from ..stats.noise import seed_noise
from ..stats.tables import headline, load, preset_of, runs
from .standard import comparisons, setting_gains

__all__ = [
    "NOISE_SCALES",
    "SPREAD_VERDICTS",
    "Ablation",
    "ablation",
    "default_setting",
    "curves_gap",
    "PaperKernels",
    "paper_kernels",
    "what_the_ablations_show",
]


def _gain_with_interval(row: Dict[str, Any]) -> str:
    if row["pairs"] > 1:
        return f"{row['gain']:+.2f} {interval_text(row['gain_low'], row['gain_high'])} ({row['pairs']} seeds)"
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
    settings in the grid, their ``spread`` (max - min of their mean gains over ``common_seeds``, the seeds
    every setting has), the headline's ``noise_seeds``, and per key of
    :data:`NOISE_SCALES` in ``scales``: ``std`` (of one setting's gain), ``expected_range`` (the mean
    spread of as many settings that do not differ) and ``p`` (the probability that noise alone spreads
    them at least as wide). ``verdict`` is one of :data:`SPREAD_VERDICTS` (None when nothing can be
    read against noise); ``apart_from_zero`` the settings whose 95 % interval (several seeds) excludes
    zero; ``rows`` the settings' rows of :func:`setting_gains` (with their intervals); ``text`` is the
    Markdown bullet, which ranks no setting.
    """

    experiment: str
    name: str
    preset: Optional[str] = None
    settings: List[Any] = field(default_factory=list)
    gains: List[float] = field(default_factory=list)
    pairs: List[int] = field(default_factory=list)
    total: int = 0
    spread: Optional[float] = None
    common_seeds: List[int] = field(default_factory=list)
    noise_seeds: int = 0
    scales: Dict[str, Dict[str, float]] = field(default_factory=dict)
    verdict: Optional[str] = None
    apart_from_zero: List[Any] = field(default_factory=list)
    standings: Dict[Any, str] = field(default_factory=dict)
    rows: List[Dict[str, Any]] = field(default_factory=list)
    text: str = ""


def _percent(p: float) -> str:
    return "under 0.1 %" if p < 0.001 else f"{100 * p:.1f} %" if p < 0.1 else f"{100 * p:.0f} %"


def ablation(experiment: str, option: str, default: Any, name: str, results: Optional[str | Path] = None) -> Ablation:
    """Read an ablation (chapter 6): each setting's gain over the unmasked ViT, and whether their spread is more
    than seed noise alone gives on both :data:`NOISE_SCALES`, computed exactly (:func:`gmmlib.stats.expected_range`,
    :func:`gmmlib.stats.range_tail`). It never ranks settings. ``option`` is the mask option the settings differ
    in (e.g. "num_kernels"), ``default`` its value where a run leaves it out, ``name`` how the text calls it ("K").
    The spread is read on the seeds every setting has (each setting's gain averaged over them, the scales
    divided by the root of their number), so that the settings share each seed's unmasked run.
    """
    from ..experiments.grids import get_experiment

    preset = preset_of(experiment, results)
    rows = setting_gains(experiment, option, default, results, preset) if preset else []
    if not rows:
        return Ablation(experiment, name, text=f"* `{experiment}`: no runs recorded yet (`{run_command(experiment)}`).")
    gains, pairs = [float(r["gain"]) for r in rows], [int(r["pairs"]) for r in rows]
    # the settings, not the runs: each is on several seeds, and the unmasked baseline is no setting
    total = len({replace(c, seed=0).key() for c in get_experiment(experiment).configs(preset) if c.mask})
    out = Ablation(experiment, name, preset, [r["value"] for r in rows], gains, pairs, total, rows=rows)
    seeds = "one seed each" if max(pairs) == 1 else "95 % intervals where a setting has several seeds"
    shown = ", ".join(f"{name}={r['value']}: {_gain_with_interval(r)}{' (one seed)' * (r['pairs'] == 1)}" for r in rows)
    out.text = (
        f"* **`{experiment}`** ({len(rows)} of {total} settings recorded, {preset} preset, {seeds}), gain over "
        f"the unmasked ViT in points: {shown}."
    )
    out.apart_from_zero = [r["value"] for r in rows if r["pairs"] > 1 and excludes(r["gain_low"], r["gain_high"])]
    if out.apart_from_zero:  # read by the book's one rule: Holm over every comparison it reads
        by_label = {c["label"]: c["standing"] for c in comparisons(results) if c["experiment"] == experiment}
        out.standings = {r["value"]: by_label.get(r["label"], "a lead") for r in rows}
    lead = _apart_from_zero_text(out)  # said last, after the spread
    summary = headline(results, preset)
    stds = {"run": summary.best.std_b, "gain": seed_noise(results, preset)} if summary else {}
    if len(rows) < 2 or not stds or not all(s is not None and s > 0 for s in stds.values()):  # None: one seed
        out.text += (
            " One setting only: a spread needs two." if len(rows) < 2 else " No seed noise yet to read them against."
        ) + lead
        return out
    # the spread is read on the seeds every setting has: there the settings share each seed's unmasked run
    common = _common_seed_gains(experiment, [r["label"] for r in rows], results, preset)
    out.common_seeds = sorted(common[0]) if common else []
    if not out.common_seeds:
        out.text += " No seed is shared by every setting, so their spread cannot be read against noise." + lead
        return out
    spread_gains = [statistics.mean(g.values()) for g in common]
    n, k = len(spread_gains), len(out.common_seeds)
    out.spread, out.noise_seeds = max(spread_gains) - min(spread_gains), summary.best.seeds
    for key, std in stds.items():
        s = std / math.sqrt(k)
        out.scales[key] = {"std": s, "expected_range": expected_range(n, s), "p": range_tail(n, s, out.spread)}
    run, gain = out.scales["run"], out.scales["gain"]

    def scale(key: str) -> str:  # the seed std, and what it is for a mean of k seeds
        return f"{stds[key]:.2f}" + ("" if k == 1 else f", divided by √{k}: {out.scales[key]['std']:.2f}")

    on = (
        ""
        if k == max(pairs)
        else f" On the seed{'s' if k > 1 else ''} every setting has ({', '.join(map(str, out.common_seeds))}),"
    )
    wide = sum(s["p"] < 0.05 for s in out.scales.values())
    out.verdict = SPREAD_VERDICTS[wide]
    out.text += (
        f"{on} {'t' if on else 'T'}heir spread, largest minus smallest, is {out.spread:.2f} points. "
        f"{n} settings that do not differ at "
        f"all would spread by {run['expected_range']:.2f} points on average with {NOISE_SCALES['run']} "
        f"({scale('run')}) as the scale, or {gain['expected_range']:.2f} with {NOISE_SCALES['gain']} "
        f"({scale('gain')}), both measured over the headline's {out.noise_seeds} seeds"
        f"{'' if k == 1 else f' (divided for the mean of {k} seeds each setting has)'}; the probability "
        f"that noise alone spreads them at least this wide is {_percent(run['p'])} and {_percent(gain['p'])}."
    ) + _READINGS[wide].format(name)
    if len({g > 0 for g in spread_gains}) == 1 and all(spread_gains):
        out.text += (
            f" All {n} gains are {'positive' if spread_gains[0] > 0 else 'negative'}{on and ' on those seeds'}; "
            "they share one unmasked run per seed, whose "
            "own noise moves them all together, so this says no more than the headline's gain does."
        )
    out.text += lead
    return out


def _apart_from_zero_text(out: Ablation) -> str:
    """The settings whose interval excludes zero, read by the book's one rule (:func:`gmmlib.readings.standing`)."""
    if not out.apart_from_zero:
        return ""
    named = " and ".join(f"{out.name}={value}" for value in out.apart_from_zero)
    held = [v for v in out.apart_from_zero if out.standings.get(v) == "holds after correction"]
    if len(held) == len(out.apart_from_zero):
        return f" The interval of {named} excludes zero and holds after Holm's correction over the book's comparisons."
    return (
        f" The interval of {named} excludes zero"
        + (f" ({' and '.join(f'{out.name}={v}' for v in held)} holds after correction)" if held else "")
        + ": a lead for more seeds, not yet a finding (it does not survive Holm's correction over every "
        "comparison the book reads)."
    )


def _common_seed_gains(
    experiment: str, labels: List[str], results: Optional[str | Path], preset: str
) -> List[Dict[int, float]]:
    """Per setting (by label), its paired gain on each seed that every setting and the unmasked ViT have."""
    df = runs(experiment, results)
    df = df[df["preset"] == preset]
    base = df[df["mask"] == "none"].set_index("seed")["best_top1"]
    per = [(df[df["label"] == lab].set_index("seed")["best_top1"] - base).dropna().to_dict() for lab in labels]
    shared = set.intersection(*(set(g) for g in per)) if per else set()
    return [{seed: g[seed] for seed in sorted(shared)} for g in per]


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
        f"`headline` experiment's GMM-ViT of seed{'s' * (len(seeds) > 1)} {', '.join(map(str, seeds))} "
        f"(the same record{'s' * (len(seeds) > 1)})."
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
            f"(95 % interval {interval_text(lo, hi)})"
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


@dataclass
class PaperKernels:
    """The paper's kernel ablation read against its own K = 1 column, its no-mask baseline (chapter 6).

    Args:
        gains: per data set, each K >= 2 column minus the K = 1 column (points).
        spread: per data set, how far apart the K >= 2 columns lie (max - min).
        text: the reading: per data set, then what the table says (it ranks no K: one run per cell).
    """

    gains: Dict[str, Dict[int, float]]
    spread: Dict[str, float]
    text: str


def paper_kernels(dataset_names: Dict[str, str]) -> PaperKernels:
    """The paper's kernel ablation (``paper_numbers.json``) as gains over its K = 1 column.

    Args:
        dataset_names: the names the book prints for each data set (``gmmlib.stats.DATASET_NAMES``).
    """
    from ..stats.paper import paper

    table = paper()["kernel_ablation"]
    ks = table["kernels"]
    rows = {d: dict(zip(ks, values)) for d, values in table["rows"].items()}
    gains = {d: {k: v - col[1] for k, v in col.items() if k >= 2} for d, col in rows.items()}
    spread = {
        d: max(v for k, v in col.items() if k >= 2) - min(v for k, v in col.items() if k >= 2)
        for d, col in rows.items()
    }
    helped = [d for d in rows if min(gains[d].values()) > 0]
    tops = {max((k for k in rows[d] if k >= 2), key=lambda k: rows[d][k]) for d in rows}
    per_dataset = "\n".join(
        f"* {dataset_names[d]}: gains of {min(gains[d].values()):+.2f} to {max(gains[d].values()):+.2f} points over "
        f"no mask; the K ≥ 2 columns lie within {spread[d]:.2f} points of each other."
        for d in rows
    )
    text = (
        per_dataset
        + '\n\nSo the table says "some GMM is better than none" on '
        + ", ".join(dataset_names[d] for d in helped)
        + f" ({len(helped)} of {len(rows)} data sets); among K ≥ 2 the columns lie within "
        f"{min(spread.values()):.2f} to {max(spread.values()):.2f} points of each other"
        + (", with no K on top on every data set" if len(tops) > 1 else "")
        + ". The paper gives one run per cell and no measure of its seed noise, so the table ranks no K above another."
    )
    return PaperKernels(gains, spread, text)


def what_the_ablations_show(
    kernels: Ablation, inits: Ablation, noise: Optional[float], paper_k: PaperKernels, dataset: str = "cifar10"
) -> str:
    """Chapter 6's closing bullets: the paper's kernel ablation, each of our ablations against noise, and what
    they cannot show (the smallest gain their seeds detect; the seeds the paper's K spread would need).

    Args:
        kernels, inits: :func:`ablation` of ``exp2-kernels`` and ``exp2-init``.
        noise: the seed noise of a gain (:func:`gmmlib.stats.seed_noise`), None until the headline has seeds.
        paper_k: :func:`paper_kernels`.
        dataset: the data set whose paper columns are set beside ours.
    """
    from ..stats.inference import minimum_detectable_effect, seeds_needed

    gains = paper_k.gains[dataset].values()
    bullets = [
        '* **The paper\'s kernel ablation** (one run per cell) shows "GMM beats no mask" more clearly than any '
        f"effect of K: on CIFAR-10 every K ≥ 2 gains {min(gains):+.2f} to {max(gains):+.2f} points over its K = 1 "
        f"column, the no-mask baseline, and the K ≥ 2 columns lie within {paper_k.spread[dataset]:.2f} points of "
        "each other."
    ]
    for a, what in ((kernels, "K"), (inits, "the initialisation")):
        if a.verdict is None:  # nothing to read against noise yet
            continue
        seeds = ", ".join(map(str, a.common_seeds))
        plural = "s" if len(a.common_seeds) > 1 else ""
        one = "one seed each" if max(a.pairs) == 1 else f"read on seed{plural} {seeds}, which every setting has"
        run = a.scales["run"]
        bullets.append(
            f"* **Our `{a.experiment}` runs** ({len(a.gains)} settings, {one}): their gains spread by "
            f"{a.spread:.2f} points, against {run['expected_range']:.2f} on average for settings that do not "
            f"differ (a GMM-ViT run's seed std as the scale): {a.verdict}. "
            + (
                f"They show no effect of {what} at `{a.preset}` scale and rank no setting above another."
                if a.verdict == "what noise alone gives"
                else f"{what.capitalize()} may matter; more seeds would tell which setting differs."
            )
            + _apart_from_zero_text(a)
        )
    if noise:
        target = float(paper_k.spread[dataset])
        try:
            needed = f"about {seeds_needed(target, noise, limit=2000)} seeds"
        except ValueError:
            needed = "more than 2,000 seeds"
        most = max((kernels, inits), key=lambda a: len(a.common_seeds))
        k = len(most.common_seeds)  # seeds per setting
        unseen = (
            f"With {k} seeds per setting (as `{most.experiment}` has), a gain is detected four times in five only "
            f"from about {minimum_detectable_effect(noise, k):.2f} points "
            f"(`gmmlib.stats.minimum_detectable_effect`, with the seed noise of a gain, {noise:.2f} points)"
            if k > 1
            else f"An effect smaller than the seed noise of a gain ({noise:.2f} points) goes unseen with one seed"
        )
        bullets.append(
            f"* **What they do not show:** that K or the initialisation does not matter. {unseen}; a difference "
            f"the size of the paper's K ≥ 2 spread on CIFAR-10 ({target:.2f} points) would need {needed} per "
            "setting to be detected four times in five (a paired t-test at the 5 % level, "
            "`gmmlib.stats.seeds_needed`)."
        )
    return "\n".join(bullets)
