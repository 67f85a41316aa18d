"""The runner: train every run of an experiment's grid that the store lacks, and list them under it.

``gmmlib run EXPERIMENT --preset cpu`` trains the missing runs one after another, or
``--parallel N`` side by side (a fresh process for every run, run i on GPU i mod the GPU count), or
under ``torchrun`` each run on every process, or ``--shard i/n`` only every n-th run of the grid so
that several machines share it. Whatever the route, the parent process (rank 0) alone writes the store.

Several runners may fill one results folder at once (two terminals, overlapping grids): each run is claimed
(:mod:`gmmlib.store.claims`) just before it trains, so it trains once; a runner that finds a run claimed says so
in one line, trains its other runs, then waits for that one and lists it once recorded (or trains it, when its
holder ended without a record). SIGINT or SIGTERM stops the runs in progress at their last checkpoint.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

from ..files import check_folder_writable
from ..store.claims import Claim, claim_path, clear_left, holder
from ..store.paths import results_dir
from ..store.records import Store
from ..training.checkpoint import Interrupted, code_mismatch
from ..training.config import PRESETS, RunConfig, data_path_name
from ..training.runtime import resolve_device
from .grids import get_experiment, keeps_weights, matches, run_file_name
from .jobs import _fetch_once, _in_fresh_processes, _Job, _train_job, job_devices
from .status import missing_runs, stale_runs

__all__ = [
    "RunOutcome",
    "WEIGHTS_LIMIT_BYTES",
    "checked_device",
    "job_devices",
    "parse_shard",
    "run_experiment",
    "shard_of",
]


# Weights of bigger models (the paper preset's) are not kept: the repository stays small.
WEIGHTS_LIMIT_BYTES = 2 << 20


class RunOutcome(dict):
    """Run names by outcome ("trained", "skipped", "reused", "missing_data", "failed", "corrupt"),
    with ``reasons``: a one-line reason per run (or file) that did not succeed."""

    OUTCOMES = ("trained", "skipped", "reused", "missing_data", "failed", "corrupt", "other_shard")

    def __init__(self) -> None:
        super().__init__({k: [] for k in self.OUTCOMES})
        self.reasons: Dict[str, str] = {}

    @property
    def ok(self) -> bool:
        """True when no run failed or lacked data and no file was corrupt."""
        return not (self["missing_data"] or self["failed"] or self["corrupt"])


def _final_weights(out_dir: Path) -> Optional[Path]:
    """The trained weights train() wrote to ``out_dir`` (``weights.pt``, before its result), if any."""
    path = out_dir / "weights.pt"
    return path if path.is_file() else None


def _other_store(path: Optional[str | Path], store: Store) -> Optional[Store]:
    if path is None:
        return None
    if not Path(path).is_dir():
        raise ValueError(f"reuse_from {path} is not a results folder")
    if Path(path).resolve() == store.root.resolve():
        raise ValueError(f"reuse_from {path} is the results folder being filled; name another one")
    return Store(path)


def _clean(record: Optional[Dict[str, Any]]) -> bool:
    """A record made from unmodified code (a rerun trains a run again rather than reuse a modified one)."""
    return record is not None and not record.get("git", {}).get("gmmlib_modified", True)


def checked_device(device: Optional[str]) -> Optional[str]:
    """Check a device name before any data loads (ValueError naming it); None stays None (train's default)."""
    return None if device is None else str(resolve_device(device))


def parse_shard(text: str) -> Tuple[int, int]:
    """``"i/n"`` (0 <= i < n) as ``(i, n)``; ValueError naming the text otherwise."""
    i, sep, n = str(text).partition("/")
    try:
        shard = (int(i), int(n))
    except ValueError:
        shard = (-1, 0)
    if not sep or not 0 <= shard[0] < shard[1]:
        raise ValueError(f"shard must be i/n with 0 <= i < n (e.g. 0/4), got {text!r}")
    return shard


def shard_of(configs: List[RunConfig], shard: Optional[Tuple[int, int]]) -> List[RunConfig]:
    """The runs of ``configs`` (in grid order) that shard ``(i, n)`` trains: every n-th from the i-th."""
    if shard is None:
        return list(configs)
    i, n = parse_shard(f"{shard[0]}/{shard[1]}")
    return [c for p, c in enumerate(configs) if p % n == i]


def run_experiment(
    name: str,
    preset: str = "cpu",
    only: Optional[str] = None,
    dataset: Optional[str] = None,
    results: Optional[str | Path] = None,
    work_dir: str | Path = "runs",
    root: Optional[str | Path] = None,
    device: Optional[str] = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
    parallel: int = 1,
    compile: Optional[bool] = None,
    data_pipeline: Optional[str] = None,
    shard: Optional[Tuple[int, int]] = None,
    reuse_from: Optional[str | Path] = None,
    download: bool = False,
    precision: Optional[str] = None,
) -> RunOutcome:
    """Train every run of an experiment that the store lacks, and list them all under the experiment.

    Everything is checked before any data loads: the experiment, preset, filter, every
    run's configuration, the device and the folders. A run another experiment already
    has is added to this one's list (reused); a run in progress resumes from
    ``work_dir`` when the same code made its checkpoint, and trains afresh otherwise. A run recorded under an older configuration (stale) leaves the list once its
    current version is listed. Runs train seed by seed, in the grid's order within a seed. The
    parent process alone writes the store.

    Args:
        name: experiment name (see :func:`list_experiments`).
        preset: training preset ("paper", "cpu", "quick").
        only: filter (see :func:`matches`).
        dataset: run the whole grid on this data set instead of the grid's own.
        results: results folder (default :func:`results_dir`).
        work_dir: folder for checkpoints of runs in progress.
        root: data root.
        device: torch device.
        progress: tqdm bars (sequential runs only).
        log: where one-line status messages go.
        parallel: train this many runs side by side, each in a fresh process (spawned) with
            ``cpu_count // parallel`` torch threads, run i on ``cuda:(i mod the GPU count)`` unless
            ``device`` names one; each run is seeded, checkpointed, resumed and recorded as if it ran alone.
        compile: ``torch.compile`` the models (None: train()'s default).
        data_pipeline: the data path, which must be the grid's own (it is part of every run's key); None: the grid's.
        shard: ``(i, n)``: train only the runs at positions ``p`` of the (filtered) grid with
            ``p % n == i``, so that n machines (a Slurm job array, n Colab sessions) share a grid
            without overlap, whatever each one has already finished; runs recorded by any
            machine are still listed.
        reuse_from: another results folder (for a rerun trained into ``results/pending``: the book's
            ``results/``) whose runs, recorded from unmodified code, are not trained again here, nor
            copied; :func:`gmmlib.experiments.promote.promote` brings the two together once the rerun is complete.
        download: fetch every split of the grid's data sets with torchvision first (needs internet).
        precision: "float32", "float16" or "bfloat16" instead of the run plan's (see :func:`train`).

    Returns:
        A :class:`RunOutcome`: run names by outcome ("trained", "skipped" (already listed, or in ``reuse_from``),
        "reused" (recorded for another experiment, now listed here too), "missing_data",
        "failed", "corrupt" (files set aside)), with a reason for each failure.
    """
    experiment = get_experiment(name)
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choices: {', '.join(PRESETS)}")
    if not isinstance(parallel, int) or isinstance(parallel, bool) or parallel < 1:
        raise ValueError(f"parallel must be a positive int, got {parallel!r}")
    configs = [c for c in experiment.configs(preset, dataset) if matches(c, only)]
    if not configs:
        raise ValueError(f"filter {only!r} matches no run of {name!r}")
    if data_pipeline is not None:
        path = data_path_name(data_pipeline)
        other = sorted({c.data_path for c in configs} - {path})
        if other:  # the path is part of each run's key: the grid would never list what this trained
            raise ValueError(
                f"experiment {name!r} runs on the {' and '.join(other)} data path at the {preset} preset; "
                f"--data-pipeline {data_pipeline} would train runs its grid does not list (leave it out)"
            )
        data_pipeline = None
    mine = {c.key() for c in shard_of(configs, shard)}
    # Under torchrun every rank runs this loop and trains the same runs together; rank 0 alone writes.
    world, lead = int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("RANK", "0")) == 0
    if world > 1 and parallel > 1:
        raise ValueError("--parallel cannot be combined with torchrun: each run already uses every process")
    if not lead:
        log = lambda message: None  # noqa: E731  (rank 0 reports)
    device = checked_device(device)
    store = Store(results_dir(results), repair=lead)
    store.check_writable()
    elsewhere = _other_store(reuse_from, store)
    check_folder_writable(work_dir, "work folder")

    outcome = RunOutcome()
    missing = {c.key() for c in missing_runs(name, preset, dataset=dataset, store=store)}
    # a run of an older configuration (stale) leaves the list when its current version is listed,
    # so that no row of a table holds the same seed twice
    superseded: Dict[str, List[str]] = {}
    for r in stale_runs(name, preset, store=store):
        superseded.setdefault(f"{r['name']}-{preset}", []).append(r["key"])
    todo: List[RunConfig] = []
    for config in configs:
        run, key = run_file_name(config), config.key()
        if key not in missing:
            if lead and superseded.get(run):  # listed beside its stale twin (e.g. by a merge): the twin leaves
                store.add(name, [key], drop=superseded[run])
            outcome["skipped"].append(run)
        elif store.get(key) is not None:  # recorded for another experiment: list it here too
            if lead:
                store.add(name, [key], drop=superseded.get(run, ()))
            outcome["reused"].append(run)
            log(f"{name}/{run}: already recorded ({key}), listed")
        elif elsewhere is not None and _clean(elsewhere.get(key)):
            outcome["skipped"].append(run)
            log(f"{name}/{run}: recorded in {elsewhere.root} ({key}), not trained again")
        elif key in mine:
            todo.append(config)
        else:
            outcome["other_shard"].append(run)
    # seed by seed (the grid's order within a seed): a grid cut short leaves whole seeds, on which
    # every setting is paired with the same baseline run
    todo.sort(key=lambda c: c.seed)
    if download and todo:
        _fetch_once(sorted({c.dataset for c in todo}), root, device, world)
    for entry in store.set_aside:
        outcome["corrupt"].append(str(entry.path))
        outcome.reasons[str(entry.path)] = str(entry)
        log(str(entry))

    def finish(config: RunConfig, status: str, payload: Any, out_dir: Path) -> None:
        run = run_file_name(config)
        if status != "ok":
            outcome[status].append(run)
            outcome.reasons[run] = payload
            log(f"{name}/{run}: not trained, {'data missing' if status == 'missing_data' else 'failed'}: {payload}")
            return
        weights = _final_weights(out_dir) if keeps_weights(config) else None
        if weights is not None and weights.stat().st_size >= WEIGHTS_LIMIT_BYTES:
            weights = None
        record = {k: v for k, v in payload.items() if k not in ("experiment", "reused_from", "weights_file")}
        record["trained_for"] = name
        record["parallel"] = parallel
        if lead:
            with store.locked():  # the record and its listing land together for a promote or merge beside it
                store.put(record, weights)
                store.add(name, [record["key"]], drop=superseded.get(run, ()))
        outcome["trained"].append(run)
        log(f"{name}/{run}: best top-1 {payload['best_top1']:.2f}, final {payload['final_top1']:.2f}")

    claims: Dict[str, Claim] = {}  # the results folder's claims on the runs this runner trains now
    deferred: List[_Job] = []  # runs another process was training when their turn came

    def start(job: _Job, wait: bool) -> bool:
        """Claim a run in the results folder just before it trains: False when another process trains it (it waits
        for a later round) or recorded it meanwhile (it is listed)."""
        run, key = run_file_name(job.config), job.config.key()
        where = f" in a fresh process{f' on {job.device}' if job.device else ''}" if parallel > 1 else ""
        if world > 1:  # torchrun: the ranks train every run together and claim none from each other
            log(f"{name}/{run}: training ({key}){where}")
            return True
        claim = _claim(store.root, key, wait, lambda says: log(f"{name}/{run}: {says}"))
        if claim is None:
            log(
                f"{name}/{run}: {holder(claim_path(store.root, key))} is training it: skipped until the others are done"
            )
            deferred.append(job)
            return False
        if claim.took_over:
            log(f"{name}/{run}: {claim.took_over} ended without releasing its claim on this run: taken over")
        if store.get(key) is not None:
            claim.release()
            store.add(name, [key], drop=superseded.get(run, ()))
            outcome["reused"].append(run)
            log(f"{name}/{run}: recorded by another process meanwhile ({key}), listed")
            return False
        if wait:  # a worker that a runner killed with -9 left behind may still train it in the work folder
            _claim(Path(job.out_dir).parent, key, True, lambda says: log(f"{name}/{run}: {says}")).release()
        claims[key] = claim
        log(f"{name}/{run}: training ({key}){where}")
        return True

    def done(job: _Job, status: str, payload: Any) -> None:
        claim = claims.pop(job.config.key(), None)
        try:
            if status == "busy":  # its work folder's claim: a runner of another results folder trains it there
                log(f"{name}/{run_file_name(job.config)}: {payload} is training it in {work_dir}: skipped for now")
                deferred.append(job)
            else:
                finish(job.config, status, payload, Path(job.out_dir))
        finally:
            if claim is not None:
                claim.release()

    jobs = []
    for config in todo:
        out_dir = Path(work_dir) / f"{run_file_name(config)}-{config.key()}"
        mismatch = code_mismatch(out_dir / "checkpoint.pt") if (out_dir / "checkpoint.pt").is_file() else None
        if mismatch is not None:
            log(f"{name}/{run_file_name(config)}: {mismatch}: training it afresh")
        jobs.append(
            _Job(
                config,
                str(out_dir),
                None if root is None else str(root),
                device,
                progress and parallel == 1,
                compile,
                data_pipeline,
                precision=precision,
            )
        )
    if parallel > 1 and jobs:
        threads = max(1, (os.cpu_count() or 1) // parallel)
        devices = job_devices(device, len(jobs))
        jobs = [dataclasses.replace(job, threads=threads, device=d) for job, d in zip(jobs, devices)]
    waiting = False  # the first round skips the runs another process trains; the next ones wait for them, one by one
    try:
        while jobs:
            if parallel == 1:
                for job in jobs:
                    if start(job, waiting):
                        done(job, *_train_job(job))
            else:
                side_by_side = 1 if waiting else parallel  # a wait while this runner holds claims could deadlock
                for job, status, payload in _in_fresh_processes(
                    _train_job, jobs, side_by_side, lambda job: start(job, waiting)
                ):
                    done(job, *(("failed", payload) if status == "died" else payload))
            jobs, waiting = list(deferred), True
            deferred.clear()
    except Interrupted as e:
        e.left = f"the runs in progress resume from their checkpoints in {work_dir} when the same command runs again"
        raise
    finally:
        for claim in claims.values():
            claim.release()
    if world == 1:  # a claim a killed runner left on a run that is done now would otherwise stay for good
        for folder in (store.root, Path(work_dir)):
            clear_left(folder, (c.key() for c in configs))
    return outcome


def _claim(folder: Path, key: str, wait: bool, say: Callable[[str], None]) -> Optional[Claim]:
    """Run ``key``'s claim in ``folder``; if another process holds it: None, or with ``wait`` its release, said."""
    claim = Claim.take(folder, key)
    if claim is None and wait:
        say(f"waiting for {holder(claim_path(folder, key))} to finish it")
        claim = Claim.take(folder, key, wait=True)
    return claim
