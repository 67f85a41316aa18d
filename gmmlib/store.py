"""The results store: one record per run, and experiments as lists of run keys.

Layout of a results folder (default: ``results/`` of this checkout)::

    records/<key>.json         one record per trained run: its configuration, history, top-1,
                               cost, learned mask parameters and provenance
    records/<key>.weights.pt   its final weights, kept only for runs a chapter loads
    experiments/<name>.json    {"experiment": name, "runs": [key, ...]}

A run's key is :func:`gmmlib.config.config_key` of its configuration, so a run that
several experiments share is trained and stored once, and each experiment lists its key:
reuse is a reference, never a copy. Every file is written atomically
(:func:`gmmlib.provenance.atomic_write`), weights before the record that names them.

A file that cannot be read as what it should be (half written by hand, a merge gone
wrong, a list where a record should be) is reported with its path; a store opened with
``repair=True`` (the runner) sets it aside as ``<file>.corrupt`` so that the rest goes on.

:func:`migrate` turns the layout used before the store (``<experiment>/<run>.json`` files,
copies of shared runs in each experiment's folder) into this one.
"""

from __future__ import annotations

import fcntl
import json
import os
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, List, Mapping, Optional, Union

from .config import RunConfig, config_key
from .provenance import atomic_copy, check_folder_writable, hardware_kind, save_torch, write_json

__all__ = ["Store", "SetAside", "Migration", "merge", "migrate", "legacy_folders", "check_folder_writable"]

PathLike = Union[str, os.PathLike]
RUNS, EXPERIMENTS = "records", "experiments"
_LEGACY_FIELDS = ("experiment", "reused_from", "weights_file")


@dataclass(frozen=True)
class SetAside:
    """A store file that could not be read.

    Args:
        path: the file.
        reason: why it was rejected (the parser's message, or what was found instead).
        moved_to: where it was set aside (``<file>.corrupt``), or None when left in place.
    """

    path: Path
    reason: str
    moved_to: Optional[Path] = None

    def __str__(self) -> str:
        where = f"set aside as {self.moved_to.name}" if self.moved_to else "skipped"
        return f"{self.path} is not valid ({self.reason}): {where}"


def _unique_aside(path: Path) -> Path:
    target = path.with_name(path.name + ".corrupt")
    n = 1
    while target.exists():
        target = path.with_name(f"{path.name}.corrupt{n}")
        n += 1
    return target


class Store:
    """A results folder: run records by key, weights, and experiments' lists of keys.

    Args:
        root: the results folder (default :func:`gmmlib.experiments.results_dir`).
        repair: set unreadable files aside as ``<file>.corrupt`` (the runner does);
            otherwise they are skipped with a warning naming them.
    """

    def __init__(self, root: Optional[PathLike] = None, repair: bool = False) -> None:
        if root is None:
            from .experiments import results_dir

            root = results_dir()
        self.root = Path(root)
        self.repair = repair
        self.set_aside: List[SetAside] = []

    def __repr__(self) -> str:
        return f"Store({str(self.root)!r})"

    # ---- paths -------------------------------------------------------------------------
    @property
    def records_dir(self) -> Path:
        return self.root / RUNS

    @property
    def experiments_dir(self) -> Path:
        return self.root / EXPERIMENTS

    def record_path(self, key: str) -> Path:
        return self.records_dir / f"{key}.json"

    def weights_path(self, key: str) -> Path:
        return self.records_dir / f"{key}.weights.pt"

    def index_path(self, experiment: str) -> Path:
        return self.experiments_dir / f"{experiment}.json"

    def check_writable(self) -> None:
        """Raise a clear ValueError when the results folder cannot be written (before any training)."""
        check_folder_writable(self.root, "results folder")
        for sub in (self.records_dir, self.experiments_dir):
            if sub.exists() and not sub.is_dir():
                raise ValueError(f"{sub} is a file; the results folder needs a folder there")

    # ---- reading -----------------------------------------------------------------------
    def _reject(self, path: Path, reason: str) -> None:
        moved = None
        if self.repair:
            moved = _unique_aside(path)
            os.replace(path, moved)
        entry = SetAside(path, reason, moved)
        self.set_aside.append(entry)
        if not self.repair:
            warnings.warn(f"{entry}; `python -m gmmlib run` sets such files aside", stacklevel=3)

    def _read(self, path: Path, check: Callable[[Any], Optional[str]]) -> Optional[Any]:
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (ValueError, UnicodeDecodeError) as e:  # JSONDecodeError is a ValueError
            self._reject(path, f"not JSON: {e}")
            return None
        except IsADirectoryError:
            self._reject(path, "a folder, not a file")
            return None
        problem = check(data)
        if problem:
            self._reject(path, problem)
            return None
        return data

    def keys(self) -> List[str]:
        """The keys of the records present (by file name; not read)."""
        if not self.records_dir.is_dir():
            return []
        return sorted(p.name[: -len(".json")] for p in self.records_dir.glob("*.json") if not p.name.startswith("."))

    def __contains__(self, key: str) -> bool:
        return self.record_path(key).is_file()

    def get(self, key: str) -> Optional[Dict[str, Any]]:
        """The record of run ``key``, or None when there is none (or it was unreadable)."""

        def check(data: Any) -> Optional[str]:
            if not isinstance(data, dict):
                return f"a JSON {type(data).__name__}, not a run record"
            if data.get("key") != key:
                return f"its key is {data.get('key')!r}, not {key!r} as its name says"
            if not isinstance(data.get("config"), dict) or not isinstance(data.get("history"), list):
                return "no config or history"
            return None

        return self._read(self.record_path(key), check)

    def experiment(self, name: str) -> List[str]:
        """The keys an experiment lists (empty when it lists none yet)."""

        def check(data: Any) -> Optional[str]:
            if not isinstance(data, dict) or not isinstance(data.get("runs"), list):
                return f"a JSON {type(data).__name__} without a list of runs"
            if not all(isinstance(k, str) for k in data["runs"]):
                return "its runs are not all keys"
            return None

        data = self._read(self.index_path(name), check)
        return list(data["runs"]) if data else []

    def experiments(self) -> List[str]:
        """The experiments that list runs here."""
        if not self.experiments_dir.is_dir():
            return []
        return sorted(p.stem for p in self.experiments_dir.glob("*.json") if not p.name.startswith("."))

    def load(self, experiment: str) -> List[Dict[str, Any]]:
        """The records an experiment lists, sorted by run name and preset."""
        records = [r for r in (self.get(k) for k in self.experiment(experiment)) if r is not None]
        return sorted(records, key=lambda r: (f"{r.get('name', '')}-{r['config'].get('preset', '')}", r["key"]))

    # ---- writing -----------------------------------------------------------------------
    def put(self, record: Mapping[str, Any], weights: Union[None, PathLike, Mapping[str, Any]] = None) -> Path:
        """Store one run's record (and its weights: a file to copy, or a state dict).

        The weights are written first, so a record never names a file that is not there.
        """
        key = record["key"]
        record = dict(record)
        if weights is not None:
            target = self.weights_path(key)
            if isinstance(weights, Mapping):
                save_torch(target, dict(weights))
            else:
                atomic_copy(weights, target)
            record["weights_file"] = target.name
        else:
            record["weights_file"] = record.get("weights_file") if self.weights_path(key).is_file() else None
        return write_json(self.record_path(key), record)

    def add(self, experiment: str, keys: Iterable[str], replace: bool = False, drop: Iterable[str] = ()) -> List[str]:
        """Add run keys to an experiment's list (kept sorted); returns the list.

        The read-add-write holds a lock on the experiments folder, so several runners (shards of
        one grid on machines that share this folder) never drop each other's keys. With
        ``replace`` the list becomes ``keys`` (a rerun grid that supersedes the old runs; their
        records stay in the store for the experiments that still list them). ``drop`` takes keys
        off the list in the same step (a run of an older configuration that a new run supersedes).
        """
        keys, drop = list(keys), set(drop)
        missing = [k for k in keys if k not in self]
        if replace and missing:
            raise ValueError(f"cannot list {experiment!r} as runs without a record here: {missing}")
        with self._locked():
            current = self.experiment(experiment)
            merged = sorted((set(keys) if replace else set(current) | set(keys)) - (drop - set(keys)))
            if merged != current or not self.index_path(experiment).is_file():
                write_json(self.index_path(experiment), {"experiment": experiment, "runs": merged})
        return merged

    @contextmanager
    def _locked(self) -> Iterator[None]:
        # A lock on the folder itself: no lock file to leave behind in a committed store.
        self.experiments_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.experiments_dir, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def merge_from(self, other: Union["Store", PathLike], replace: bool = False) -> Dict[str, List[str]]:
        """Bring another store's records (with their weights) and experiment lists into this one.

        A record this store lacks is copied; one it has already is kept as it is (the same key
        is the same run); every experiment list becomes the union of both, or with ``replace``
        the other store's list (a complete rerun of a grid, trained apart, replaces the old one).
        A record under a key this store has that trained on another kind of hardware or reached
        another top-1 is not the same run: it is not copied, and is reported under ``differ``.

        Returns:
            ``{"copied": keys, "present": keys, "differ": keys, "experiments": names}``.
        """
        other = other if isinstance(other, Store) else Store(other)
        if other.root.resolve() == self.root.resolve():
            raise ValueError(f"cannot merge the store {self.root} into itself")
        out: Dict[str, List[str]] = {"copied": [], "present": [], "differ": [], "experiments": []}
        for key in other.keys():
            if key in self:
                mine, theirs = self.get(key), other.get(key)
                same = (
                    mine is None
                    or theirs is None
                    or (hardware_kind(mine) == hardware_kind(theirs) and mine["best_top1"] == theirs["best_top1"])
                )
                out["present" if same else "differ"].append(key)
                continue
            record = other.get(key)
            if record is None:
                continue
            weights = other.weights_path(key)
            self.put(record, weights if weights.is_file() else None)
            out["copied"].append(key)
        for name in other.experiments():
            self.add(name, other.experiment(name), replace=replace)
            out["experiments"].append(name)
        self.set_aside.extend(other.set_aside)
        return out


def merge(sources: Iterable[PathLike], into: Optional[PathLike] = None, replace: bool = False) -> Dict[str, List[str]]:
    """Merge the stores in ``sources`` (results folders of several machines or shards) into ``into``.

    Args:
        sources: results folders to read.
        into: the results folder to fill (default: ``results/`` of this checkout).
        replace: each experiment the sources list replaces the target's list (see
            :meth:`Store.merge_from`); with several sources, the last one listing it wins.

    Returns:
        ``{"copied": keys, "present": keys, "differ": keys, "experiments": names}`` over all sources.
    """
    target = Store(into)
    target.check_writable()
    total: Dict[str, List[str]] = {"copied": [], "present": [], "differ": [], "experiments": []}
    for source in sources:
        if not Path(source).is_dir():
            raise ValueError(f"{source} is not a results folder")
        for k, v in target.merge_from(source, replace=replace).items():
            total[k] += [x for x in v if x not in total[k]]
    return total


# ---- migration from the layout before the store ------------------------------------------


def legacy_folders(root: PathLike) -> List[Path]:
    """Experiment folders of the old layout (``<experiment>/<run>.json``) under ``root``."""
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(
        d for d in root.iterdir() if d.is_dir() and d.name not in (RUNS, EXPERIMENTS) and any(d.glob("*.json"))
    )


@dataclass
class Migration:
    """What :func:`migrate` did.

    Args:
        files: old result files read.
        records: records written (one per distinct run).
        collapsed: old files that were copies of a run already stored (reuse, now a reference).
        weights_kept: keys whose weights were kept.
        weights_dropped: old weights files not kept (no chapter loads them).
        left: old files left in place (unreadable, or a copy that differs from its original).
    """

    files: int = 0
    records: List[str] = field(default_factory=list)
    collapsed: List[str] = field(default_factory=list)
    weights_kept: List[str] = field(default_factory=list)
    weights_dropped: List[str] = field(default_factory=list)
    left: List[str] = field(default_factory=list)


def _without(record: Mapping[str, Any], names: Iterable[str]) -> Dict[str, Any]:
    return {k: v for k, v in record.items() if k not in names}


def _content(record: Mapping[str, Any]) -> Dict[str, Any]:
    """What makes two old files the same run: all but where they were filed and derived names."""
    out = _without(record, (*_LEGACY_FIELDS, "key", "name"))
    config = dict(out["config"])
    config["mask_options"] = RunConfig.from_result(record).normalised_mask_options()
    return {**out, "config": config}


def migrate(
    root: PathLike,
    keep_weights: Optional[Callable[[Dict[str, Any]], bool]] = None,
    log: Callable[[str], None] = print,
) -> Migration:
    """Move the old layout of ``root`` into the store, one record per distinct run.

    Each old file's key is recomputed from its recorded configuration
    (:func:`gmmlib.config.config_key`); files whose content is the same run (copies made for
    reuse, which differ only in ``experiment``/``reused_from``) collapse into one record,
    with ``trained_for`` naming the experiment it was trained for and ``migrated_from`` the
    old key and files. Provenance (versions, git commit, hardware, data source) is kept as
    recorded. Each old experiment folder becomes a list of keys. It is safe to run again
    after an interruption: records already stored are kept, and old files are removed only
    after everything is written.

    Args:
        root: the results folder.
        keep_weights: given a new record, whether to keep its weights (default: keep all).
        log: where one-line messages go.
    """
    root = Path(root)
    store = Store(root)
    report = Migration()
    groups: Dict[str, List[tuple]] = {}
    members: Dict[str, List[str]] = {}
    for folder in legacy_folders(root):
        for path in sorted(folder.glob("*.json")):
            report.files += 1
            try:
                old = json.loads(path.read_text())
                new_key = config_key(old["config"])
            except (ValueError, KeyError, TypeError, UnicodeDecodeError) as e:
                report.left.append(str(path.relative_to(root)))
                log(f"{path.relative_to(root)}: not migrated, unreadable ({type(e).__name__}: {e})")
                continue
            groups.setdefault(new_key, []).append((path, old))
            members.setdefault(folder.name, []).append(new_key)

    removable: List[Path] = []
    for key, files in groups.items():
        # the trained run, not one of its copies: the file the copies name, else one that names none
        named = {o.get("reused_from") for _, o in files}
        path, original = next(
            ((p, o) for p, o in files if str(p.relative_to(root)) in named),
            next(((p, o) for p, o in files if not o.get("reused_from")), files[0]),
        )
        same = [(p, o) for p, o in files if _content(o) == _content(original)]
        for p, _ in files:
            if all(p != q for q, _ in same):
                report.left.append(str(p.relative_to(root)))
                log(f"{p.relative_to(root)}: not migrated, differs from {path.relative_to(root)} beyond its experiment")
        rel = sorted(str(p.relative_to(root)) for p, _ in same)
        record = _without(original, _LEGACY_FIELDS)
        record["key"] = key
        config = RunConfig.from_result(original)
        record["name"] = config.name()
        record["config"] = {**original["config"], "mask_options": config.normalised_mask_options()}
        record["trained_for"] = original.get("experiment") or path.parent.name
        record["migrated_from"] = {"key": original.get("key"), "files": rel}
        weights = [p.with_name(o.get("weights_file") or f"{p.stem}.weights.pt") for p, o in same]
        weights = [w for w in weights if w.is_file()]
        keep = weights and (keep_weights is None or keep_weights(record))
        if key not in store or store.get(key) is None:
            store.put(record, weights[0] if keep else None)
            report.records.append(key)
        if keep:
            report.weights_kept.append(key)
        report.weights_dropped += [str(w.relative_to(root)) for w in weights[1 if keep else 0 :]]
        report.collapsed += rel[1:]
        removable += [p for p, _ in same] + weights

    for experiment, keys in members.items():
        store.add(experiment, keys)
    for p in removable:
        p.unlink(missing_ok=True)
    for folder in legacy_folders(root) + [d for d in root.iterdir() if d.is_dir()]:
        if folder.name not in (RUNS, EXPERIMENTS) and not any(folder.iterdir()):
            folder.rmdir()
    log(
        f"migrated {report.files} files into {len(groups)} runs ({len(report.collapsed)} copies collapsed), "
        f"weights kept for {len(report.weights_kept)}"
        + (f"; left in place: {', '.join(report.left)}" if report.left else "")
    )
    return report
