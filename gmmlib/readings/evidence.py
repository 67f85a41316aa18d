"""The evidence at a glance: every comparison we ran beside the paper's, the power of our seeds,
the caveats (the verdict chapter and ``gmmlib report``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from ..stats.inference import holm, interval_text, minimum_detectable_effect, p_value, paired, seeds_needed
from ..stats.noise import seed_noise
from ..stats.paper import paper
from ..stats.tables import headline, load, preset_of
from .standard import STANDINGS, VERDICT_EXPERIMENTS, comparisons, rows_for

__all__ = [
    "answer",
    "answer_for",
    "table",
    "power_summary",
    "caveats",
    "epoch_lead",
    "epoch_lead_text",
]


def answer(results: Optional[str | Path] = None, rows: Optional[List[Dict[str, Any]]] = None) -> str:
    """The book's answer in one paragraph, from every comparison recorded (:func:`comparisons`), read by
    one rule (:func:`standing`): what holds after correction, what is a lead, what one seed cannot say, and
    at which scale; the paper's own scale is named as untested until a ``paper``-preset run is recorded.

    Args:
        results: the results folder.
        rows: :func:`comparisons`' rows when already read.
    """
    rows = comparisons(results) if rows is None else rows
    if not rows:
        return "**The answer so far.** No comparison is recorded yet: nothing can be said."
    by = {s: [r for r in rows if r["standing"] == s] for s in STANDINGS}
    tested = len(rows) - len(by["one seed"])
    presets = sorted({r["preset"] for r in rows})
    names = lambda rs: ", ".join(f"{r['label']} ({r['gain']:+.2f})" for r in rs)  # noqa: E731
    parts = [
        f"**The answer so far.** Of the {len(rows)} comparisons recorded ({', '.join(presets)} preset), "
        f"{tested} {'has' if tested == 1 else 'have'} seeds enough for an interval."
    ]
    if by["holds after correction"]:
        parts.append(f"These hold after Holm's correction over all {tested}: {names(by['holds after correction'])}.")
    else:
        parts.append(f"None holds after Holm's correction over all {tested}.")
    if by["a lead"]:
        parts.append(
            f"Leads for more seeds (an interval that excludes zero, not after correction): {names(by['a lead'])}."
        )
    one = len(by["one seed"])
    rest = (
        f", and {one} rest{'s' if one == 1 else ''} on one seed and {'is' if one == 1 else 'are'} not read"
        if one
        else ""
    )
    zero = len(by["includes zero"])
    parts.append(f"{zero} include{'s' if zero == 1 else ''} zero{rest}.")
    pooled = sorted({r["experiment"] for r in rows if r.get("pooled_std")})
    if pooled:
        parts.append(
            f"The settings of {' and '.join(f'`{e}`' for e in pooled)} share one noise scale (one backbone, the same "
            "seeds and unmasked runs), so their intervals use the seed std pooled over each grid's settings rather "
            "than each setting's own three seeds."
        )
    head = next((r for r in rows if r["experiment"] == "headline"), None)
    if head is not None and head["seeds"] > 1:
        verdict = {
            "includes zero": "no effect shown either way",
            "a lead": "a lead, not yet a finding",
            "holds after correction": "an effect that holds",
        }[head["standing"]]
        parts.append(
            f"The headline, GMM-ViT against ViT on CIFAR-10, gains {head['gain']:+.2f} points "
            f"{interval_text(head['low'], head['high'])} over {head['seeds']} paired seeds at the {head['preset']} "
            f"preset: {verdict}."
        )
    parts.append(_datasize_line(results))
    if "paper" not in presets:
        parts.append(
            "Nothing has been run at the paper's scale yet (the `paper` preset, a GPU): the paper's gains, for "
            "models about nineteen times larger trained nearly forty times longer, are neither confirmed nor "
            "refuted by these runs."
        )
    return " ".join(parts)


def _datasize_line(results: Optional[str | Path]) -> str:
    """The verdict's line on the data-size test (chapter 9): interim until every planned seed is complete."""
    from .datasize import datasize_reading, datasize_source

    source = datasize_source(results)
    reading = datasize_reading(source.folder)
    if reading.trend is None:
        return "The data-size test (chapter 9), whether the gain grows as the training set shrinks, has no runs yet."
    done, planned = len(reading.complete_seeds), len(reading.planned_seeds)
    if reading.interim:
        return (
            f"The data-size test (chapter 9), whether the gain grows as the training set shrinks, is still running "
            f"({done} of {planned} planned seeds complete{', runs staged' if source.staged else ''}): it claims "
            "nothing yet."
        )
    t = reading.trend
    return (
        f"The data-size test (chapter 9): the GMM's gain changes by {t.slope:+.2f} points per doubling of the "
        f"training set {interval_text(*t.interval)} over {done} paired seeds: {t.reading}."
    )


_GROUPS = (
    ("holds after correction", "**Holds after Holm's correction** over the book's {tested} tested comparisons"),
    ("a lead", "**A lead for more seeds** (the interval excludes zero, but not after Holm's correction over the book's "
     "{tested} tested comparisons)"),
    ("includes zero", "**No effect shown either way** (the 95 % interval includes zero)"),
    ("one seed", "**One seed, not read** (a single draw, no interval)"),
)  # fmt: skip


def answer_for(
    experiments: Sequence[str], results: Optional[str | Path] = None, rows: Optional[List[Dict[str, Any]]] = None
) -> str:
    """A chapter's answer from its experiments' comparisons, grouped by the book's one rule (:func:`standing`):
    what holds after correction, what is a lead, what includes zero, what rests on one seed; each gain with its
    interval and seeds, at its preset. Markdown, one paragraph.

    Args:
        experiments: the experiments the chapter reads (names in :data:`VERDICT_EXPERIMENTS`).
        results: the results folder.
        rows: :func:`comparisons`' rows when already read.
    """
    unknown = [e for e in experiments if e not in VERDICT_EXPERIMENTS]
    if unknown:
        raise ValueError(f"{unknown} are not experiments the book reads; expected some of {list(VERDICT_EXPERIMENTS)}")
    rows = comparisons(results) if rows is None else rows
    tested = sum(r["seeds"] > 1 for r in rows)
    mine = rows_for(experiments, rows)  # a comparison rerun on seeds in another grid is read there
    if not mine:
        return f"**From our runs:** no comparison of {', '.join(f'`{e}`' for e in experiments)} is recorded yet."

    def shown(r: Dict[str, Any]) -> str:
        if r["seeds"] < 2:
            return f"{r['label']} {r['gain']:+.2f}"
        where = "" if r["experiment"] in experiments else f", `{r['experiment']}`"
        return f"{r['label']} {r['gain']:+.2f} {interval_text(r['low'], r['high'])} ({r['seeds']} seeds{where})"

    presets = sorted({r["preset"] for r in mine})
    parts = [f"**From our runs** ({', '.join(presets)} preset, gains in points of top-1 over the same model without"
             " the mask, paired by seed):"]  # fmt: skip
    for name, head in _GROUPS:
        group = [r for r in mine if r["standing"] == name]
        if group:
            parts.append(f"{head.format(tested=tested)}: {'; '.join(shown(r) for r in group)}.")
    return " ".join(parts)


def table(results: Optional[str | Path] = None, rows: Optional[List[Dict[str, Any]]] = None):
    """:func:`comparisons` as a DataFrame for reading, indexed by comparison: data set, preset, seeds,
    where its runs trained (hardware and data path, :func:`gmmlib.training.provenance.hardware_kind`), our
    best-epoch gain, its 95 % interval ("one seed" where there is one; "pooled" where it uses the std pooled
    over its grid's settings), the final-epoch gain, its reading (:func:`standing`, Holm-corrected) and the paper's
    gain with the table it comes from ("–" where it has none, shown for orientation: it is another model at another
    scale), all as text in points. Empty when nothing is recorded.

    Args:
        results: the results folder (default: this checkout's).
        rows: :func:`comparisons`' rows when already read (``results`` is then not read).
    """
    import pandas as pd

    rows = comparisons(results) if rows is None else rows
    columns = [
        "comparison",
        "experiment",
        "data set",
        "preset",
        "trained on",
        "seeds",
        "our gain",
        "95 % interval",
        "final-epoch gain",
        "reading",
        "paper's gain",
    ]
    out = pd.DataFrame(
        [
            [
                r["label"],
                r["experiment"],
                r["dataset"],
                r["preset"],
                r["hardware"],
                r["seeds"],
                f"{r['gain']:+.2f}",
                "one seed"
                if r["seeds"] < 2
                else interval_text(r["low"], r["high"]) + (" pooled" if r.get("pooled_std") else ""),
                f"{r['final_gain']:+.2f}",
                r["standing"],
                "–" if math.isnan(r["paper_gain"]) else f"{r['paper_gain']:+.2f} ({r['paper_source']})",
            ]
            for r in rows
        ],
        columns=columns,
    )
    return out.set_index("comparison")


def power_summary(results: Optional[str | Path] = None) -> str:
    """Markdown: what the headline's paired seeds can detect, and how many seeds the paper's gain would need."""
    preset = preset_of("headline", results)
    summary = headline(results, preset) if preset else None
    if not summary:
        return "* No headline runs are recorded yet, so the power of our seeds is unknown."
    n, std = summary.best.seeds, seed_noise(results, preset)
    if n < 2 or std is None or not std > 0:
        return f"* {n} paired seed{'s' if n != 1 else ''}: too few to estimate the seed noise of a gain."
    main = paper()["main_table"]["rows"]["vit"]
    paper_gain = main["gmm"][0] - main["none"][0]
    mde = minimum_detectable_effect(std, n)
    lines = [
        f"* **Seed noise.** Over the headline's {n} paired seeds ({preset} preset), one seed's gain varies by "
        f"{std:.2f} points (standard deviation). A single-seed comparison elsewhere in the book is read against "
        "this number.",
        f"* **What {n} seeds detect.** A true gain of {mde:.2f} points or more is found four times in five by a "
        "paired t-test at the 5 % level; smaller true gains are often missed.",
        f"* **Seeds the paper's gain needs.** To detect the paper's {paper_gain:+.2f} points this way takes "
        f"{seeds_needed(paper_gain, std)} paired seeds; a gain of half that size takes "
        f"{seeds_needed(paper_gain / 2, std)}.",
    ]
    return "\n".join(lines)


def _epochs_text(epochs: int, passes: int) -> str:
    """``8 epochs of one pass each``, ``100 epochs of 3 passes each``."""
    return f"{epochs} epochs of " + ("one pass each" if passes == 1 else f"{passes} passes each")


def caveats(results: Optional[str | Path] = None) -> str:
    """Markdown: the limits of our runs (scale, data, seeds, paper-scale runs, init scheme), from the records."""
    rows = comparisons(results)
    lines = []
    preset = preset_of("headline", results)
    records = load("headline", results)
    if records:
        config = records[0]["config"]
        arch, values = config["architecture"], config["preset_values"]
        vit = paper()["main_table"]["rows"]["vit"]["none"][0]
        best = sum(r["best_top1"] for r in records) / len(records)
        lines.append(
            f"* **Scale.** The comparisons run at the `{preset}` preset: a {arch.get('depth')}-layer, "
            f"{arch.get('dim')}-wide ViT trained {_epochs_text(values['epochs'], values['passes_per_epoch'])}, "
            f"reaching about {best:.0f} % top-1 against the paper's {vit} %. A mask may matter more or less "
            "to such small, briefly trained models than to the paper's: these runs cannot say which."
        )
        notes = sorted({r["data_source"].get("note") or r["data_source"]["kind"] for r in records})
        lines.append(f"* **Data.** {'; '.join(n for n in notes if n)}.")
    single = [r for r in rows if r["seeds"] < 2]
    if single:
        lines.append(
            f"* **Seeds.** {len(single)} of the {len(rows)} comparisons {'has' if len(single) == 1 else 'have'} one "
            "seed: each of those is one draw with no interval and is not read (the seed noise above gives its scale)."
        )
    elif rows:
        fewest = min(r["seeds"] for r in rows)
        lines.append(
            f"* **Seeds.** Every one of the {len(rows)} comparisons has {fewest} paired seeds or more, so each is read "
            "by its interval; with so few seeds an interval is wide, and small true gains go unseen (the power above)."
        )
    big = load("headline-paper", results)
    if big:
        lines.append(f"* **Paper scale.** {len(big)} run(s) at the `paper` preset are recorded (`headline-paper`).")
    else:
        lines.append(
            "* **Paper scale.** No run at the paper's scale (`paper` preset, 100 epochs x 3 passes) is recorded "
            "yet: it needs a GPU (chapter 11 gives the command and the cost)."
        )
    kinds = sorted({r["hardware"] for r in rows})
    mixed = [r for r in rows if r["mixed_hardware"]]
    if mixed:
        named = ", ".join(f"{r['label']} ({r['experiment']}: {r['hardware']})" for r in mixed)
        lines.append(
            f"* **Hardware.** {named} "
            "pair runs trained on different kinds of hardware: their gains mix the mask's effect with the "
            "hardware's, and are not read as comparisons until one kind is rerun on the other."
        )
    elif rows:
        lines.append(
            "* **Hardware.** Each comparison trained on one kind of hardware and data path throughout, its arms and "
            f"seeds alike: {'; '.join(kinds)}."
        )
    masked = {r["key"]: r for e in VERDICT_EXPERIMENTS for r in load(e, results) if r["config"].get("mask")}
    unpaired = [r for r in masked.values() if "init_scheme" not in r["config"] and _draws_at_init(r)]
    if unpaired:
        lines.append(
            f"* **Pairing.** {len(unpaired)} of the {len(masked)} masked runs shown were trained before the "
            "paired initialisation (init scheme 1) with a mask that draws random initial values: their backbone "
            "did not start exactly as the unmasked run's, which adds noise to their gains. Reruns under scheme 2 "
            "replace them as they land (masks initialised without random numbers, such as ELM's zeros, were "
            "paired all along)."
        )
    return "\n".join(lines)


def _draws_at_init(record: Dict[str, Any]) -> bool:
    """Whether the run's mask draws random numbers when it is built (so scheme 1 shifted the backbone)."""
    from ..training.config import RunConfig
    from ..training.options import probe_mask

    config = RunConfig.from_result(record)
    options = config.normalised_mask_options(full=False)
    options.pop("gammas", None)  # one per head: irrelevant to whether the init is random
    return probe_mask(config.mask, options)


def epoch_lead(experiment: str = "headline", results: Optional[str | Path] = None) -> List[Dict[str, Any]]:
    """Per epoch, the masked model's test top-1 minus the unmasked one's, paired by seed.

    Returns one dict per epoch: ``epoch``, ``comparison`` (a :class:`gmmlib.stats.inference.Paired`, arm a the
    unmasked model), ``gain`` (its mean), ``ahead`` (seeds where the masked model leads), ``seeds``, ``p`` and
    ``holds`` (whether the epoch's interval excludes zero after Holm's correction over all the epochs: every epoch
    is one more look at the same runs); empty when the experiment has no complete pair. For a grid of one masked
    configuration against its baseline (the headline).
    """
    preset = preset_of(experiment, results)
    records = [r for r in load(experiment, results) if r["config"]["preset"] == preset]
    by_seed: Dict[int, Dict[str, Dict[int, float]]] = {}
    for r in records:
        arm = "masked" if r["config"].get("mask") else "none"
        by_seed.setdefault(r["config"]["seed"], {})[arm] = {h["epoch"]: h["test_top1"] for h in r["history"]}
    pairs = [by_seed[s] for s in sorted(by_seed) if {"masked", "none"} <= set(by_seed[s])]
    if not pairs:
        return []
    epochs = sorted(set.intersection(*(set(p["masked"]) & set(p["none"]) for p in pairs)))
    out = []
    for e in epochs:
        c = paired([p["none"][e] for p in pairs], [p["masked"][e] for p in pairs])
        out.append(
            {"epoch": e, "comparison": c, "gain": c.gain, "ahead": sum(d > 0 for d in c.diffs), "seeds": c.seeds}
        )
    p_values = [p_value(r["comparison"]) for r in out]
    for r, p, kept in zip(out, p_values, holm(p_values)):
        r["p"], r["holds"] = p, kept
    return out


def epoch_lead_text(experiment: str = "headline", results: Optional[str | Path] = None) -> str:
    """Markdown: the masked model's lead epoch by epoch, read by the book's one standard.

    Each of the epochs is a look at the same runs, so an epoch's lead holds only if its interval excludes zero after
    Holm's correction over all of them; the text says which epochs that leaves and claims no mechanism.
    """
    rows = epoch_lead(experiment, results)
    if not rows:
        return f"No complete pair of `{experiment}` runs is recorded yet."
    n = rows[0]["seeds"]
    per_epoch = ", ".join(f"{r['epoch']}: {r['gain']:+.2f} ({r['ahead']}/{r['seeds']})" for r in rows)
    text = (
        f"Per epoch, GMM-ViT's test top-1 minus ViT's, mean over {n} paired seed{'s' if n != 1 else ''} "
        f"(in brackets: the seeds where GMM-ViT leads): {per_epoch}."
    )
    if n < 2:
        return text + " One seed gives no interval: these differences are one draw each."
    held = [r["epoch"] for r in rows if r["holds"]]
    looks = f"Each of the {len(rows)} epochs is one more look at the same runs"
    if held:
        last = rows[-1]
        text += (
            f" {looks}; after Holm's correction over the {len(rows)} looks, the lead holds in "
            f"epoch{'s' if len(held) > 1 else ''} {', '.join(map(str, held))}"
            + (
                f" and not by the last, where it is {last['gain']:+.2f} {interval_text(*last['comparison'].interval)}."
                if last["epoch"] not in held
                else "."
            )
            + " An early lead says the masked model learns faster at first on these runs; it does not say why"
            " (chapter 4 shows that the official initialisation is not a locality prior)."
        )
    else:
        text += f" {looks}; after Holm's correction over the {len(rows)} looks, no epoch's lead holds."
    return text
