"""How the book shows recorded results: the command that makes them, the runs still missing, and an
experiment's comparison table (re-exported by :mod:`gmmlib.book`, where the chapters call them).

Nothing here computes a statistic: the tables come from :func:`gmmlib.stats.tables.compare`.
"""

from __future__ import annotations

import os
from typing import Optional, Sequence

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
        To produce them (`cpu` preset: about 12 minutes per ViT run on two idle CPU cores), run from the repository root:

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
    "paper": "paper: top-1",
    "paper_gain": "paper: gain",
    "params": "params",
    "macs": "MACs (M)",
}  # no speed: training logs reflect what else ran on the machine; speed comes from benchmarks/


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
    seeds comes with its 95 % t-interval (a one-seed gain beside them says so); when a row's gain
    rests on one seed, a note below gives the headline's seed-to-seed spread of the gain. Speed is
    not shown: it comes from benchmarks/.

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
    table = compare(experiment, results, preset).set_index("label")
    table["macs"] = table["macs"] / 1e6
    table["dataset"] = [DATASET_NAMES.get(d, d) for d in table["dataset"]]
    several = bool((table["pairs"] > 1).any())  # else the column would say "one seed" on every row: left out
    table["interval"] = [
        interval_text(lo, hi) if n > 1 else "(one seed)" if n == 1 and several else None
        for n, lo, hi in zip(table["pairs"], table["gain_low"], table["gain_high"])
    ]
    single = bool(((table["seeds"] == 1) & table["gain"].notna()).any())
    shown = table[columns].dropna(axis=1, how="all").rename(columns=COMPARISON_COLUMNS)
    shown.index.name = f"{experiment} ({preset} preset)"
    special = {"seeds": "{}", "params": "{:,}", "gain over no mask": "{:+.2f}", "paper: gain": "{:+.2f}"}
    numbers = shown.select_dtypes("number").columns
    styled = shown.style.format({c: special.get(c, "{:.2f}") for c in numbers}, na_rep="–")
    from .display import _display

    _display(styled, shown.round(2).to_string())
    if single:
        _note_seed_noise(preset, results)
    return preset


def _note_seed_noise(preset: str, results: Optional[str | os.PathLike]) -> None:
    # A single-seed gain means nothing without the seed-to-seed spread beside it.
    from ..stats.noise import seed_noise
    from ..stats.tables import headline

    noise = seed_noise(results, preset)
    seeds = headline(results, preset).best.seeds if noise is not None else 0
    if seeds > 1:
        _show_markdown(
            f"For scale: over the {seeds} seeds of the `headline` experiment, the GMM's gain over "
            f"ViT varied from seed to seed with a standard deviation of {noise:.2f} points ({preset} preset). "
            "A one-seed gain smaller than that is within noise."
        )
