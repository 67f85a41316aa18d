"""A complete rerun of an experiment takes the place of its old runs, all at once.

A rerun (more seeds, a new configuration) is trained into a staging store, for example
``results/pending`` (``gmmlib run EXPERIMENT --results results/pending --reuse-from results``: the runs
``results/`` holds already are not trained again), while the book keeps showing the old runs: a grid
half rerun would mix the two.
When every run of the new grid is recorded, :func:`promote` moves it into the results store in one
step: the staged records are copied in, the experiment lists exactly the new grid (its runs of an
older configuration leave the list), the staged copies leave the staging store, and the old runs that
no list of the store names any more (the registry's or any other) leave the results store (git history
keeps them). Killed at any point, it leaves every listed key with its record and every staged record in one
store or the other, and the same command completes it.

Example:
    >>> promote("exp2-kernels", "results/pending")   # or: gmmlib promote exp2-kernels --from results/pending
    >>> promote("exp1", "results/pending", only="dataset=cifar10")   # the part of a grid that can run here
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Dict, List, Optional

from ..files import write_json, written_together
from ..store.paths import results_dir
from ..store.records import Store
from ..training.config import RunConfig
from .grids import EXPERIMENTS, get_experiment, keeps_weights, matches, run_file_name
from .status import stale_runs

__all__ = ["promote"]


def promote(
    name: str,
    staging: str | Path,
    preset: str = "cpu",
    results: Optional[str | Path] = None,
    only: Optional[str] = None,
    dataset: Optional[str] = None,
    log: Callable[[str], None] = print,
) -> Dict[str, List[str]]:
    """Move the complete rerun of experiment ``name`` at ``preset`` from ``staging`` into ``results``.

    Every run of the grid must have a record in the staging store (trained for this experiment or for
    another that shares the run) or in the results store (a run the rerun shares, such as the
    headline's baseline); otherwise nothing changes.
    A staged run replaces a record of the same key (it is the rerun). Weights travel only for the runs
    some chapter loads (:func:`gmmlib.experiments.keeps_weights`).

    Args:
        name: the experiment (see :func:`gmmlib.experiments.list_experiments`).
        staging: the store the rerun was trained into.
        preset: the preset of the rerun.
        results: the results store (default: this checkout's).
        only: promote only the part of the grid this filter selects (see :func:`gmmlib.experiments.matches`),
            for a grid that cannot be run whole here (e.g. ``dataset=cifar10`` of exp1); its old runs that
            the filter selects leave the list, the others stay.
        dataset: the grid as run on this data set instead of its own (as ``gmmlib run --dataset``).
        log: where one line per change goes.

    Returns:
        Run names: ``copied`` (staged records moved in), ``replaced`` (staged records that took the
        place of a record of the same key), ``dropped`` (old runs off the list), ``removed``
        (those of the dropped runs that no list of the results store names any more, deleted from it).

    Raises:
        ValueError: the grid is incomplete (naming the missing runs), or staging is (or shares a folder
            with, through a link) the results store.
    """
    grid = [c for c in get_experiment(name).configs(preset, dataset) if matches(c, only)]
    if not grid:
        raise ValueError(f"filter {only!r} selects no run of {name!r}")
    source, target = Store(staging), Store(results_dir(results))
    if source.root.resolve() == target.root.resolve():
        raise ValueError(f"the staging store {source.root} is the results store; stage the rerun in another folder")
    shared = source.shared_folder(target)
    if shared is not None:  # promote deletes from the staging folders: they must not be the results' own
        raise ValueError(
            f"the staging store's {shared} is {shared.resolve()}, a folder of the results store {target.root}: "
            "promote would delete the results' own files; stage the rerun in a folder of its own"
        )
    # a staged record of a grid's key counts whichever staged experiment it was trained for (exp1 and
    # exp3 share the Swin runs): the key is the configuration
    staged = {c.key(): record for c in grid if (record := source.get(c.key())) is not None}
    missing = [run_file_name(c) for c in grid if c.key() not in staged and target.get(c.key()) is None]
    if missing:
        raise ValueError(
            f"{name}: {len(missing)} of {len(grid)} runs at the {preset} preset are recorded in neither "
            f"{source.root} nor {target.root} ({', '.join(missing[:4])}{', ...' * (len(missing) > 4)}); "
            "nothing was promoted: train them first"
        )
    target.check_writable()
    out: Dict[str, List[str]] = {"copied": [], "replaced": [], "dropped": [], "removed": []}
    unneeded: List[str] = []
    # each store's lists are read, changed and acted on under its lock: a runner adding to a list meanwhile
    # (another preset of this rerun into staging, a run into results) waits, and its key is neither lost nor deleted
    with target.locked():
        _remove_left(target, name, log)  # a promote of this experiment killed before its end left these
        old = [r for r in stale_runs(name, preset, store=target) if matches(RunConfig.from_result(r), only)]
        # the staged records and the new list land at once, or (a full disk halfway) none: the store stays as it was
        with written_together():
            for config in grid:
                key = config.key()
                if key not in staged:
                    continue
                # a staged run is the rerun: it replaces a record of the same key (its weights with it)
                out["replaced" if key in target else "copied"].append(run_file_name(config))
                weights = source.weights_path(key)
                weights = weights if weights.is_file() and keeps_weights(config) else None
                target.put({**staged[key], "weights_file": None}, weights)
                if weights is None:
                    unneeded.append(key)
            # what to remove once the list has landed, landing before it: a kill between the two leaves the
            # removals to the same command run again
            write_json(_left_to_remove(target, name), {"old": [r["key"] for r in old], "unneeded": unneeded})
            target.add(name, [c.key() for c in grid], drop=[r["key"] for r in old])
        removed = _remove_left(target, name, log)
        out["dropped"] = [f"{r['name']}-{preset}" for r in old]
        out["removed"] = [f"{r['name']}-{preset}" for r in old if r["key"] in removed]
    with source.locked():
        # the promoted copies leave staging, unless another staged experiment still lists them; the list first,
        # so that a kill in between leaves staged records no list names (a rerun of promote takes them), never a
        # listed key without its record
        grid_keys = {c.key() for c in grid}
        rest = [k for k in source.experiment(name) if k not in grid_keys]  # runs of another preset stay staged
        if rest:
            source.add(name, rest, replace=True)
        else:
            source.index_path(name).unlink(missing_ok=True)
        others = {k for e in source.experiments() if e != name for k in source.experiment(e)}
        for key in grid_keys - others:  # with the weights a kill left after their record went
            for path in (source.record_path(key), source.weights_path(key)):
                path.unlink(missing_ok=True)
    for what, runs in out.items():
        for run in runs:
            log(f"{name}: {what} {run}")
    return out


def _left_to_remove(store: Store, name: str) -> Path:
    """The file naming what a promote of ``name`` removes once its list has landed (hidden: no experiment's list)."""
    return store.experiments_dir / f".{name}.promote.json"


def _remove_left(store: Store, name: str, log: Callable[[str], None]) -> List[str]:
    """Make the removals a promote of ``name`` left to do (:func:`_left_to_remove`); returns the keys removed.

    Weights no record names go (a staged run whose weights no chapter loads replaced one that had some), and so
    do the old runs that no list of the store names any more: any list, not only the registry's (one's own
    notes, another code version's, a merged store's); while a list cannot be read, it may name any of them.
    """
    path = _left_to_remove(store, name)
    try:
        left = json.loads(path.read_text())
    except FileNotFoundError:
        return []
    except ValueError:  # cut short by hand: it removes nothing, the next promote writes its own
        left = {}
    for key in left.get("unneeded", []):
        if not (store.get(key) or {}).get("weights_file"):  # after the records that no longer name them
            store.weights_path(key).unlink(missing_ok=True)
    unread = len(store.set_aside)
    listed = {k for e in {*EXPERIMENTS, *store.experiments()} for k in store.experiment(e)}
    removed = []
    if len(store.set_aside) > unread:
        log(f"{name}: kept the old runs in the store, as a list could not be read ({store.set_aside[-1]})")
    else:
        removed = [k for k in left.get("old", []) if k not in listed]
    for key in removed:
        for file in (store.record_path(key), store.weights_path(key)):
            file.unlink(missing_ok=True)
    path.unlink(missing_ok=True)
    return removed
