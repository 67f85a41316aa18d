"""The results store: one record per run, and experiments as lists of run keys.

Layout of a results folder (default: ``results/`` of this checkout)::

    records/<key>.json         one record per trained run: its configuration, history, top-1,
                               cost, learned mask parameters and provenance
    records/<key>.weights.pt   its final weights, kept only for runs a chapter loads
    experiments/<name>.json    {"experiment": name, "runs": [key, ...]}

A run's key is :func:`gmmlib.training.config_key` of its configuration, so a run that
several experiments share is trained and stored once, and each experiment lists its key:
reuse is a reference, never a copy. Every file is written atomically
(:func:`gmmlib.files.atomic_write`), weights before the record that names them.

A file that cannot be read as what it should be (half written by hand, a merge gone
wrong, a list where a record should be, a field missing or of another type: :mod:`.schema`)
is reported with its path, once per store, as is a listed key without a record; a store
opened with ``repair=True`` (the runner) sets it aside as ``<file>.corrupt`` so that the rest
goes on. Lists are changed under the store's lock (:meth:`Store.locked`), so two processes
writing one store lose no key; a merge holds it throughout, and the runner writes a record and its listing
under it. Which process trains a run is settled by a claim on it (:mod:`.claims`).
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, List, Mapping, Optional, Union

from ..files import atomic_copy, check_folder_writable, save_torch, write_json, written_together
from ..training.provenance import hardware_kind
from .schema import record_problem

__all__ = ["PathLike", "RUNS", "EXPERIMENTS", "SetAside", "Store"]


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


@dataclass
class _Held:
    """The lock this process holds on one store folder: a second flock on a new descriptor would wait for the first."""

    lock: threading.RLock = field(default_factory=threading.RLock)
    depth: int = 0
    fd: int = -1


_HELD: Dict[Path, _Held] = {}
_HELD_GUARD = threading.Lock()


def _forget_held() -> None:
    # a forked child holds no lock of its own, whatever its parent held: it takes the flock itself when it needs it
    global _HELD_GUARD
    _HELD.clear()
    _HELD_GUARD = threading.Lock()


os.register_at_fork(after_in_child=_forget_held)


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
            from .paths import results_dir

            root = results_dir()
        self.root = Path(root)
        self.repair = repair
        self.set_aside: List[SetAside] = []
        self._noted: set = set()  # each fault is named once per store, however often it is read

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

    def shared_folder(self, other: "Store") -> Optional[Path]:
        """The first of this store's folders (root, records, experiments) that is also one of ``other``'s
        once links are resolved, or None: two roots can differ while a linked ``records/`` is one folder."""
        theirs = {p.resolve() for p in (other.root, other.records_dir, other.experiments_dir)}
        return next((p for p in (self.root, self.records_dir, self.experiments_dir) if p.resolve() in theirs), None)

    def check_writable(self) -> None:
        """Raise a clear ValueError when the results folder cannot be written (before any training)."""
        check_folder_writable(self.root, "results folder")
        for sub in (self.records_dir, self.experiments_dir):
            if sub.exists() and not sub.is_dir():
                raise ValueError(f"{sub} is a file; the results folder needs a folder there")
            if sub.is_dir():  # a writable root over a read-only records/ would fail at the first run's end
                check_folder_writable(sub, "results folder")

    # ---- reading -----------------------------------------------------------------------
    def _note(self, message: str) -> None:
        if message not in self._noted:
            self._noted.add(message)
            warnings.warn(message, stacklevel=4)

    def _reject(self, path: Path, reason: str) -> None:
        moved = None
        if self.repair:
            moved = _unique_aside(path)
            os.replace(path, moved)
        entry = SetAside(path, reason, moved)
        self.set_aside.append(entry)  # every time it is read: a caller counts what it could not read
        if not self.repair:
            self._note(f"{entry}; `python -m gmmlib run` sets such files aside")

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

        return self._read(self.record_path(key), lambda data: record_problem(data, key))

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
        """The records an experiment lists, sorted by run name and preset; a listed key without a record is named
        in a warning and skipped."""
        records = []
        for key in self.experiment(experiment):
            record = self.get(key)
            if record is not None:
                records.append(record)
            elif not self.record_path(key).exists() and not any(  # an unreadable one was named as it was read
                entry.path == self.record_path(key) for entry in self.set_aside
            ):
                self._note(f"{self.index_path(experiment)} lists {key}, which has no record in {self.records_dir}")
        return sorted(records, key=lambda r: (f"{r.get('name', '')}-{r['config'].get('preset', '')}", r["key"]))

    def audit(self) -> List[str]:
        """Read every record and list of the store, naming each fault in one warning: a record that cannot be
        read as one (bad JSON, a wrong type, a missing field, a file name that is not its key) and a listed key
        without a record. Returns the messages (empty for a sound store)."""
        for key in self.keys():
            self.get(key)
        for name in self.experiments():
            self.load(name)
        return sorted(self._noted | {str(e) for e in self.set_aside})

    # ---- writing -----------------------------------------------------------------------
    def put(self, record: Mapping[str, Any], weights: Union[None, PathLike, Mapping[str, Any]] = None) -> Path:
        """Store one run's record (and its weights: a file to copy, or a state dict).

        The weights are written first, so a record never names a file that is not there; both land together.

        Raises:
            gmmlib.files.NotWritten: the folder is full or read-only (one line naming it); the files are as they were.
        """
        key = record["key"]
        record = dict(record)
        # both files land together or neither: a full disk between them would leave new weights under the old record
        with written_together():
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
        with self.locked():
            current = self.experiment(experiment)
            merged = sorted((set(keys) if replace else set(current) | set(keys)) - (drop - set(keys)))
            if merged != current or not self.index_path(experiment).is_file():
                write_json(self.index_path(experiment), {"experiment": experiment, "runs": merged})
        return merged

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the store's lock: another process's :meth:`add`, or a promote's read-modify-write of the lists and
        what they name, waits until the block ends. Re-entrant within a process (through any Store of the folder).
        """
        # a lock on the folder itself: no lock file to leave behind in a committed store
        folder = self.experiments_dir.resolve()  # one lock per folder, whichever link names it
        folder.mkdir(parents=True, exist_ok=True)
        with _HELD_GUARD:
            held = _HELD.setdefault(folder, _Held())
        with held.lock:  # threads of this process queue here; one flock per process and folder
            if held.depth == 0:
                fd = os.open(folder, os.O_RDONLY)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX)
                except BaseException:  # interrupted while waiting: nothing held, nothing left open
                    os.close(fd)
                    raise
                held.fd = fd
            held.depth += 1
            try:
                yield
            finally:
                held.depth -= 1
                if held.depth == 0:
                    os.close(held.fd)  # closing releases the lock

    def merge_from(self, other: Union["Store", PathLike], replace: bool = False) -> Dict[str, List[str]]:
        """Bring another store's records (with their weights) and experiment lists into this one.

        A record this store lacks, or holds only as a file it cannot read, is copied (the unreadable
        file is set aside as ``<file>.corrupt``); one it has already is kept as it is (the same key
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
        # under this store's lock: a promote beside it must not remove a record this merge is about to list
        with self.locked():
            for key in other.keys():
                record = other.get(key)
                if key in self:
                    mine = self.get(key)
                    if mine is None and record is not None:
                        # this store's file is unreadable (named as it was read): the source's record repairs it,
                        # and the bad file stays beside it for a look (a store with repair=True moved it already)
                        path = self.record_path(key)
                        if path.exists():
                            os.replace(path, _unique_aside(path))
                    else:
                        same = (
                            mine is None
                            or record is None
                            or (
                                hardware_kind(mine) == hardware_kind(record)
                                and mine["best_top1"] == record["best_top1"]
                            )
                        )
                        out["present" if same else "differ"].append(key)
                        continue
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
