"""A complete rerun of an experiment takes the place of its old runs, all at once.

A rerun (more seeds, a new configuration) is trained into a staging store, for example
``results/pending`` (``gmmlib run EXPERIMENT --results results/pending --reuse-from results``: the runs
``results/`` holds already are not trained again), while the book keeps showing the old runs: a grid
half rerun would mix the two.
When every run of the new grid is recorded, :func:`promote` moves it into the results store in one
step: the staged records are copied in, the experiment lists exactly the new grid (its runs of an
older configuration leave the list), the staged copies leave the staging store, and the old runs that
no list of the store names any more (the registry's or any other) leave the results store (git history
keeps them).

Example:
    >>> promote("exp2-kernels", "results/pending")   # or: gmmlib promote exp2-kernels --from results/pending
    >>> promote("exp1", "results/pending", only="dataset=cifar10")   # the part of a grid that can run here
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Dict, List, Optional

from ..files import written_together
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
    unneeded = []
    # each store's lists are read, changed and acted on under its lock: a runner adding to a list meanwhile
    # (another preset of this rerun into staging, a run into results) waits, and its key is neither lost nor deleted
    with target.locked():
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
                    unneeded.append(target.weights_path(key))
            target.add(name, [c.key() for c in grid], drop=[r["key"] for r in old])
        for path in unneeded:  # after the records that no longer name them
            path.unlink(missing_ok=True)
        out["dropped"] = [f"{r['name']}-{preset}" for r in old]
        # the old runs this promotion took off the list leave the store unless some list of the store names
        # them: any list, not only the registry's (one's own notes, another code version's, a merged store's)
        unread = len(target.set_aside)
        listed = {k for e in {*EXPERIMENTS, *target.experiments()} for k in target.experiment(e)}
        if len(target.set_aside) > unread:  # a list that cannot be read may name any of them: keep them all
            log(f"{name}: kept the old runs in the store, as a list could not be read ({target.set_aside[-1]})")
            listed |= {r["key"] for r in old}
        for r in old:
            if r["key"] not in listed:
                out["removed"].append(f"{r['name']}-{preset}")
                for path in (target.record_path(r["key"]), target.weights_path(r["key"])):
                    path.unlink(missing_ok=True)
    with source.locked():
        # the promoted copies leave staging, unless another staged experiment still lists them
        grid_keys = {c.key() for c in grid}
        others = {k for e in source.experiments() if e != name for k in source.experiment(e)}
        for key in set(staged) - others:
            for path in (source.record_path(key), source.weights_path(key)):
                path.unlink(missing_ok=True)
        rest = [k for k in source.experiment(name) if k not in grid_keys]  # runs of another preset stay staged
        if rest:
            source.add(name, rest, replace=True)
        else:
            source.index_path(name).unlink(missing_ok=True)
    for what, runs in out.items():
        for run in runs:
            log(f"{name}: {what} {run}")
    return out
