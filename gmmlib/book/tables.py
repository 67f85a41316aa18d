"""How the book shows recorded results: the command that makes them, the runs still missing, and an
experiment's comparison table (re-exported by :mod:`gmmlib.book`, where the chapters call them).

Nothing here computes a statistic: the tables come from :func:`gmmlib.stats.tables.compare`, read by the book's one
standard (:mod:`gmmlib.readings.standard`: pooled intervals where a grid shares a noise scale, Holm's correction).
"""

from __future__ import annotations

import os
from typing import Any, Dict, Optional, Sequence

from ..stats.inference import interval_text
from ..stats.tables import preset_of

__all__ = ["command", "not_yet", "missing_note", "show_comparison", "COMPARISON_COLUMNS"]


def _show_markdown(text: str) -> None:
    from .display import show_markdown  # the book's display helpers (that module imports this one)

    show_markdown(text)


def command(experiment: str, preset: str = "cpu", only: Optional[str] = None) -> str:
    """The command line that fills in an experiment's results."""
    from ..experiments.grids import run_command

    return run_command(experiment, preset, only)


def not_yet(experiment: str, preset: str = "cpu", what: str = "results") -> None:
    """Say plainly that results are missing, and show the command that makes them."""
    _show_markdown(
        f"""
        **No {what} for `{experiment}` in `results/` yet**, so this part shows no number.
        To produce them (`cpu` preset: minutes per run on a laptop's CPU; chapter 1 gives the measured time), run
        from the repository root:

        ```bash
        {command(experiment, preset)}
        ```
        """
    )


_MISSING_LISTED = 6  # missing runs a page lists one command each


def missing_note(experiment: str, preset: str = "cpu", results: Optional[str | os.PathLike] = None) -> None:
    """Say how many runs of an experiment are recorded, show the commands for the others, and name
    the recorded runs made under an older configuration (stale: not counted as recorded)."""
    from ..experiments.grids import get_experiment
    from ..stats.tables import missing, stale

    todo = missing(experiment, preset=preset, results=results)
    old = stale(experiment, preset=preset, results=results)
    total = len(get_experiment(experiment).configs(preset))
    if old:
        _show_markdown(
            f"{len(old)} recorded run(s) of `{experiment}` ({preset} preset) were made under an older configuration "
            f"than the grid's today and are shown as recorded: {', '.join(f'`{n}`' for n in old)}."
        )
    if not todo:
        return
    # a handful of runs one command each; more than that, the one command that trains only the missing runs
    listed = len(todo) <= _MISSING_LISTED
    commands = "\n".join(todo) if listed else command(experiment, preset)
    _show_markdown(
        f"{total - len(todo)} of {total} runs of `{experiment}`'s grid today ({preset} preset) are recorded so far; "
        f"the tables show the recorded runs{' (with the older ones above)' if old else ''}. "
        + ("The missing ones:" if listed else "This trains the missing ones and skips the rest:")
        + f"\n\n```bash\n{commands}\n```"
    )


COMPARISON_COLUMNS = {
    "dataset": "data set",
    "seeds": "seeds",
    "best_mean": "top-1 (best epoch)",
    "best_std": "± (seeds)",
    "final_mean": "top-1 (final)",
    "gain": "gain over no mask",
    "gain_std": "± (paired seeds)",
    "interval": "95 % interval of the gain",
    "final_gain": "gain (final epoch)",
    "reading": "reading",
    "paper": "paper: top-1",
    "paper_gain": "paper: gain",
    "params": "params",
    "macs": "MACs (M)",
}  # no speed: training logs reflect what else ran on the machine; speed comes from benchmarks/


def _whole_split_names(experiment: str, preset: str) -> Dict[str, str]:
    """Where the grid varies the training-set size: each whole-split run's label, and that label naming the size
    (the label leaves the whole split out, so that such a run reads like any other experiment's run)."""
    import dataclasses

    from ..experiments.grids import get_experiment
    from ..stats.tables import label

    grid = get_experiment(experiment).configs(preset)
    if len({c.train_size for c in grid}) < 2:
        return {}
    names = {}
    for c in grid:
        if c.train_size == c.full_train_size():
            name, size = label(dataclasses.asdict(c)), f"{c.full_train_size():,} images, the whole split"
            names[name] = f"{name[:-1]}, {size})" if name.endswith(")") else f"{name} ({size})"
    return names


def show_comparison(
    experiment: str,
    results: Optional[str | os.PathLike] = None,
    note_missing: bool = True,
    columns: Optional[Sequence[str]] = None,
) -> Optional[str]:
    """Show an experiment's runs beside their unmasked baselines and the paper's numbers.

    The table is :func:`gmmlib.stats.tables.compare` with readable headers; columns with no value
    at all (a spread over one seed, a paper cell the paper does not have) are left out. When
    no run exists it says so and gives the command; missing runs are listed above the table
    unless ``note_missing`` is false (when the page lists them another way). A gain over several
    seeds comes with its 95 % t-interval (pooled over the grid's settings where they share a noise scale) and every
    gain with its reading by the book's one rule (:func:`gmmlib.readings.standing`: "one seed", "includes zero",
    "a lead", "holds after correction"). A comparison that another experiment has on more seeds (``comparison-seeds``
    reruns the one-seed ones) is read there, in a line under the table that names that experiment and where its runs
    trained. Speed is not shown: it comes from benchmarks/.

    Args:
        experiment: a name in :data:`gmmlib.experiments.EXPERIMENTS`.
        results: the results folder (default: this checkout's).
        note_missing: list the runs of the grid not recorded yet above the table.
        columns: which of :data:`COMPARISON_COLUMNS` to show, in that order (default: all).

    Returns:
        the preset shown, or None when nothing is recorded.
    """
    from ..stats.tables import DATASET_NAMES, compare

    columns = list(COMPARISON_COLUMNS if columns is None else columns)
    unknown = [c for c in columns if c not in COMPARISON_COLUMNS]
    if unknown:
        raise ValueError(f"columns {unknown} are not comparison columns; expected some of {list(COMPARISON_COLUMNS)}")
    preset = preset_of(experiment, results)
    if preset is None:
        not_yet(experiment)
        return None
    if note_missing:
        missing_note(experiment, preset, results)
    from ..readings.standard import SHARED_NOISE, comparisons, pool_noise, standing

    rows = compare(experiment, results, preset).to_dict("records")
    masked = [r for r in rows if r["mask"] != "none" and r["pairs"] >= 1]
    pooled = {id(r): q for r, q in zip(masked, pool_noise(masked) if experiment in SHARED_NOISE else masked)}
    rows = [pooled.get(id(r), r) for r in rows]
    # the verdict's reading where the verdict lists this row under this experiment; else the same rule without Holm
    book_rows = [c for c in comparisons(results) if experiment in c["experiments"] and c["preset"] == preset]
    read = {c["label"]: c["standing"] for c in book_rows if c["experiment"] == experiment}
    for r in rows:
        if r["mask"] != "none":
            low, high = r["gain_low"], r["gain_high"]
            r["reading"] = read.get(r["label"]) or standing({"seeds": r["pairs"], "low": low, "high": high})
    import pandas as pd

    table = pd.DataFrame(rows).set_index("label")
    renamed = _whole_split_names(experiment, preset)  # one grid walk per table, not per row
    table.index = [renamed.get(name, name) for name in table.index]
    table["macs"] = table["macs"] / 1e6
    table["dataset"] = [DATASET_NAMES.get(d, d) for d in table["dataset"]]
    several = bool((table["pairs"] > 1).any())  # else the column would say "one seed" on every row: left out
    table["interval"] = [
        interval_text(lo, hi) if n > 1 else "(one seed)" if n == 1 and several else None
        for n, lo, hi in zip(table["pairs"], table["gain_low"], table["gain_high"])
    ]
    shown = table[columns].dropna(axis=1, how="all").rename(columns=COMPARISON_COLUMNS)
    shown.index.name = f"{experiment} ({preset} preset)"
    special = {
        "seeds": "{}",
        "params": "{:,}",
        "gain over no mask": "{:+.2f}",
        "gain (final epoch)": "{:+.2f}",
        "paper: gain": "{:+.2f}",
    }
    numbers = shown.select_dtypes("number").columns
    styled = shown.style.format({c: special.get(c, "{:.2f}") for c in numbers}, na_rep="–")
    from .display import _display

    _display(styled, shown.round(2).to_string())
    # a comparison that another grid has on more seeds is read there: said under the table, with where it trained
    pairs = {r["label"]: r["pairs"] for r in rows}
    more = [c for c in book_rows if c["experiment"] != experiment and c["seeds"] > pairs.get(c["label"], 0)]
    if more:
        _show_markdown(
            "**Read on more seeds elsewhere** (the book's one rule): " + "; ".join(_elsewhere(c) for c in more) + "."
        )
    return preset


def _elsewhere(row: Dict[str, Any]) -> str:
    """One comparison read in another experiment: ``ELM-ViT (GAP): +0.40 [-0.20, +1.00] over 3 seeds of
    `comparison-seeds` (cpu, batched), includes zero``."""
    return (
        f"{row['label']}: {row['gain']:+.2f} {interval_text(row['low'], row['high'])} over {row['seeds']} seeds of "
        f"`{row['experiment']}` ({row['hardware']}), {row['standing']}"
    )
