"""What the recorded ELM run says (chapter 3): how much of its learned mask the distance between patches
explains, and what its gain over the unmasked ViT can say, by the book's one standard.

:func:`read_elm` gathers both from the ``elm`` experiment; the two readings are functions of plain
numbers, so each rule can be checked on numbers whose answer is known.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

import torch

from ..analysis import elm_structure
from ..stats.noise import seed_noise
from ..stats.tables import load, missing, preset_of
from ..training.config import PRESETS
from ..training.record import recorded_mask_parameters
from .standard import comparisons, rows_for

__all__ = ["elm_structure_reading", "elm_gain_reading", "ElmReading", "read_elm"]

NO_LOCALITY = 0.25  # the distance explains less than this share of the entries' variance: no locality
STRIPE = 1.0  # the diagonal's mean this many standard deviations of the entries below the rest's: self-inhibition


def elm_structure_reading(structure: Mapping[str, Mapping[str, float]], run: Mapping[str, Any]) -> str:
    """Markdown: whether a learned ELM is local, striped by single patches, or self-inhibiting.

    Args:
        structure: ``{layer: elm_structure(mask)}`` (:func:`gmmlib.analysis.elm_structure`).
        run: the run record the masks come from (its seed and preset are named).
    """
    if not structure:
        raise ValueError("no ELM layer to read: expected elm_structure of at least one layer")
    dist = {name: s["distance"] for name, s in structure.items()}
    shuffled = max(s["distance, shuffled (95%)"] for s in structure.values())
    top = max(dist, key=dist.get)
    if dist[top] < NO_LOCALITY:
        lines = [
            f"**No locality: the distance between two patches explains {min(dist.values()):.0%} to {dist[top]:.0%} "
            f"of the variance of the learned mask's entries.** Layer by layer; the same entries shuffled give up "
            f"to {shuffled:.0%}, a mask of the distance only 100%. No row shows a bump around its query."
        ]
    else:
        lines = [
            f"**Partly local: the distance between two patches explains up to {dist[top]:.0%} of the variance of "
            f"the learned mask's entries** (`{top}`; the same entries shuffled: up to {shuffled:.0%})."
        ]
    own = {(name, part): s[part] for name, s in structure.items() for part in ("query (row)", "key (column)")}
    (own_layer, own_part), own_top = max(own.items(), key=lambda kv: kv[1])
    if own_top > dist[top]:
        who = "query" if own_part.startswith("query") else "key"
        lines.append(
            f"What structure there is belongs to single patches, not to distances: in `{own_layer}` the {who} "
            f"alone explains {own_top:.0%} (the {'rows' if who == 'query' else 'columns'} of one colour in the "
            f"figure: one multiplier per {who}, whatever the distance). Apart from such stripes the entries look "
            "like noise."
        )
    gap = {name: (s["diagonal mean"] - s["off-diagonal mean"]) / s["std"] for name, s in structure.items()}
    below = [name for name, g in gap.items() if g < -STRIPE]
    if not below:
        lines.append(
            "**No self-inhibition: in no layer does the diagonal lie clearly below the rest.** Its mean lies within "
            f"{max(map(abs, gap.values())):.1f} standard deviations of the entries from the rest's mean in every layer: "
            "the paper's negative diagonal is not there."
        )
    else:
        lines.append(
            f"**Self-inhibition in {len(below)} of {len(gap)} layers.** The diagonal's mean lies more than "
            f"{STRIPE:g} standard deviation of the entries below the rest's in {', '.join(f'`{b}`' for b in below)}: "
            "the paper's negative diagonal."
        )
    values, paper_preset = run["config"]["preset_values"], PRESETS["paper"]
    passes = values["passes_per_epoch"]
    lines.append(
        f"This is one run (seed {run['config']['seed']}, `{values['name']}` preset: {values['epochs']} epochs of "
        f"{'one pass' if passes == 1 else f'{passes} passes'} each) against the paper's {paper_preset.epochs} epochs "
        f"of {paper_preset.passes_per_epoch} passes each: it shows what a short training learns, not what the paper's ELM learned."
    )
    return "\n\n".join(lines)


def elm_gain_reading(row: Mapping[str, Any], noise: Optional[float], pending: int = 0) -> str:
    """Markdown: what ELM-ViT's gain over the unmasked ViT can say, by the book's one standard.

    Args:
        row: ELM-ViT's row of :func:`gmmlib.readings.comparisons` (``seeds``, ``gain``, ``low``, ``high``,
            ``final_gain``, ``standing``).
        noise: the seed noise of one gain (:func:`gmmlib.stats.seed_noise`), None when unknown.
        pending: runs of the ``elm`` grid not recorded yet.
    """
    gain, seeds, standing = row["gain"], int(row["seeds"]), row["standing"]
    final = f" (best epoch; on the final epoch {row['final_gain']:+.2f})"
    scale = (
        f" The seed noise of one gain is {noise:.2f} points (the headline's paired seeds)."
        if noise and seeds < 2
        else ""
    )
    waiting = (
        f" {pending} more run{'s' if pending != 1 else ''} of the `elm` grid {'is' if pending == 1 else 'are'} not recorded yet."
        if pending
        else ""
    )
    if standing == "one seed":
        return (
            f"**One seed is not read as a gain: ELM-ViT's {gain:+.2f} points over the unmasked ViT come from one "
            f"paired seed.**{final}.{scale} One seed cannot tell a gain from a lucky draw for one arm "
            "and an unlucky one for the other, and the paper publishes no ELM accuracy to set beside it: whether "
            f"the ELM helps at this scale needs several paired seeds, read by the standard of chapter 12.{waiting}"
        )
    interval = f"95 % interval [{row['low']:+.2f}, {row['high']:+.2f}]"
    said = {
        "includes zero": f"**No gain shown: over {seeds} paired seeds ELM-ViT's gain is {gain:+.2f} points, and its {interval} includes zero.**",
        "a lead": f"**A lead, not a finding: over {seeds} paired seeds ELM-ViT's gain is {gain:+.2f} points ({interval}), but it does not hold after Holm's correction over the book's comparisons.**",
        "holds after correction": f"**ELM-ViT gains {gain:+.2f} points over {seeds} paired seeds ({interval}), and the gain holds after Holm's correction over the book's comparisons.**",
    }[standing]
    where = (  # the seeds of another grid (comparison-seeds)
        f" These seeds are the `{row['experiment']}` grid's (trained on {row.get('hardware', 'cpu')}); the table "
        "above shows the `elm` grid's own run."
        if row.get("experiment", "elm") != "elm"
        else ""
    )
    return f"{said}{final}.{where} This is the `{row.get('preset', 'cpu')}` scale, and the paper publishes no ELM accuracy to set beside it.{waiting}"


@dataclass
class ElmReading:
    """What chapter 3 reads from the ``elm`` experiment (None and empty where it has no ELM run)."""

    preset: Optional[str]
    run: Optional[Dict[str, Any]]
    masks: Dict[str, torch.Tensor] = field(default_factory=dict)
    structure: Dict[str, Dict[str, float]] = field(default_factory=dict)
    texts: Dict[str, str] = field(default_factory=dict)

    @property
    def answer(self) -> str:
        """The chapter's opening answer: the bold first sentence of each reading."""
        said = [
            p.split("**")[1]
            for key in ("structure", "gain")
            for p in self.texts.get(key, "").split("\n\n")
            if p.startswith("**")
        ]
        if not said:
            return "The results hold no trained ELM-ViT yet: run `python -m gmmlib run elm`."
        return f"From the recorded `elm` runs (`{self.preset}` preset): " + " ".join(
            s if s.endswith(".") else s + "." for s in said
        )


def read_elm(results: Optional[str | Path] = None) -> ElmReading:
    """The learned masks of the ``elm`` experiment's ELM run (lowest seed), their structure and the gain's reading."""
    preset = preset_of("elm", results)
    runs = sorted(
        (r for r in load("elm", results) if r["config"]["mask"] == "elm" and r["config"]["preset"] == preset),
        key=lambda r: r["config"]["seed"],
    )
    if not runs:
        return ElmReading(preset, None)
    run = runs[0]
    masks = {k.replace(".attn.mask", ""): v["weight"][0].float() for k, v in recorded_mask_parameters(run).items()}
    side = {name: int(math.isqrt(m.shape[-1])) for name, m in masks.items()}
    structure = {name: elm_structure(m, (side[name], side[name])) for name, m in masks.items()}
    out = ElmReading(preset, run, masks, structure)
    out.texts["structure"] = elm_structure_reading(structure, run)
    # on the most seeds the book has (comparison-seeds reruns the ELM on seeds of its own)
    rows: List[Dict[str, Any]] = [
        r for r in rows_for(["elm"], comparisons(results)) if r["mask"] == "elm" and r["preset"] == preset
    ]
    if rows:
        out.texts["gain"] = elm_gain_reading(rows[0], seed_noise(results), len(missing("elm", preset, results)))
    return out
