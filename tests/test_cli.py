"""The command line as a user types it, in-process (``gmmlib.cli.main([...])``): every fault a user can
fix is one ``gmmlib: error:`` line naming the value or file, exit status 2, and nothing left behind;
``run``, ``list``, ``demo`` and ``--mask-option`` end to end; kill and resume with DataLoader workers."""

import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from gmmlib.cli import main
from gmmlib.store.records import Store

ROOT = Path(__file__).resolve().parents[1]
QUICK = ["--preset", "quick", "--no-progress"]
SYNTHETIC = [*QUICK, "--dataset", "synthetic"]


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("GMMLIB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("GMMLIB_DATA", str(tmp_path / "no-data"))
    monkeypatch.chdir(tmp_path)  # default --out (runs/...) and work folders land here


def error(capsys, *, code, rc) -> str:
    """The single stderr line of a failed command (exit status 2)."""
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == code == 2, err
    assert len(err) == 1 and err[0].startswith("gmmlib: error: "), err
    return err[0]


def fails(capsys, *argv) -> str:
    rc = main(list(argv))
    return error(capsys, code=2, rc=rc)


def listing(path: Path) -> list:
    return sorted(p.relative_to(path).as_posix() for p in path.rglob("*")) if path.exists() else []


# ---- train: values ------------------------------------------------------------------------------


def test_mask_option_without_mask(capsys, tmp_path):
    line = fails(capsys, "train", *SYNTHETIC, "--mask-option", "num_kernels=3", "--out", "o")
    assert "num_kernels=3" in line and "--mask" in line
    assert not (tmp_path / "o").exists()


def test_mask_option_booleans_parse_strictly(capsys, tmp_path):
    options = ["--mask", "gmm", "--mask-option", "truncate_like_official=False"]
    rc = main(["train", *SYNTHETIC, "--epochs", "1", *options, "--out", "o", "--data-pipeline", "cpu", "--no-compile"])
    assert rc == 0
    result = json.loads((tmp_path / "o" / "result.json").read_text())
    assert result["config"]["mask_options"]["truncate_like_official"] is False
    assert result["data_pipeline"] == "workers" and result["compiled"] is False  # passed through to train()
    assert result["config"]["data_path"] == "workers"
    assert result["name"] == "vit-gmm-default-synthetic-s0"  # the default, so the default run
    line = fails(capsys, "train", *SYNTHETIC, "--mask", "gmm", "--mask-option", "truncate_like_official=Flase")
    assert "truncate_like_official='Flase'" in line and "true or false" in line
    line = fails(capsys, "train", *SYNTHETIC, "--mask", "gmm", "--mask-option", "num_kernels=3.5")
    assert "num_kernels='3.5'" in line and "integer" in line


def test_mask_option_without_equals(capsys):
    line = fails(capsys, "train", *SYNTHETIC, "--mask", "gmm", "--mask-option", "num_kernels")
    assert "KEY=VALUE" in line and "'num_kernels'" in line


def test_unknown_mask_is_checked_before_data_or_folders(capsys, tmp_path):
    # the data set is missing too: the mask is reported, so it was checked first
    line = fails(capsys, "train", *QUICK, "--dataset", "cifar10", "--mask", "bogus", "--out", "new/run")
    assert "unknown mask 'bogus'" in line and "gmm" in line
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("device, match", [("bogus", "'bogus'"), ("cuda", "'cuda'")])
def test_bad_device(capsys, tmp_path, device, match):
    if device == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    line = fails(capsys, "train", *SYNTHETIC, "--device", device, "--out", "o")
    assert match in line and "cpu" in line
    assert not (tmp_path / "o").exists()


def test_usage_errors_are_one_line_too(capsys):
    line = fails(capsys, "train", "--preset", "warp")
    assert "'warp'" in line and "--help" in line


# ---- train: files and folders -------------------------------------------------------------------


def _zip(path: Path, size: int = 2_000_000) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr("train/airplane/0.jpg", os.urandom(size))


def _npz(path: Path) -> None:
    x = np.zeros((100, 32, 32, 3), np.uint8)
    y = np.zeros(100, np.int64)
    np.savez(path, x_train=x, y_train=y, x_test=x, y_test=y, classes=np.array(["a"] * 10))


def _cut(path: Path, size: int) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:size])


def _flip(path: Path, at: int) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", ["zip-cut", "npz-cut", "npz-checksum"])
def test_damaged_data_files(capsys, tmp_path, damage):
    data = tmp_path / "data"
    data.mkdir()
    if damage == "zip-cut":
        name, dataset = "cifar10-jpeg.zip", "cifar10"
        _zip(data / name)
        _cut(data / name, 1_000_000)
    else:
        name, dataset = "cifar10-mini.npz", "cifar10-mini"
        _npz(data / name)
        if damage == "npz-cut":
            _cut(data / name, (data / name).stat().st_size // 2)
        else:
            _flip(data / name, 2000)  # inside x_train: the member's CRC no longer matches
    line = fails(capsys, "train", *QUICK, "--dataset", dataset, "--data", str(data), "--out", "o")
    assert str(data / name) in line
    assert not (tmp_path / "o").exists()


def test_out_under_a_file_or_read_only(capsys, tmp_path):
    (tmp_path / "afile").write_text("x")
    line = fails(capsys, "train", *SYNTHETIC, "--out", "afile/run")
    assert "afile" in line and "not a folder" in line and "--out" in line
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        line = fails(capsys, "train", *SYNTHETIC, "--out", "ro/run")
        assert "ro" in line and "read-only" in line and "--out" in line
    finally:
        ro.chmod(0o755)
    assert listing(ro) == []


def test_missing_data_leaves_no_empty_out(capsys, tmp_path):
    line = fails(capsys, "train", *QUICK, "--dataset", "cifar10", "--out", "deep/er/run")
    assert "cifar" in line.lower() and str(tmp_path / "no-data") in line
    assert not (tmp_path / "deep").exists()


def test_resume(capsys, tmp_path):
    args = ["train", *SYNTHETIC, "--epochs", "1", "--out", "run"]
    # no checkpoint: it says so and starts fresh
    assert main([*args, "--resume"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["gmmlib: note: no checkpoint in run: starting fresh"]
    # a checkpoint exists: --resume is needed
    line = fails(capsys, *args)
    assert "checkpoint.pt" in line and "--resume" in line
    # another config: the differing field is named
    line = fails(capsys, *args, "--seed", "1", "--resume")
    assert "run/checkpoint.pt" in line and "seed" in line
    # a truncated or empty checkpoint is named
    ckpt = tmp_path / "run" / "checkpoint.pt"
    _cut(ckpt, ckpt.stat().st_size // 2)
    line = fails(capsys, *args, "--resume")
    assert "run/checkpoint.pt" in line
    ckpt.write_bytes(b"")
    line = fails(capsys, *args, "--resume")
    assert "run/checkpoint.pt" in line


# ---- run ----------------------------------------------------------------------------------------


RUN = ["run", "elm", *SYNTHETIC, "--only", "vit-elm", "--results", "results", "--work-dir", "work"]


def test_run_list_and_the_store(capsys, tmp_path):
    assert main(RUN) == 0
    out = capsys.readouterr().out
    assert "trained: 1" in out
    store = Store(tmp_path / "results")
    (key,) = store.keys()
    assert store.experiment("elm") == [key] and store.get(key)["trained_for"] == "elm"
    assert main(RUN) == 0 and "skipped: 1" in capsys.readouterr().out
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "headline" in out and "gmm" in out and "synthetic" in out


@pytest.mark.parametrize("content", ["half", "list"])
def test_run_sets_a_corrupt_result_aside_and_goes_on(capsys, tmp_path, content):
    assert main(RUN) == 0
    capsys.readouterr()
    store = Store(tmp_path / "results")
    (key,) = store.keys()
    path = store.record_path(key)
    text = path.read_text()
    path.write_text(text[: len(text) // 2] if content == "half" else json.dumps([json.loads(text)]))
    rc = main(RUN)
    line = error(capsys, code=rc, rc=rc)
    assert f"records/{key}.json is not valid" in line and f"{key}.json.corrupt" in line
    assert "run the same command again" in line
    assert (path.parent / f"{key}.json.corrupt").exists()
    assert store.get(key)["key"] == key  # retrained: the rest went on
    assert main(RUN) == 0


def test_run_with_results_pointing_at_a_file(capsys, tmp_path):
    (tmp_path / "results.txt").write_text("x")
    line = fails(capsys, "run", "elm", *SYNTHETIC, "--results", "results.txt", "--work-dir", "work")
    assert "results.txt" in line and "not a folder" in line
    assert not (tmp_path / "work").exists()  # before any training


def test_run_fails_when_data_is_missing(capsys, tmp_path):
    line = fails(capsys, "run", "exp1", *QUICK, "--only", "model=vit,dataset=cifar100", "--results", "r")
    assert "2 run(s) lacked data" in line and "cifar100" in line.lower() and "GMMLIB_DATA" in line


def test_run_rejects_bad_values_before_training(capsys, tmp_path):
    assert "unknown experiment 'exp9'" in fails(capsys, "run", "exp9", *SYNTHETIC)
    assert "matches no run" in fails(capsys, "run", "elm", *SYNTHETIC, "--only", "model=swin")
    assert "'bogus'" in fails(capsys, "run", "elm", *SYNTHETIC, "--device", "bogus")
    assert "parallel" in fails(capsys, "run", "elm", *SYNTHETIC, "--parallel", "0")
    assert listing(tmp_path) == []


def test_demo(capsys):
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "GMM-ViT" in out and "top-1" in out


# ---- kill and resume, with DataLoader workers on --------------------------------------------------

_WITH_WORKERS = """
import dataclasses, sys
from gmmlib.training import config
config.PRESETS["quick"] = dataclasses.replace(config.PRESETS["quick"], num_workers=2)
from gmmlib.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _spawn(tmp_path: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-c", _WITH_WORKERS, *args],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its DataLoader workers die with it
    )


@pytest.mark.slow
def test_killed_run_with_workers_resumes_to_the_same_weights(tmp_path):
    args = ["train", *SYNTHETIC, "--mask", "gmm", "--epochs", "6"]
    assert _spawn(tmp_path, *args, "--out", "straight").wait(timeout=600) == 0
    p = _spawn(tmp_path, *args, "--out", "killed")
    progress = tmp_path / "killed" / "progress.json"
    deadline = time.time() + 300
    while time.time() < deadline and p.poll() is None:
        try:
            if len(json.loads(progress.read_text())["history"]) >= 1:
                break
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.01)
    os.killpg(p.pid, signal.SIGKILL)
    assert p.wait(timeout=60) == -signal.SIGKILL, "the run finished before it could be killed"
    assert not (tmp_path / "killed" / "result.json").exists()
    assert _spawn(tmp_path, *args, "--out", "killed", "--resume").wait(timeout=600) == 0
    a = json.loads((tmp_path / "straight" / "result.json").read_text())
    b = json.loads((tmp_path / "killed" / "result.json").read_text())
    assert a["config"]["preset_values"]["num_workers"] == 2
    assert [h["test_top1"] for h in a["history"]] == [h["test_top1"] for h in b["history"]]
    assert [h["train_loss"] for h in a["history"]] == [h["train_loss"] for h in b["history"]]
    wa = torch.load(tmp_path / "straight" / "weights.pt", weights_only=True)
    wb = torch.load(tmp_path / "killed" / "weights.pt", weights_only=True)
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
