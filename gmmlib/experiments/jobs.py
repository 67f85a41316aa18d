"""How the runner trains its runs: one job per run, in this process or each in a fresh one (``--parallel``).

The process that trains a run holds its claim in the work folder (:class:`gmmlib.store.claims.Claim`): two
runners whose results folders differ but whose work folder is one (the default ``runs/``) never write one
checkpoint side by side, and a worker left running by a runner killed with -9 keeps its run until it ends.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import warnings
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, List, Optional, Sequence, Tuple, TypeVar

from ..store.claims import Claim, claim_path, holder
from ..training.config import RunConfig

__all__ = ["job_devices"]


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
    precision: Optional[str] = None


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__


def _train_job(job: _Job) -> Tuple[str, Any]:
    """Train one run (in this process or a worker): ("ok", result), ("missing_data", why), ("failed", why) or
    ("busy", who) when another process holds the run's claim in the work folder."""
    together = int(os.environ.get("WORLD_SIZE", "1")) > 1
    work, key = Path(job.out_dir).parent, job.config.key()
    # under torchrun the job's ranks train the run together: none of them claims it from the others
    claim = None if together else Claim.take(work, key)
    if claim is None and not together:
        return "busy", holder(claim_path(work, key))
    with claim or nullcontext():
        return _train(job, together)


def _train(job: _Job, together: bool) -> Tuple[str, Any]:
    import torch

    from ..data import DataNotFoundError
    from ..training.loop import train

    if job.threads:
        torch.set_num_threads(job.threads)
    extra = {
        k: v
        for k, v in (("compile", job.compile), ("data_pipeline", job.data_pipeline), ("precision", job.precision))
        if v is not None
    }
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="no checkpoint in")  # the runner always resumes when it can
        warnings.filterwarnings("ignore", message=".* was made by other code")  # the parent logs it
        try:
            # a checkpoint of other code is trained afresh: continued, its numbers would pass for this code's
            result = train(
                job.config,
                job.out_dir,
                resume=True,
                root=job.root,
                device=job.device,
                progress=job.progress,
                other_code="restart",
                **extra,
            )
        except Exception as e:
            if together:
                # under torchrun a rank that moved on to the next run would wait in a collective the others
                # never join: the failure ends the job on every rank (torchrun stops the others)
                raise
            if isinstance(e, DataNotFoundError):
                return "missing_data", _one_line(e)
            return "failed", f"{type(e).__name__}: {_one_line(e)}"  # one failed run must not stop the others
    return "ok", result


def _fetch_once(datasets: List[str], root: Optional[str | Path], device: Optional[str], world: int) -> None:
    """Download the data sets before any run starts, by one process per machine: parallel runs and torchrun's
    ranks must not write the same files side by side (the others wait for it under torchrun)."""
    from ..data import fetch

    if int(os.environ.get("LOCAL_RANK", "0")) == 0:
        for dataset in datasets:
            fetch(dataset, root)
    if world > 1:
        from torch import distributed as dist

        from ..training.runtime import init_distributed

        init_distributed(device)
        dist.barrier()


def job_devices(device: Optional[str], jobs: int) -> List[Optional[str]]:
    """The device of each of ``jobs`` parallel runs: run i on ``cuda:(i mod the GPU count)`` when ``device`` is
    None or "cuda" on a machine with GPUs, so that N runs spread over the GPUs; otherwise ``device`` for all."""
    import torch

    if device not in (None, "cuda") or not torch.cuda.is_available() or torch.cuda.device_count() < 1:
        return [device] * jobs
    count = torch.cuda.device_count()
    return [f"cuda:{i % count}" for i in range(jobs)]


_J = TypeVar("_J")


def _stop(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)  # unwinds: temporary files, claims and the process's semaphores go


def _worker_signals() -> None:
    # Ctrl-C reaches every process of the terminal's group: the parent stops the workers (SIGTERM), at once
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _stop)


def _in_fresh_processes(
    fn: Callable[[_J], Any], jobs: Sequence[_J], parallel: int, start: Callable[[_J], bool] = lambda job: True
) -> Iterator[Tuple[_J, str, Any]]:
    """``fn(job)`` for every job, at most ``parallel`` at a time, each in a new (spawned) process.

    A process is never reused: compiled graphs, CUDA-graph memory pools, the compiler's recompile count and
    a CUDA context broken by an error stay with the run that made them. Yields ``(job, "ok", fn's value)``
    or ``(job, "died", why)`` when the process itself died, in the order they finish. ``start(job)`` is asked
    just before a job would start (with fewer than ``parallel`` running); a job it refuses is left out. When the
    caller stops (SIGINT, SIGTERM, an error), the workers still running are stopped with it.
    """
    context = multiprocessing.get_context("spawn")
    waiting, running = list(jobs), {}  # type: ignore[var-annotated]
    try:
        while waiting or running:
            while waiting and len(running) < parallel:
                job = waiting.pop(0)
                if not start(job):
                    continue
                pool = ProcessPoolExecutor(max_workers=1, mp_context=context, initializer=_worker_signals)
                future: Future = pool.submit(fn, job)
                running[future] = (job, pool)
            if not running:
                break
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                job, pool = running.pop(future)
                pool.shutdown(wait=True)
                try:
                    yield job, "ok", future.result()
                except Exception as e:  # the worker process itself died
                    yield job, "died", f"{type(e).__name__}: {_one_line(e)}"
    finally:
        for _, pool in running.values():
            # ProcessPoolExecutor of Python < 3.14 cannot stop a running task: its process is sent SIGTERM, which
            # ends the run there (its last checkpoint whole, written atomically), and then the pool is shut down
            for process in list((getattr(pool, "_processes", None) or {}).values()):
                process.terminate()
            pool.shutdown(wait=True, cancel_futures=True)
