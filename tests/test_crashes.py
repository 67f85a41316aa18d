"""Crashes mid-operation (issue 28): a kill -9 at any moment of ``run``, ``promote`` and ``merge`` leaves every
listed key with its record and every staged record in one store or the other, and the same command completes the
job; SIGINT and SIGTERM end ``train`` and ``run`` with one line, exit status 130 or 143, and a checkpoint the same
command resumes from. That a resumed ``train`` ends with the weights and history of an uninterrupted one is
pinned by tests/test_train.py::test_killed_run_resumes_to_the_same_weights_and_metrics."""

import json
import multiprocessing
import os
import random
import re
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
import torch
from test_store import fake_record

from gmmlib.experiments import jobs
from gmmlib.experiments.grids import EXPERIMENTS
from gmmlib.experiments.promote import promote
from gmmlib.experiments.runner import run_experiment
from gmmlib.store.merge import merge
from gmmlib.store.records import Store
from gmmlib.training.checkpoint import load_checkpoint
from gmmlib.training.config import RunConfig

ROOT = Path(__file__).resolve().parents[1]
FORK = multiprocessing.get_context("fork")
BASE, ELM, GMM = (RunConfig(mask=m, pool="gap", preset="quick") for m in (None, "elm", "gmm"))
STALE = RunConfig(mask="gmm", pool="gap", preset="quick", init_scheme=1)  # an older configuration of GMM-ViT


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GMMLIB_CACHE", str(tmp_path / "cache"))


def _sound(*roots) -> None:
    """Every key each experiment lists has a readable record, and every record reads as one."""
    for root in roots:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            problems = Store(root).audit()
        assert problems == [], problems


def _state(root: Path) -> dict:
    """What a store holds, as readers see it: every file but the temporary ones a kill leaves (hidden, ignored: a
    write's before its rename, a writability probe's)."""
    return {
        p.relative_to(root).as_posix(): json.loads(p.read_text()) if p.suffix == ".json" else p.stat().st_size
        for p in sorted(root.rglob("*"))
        if p.is_file() and not (p.name.endswith(".tmp") or p.name.startswith(".gmmlib-probe-"))
    }


# ---- kill -9 before each change to the file system, one after the other ------------------------------------


def _killed_before_change(n: int, action) -> bool:
    """Run ``action()`` in a forked process that kills itself (SIGKILL) just before its n-th change to the file
    system (a rename, a removal: every change a reader can see); True when it was killed, False when it ended
    first. Between two changes the folders do not change, so n = 1, 2, ... covers every moment of a kill."""

    def child() -> None:
        done, real = [0], {name: getattr(os, name) for name in ("replace", "rename", "unlink", "rmdir")}

        def changing(name):
            def change(*args, **kwargs):
                done[0] += 1
                if done[0] == n:
                    os.kill(os.getpid(), signal.SIGKILL)
                return real[name](*args, **kwargs)

            return change

        for name in real:
            setattr(os, name, changing(name))
        try:
            action()
        finally:
            for name, function in real.items():
                setattr(os, name, function)

    process = FORK.Process(target=child)
    process.start()
    process.join(timeout=120)
    assert process.exitcode in (0, -signal.SIGKILL), f"the command failed at change {n}: exit {process.exitcode}"
    return process.exitcode == -signal.SIGKILL


def _every_kill(tmp_path, setup, command, check=lambda root: None):
    """Kill ``command(root)`` before each of its changes in turn, on a fresh ``setup(root)``: each time the stores
    are sound and ``check`` holds, and the same command run again ends where an uninterrupted one does."""
    reference = tmp_path / "uninterrupted"
    setup(reference)
    command(reference)
    n = 0
    while True:
        n += 1
        root = tmp_path / f"killed-{n}"
        setup(root)
        killed = _killed_before_change(n, lambda: command(root))
        _sound(*(p for p in root.iterdir() if p.is_dir()))
        check(root)
        command(root)
        assert _state(root) == _state(reference), f"killed before change {n}, the same command did not complete it"
        if not killed:
            return n - 1
        assert n < 500


def _staged_store(root: Path) -> None:
    """Results listing ViT, ELM-ViT and a GMM-ViT of an older configuration (with weights); a rerun of ELM-ViT and
    GMM-ViT staged (with weights), beside a staged run of another experiment."""
    results, staging = Store(root / "results"), Store(root / "pending")
    for config in (BASE, ELM, STALE):
        results.put(fake_record(config), {"w": torch.zeros(2)})
    results.add("elm", [BASE.key(), ELM.key(), STALE.key()])
    for config in (ELM, GMM):
        staging.put(fake_record(config, top1=51.0), {"w": torch.ones(2)})
    staging.add("elm", [ELM.key(), GMM.key()])
    other = RunConfig(mask="gmm", pool="gap", preset="quick", seed=7)
    staging.put(fake_record(other))
    staging.add("notes", [other.key()])


def _no_staged_record_lost(root: Path) -> None:
    staging, results = Store(root / "pending"), Store(root / "results")
    for config in (ELM, GMM):
        here = staging.get(config.key()) or results.get(config.key())
        assert here is not None and here["best_top1"] == fake_record(config, top1=51.0)["best_top1"], config.name()
    assert Store(root / "pending").experiment("notes")


def test_a_promote_killed_at_any_moment_loses_nothing_and_the_same_command_completes_it(tmp_path):
    def command(root):
        promote("elm", root / "pending", preset="quick", results=root / "results", log=lambda line: None)

    changes = _every_kill(tmp_path, _staged_store, command, _no_staged_record_lost)
    assert changes >= 10  # records, weights, the list, the removals in both stores
    done = Store(tmp_path / "uninterrupted" / "results")
    assert done.experiment("elm") == sorted(c.key() for c in (BASE, ELM, GMM)) and STALE.key() not in done


def _two_stores(root: Path) -> None:
    """A results folder and another machine's, which holds new runs (with weights) and lists them."""
    results, other = Store(root / "results"), Store(root / "other")
    results.put(fake_record(BASE))
    results.add("elm", [BASE.key()])
    for config in (BASE, ELM, GMM):
        other.put(fake_record(config), {"w": torch.zeros(2)})
    other.add("elm", [BASE.key(), ELM.key(), GMM.key()])
    other.add("notes", [GMM.key()])


def test_a_merge_killed_at_any_moment_loses_nothing_and_the_same_command_completes_it(tmp_path):
    def command(root):
        merge([root / "other"], into=root / "results")

    assert _every_kill(tmp_path, _two_stores, command) >= 6
    done = Store(tmp_path / "uninterrupted" / "results")
    assert done.experiment("elm") == sorted(c.key() for c in (BASE, ELM, GMM)) and done.experiment("notes")


def test_a_run_killed_at_any_moment_of_its_record_keeping_loses_nothing_and_the_same_command_completes_it(
    tmp_path, monkeypatch
):
    """Training faked: the claims, weights, records and lists the runner writes around each run, killed before each
    change in turn (training itself is killed for real below)."""

    def trained(job, together):
        Path(job.out_dir).mkdir(parents=True, exist_ok=True)
        torch.save({"w": torch.zeros(2)}, Path(job.out_dir) / "weights.pt")
        return "ok", fake_record(job.config)

    monkeypatch.setattr(jobs, "_train", trained)  # the claim on its work folder is the runner's own

    def command(root):
        out = run_experiment(
            "elm", "quick", dataset="synthetic", results=root / "results", work_dir=root / "work", log=len
        )
        assert out.ok

    assert _every_kill(tmp_path, lambda root: root.mkdir(), command) >= 9
    assert len(Store(tmp_path / "uninterrupted" / "results").experiment("elm")) == 3


# ---- a real run killed, interrupted, stopped ----------------------------------------------------------------


def _gmmlib(tmp_path, *args):
    return subprocess.Popen(
        [sys.executable, "-m", "gmmlib", *map(str, args), "--preset", "quick", "--dataset", "synthetic", "--no-progress"],
        cwd=ROOT, env={**os.environ, "GMMLIB_CACHE": str(tmp_path / "cache")},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _after_an_epoch(process, folder: Path) -> None:
    """Wait until a run under ``folder`` has checkpointed an epoch (the process still running)."""
    deadline = time.time() + 300
    while not any(len(json.loads(p.read_text())["history"]) >= 1 for p in folder.rglob("progress.json")):
        assert process.poll() is None, process.communicate()
        assert time.time() < deadline
        time.sleep(0.02)


def _children(pid: int) -> list:
    """The processes whose parent is ``pid`` (Linux /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state == "Z"


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_stops_train_in_one_line_with_a_checkpoint_the_rerun_continues(tmp_path, signum):
    """The rerun continues the checkpoint rather than start again (its first epochs are the checkpoint's); that it
    then ends as an uninterrupted run does is tests/test_train.py's resume test."""
    train = ["train", "--epochs", "6", "--out", tmp_path / "run"]
    stopped = _gmmlib(tmp_path, *train)
    _after_an_epoch(stopped, tmp_path / "run")
    stopped.send_signal(signum)
    _, err = stopped.communicate(timeout=120)
    assert stopped.returncode == 128 + signum, err
    checkpoint = tmp_path / "run" / "checkpoint.pt"
    match = re.fullmatch(
        rf"gmmlib: stopped by {signal.Signals(signum).name}: {re.escape(str(checkpoint))} holds (\d) of 6 epochs; "
        r"resume=True \(--resume\) continues from it\n",
        err,
    )
    assert match, err
    state = load_checkpoint(checkpoint, RunConfig(dataset="synthetic", preset="quick", epochs=6))
    assert len(state["history"]) == int(match[1]) >= 1
    resumed = _gmmlib(tmp_path, *train, "--resume")
    assert resumed.wait(timeout=300) == 0
    history = json.loads((tmp_path / "run" / "result.json").read_text())["history"]
    assert [h["epoch"] for h in history] == [1, 2, 3, 4, 5, 6] and history[: len(state["history"])] == state["history"]


@pytest.mark.slow
@pytest.mark.parametrize(
    "parallel, stop, status", [(1, "SIGTERM", 143), (2, "SIGTERM", 143), (1, "SIGINT", 130)], ids=["1", "2", "SIGINT"]
)
def test_a_signal_stops_a_run_in_one_line_and_the_same_command_completes_it(tmp_path, parallel, stop, status):
    """SIGINT (Ctrl-C) and SIGTERM; with ``--parallel`` the workers stop with the runner (none trains on, orphaned,
    into the work folder)."""
    command = ["run", "elm", "--results", tmp_path / "results", "--work-dir", tmp_path / "work"]
    command += ["--parallel", parallel]
    process = _gmmlib(tmp_path, *command)
    _after_an_epoch(process, tmp_path / "work")
    workers = _children(process.pid) if parallel > 1 else []
    process.send_signal(getattr(signal, stop))
    _, err = process.communicate(timeout=120)
    assert process.returncode == status and err == (
        f"gmmlib: stopped by {stop}: the runs in progress resume from their checkpoints in {tmp_path / 'work'} "
        "when the same command runs again\n"
    ), err
    deadline = time.time() + 30
    while not all(_gone(pid) for pid in workers):
        assert time.time() < deadline, "a worker outlived the runner"
        time.sleep(0.1)
    _sound(tmp_path / "results")
    assert not (tmp_path / "results" / ".claims").exists()
    again = _gmmlib(tmp_path, *command)
    out, err = again.communicate(timeout=400)
    assert again.returncode == 0, err
    assert sorted(Store(tmp_path / "results").experiment("elm")) == sorted(
        c.key() for c in EXPERIMENTS["elm"].configs("quick", "synthetic")
    )
    _sound(tmp_path / "results")


@pytest.mark.slow
def test_a_run_killed_at_a_random_moment_of_training_is_completed_by_the_same_command(tmp_path):
    """kill -9 while a run trains (its claims left behind): the store stays sound, and the same command takes the
    claims over, resumes the run from its checkpoint and lists every run."""
    command = ["run", "elm", "--results", tmp_path / "results", "--work-dir", tmp_path / "work"]
    process = _gmmlib(tmp_path, *command)
    _after_an_epoch(process, tmp_path / "work")
    delay = random.Random().uniform(0, 2)
    time.sleep(delay)
    process.kill()
    process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL, f"it ended before the kill ({delay:.2f} s after the first epoch)"
    _sound(tmp_path / "results")
    recorded = Store(tmp_path / "results").keys()  # the same command lists these without training them again
    again = _gmmlib(tmp_path, *command)
    out, err = again.communicate(timeout=400)
    assert again.returncode == 0, err
    grid = EXPERIMENTS["elm"].configs("quick", "synthetic")
    assert sorted(Store(tmp_path / "results").experiment("elm")) == sorted(c.key() for c in grid)
    assert sum(": training (" in line for line in out.splitlines()) == len(grid) - len(recorded), out
    assert "taken over" in out, f"the killed run's claim was not met ({delay:.2f} s after the first epoch): {out}"
    assert not (tmp_path / "results" / ".claims").exists() and not (tmp_path / "work" / ".claims").exists()
    _sound(tmp_path / "results")
