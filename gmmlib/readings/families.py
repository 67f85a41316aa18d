"""One-seed gains read against the seed noise: chapter 7's families and chapter 10's decays and biases.

The grids of chapters 7 and 10 were first run on one seed each. A one-seed gain is one draw: it is read in units
of a gain's seed-to-seed std (the headline's, :func:`gmmlib.stats.seed_noise`), and several of them
against the largest that as many gains of pure noise reach. Every rule that decides a word here is
tested (``tests/test_results.py``).

Example:
    >>> print("\\n".join(family_gains("exp3")))                  # chapter 7
    >>> print(gains_against_noise(["retnet", "beyond"]).text)     # chapter 10
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ..models.registry import display_name
from ..stats.inference import Paired, interval_text, largest_abs_quantile
from ..stats.noise import seed_noise
from ..stats.tables import compare, headline, label, load, preset_of
from ..training.options import non_default_options
from ..training.provenance import hardware_kind
from .headline import families_with_seeds
from .standard import comparisons, rows_for

__all__ = [
    "family_gains",
    "gains_against_noise",
    "NoiseReading",
    "POOLING_CONTRASTS",
    "POOLING_GRIDS",
    "pooling_table",
    "pooling_reading",
]


def family_gains(experiment: str = "exp3", results: Optional[str | Path] = None) -> List[str]:
    """Chapter 7's reading: each family's gain from the GMM in ``experiment``, against the seed noise.

    Markdown bullets: the gains (each labelled with its seeds, beside the paper's, in units of a gain's
    seed noise, and the headline's interval where the ViT row is one of its seeds); the families that
    have seeds of their own in ``exp1-seeds``; and, per family, the epochs where the masked curve lies
    below its baseline's (seed 0: it describes the figure). Empty until the experiment and the
    headline (for the noise) are recorded.
    """
    preset = preset_of(experiment, results)
    gain, noise = _headline_gain(results)
    if preset is None or not noise > 0:
        return []
    table = compare(experiment, results, preset)
    rows = table[table["gain"].notna()].to_dict("records")
    if not rows:
        return []
    noise_seeds = gain.seeds
    lines = [
        f"* **Our gains** ({preset} preset): "
        + ", ".join(f"{r['label']} {r['gain']:+.2f} ({_seeds(r['pairs'])}{_paper(r['paper_gain'])})" for r in rows)
        + f". The seed noise of one gain is {noise:.2f} points (the headline's {noise_seeds} seeds of the ViT), "
        "so these are "
        + ", ".join(f"{abs(_in_noise(r, noise)):.1f}" for r in rows)
        + " times the noise"
        + (" (of a mean over n seeds: the noise divided by √n)." if any(r["pairs"] > 1 for r in rows) else ".")
    ]
    vit = [r for r in rows if r["label"] == label({"model": "vit", "mask": "gmm", "pool": "gap"})]
    if vit and vit[0]["pairs"] == 1 and noise_seeds > 1:
        lines[0] += (
            f" GMM-ViT's row is one of the `headline` experiment's seeds; over all {noise_seeds} of them its gain "
            f"is {gain.gain:+.2f} (95 % interval {interval_text(*gain.interval)})."
        )
    seeded = families_with_seeds(results, models=sorted({r["model"] for r in rows}))
    if seeded:
        lines.append(seeded)
    below = []
    for model in dict.fromkeys(r["model"] for r in table.to_dict("records")):
        curves = {
            r["config"]["mask"] or "none": {h["epoch"]: h["test_top1"] for h in r["history"]}
            for r in load(experiment, results)
            if r["config"]["preset"] == preset and r["config"]["model"] == model and r["config"]["seed"] == 0
        }
        if {"none", "gmm"} <= set(curves):
            epochs = sorted(set(curves["none"]) & set(curves["gmm"]))
            k = sum(curves["gmm"][e] < curves["none"][e] for e in epochs)
            below.append(f"{k} of {len(epochs)} epochs for {display_name(model)}")
    if below:
        lines.append(
            "* **In the curves** (seed 0), the masked model's test top-1 is below its baseline's after "
            + ", ".join(below)
            + "; one seed per curve, so this describes the figure, not a finding."
        )
    return lines


def _headline_gain(results: Optional[str | Path]) -> Tuple[Optional[Paired], float]:
    """The headline's paired best-epoch gain (at the preset the book shows) and the seed noise a gain is
    read against (:func:`gmmlib.stats.seed_noise`); ``(None, nan)`` until the headline is recorded."""
    summary = headline(results)
    noise = seed_noise(results)
    return (summary.best if summary else None), (noise if noise is not None else float("nan"))


def _seeds(pairs: int) -> str:
    return "one seed" if pairs == 1 else f"{pairs} seeds"


def _in_noise(row: Dict[str, Any], noise: float) -> float:
    """A row's gain in units of its own noise: a gain's seed std, divided by √n for a mean of n seeds."""
    return row["gain"] / (noise / math.sqrt(row["pairs"]))


def _paper(gain: float) -> str:
    return "" if math.isnan(gain) else f"; paper {gain:+.2f}"


@dataclass
class NoiseReading:
    """One-seed-or-more gains read against the largest of as many gains of pure noise.

    Attributes:
        rows: the masked settings, each once (``gmmlib.stats.tables.compare`` rows).
        noise: a gain's seed-to-seed std (the headline's), points.
        limit: the largest ``|gain| / noise`` that pure noise reaches in 95 % of draws.
        beyond: the labels of the settings past ``limit``.
        one_seed: every setting has one seed.
        seeded: the labels read on more seeds in another experiment (``comparison-seeds``): those readings replace
            these draws, and ``summary`` is the experiments' answer (:func:`gmmlib.readings.answer_for`).
        text: the detailed bullet; ``summary``: the short one for a chapter's summary.
    """

    rows: List[Dict[str, Any]] = field(default_factory=list)
    noise: float = float("nan")
    limit: float = float("nan")
    beyond: List[str] = field(default_factory=list)
    one_seed: bool = True
    seeded: List[str] = field(default_factory=list)
    text: str = ""
    summary: str = ""


def gains_against_noise(experiments: Sequence[str], results: Optional[str | Path] = None) -> NoiseReading:
    """The masked settings of ``experiments`` (each once, at the preset the book shows), their gains in
    points and in units of a gain's seed noise, read against the largest of as many gains of pure noise
    (:func:`gmmlib.stats.largest_abs_quantile`). Chapter 10 reads the decays and biases so. Its ``text``
    is empty until a masked run and the headline (for the noise) are recorded.
    """
    gain, noise = _headline_gain(results)
    out = NoiseReading(noise=noise)
    rows: Dict[str, Dict[str, Any]] = {}
    presets = []
    for experiment in experiments:
        preset = preset_of(experiment, results)
        table = compare(experiment, results, preset) if preset else None
        if table is None or table.empty:
            continue
        presets.append(preset)
        for row in table[table["gain"].notna()].to_dict("records"):
            rows.setdefault(row["label"], row)
    if not rows or not out.noise > 0:
        return out
    out.rows, noise = list(rows.values()), out.noise
    out.limit = largest_abs_quantile(len(rows))
    out.one_seed = all(r["pairs"] == 1 for r in out.rows)
    out.beyond = [lab for lab, r in rows.items() if abs(_in_noise(r, noise)) > out.limit]
    out.text = (
        ("* **Each run is one seed**" if out.one_seed else "* **Seeds as in the tables**")
        + f" ({', '.join(dict.fromkeys(presets))} preset). Gains over the unmasked ViT, in points and in units "
        f"of the seed noise of one gain ({noise:.2f}, from the headline's "
        f"{gain.seeds} seeds"
        + ("" if out.one_seed else "; divided by √n for a mean of n seeds")
        + "): "
        + ", ".join(f"{lab} {r['gain']:+.2f} ({_in_noise(r, noise):+.1f})" for lab, r in rows.items())
        + f". Among {len(rows)} gains of pure noise, the largest lies beyond {out.limit:.1f} times the noise in "
        "only 5 % of draws (`gmmlib.stats.largest_abs_quantile`)"
    )
    gains = [r["gain"] for r in out.rows]
    out.summary = (
        f"* **Our runs** ({len(rows)} masked configurations, "
        f"{'one seed each' if out.one_seed else 'seeds as in the tables'}): gains from {min(gains):+.2f} to "
        f"{max(gains):+.2f} points, against a seed noise of {noise:.2f} per gain. "
    )
    if not out.beyond:
        out.text += "; no gain here does, so none of them is an effect these runs can tell from noise."
        out.summary += (
            "None lies beyond what noise alone gives for the largest of that many gains: the runs rank none of "
            "these masks above another or above no mask, and they do not show that the masks do nothing."
        )
    else:
        named, one = ", ".join(out.beyond), len(out.beyond) == 1
        out.text += f"; {named} lie{'s' if one else ''} beyond it, a candidate for more seeds, not yet a finding."
        out.summary += (
            f"Only {named} lie{'s' if one else ''} beyond what noise alone gives; "
            f"{'it needs' if one else 'they need'} seeds before {'it is' if one else 'they are'} a finding."
        )
    from .evidence import answer_for

    every = comparisons(results)
    seeded = [
        c
        for c in rows_for(experiments, every)
        if c["experiment"] not in experiments and c["seeds"] > 1 and c["label"] in rows
    ]
    if seeded:  # rerun on seeds elsewhere: those readings, by the book's one rule, are the ones to take away
        out.seeded, n = [c["label"] for c in seeded], len(seeded)
        if n == len(rows):
            which, where = ("It is" if n == 1 else "Each of them is"), "the line under its table"
        else:
            which = f"{', '.join(out.seeded)} {'is' if n == 1 else 'are'}"
            where = "the line under its table" if n == 1 else "the lines under their tables"
        out.text += f" {which} read on more seeds in {where} above; those readings, not these draws, are the chapter's."
        out.summary = "* " + answer_for(experiments, results, rows=every)
    return out


# The pooling grid's four contrasts: (name, the arm with, the arm without), cells as (pool, mask).
POOLING_CONTRASTS = (
    ("the official-style comparison (GMM with GAP against ViT with CLS)", ("gap", "gmm"), ("cls", "none")),
    ("the mask with GAP on both sides", ("gap", "gmm"), ("gap", "none")),
    ("the mask with CLS on both sides", ("cls", "gmm"), ("cls", "none")),
    ("the pooling alone (GAP against CLS, no mask)", ("gap", "none"), ("cls", "none")),
)


# The grids that hold the four pooling cells: the first with all four on the most seeds is read (comparison-seeds
# reruns the pooling grid on seeds of its own, on the batched data path).
POOLING_GRIDS = ("comparison-seeds", "pooling")


def _pooling_cells(
    experiment: str, results, preset: Optional[str]
) -> Tuple[Dict[Tuple[str, str], Dict[int, float]], set]:
    """The ViT's (pool, mask) cells of ``experiment`` (seed -> best top-1; the GMM at its defaults) and where their
    runs trained."""
    cells: Dict[Tuple[str, str], Dict[int, float]] = {}
    kinds = set()
    for r in load(experiment, results):
        c = r["config"]
        plain = c["model"] == "vit" and c.get("mask") in (None, "gmm")
        if c["preset"] == preset and plain and not non_default_options(c.get("mask"), c.get("mask_options")):
            cells.setdefault((c.get("pool") or "default", c.get("mask") or "none"), {})[int(c["seed"])] = r["best_top1"]
            kinds.add(hardware_kind(r))
    return cells, kinds


def _pooling_grid(results, preset: Optional[str]):
    """(experiment, preset, cells, where they trained) of the grid of :data:`POOLING_GRIDS` with all four cells on
    the most seeds (``pooling`` on a tie); None when none has all four."""
    wanted = {(p, m) for p in ("cls", "gap") for m in ("none", "gmm")}
    read = []
    for experiment in POOLING_GRIDS:
        cells, kinds = _pooling_cells(experiment, results, preset)
        if wanted <= set(cells):
            fewest = min(len(set(cells[a]) & set(cells[b])) for _, a, b in POOLING_CONTRASTS)
            read.append((fewest, POOLING_GRIDS.index(experiment), experiment, cells, kinds))
    if not read:
        return None
    *_, experiment, cells, kinds = max(read)
    return experiment, preset, cells, kinds


def pooling_table(results: Optional[str | Path] = None, preset: Optional[str] = None):
    """The pooling grid :func:`pooling_reading` reads, as a table: best-epoch top-1 per pooling (rows) and mask
    (columns), the mean over the seeds of each cell, the grid named in the index; None until a grid has all four."""
    import pandas as pd

    chosen = _pooling_grid(results, preset or preset_of("pooling", results))
    if chosen is None:
        return None
    experiment, preset, cells, _ = chosen
    seeds = sorted({len(v) for v in cells.values()})
    table = pd.DataFrame(
        {name: {pool.upper(): sum(cells[pool, mask].values()) / len(cells[pool, mask]) for pool in ("cls", "gap")}
         for name, mask in (("no mask", "none"), ("GMM", "gmm"))}
    )  # fmt: skip
    table.index.name = f"pool (`{experiment}`, {'-'.join(map(str, seeds))} seed{'s' * (seeds != [1])} per cell)"
    return table


def pooling_reading(results: Optional[str | Path] = None, preset: Optional[str] = None) -> str:
    """Chapter 10's reading of the pooling confound: the four contrasts of the {CLS, GAP} x {no mask, GMM} grid
    (:data:`POOLING_CONTRASTS`), each paired by seed over the seeds both cells have, read by the book's one rule:
    with several seeds, the mean gain and its 95 % interval; with one, a draw that is not read (the seed noise of a
    gain beside it for scale). Read from the grid of :data:`POOLING_GRIDS` with all four cells on the most seeds
    (named, with where its runs trained, when it is not ``pooling``); empty until one has all four.

    Args:
        results: the results folder.
        preset: the preset to read (default: the one the book shows for ``pooling``).
    """
    from ..stats.inference import paired

    chosen = _pooling_grid(results, preset or preset_of("pooling", results))
    if chosen is None:
        return ""
    experiment, preset, cells, kinds = chosen
    where = (
        "" if experiment == "pooling" else f"; the `{experiment}` grid's runs, trained on {'; '.join(sorted(kinds))}"
    )
    parts, seeds = [], set()
    for name, arm, base in POOLING_CONTRASTS:
        common = sorted(set(cells[arm]) & set(cells[base]))
        c = paired([cells[base][s] for s in common], [cells[arm][s] for s in common])
        seeds.add(c.seeds)
        parts.append(f"{name} {c.gain:+.2f}" + (f" {interval_text(*c.interval)}" if c.interval else ""))
    text = f"Paired by seed ({preset} preset{where}): " + "; ".join(parts) + "."
    if max(seeds) < 2:
        noise = seed_noise(results)
        text += (
            " Each rests on one seed per cell: a draw, not read either way"
            + (f" (the seed noise of one gain is {noise:.2f} points)" if noise else "")
            + ". These runs neither show a pooling effect nor rule one out."
        )
    return text
