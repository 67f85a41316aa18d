"""Which runs of an experiment's grid the store records, lacks, or holds under an older configuration.

:func:`recorded` and :func:`missing_runs` are the one way to read an experiment's runs: the runner,
the tables and the book all go through them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional

from ..store.paths import results_dir
from ..store.records import Store
from ..training.config import PRESETS, RunConfig
from .grids import EXPERIMENTS, get_experiment

__all__ = ["recorded", "missing_runs", "stale_runs", "status"]


def _store(results: Optional[str | Path], store: Optional[Store]) -> Store:
    return store if store is not None else Store(results_dir(results))


def recorded(name: str, results: Optional[str | Path] = None, store: Optional[Store] = None) -> List[Dict[str, Any]]:
    """The run records an experiment lists, sorted by run name (every preset)."""
    get_experiment(name)  # a clear error for an unknown name
    return _store(results, store).load(name)


def missing_runs(
    name: str,
    preset: str = "cpu",
    results: Optional[str | Path] = None,
    dataset: Optional[str] = None,
    store: Optional[Store] = None,
) -> List[RunConfig]:
    """The runs of an experiment's grid that it does not list with a readable record yet.

    A run is identified by its key, so a run recorded under an older configuration (an
    older preset, other defaults) is missing here even though a record with its name exists.
    """
    store = _store(results, store)
    listed = set(store.experiment(name))
    return [
        c for c in get_experiment(name).configs(preset, dataset) if c.key() not in listed or store.get(c.key()) is None
    ]


def stale_runs(
    name: str, preset: str = "cpu", results: Optional[str | Path] = None, store: Optional[Store] = None
) -> List[Dict[str, Any]]:
    """Records an experiment lists at ``preset`` that no run of its current grid has (an older configuration)."""
    records = [r for r in recorded(name, results, store) if r["config"].get("preset") == preset]
    if preset not in PRESETS:
        return records
    experiment = get_experiment(name)
    current = {c.key() for c in experiment.configs(preset)}
    for dataset in {r["config"].get("dataset") for r in records}:
        try:
            current |= {c.key() for c in experiment.configs(preset, dataset)}
        except ValueError:  # a data set this version does not know
            continue
    return [r for r in records if r["key"] not in current]


def status(
    preset: str = "cpu", results: Optional[str | Path] = None, staging: Optional[str | Path] = None
) -> List[Dict[str, Any]]:
    """Per experiment at ``preset``: how much of its grid is recorded, and what a rerun has staged.

    Each row: ``experiment``, ``grid`` (runs), ``recorded`` (listed with a record), ``missing``, ``stale``
    (listed under an older configuration), and with ``staging`` (e.g. ``results/pending``) ``staged``
    (missing runs that ``gmmlib promote`` would list: those with a record in the staging store, whichever grid
    it was trained for, or already in the results under another grid; a key that two grids share is trained once).
    """
    store = Store(results_dir(results))
    store.audit()  # every unreadable record and every listed key without one, named once before the counts
    staged_store = Store(staging) if staging is not None else None
    rows = []
    for name, experiment in EXPERIMENTS.items():
        missing = missing_runs(name, preset, store=store)
        grid = experiment.configs(preset)
        row = {
            "experiment": name,
            "grid": len(grid),
            "recorded": len(grid) - len(missing),
            "missing": len(missing),
            "stale": len(stale_runs(name, preset, store=store)),
        }
        if staged_store is not None:
            row["staged"] = sum(c.key() in staged_store or c.key() in store for c in missing)
        rows.append(row)
    return rows
