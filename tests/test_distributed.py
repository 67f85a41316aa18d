"""One run over several processes with torchrun (DistributedDataParallel, gloo on CPU)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
HELPER = str(ROOT / "tests" / "distributed_run.py")
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("distributed")]  # one torchrun job at a time


def _env(tmp_path):
    return {**os.environ, "PYTHONPATH": str(ROOT), "GMMLIB_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}


def _torchrun(tmp_path, *args, nproc=2, **kw):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", HELPER, *args]
    return subprocess.Popen(cmd, env=_env(tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, **kw)


def _single(tmp_path, *args):
    return subprocess.run(
        [sys.executable, HELPER, *args], env=_env(tmp_path), capture_output=True, text=True, timeout=300
    )


def _weights(folder):
    return torch.load(folder / "weights.pt", weights_only=True)


def test_two_processes_give_the_weights_of_one_with_the_same_global_batch(tmp_path):
    """Random parts off: 2 ranks x 16 images per step = 1 process x 32, up to float reduction order."""
    one = _single(tmp_path, str(tmp_path / "one"), "--fixed")
    assert one.returncode == 0, one.stderr[-2000:]
    two = _torchrun(tmp_path, str(tmp_path / "two"), "--fixed")
    _, err = two.communicate(timeout=300)
    assert two.returncode == 0, err[-2000:]
    a, b = _weights(tmp_path / "one"), _weights(tmp_path / "two")
    assert a.keys() == b.keys()
    for k in a:  # measured: at most 6e-8 apart
        torch.testing.assert_close(b[k], a[k], atol=1e-5, rtol=1e-5, msg=k)
    result = json.loads((tmp_path / "two" / "result.json").read_text())
    assert result["distributed"] == {"world_size": 2, "backend": "gloo"}
    ha = json.loads((tmp_path / "one" / "result.json").read_text())["history"]
    for h1, h2 in zip(ha, result["history"], strict=True):  # at most one of 128 test images may flip
        assert abs(h1["test_top1"] - h2["test_top1"]) <= 100 / 128 + 1e-9
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == [
        "checkpoint.pt", "progress.json", "result.json", "weights.pt"
    ]  # fmt: skip


def test_two_processes_with_the_full_recipe_train_as_well(tmp_path):
    one = _single(tmp_path, str(tmp_path / "one"))
    assert one.returncode == 0, one.stderr[-2000:]
    two = _torchrun(tmp_path, str(tmp_path / "two"))
    _, err = two.communicate(timeout=300)
    assert two.returncode == 0, err[-2000:]
    ra, rb = (json.loads((tmp_path / d / "result.json").read_text()) for d in ("one", "two"))
    la, lb = ra["history"][-1]["train_loss"], rb["history"][-1]["train_loss"]
    assert abs(la - lb) < 0.25 * la, (la, lb)  # the same recipe, other augmentation draws
    assert rb["history"][-1]["train_loss"] < rb["history"][0]["train_loss"]


def test_a_killed_rank_stops_the_run_and_resume_completes_with_any_number_of_processes(tmp_path):
    out, pids = tmp_path / "run", tmp_path / "pids"
    pids.mkdir()
    job = _torchrun(tmp_path, str(out), "--epochs", "6", "--pids", str(pids))
    progress = out / "progress.json"
    deadline = time.time() + 240
    while time.time() < deadline and not (progress.exists() and json.loads(progress.read_text())["history"]):
        time.sleep(0.05)
    os.kill(int((pids / "rank1.pid").read_text()), signal.SIGKILL)
    _, err = job.communicate(timeout=300)
    assert job.returncode != 0, "the run finished before a rank could be killed"
    assert not (out / "result.json").exists()
    done = len(json.loads(progress.read_text())["history"])
    assert 1 <= done < 6
    resumed = _single(tmp_path, str(out), "--epochs", "6", "--resume")  # 2 processes before, 1 now
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    result = json.loads((out / "result.json").read_text())
    assert [h["epoch"] for h in result["history"]] == [1, 2, 3, 4, 5, 6]
    assert result["distributed"]["world_size"] == 1
