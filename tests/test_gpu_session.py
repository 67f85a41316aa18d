"""tools/gpu_session.py, the prepared sitting on a GPU machine: the parts that must work on the first
try there, checked here on CPU (packing what comes back, stopping a command at its budget)."""

from __future__ import annotations

import io
import json
import os
import sys
import tarfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import gpu_session


def _tree(tmp_path: Path) -> tuple[Path, Path]:
    results, runs = tmp_path / "results", tmp_path / "runs"
    (results / "records").mkdir(parents=True)
    (results / "records" / "abc.json").write_text(json.dumps({"key": "abc"}))
    (results / "records" / "abc.weights.pt").write_bytes(os.urandom(3000))  # incompressible
    (runs / "vit-s0").mkdir(parents=True)
    (runs / "vit-s0" / "progress.json").write_text("{}")
    (runs / "vit-s0" / "checkpoint.pt").write_bytes(b"x" * 100)  # a run in progress: packed for a resume
    return results, runs


def test_pack_splits_into_parts_that_join_into_the_results(tmp_path, monkeypatch):
    results, runs = _tree(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    monkeypatch.setattr(gpu_session, "PART_BYTES", 1000)
    parts = gpu_session.pack(results, runs, out)
    assert len(parts) > 1 and all(p.stat().st_size <= 1000 for p in parts)
    assert [p.name for p in parts] == [f"headline-results.tar.gz.part{i}" for i in range(len(parts))]
    joined = b"".join(p.read_bytes() for p in parts)  # what `cat ...part* >` gives: the names sort
    with tarfile.open(fileobj=io.BytesIO(joined)) as tar:
        names = set(tar.getnames())
    assert {"results/records/abc.json", "results/records/abc.weights.pt", "runs/vit-s0/progress.json"} <= names
    assert "runs/vit-s0/checkpoint.pt" in names  # the next sitting continues the run (issue 26)


def test_pack_is_one_file_when_it_fits(tmp_path):
    results, runs = _tree(tmp_path)
    parts = gpu_session.pack(results, runs, tmp_path)
    assert [p.name for p in parts] == ["headline-results.tar.gz"]


def test_a_command_past_its_budget_stops_with_the_processes_it_started(tmp_path, monkeypatch):
    # a runner with --parallel starts workers: they must not outlive the budget (they would hold the GPU)
    pid_file = tmp_path / "child.pid"
    script = (
        "import subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        f"open({str(pid_file)!r}, 'w').write(str(child.pid))\n"
        "print('started', flush=True)\n"
        "time.sleep(60)\n"
    )
    monkeypatch.setattr(gpu_session, "MIN_SECONDS", 0)
    start = time.monotonic()
    assert gpu_session._command(tmp_path, [sys.executable, "-c", script], 3) is False
    assert time.monotonic() - start < 30
    log = (tmp_path / "session.log").read_text()
    assert "started" in log and "stopped after 3 s (the budget)" in log
    time.sleep(0.5)
    assert not _running(int(pid_file.read_text()))


def _running(pid: int) -> bool:
    """Whether ``pid`` is alive: a killed process nobody has reaped yet (a zombie) is not."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_a_spent_budget_starts_nothing(tmp_path):
    assert gpu_session._command(tmp_path, [sys.executable, "-c", "open('x', 'w')"], 5) is False
    assert "skipped: the budget is spent" in (tmp_path / "session.log").read_text()


def test_an_unknown_stage_is_an_error_naming_it(tmp_path, capsys):
    with pytest.raises(SystemExit):
        gpu_session.main(["--out", str(tmp_path), "--stages", "check,train"])
    assert "'train'" in capsys.readouterr().err
