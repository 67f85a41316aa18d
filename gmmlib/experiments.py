"""The paper's experiments as named grids of runs, and a runner that fills them in.

``gmmlib run EXPERIMENT --preset cpu`` trains every run of the grid that the results
store (:mod:`gmmlib.store`) does not hold yet, one after another or ``--parallel N``
side by side. A run is stored once, under the key of its full configuration
(``results/records/<key>.json``); an experiment is the list of keys it uses
(``results/experiments/<name>.json``), so a run that another experiment already has is
referenced, never trained twice nor copied. Checkpoints live in ``runs/`` (not
committed); a stopped runner started again resumes the runs it was in.

:func:`recorded` and :func:`missing_runs` are the one way to read an experiment's runs:
the runner, :mod:`gmmlib.results` and the book all go through them.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import warnings
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

from .config import PRESETS, RunConfig
from .data.registry import PAPER_DATASETS
from .models.registry import PAPER_FAMILIES
from .store import Store, legacy_folders, migrate

__all__ = [
    "Experiment",
    "EXPERIMENTS",
    "list_experiments",
    "get_experiment",
    "run_experiment",
    "results_dir",
    "matches",
    "recorded",
    "missing_runs",
    "stale_runs",
    "keeps_weights",
]

_SEEDS3 = (0, 1, 2)
# Experiment 1's grid is the paper's table: its families and data sets, in its order (the registries own both).
_FAMILIES = PAPER_FAMILIES
_DATASETS = PAPER_DATASETS


@dataclass(frozen=True)
class Experiment:
    """A named grid of runs.

    Args:
        name: registry name.
        title: one line for listings and the book.
        grid: the runs, as RunConfig keyword dicts (preset is added at run time).
        weights: filter (see :func:`matches`) of the runs whose final weights the store
            keeps because a chapter loads them; None keeps none.
    """

    name: str
    title: str
    grid: Callable[[], List[Dict[str, Any]]]
    weights: Optional[str] = None

    def configs(self, preset: str, dataset: Optional[str] = None) -> List[RunConfig]:
        """The runs of this experiment under ``preset`` (all on ``dataset`` if given)."""
        configs, seen = [], set()
        for kw in self.grid():
            config = RunConfig(preset=preset, **{**kw, **({"dataset": dataset} if dataset else {})})
            if config.key() not in seen:
                seen.add(config.key())
                configs.append(config)
        return configs


def _vit(mask: Optional[str] = None, pool: str = "gap", seed: int = 0, **mask_options) -> Dict[str, Any]:
    return dict(model="vit", mask=mask, pool=pool, dataset="cifar10", seed=seed, mask_options=mask_options)


EXPERIMENTS: Dict[str, Experiment] = {
    e.name: e
    for e in [
        Experiment(
            "headline",
            "ViT vs GMM-ViT (K = 5), both with GAP pooling, CIFAR-10, 3 seeds",
            lambda: [_vit(mask, seed=s) for s in _SEEDS3 for mask in (None, "gmm")],
            weights="seed=0",  # chapter 8 rebuilds the seed-0 ViT and GMM-ViT from their weights
        ),
        Experiment(
            "headline-paper",
            "The headline at the paper's scale: ViT vs GMM-ViT (K = 5, GAP), CIFAR-10, seed 0 (--preset paper, a GPU)",
            # its own experiment, so that the cpu-scale headline and its seeds stay as they are
            lambda: [_vit(mask, seed=0) for mask in (None, "gmm")],
        ),
        Experiment(
            "exp1",
            "Experiment 1: five ViT families x four data sets, without and with GMM",
            lambda: [
                dict(model=m, mask=mask, dataset=d, pool="gap" if m == "vit" else None)
                for d in _DATASETS
                for m in _FAMILIES
                for mask in (None, "gmm")
            ],
        ),
        Experiment(
            "exp2-kernels",
            "Experiment 2a: number of Gaussian kernels K of GMM-ViT on CIFAR-10",
            # The unmasked ViT is the baseline each K is measured against. K = 5 with the official
            # init is the default GMM: options are normalised before hashing, so it is the headline's run.
            lambda: [_vit(None)] + [_vit("gmm", num_kernels=k) for k in (1, 2, 3, 4, 5, 8, 10)],
        ),
        Experiment(
            "exp2-init",
            "Experiment 2b: initialisation of alpha and sigma of GMM-ViT on CIFAR-10",
            lambda: [_vit(None)] + [_vit("gmm", init=i) for i in ("official", "identity", "zeros", "local")],
        ),
        Experiment(
            "exp3",
            "Experiment 3: GMM-ViT against Swin and CaiT, with and without GMM, and their cost",
            lambda: (
                [_vit(None), _vit("gmm")]
                + [dict(model=m, mask=mask, dataset="cifar10") for m in ("swin", "cait") for mask in (None, "gmm")]
            ),
        ),
        Experiment(
            "elm",
            "No mask vs ELM vs GMM on ViT, CIFAR-10",
            lambda: [_vit(None), _vit("elm"), _vit("gmm")],
        ),
        Experiment(
            "retnet",
            "RetNet-style decay masks on ViT, CIFAR-10: 2-D Manhattan (RMT), Euclidean, 1-D causal",
            lambda: [_vit(None)] + [_vit("retnet", distance=d) for d in ("manhattan", "euclidean", "causal")],
        ),
        Experiment(
            "pooling",
            "The pooling confound: CLS vs GAP, each without and with GMM, on ViT, CIFAR-10",
            lambda: [_vit(mask, pool=p) for p in ("cls", "gap") for mask in (None, "gmm")],
        ),
        Experiment(
            "beyond",
            "Beyond the paper: RMT decay, 2-D ALiBi and a Swin-style relative bias on ViT, CIFAR-10",
            lambda: [_vit(None), _vit("gmm"), _vit("retnet", distance="manhattan"), _vit("alibi2d"), _vit("relpos")],
        ),
    ]
}


def list_experiments() -> List[str]:
    """Names accepted by :func:`run_experiment`."""
    return list(EXPERIMENTS)


def get_experiment(name: str) -> Experiment:
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}; choices: {', '.join(EXPERIMENTS)}")
    return EXPERIMENTS[name]


def results_dir(path: Optional[str | Path] = None) -> Path:
    """The results folder: ``path``, ``GMMLIB_RESULTS``, or ``results/`` of this checkout."""
    if path is not None:
        return Path(path)
    if os.environ.get("GMMLIB_RESULTS"):
        return Path(os.environ["GMMLIB_RESULTS"])
    return Path(__file__).resolve().parents[1] / "results"


def run_command(experiment: str, preset: str = "cpu", only: Optional[str] = None) -> str:
    """The command line that runs (the missing runs of) an experiment."""
    cmd = f"python -m gmmlib run {experiment} --preset {preset}"
    return f"{cmd} --only {only}" if only else cmd


def run_file_name(config: RunConfig) -> str:
    return f"{config.name()}-{config.preset}"


def matches(config: RunConfig, only: Optional[str]) -> bool:
    """Does ``config`` pass the filter? ``only`` is a substring of the run name, or
    comma-separated ``field=value`` pairs (``mask=none`` matches no mask)."""
    if not only:
        return True
    if "=" not in only:
        return only in run_file_name(config)
    fields = dataclasses.asdict(config)
    for pair in only.split(","):
        key, _, value = pair.partition("=")
        key = key.strip()
        if key not in fields:
            raise ValueError(f"unknown filter field {key!r}; fields: {', '.join(fields)}")
        actual = fields[key]
        if str(actual if actual is not None else "none").lower() != value.strip().lower():
            return False
    return True


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


def keeps_weights(config: RunConfig) -> bool:
    """Whether the store keeps this run's final weights: some experiment's ``weights`` filter selects it."""
    key = config.key()
    for e in EXPERIMENTS.values():
        if e.weights and matches(config, e.weights):
            for dataset in (None, config.dataset):
                if key in {c.key() for c in e.configs(config.preset, dataset)}:
                    return True
    return False


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


@dataclass(frozen=True)
class _Job:
    """One training, as a worker process receives it (everything picklable)."""

    config: RunConfig
    out_dir: str
    root: Optional[str]
    device: Optional[str]
    progress: bool
    compile: Optional[bool]
    data_pipeline: Optional[str]
    threads: Optional[int] = None


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__


def _train_job(job: _Job) -> Tuple[str, Any]:
    """Train one run (in this process or a worker): ("ok", result), ("missing_data", why) or ("failed", why)."""
    import torch

    from .data import DataNotFoundError
    from .train import train

    if job.threads:
        torch.set_num_threads(job.threads)
    extra = {k: v for k, v in (("compile", job.compile), ("data_pipeline", job.data_pipeline)) if v is not None}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="no checkpoint in")  # the runner always resumes when it can
        try:
            result = train(
                job.config, job.out_dir, resume=True, root=job.root, device=job.device, progress=job.progress, **extra
            )
        except DataNotFoundError as e:
            return "missing_data", _one_line(e)
        except Exception as e:  # one failed run must not stop the others; the reason is reported
            return "failed", f"{type(e).__name__}: {_one_line(e)}"
    return "ok", result


def _final_weights(out_dir: Path) -> Optional[Path]:
    """The trained weights train() wrote to ``out_dir`` (``weights.pt``, before its result), if any."""
    path = out_dir / "weights.pt"
    return path if path.is_file() else None


def _resolve_device(device: Optional[str]) -> Optional[str]:
    """Check a device name before any data loads (ValueError naming it); None stays None (train's default)."""
    if device is None:
        return None
    from .train import resolve_device

    return str(resolve_device(device))


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
) -> RunOutcome:
    """Train every run of an experiment that the store lacks, and list them all under the experiment.

    Everything is checked before any data loads: the experiment, preset, filter, every
    run's configuration, the device and the folders. A run another experiment already
    has is added to this one's list (reused); a run in progress resumes from
    ``work_dir``. The parent process alone writes the store.

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
        parallel: train this many runs side by side, each in its own process (spawned)
            with ``cpu_count // parallel`` torch threads; each run is seeded, checkpointed,
            resumed and recorded as if it ran alone.
        compile: ``torch.compile`` the models (None: train()'s default).
        data_pipeline: "auto", "cpu" or "gpu" (None: train()'s default).
        shard: ``(i, n)``: train only the runs at positions ``p`` of the (filtered) grid with
            ``p % n == i``, so that n machines (a Slurm job array, n Colab sessions) share a grid
            without overlap, whatever each one has already finished; runs recorded by any
            machine are still listed.

    Returns:
        A :class:`RunOutcome`: run names by outcome ("trained", "skipped" (already listed),
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
    mine = {c.key() for c in shard_of(configs, shard)}
    # Under torchrun every rank runs this loop and trains the same runs together; rank 0 alone writes.
    world, lead = int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("RANK", "0")) == 0
    if world > 1 and parallel > 1:
        raise ValueError("--parallel cannot be combined with torchrun: each run already uses every process")
    if not lead:
        log = lambda message: None  # noqa: E731  (rank 0 reports)
    device = _resolve_device(device)
    store = Store(results_dir(results), repair=lead)
    store.check_writable()
    from .store import check_folder_writable

    check_folder_writable(work_dir, "work folder")
    if lead and legacy_folders(store.root):
        log(f"{store.root}: results in the old layout, moving them into the store")
        migrate(store.root, keep_weights=lambda r: keeps_weights(RunConfig.from_result(r)), log=log)

    outcome = RunOutcome()
    missing = {c.key() for c in missing_runs(name, preset, dataset=dataset, store=store)}
    todo: List[RunConfig] = []
    for config in configs:
        run, key = run_file_name(config), config.key()
        if key not in missing:
            outcome["skipped"].append(run)
        elif store.get(key) is not None:  # recorded for another experiment: list it here too
            if lead:
                store.add(name, [key])
            outcome["reused"].append(run)
            log(f"{name}/{run}: already recorded ({key}), listed")
        elif key in mine:
            todo.append(config)
        else:
            outcome["other_shard"].append(run)
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
            store.put(record, weights)
            store.add(name, [record["key"]])
        outcome["trained"].append(run)
        log(f"{name}/{run}: best top-1 {payload['best_top1']:.2f}, final {payload['final_top1']:.2f}")

    jobs = []
    for config in todo:
        out_dir = Path(work_dir) / f"{run_file_name(config)}-{config.key()}"
        jobs.append(
            _Job(
                config,
                str(out_dir),
                None if root is None else str(root),
                device,
                progress and parallel == 1,
                compile,
                data_pipeline,
            )
        )
    if parallel == 1:
        for job in jobs:
            log(f"{name}/{run_file_name(job.config)}: training ({job.config.key()})")
            status, payload = _train_job(job)
            finish(job.config, status, payload, Path(job.out_dir))
    elif jobs:
        threads = max(1, (os.cpu_count() or 1) // parallel)
        jobs = [dataclasses.replace(job, threads=threads) for job in jobs]
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=min(parallel, len(jobs)), mp_context=context) as pool:
            pending = {}
            for job in jobs:
                log(f"{name}/{run_file_name(job.config)}: training ({job.config.key()}) in a worker process")
                pending[pool.submit(_train_job, job)] = job
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    job = pending.pop(future)
                    try:
                        status, payload = future.result()
                    except Exception as e:  # the worker process itself died
                        status, payload = "failed", f"{type(e).__name__}: {_one_line(e)}"
                    finish(job.config, status, payload, Path(job.out_dir))
    return outcome


def describe(names: Optional[Iterable[str]] = None) -> str:
    """A listing of experiments and their run counts."""
    lines = []
    for n in names or EXPERIMENTS:
        e = get_experiment(n)
        lines.append(f"{n:14s} {len(e.grid()):3d} runs  {e.title}")
    return "\n".join(lines)
