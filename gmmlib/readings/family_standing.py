"""Each family's gain from the mask, read by the book's one standard (:mod:`gmmlib.readings.standard`), and
chapter 7's answer built on it.

A comparison of one seed is not read: it has no interval, and its difference from zero (or from another
family's) is as likely the seed's as the mask's. A comparison with seeds is read by its interval and whether
it holds after Holm's correction over every comparison the book reads. Where another experiment holds more
seeds of the same comparison (the headline's GMM-ViT, ``exp1-seeds``'s CaiT), its row is the one read.

Example:
    >>> rows = family_comparisons("exp3")
    >>> print("\\n".join(standing_lines(rows)))
    >>> print(experiment3_answer())
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

from ..models.registry import display_name
from ..stats.paper import paper
from ..stats.tables import compare, preset_of
from .cost import cpu_sizes
from .speed import families_speed_text
from .standard import comparisons

__all__ = ["family_comparisons", "standing_phrase", "standing_lines", "answer_text", "experiment3_answer"]

_CPU_RATIO = "cpu: params / ViT's"


def standing_phrase(row: Mapping[str, Any]) -> str:
    """What a comparison's standing (:data:`gmmlib.readings.STANDINGS`) says, in words, with its direction."""
    way = "lowers" if row["gain"] < 0 else "raises"
    return {
        "includes zero": "its interval includes zero, so the mask's effect here is not established either way",
        "a lead": f"a lead that the mask {way} top-1 here: the interval excludes zero, but not after Holm's "
        "correction over the book's comparisons",
        "holds after correction": f"the mask {way} top-1 here: it holds after Holm's correction over the book's "
        "comparisons",
    }.get(row["standing"], row["standing"])


def family_comparisons(experiment: str = "exp3", results: Optional[str | Path] = None) -> List[Dict[str, Any]]:
    """The rows of :func:`gmmlib.readings.comparisons` for each masked setting of ``experiment`` (same label,
    data set and preset), in the experiment's order; empty until it is recorded."""
    preset = preset_of(experiment, results)
    table = compare(experiment, results, preset) if preset else None
    if table is None or table.empty:
        return []
    wanted = [(r["label"], r["dataset"], preset) for r in table[table["gain"].notna()].to_dict("records")]
    rows = {(c["label"], c["dataset"], c["preset"]): c for c in comparisons(results)}
    return [rows[k] for k in wanted if k in rows]


def standing_lines(rows: Sequence[Mapping[str, Any]]) -> List[str]:
    """Markdown bullets: each comparison with seeds, its gain, interval and standing; the one-seed ones named
    and not read."""
    seeded = [r for r in rows if r["seeds"] >= 2]
    one = [r for r in rows if r["seeds"] < 2]
    lines = [
        f"* **{r['label']}** ({r['seeds']} seeds, `{r['experiment']}`): {r['gain']:+.2f} points, 95 % interval "
        f"[{r['low']:+.2f}, {r['high']:+.2f}]: {standing_phrase(r)}."
        for r in seeded
    ]
    if one:
        names = ", ".join(r["label"] for r in one)
        lines.append(
            f"* **{names}**: one seed{' each' if len(one) > 1 else ''}. A one-seed comparison is not read, by the "
            "book's one standard: its gain is as likely the seed's as the mask's. More seeds are being run."
        )
    return lines


def _paper_top1(name: str, mask: str, dataset: str = "cifar10") -> float:
    table = paper()["main_table"]
    return table["rows"][name][mask][table["datasets"].index(dataset)]


def answer_text(sizes, rows: Sequence[Mapping[str, Any]], speed: str) -> str:
    """Chapter 7's answer paragraph from its parts (tested on synthetic rows).

    Args:
        sizes: :func:`gmmlib.readings.cost.cpu_sizes` (the ViT's and CaiT's rows at least).
        rows: :func:`family_comparisons`.
        speed: the speed sentence (:func:`gmmlib.readings.speed.families_speed_text`).
    """
    main = paper()["main_table"]["rows"]
    claims = " and ".join(
        f"{display_name(n)} {_paper_top1(n, 'none'):.2f} % (with {main[n]['params_m'] / main['vit']['params_m']:.1f} "
        "times the ViT's parameters)"
        for n in ("swin", "cait")
    )
    seeded = [r for r in rows if r["seeds"] >= 2]
    one = [r for r in rows if r["seeds"] < 2]
    read = "; ".join(
        f"{r['label']} {r['gain']:+.2f} points over {r['seeds']} seeds, 95 % interval "
        f"[{r['low']:+.2f}, {r['high']:+.2f}]: {standing_phrase(r)}"
        for r in seeded
    )
    if one:
        read += ("; " if read else "") + (
            f"{', '.join(r['label'] for r in one)} {'has' if len(one) == 1 else 'have'} one seed"
            f"{'' if len(one) == 1 else ' each'}, and a one-seed comparison is not read (more seeds are being run)"
        )
    cait = sizes.loc[display_name("cait")][_CPU_RATIO]
    return (
        "**Question:** can a small ViT with a GMM match bigger, more elaborate transformers, and so buy their "
        f"inductive biases cheaply? **Answer:** the paper's table (one run per cell) puts GMM-ViT at "
        f"{_paper_top1('vit', 'gmm'):.2f} % on CIFAR-10, beside {claims}. That claim cannot be tested at `cpu` "
        f"scale, where CaiT has only {cait:.2f} times the ViT's parameters. Our runs test something narrower, "
        f"each family's gain from the mask at this scale: {read or 'none is recorded yet'}. {speed}"
    )


def experiment3_answer(results: Optional[str | Path] = None) -> str:
    """Chapter 7's answer paragraph, from the recorded runs and the recorded benchmark."""
    return answer_text(
        cpu_sizes(("vit", "cait")), family_comparisons("exp3", results), families_speed_text(results, detail=False)
    )
