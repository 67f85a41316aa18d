"""Two commands on one results folder at once (issue 28): a run is trained by one process only (a claim on it),
a second runner skips it and waits for it at the end, no record or listed key is lost, and a merge or a promote
beside a runner changes nothing the other relies on. (Lists under concurrent writers: tests/test_faults.py.)"""

import json
import multiprocessing
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import pytest
from test_store import fake_record

from gmmlib.experiments import jobs, runner
from gmmlib.experiments.grids import EXPERIMENTS
from gmmlib.experiments.promote import promote
from gmmlib.experiments.runner import run_experiment
from gmmlib.store.claims import Claim, claim_path, holder
from gmmlib.store.merge import merge
from gmmlib.store.records import Store
from gmmlib.training.config import RunConfig

ROOT = Path(__file__).resolve().parents[1]
FORK = multiprocessing.get_context("fork")
ELM = EXPERIMENTS["elm"].configs("quick", "synthetic")  # ViT, ELM-ViT, GMM-ViT with GAP


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GMMLIB_CACHE", str(tmp_path / "cache"))


def _sound(root) -> None:
    """Every key each experiment lists has a readable record, and every record reads as one."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        problems = Store(root).audit()
    assert problems == [], problems


# ---- the claim itself ------------------------------------------------------------------------------------


def _hold_then_die(folder: str, key: str, held) -> None:
    Claim.take(folder, key)
    held.set()
    os.kill(os.getpid(), signal.SIGKILL)  # no release: the kernel drops the flock, the file stays


def test_a_claim_is_held_by_one_process_names_its_holder_and_leaves_nothing_behind(tmp_path):
    claim = Claim.take(tmp_path, "abc")
    assert claim is not None and Claim.take(tmp_path, "abc") is None  # a second descriptor, even in this process
    child = FORK.Process(target=lambda: os._exit(0 if Claim.take(tmp_path, "abc") is None else 1))
    child.start()
    child.join(timeout=60)
    assert child.exitcode == 0, "another process took a held claim"
    assert re.fullmatch(
        rf"pid {os.getpid()} on {re.escape(socket.gethostname())} \(since \d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d\)",
        holder(claim_path(tmp_path, "abc")),
    )
    assert Claim.take(tmp_path, "other") is not None  # a claim is per run
    claim.release()
    assert not claim_path(tmp_path, "abc").exists()
    with Claim.take(tmp_path, "abc") as again:
        assert again is not None and again.took_over is None


def test_a_claim_left_by_a_killed_process_is_taken_over_and_says_whose_it_was(tmp_path):
    held = FORK.Event()
    child = FORK.Process(target=_hold_then_die, args=(str(tmp_path), "abc", held))
    child.start()
    child.join(timeout=60)
    assert child.exitcode == -signal.SIGKILL and held.is_set()
    assert claim_path(tmp_path, "abc").exists()  # what a kill -9 leaves
    claim = Claim.take(tmp_path, "abc")
    assert claim is not None and claim.took_over.startswith(f"pid {child.pid} on ")
    claim.release()
    assert not (tmp_path / ".claims").exists()


def _count_under_claim(folder: str, rounds: int) -> None:
    counter = Path(folder) / "counter"
    for _ in range(rounds):
        with Claim.take(folder, "abc", wait=True):
            n = int(counter.read_text())  # a read-modify-write that two holders at once would lose
            time.sleep(0.001)
            counter.write_text(str(n + 1))


def test_claims_taken_and_released_by_many_processes_are_never_held_twice(tmp_path):
    """Each release removes the file that later takers open: a taker that locked the removed file (or one a third
    process made since) must try again, or two processes would hold the claim at once."""
    (tmp_path / "counter").write_text("0")
    workers = [FORK.Process(target=_count_under_claim, args=(str(tmp_path), 60)) for _ in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
    assert [w.exitcode for w in workers] == [0] * 4
    assert (tmp_path / "counter").read_text() == "240"
    assert not (tmp_path / ".claims").exists()


# ---- a runner meets a run that another process trains -------------------------------------------------------


@pytest.fixture
def fake_training(monkeypatch):
    """Runs recorded at once, without training: the claims around each run are the runner's own."""
    monkeypatch.setattr(jobs, "_train", lambda job, together: ("ok", fake_record(job.config)))


def _run_beside(tmp_path, logs):
    def log(line):
        logs.append(line)

    kwargs = dict(preset="quick", dataset="synthetic", results=tmp_path / "results", work_dir=tmp_path / "work")
    thread = threading.Thread(target=run_experiment, args=("elm",), kwargs={**kwargs, "progress": False, "log": log})
    thread.start()
    return thread


def _wait_for(logs, text, thread):
    deadline = time.time() + 240
    while not any(text in line for line in logs):
        assert thread.is_alive() and time.time() < deadline, logs
        time.sleep(0.05)


@pytest.mark.parametrize("other", ["records-it", "dies"])
def test_a_runner_skips_a_run_another_process_trains_then_waits_for_it(tmp_path, fake_training, other):
    """Another process holds the claim on ELM-ViT: the runner says so in one line, trains the two other runs, then
    waits for it. Recorded by the other process, it is listed without being trained again; left by a process that
    died (kill -9), its claim is taken over and the runner trains it."""
    results, taken = tmp_path / "results", ELM[1]
    logs = []
    if other == "records-it":
        claim = Claim.take(results, taken.key())
    else:
        held, go = FORK.Event(), FORK.Event()
        holder_process = FORK.Process(target=lambda: (Claim.take(results, taken.key()), held.set(), go.wait(240)))
        holder_process.start()
        assert held.wait(60)
    thread = _run_beside(tmp_path, logs)
    _wait_for(logs, "waiting for", thread)
    name = f"elm/{taken.name()}-quick"
    holding = f"pid {os.getpid() if other == 'records-it' else holder_process.pid} on {socket.gethostname()}"
    assert [line for line in logs if line.startswith(name)] == [
        f"{name}: {holder(claim_path(results, taken.key()))} is training it: skipped until the others are done",
        f"{name}: waiting for {holder(claim_path(results, taken.key()))} to finish it",
    ] and holding in logs[-1]
    assert sum(": training (" in line for line in logs) == 2  # the others, meanwhile
    if other == "records-it":
        Store(results).put(fake_record(taken))
        claim.release()
    else:
        os.kill(holder_process.pid, signal.SIGKILL)
        holder_process.join(timeout=60)
    thread.join(timeout=240)
    assert not thread.is_alive()
    mine = [line for line in logs if line.startswith(name)][2:]
    if other == "records-it":
        assert mine == [f"{name}: recorded by another process meanwhile ({taken.key()}), listed"]
        assert Store(results).get(taken.key()).get("trained_for") is None  # the other's record, not trained here
    else:
        assert mine[0].endswith("ended without releasing its claim on this run: taken over") and holding in mine[0]
        assert mine[1] == f"{name}: training ({taken.key()})"
    assert Store(results).experiment("elm") == sorted(c.key() for c in ELM)
    _sound(results)
    assert not (results / ".claims").exists() and not (tmp_path / "work" / ".claims").exists()


def test_a_run_that_another_results_folder_trains_in_the_same_work_folder_waits(tmp_path, fake_training):
    """Two results folders, one work folder (the default ``runs/``): the run's checkpoint folder is claimed too, so
    two runners never write one checkpoint side by side."""
    taken = ELM[0]
    claim = Claim.take(tmp_path / "work", taken.key())
    logs = []
    thread = _run_beside(tmp_path, logs)
    _wait_for(logs, "waiting for", thread)
    name = f"elm/{taken.name()}-quick"
    assert (
        f"{name}: {holder(claim_path(tmp_path / 'work', taken.key()))} is training it in {tmp_path / 'work'}: "
        "skipped for now" in logs
    ), logs
    claim.release()
    thread.join(timeout=240)
    assert f"{name}: training ({taken.key()})" in logs and Store(tmp_path / "results").experiment("elm") == sorted(
        c.key() for c in ELM
    )


# ---- real runners side by side ---------------------------------------------------------------------------------


def _gmmlib(tmp_path, *args):
    env = {**os.environ, "GMMLIB_CACHE": str(tmp_path / "cache")}
    return subprocess.Popen(
        [sys.executable, "-m", "gmmlib", *map(str, args), "--preset", "quick", "--dataset", "synthetic",
         "--results", tmp_path / "results", "--work-dir", tmp_path / "work", "--no-progress"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


@pytest.mark.slow
def test_two_runners_on_one_results_folder_train_every_run_once_and_list_them_all(tmp_path):
    """``pooling`` and ``elm`` (which shares two of pooling's runs) at the same time: five distinct runs, each
    trained by exactly one process; each experiment lists its whole grid, each key with its record. (Two runners
    of one grid: the tests above, which decide who holds a run.)"""
    runners = [_gmmlib(tmp_path, "run", name) for name in ("pooling", "elm")]
    outputs = [p.communicate(timeout=400) for p in runners]
    assert [p.returncode for p in runners] == [0, 0], [err[-2000:] for _, err in outputs]
    trained = [m for out, _ in outputs for m in re.findall(r": training \((\w+)\)", out)]
    grids = {name: {c.key() for c in EXPERIMENTS[name].configs("quick", "synthetic")} for name in ("pooling", "elm")}
    assert sorted(trained) == sorted(grids["pooling"] | grids["elm"]), "a run trained twice, or not at all"
    store = Store(tmp_path / "results")
    assert {name: set(store.experiment(name)) for name in grids} == grids
    _sound(store.root)
    assert not (store.root / ".claims").exists() and not (tmp_path / "work" / ".claims").exists()
    for _, err in outputs:
        assert "Traceback" not in err


# ---- a merge or a promote beside a runner -----------------------------------------------------------------------


def _merge_slowly(source: str, into: str, started) -> None:
    """A merge that pauses after it has decided what to copy, before it lists it (where a promote would strike)."""
    real = Store.add

    def add(self, *args, **kwargs):
        started.set()
        time.sleep(1.0)
        return real(self, *args, **kwargs)

    Store.add = add
    merge([source], into=into)


def test_a_promote_waits_for_a_merge_beside_it_and_removes_nothing_the_merge_lists(tmp_path):
    """The results list a stale run (an older configuration) that a promote would take off the list and delete;
    a merge beside it brings in a list that names that run. Whichever ends first, the run keeps its record."""
    results, staging, backup = (Store(tmp_path / name) for name in ("results", "pending", "backup"))
    base, elm, gmm = (RunConfig(mask=m, pool="gap", preset="quick") for m in (None, "elm", "gmm"))
    stale = RunConfig(mask="gmm", pool="gap", preset="quick", init_scheme=1)
    for config in (base, elm, stale):
        results.put(fake_record(config))
    results.add("elm", [base.key(), elm.key(), stale.key()])
    backup.put(fake_record(stale))
    backup.add("notes", [stale.key()])
    staging.put(fake_record(gmm))
    staging.add("elm", [gmm.key()])
    started = FORK.Event()
    merging = FORK.Process(target=_merge_slowly, args=(str(backup.root), str(results.root), started))
    merging.start()
    assert started.wait(60)
    promote("elm", staging.root, preset="quick", results=results.root, log=lambda line: None)
    merging.join(timeout=60)
    assert merging.exitcode == 0
    assert results.experiment("notes") == [stale.key()] and results.get(stale.key()) is not None
    assert sorted(results.experiment("elm")) == sorted(c.key() for c in (base, elm, gmm))
    _sound(results.root)


def _fake_training(job):
    time.sleep(0.02)
    return "ok", fake_record(job.config)


def _run_with_fake_training(results: str, work: str) -> None:
    runner._train_job = _fake_training
    out = run_experiment("exp2-kernels", "quick", dataset="synthetic", results=results, work_dir=work, log=len)
    assert out.ok and len(out["trained"]) == 24


def test_merges_and_promotes_beside_a_runner_lose_nothing(tmp_path):
    """A runner records 24 runs (training faked) while the same results folder takes merges from another folder
    and promotes of another experiment's reruns: every list ends whole, every listed key with its record."""
    results, staging, other = (Store(tmp_path / name) for name in ("results", "pending", "other"))
    base, elm, gmm = (RunConfig(mask=m, pool="gap", preset="quick") for m in (None, "elm", "gmm"))
    results.put(fake_record(base))
    results.add("elm", [base.key()])
    notes = [RunConfig(mask="gmm", pool="gap", preset="quick", seed=s) for s in range(10, 30)]
    worker = FORK.Process(target=_run_with_fake_training, args=(str(results.root), str(tmp_path / "work")))
    worker.start()
    rounds = 0
    while worker.is_alive() or rounds < 3:
        config = notes[rounds % len(notes)]
        other.put(fake_record(config))
        other.add("notes", [config.key()])
        merge([other.root], into=results.root)
        for c in (elm, gmm):
            staging.put(fake_record(c, top1=50.0 + rounds))
        staging.add("elm", [elm.key(), gmm.key()])
        promote("elm", staging.root, preset="quick", results=results.root, log=lambda line: None)
        rounds += 1
    worker.join(timeout=120)
    assert worker.exitcode == 0 and rounds >= 3
    grid = {c.key() for c in EXPERIMENTS["exp2-kernels"].configs("quick", "synthetic")}
    assert set(results.experiment("exp2-kernels")) == grid
    assert set(results.experiment("notes")) == {c.key() for c in notes[: min(rounds, len(notes))]}
    assert sorted(results.experiment("elm")) == sorted(c.key() for c in (base, elm, gmm))
    _sound(results.root)
    assert json.loads(results.index_path("exp2-kernels").read_text())["runs"] == sorted(grid)
