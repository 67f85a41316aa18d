"""Training loop: the quick preset end to end, crash safety, resume after a real kill, bad configs."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from gmmlib.training import loop as train_mod
from gmmlib.training.config import PRESETS, RunConfig
from gmmlib.training.loop import TrainingDiverged, train
from gmmlib.training.runtime import resolve_compile

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GMMLIB_CACHE", str(tmp_path / "cache"))


def test_quick_run_writes_result_with_provenance(tmp_path):
    config = RunConfig(model="vit", mask="gmm", dataset="synthetic", preset="quick")
    result = train(config, tmp_path / "run", progress=False)
    on_disk = json.loads((tmp_path / "run" / "result.json").read_text())
    assert on_disk["key"] == result["key"] == config.key()
    assert len(on_disk["history"]) == PRESETS["quick"].epochs
    for h in on_disk["history"]:
        assert {
            "epoch",
            "train_loss",
            "test_top1",
            "lr",
            "epoch_seconds",
            "images_per_second",
            "data_wait_share",
        } <= set(h)
    assert on_disk["best_top1"] == max(h["test_top1"] for h in on_disk["history"])
    assert on_disk["final_top1"] == on_disk["history"][-1]["test_top1"]
    assert on_disk["versions"]["torch"] == torch.__version__
    assert {"commit", "gmmlib_modified"} <= set(on_disk["git"])
    assert on_disk["hardware"]["device"] == "cpu"
    assert on_disk["seed"] == 0 and on_disk["data_source"]["name"] == "synthetic"
    assert on_disk["cost"]["params"] > 0 and on_disk["cost"]["macs"] > 0
    # the learned GMM parameters are kept for the book: 2 layers of (K=5, H=2)
    gmm = on_disk["mask_parameters"]
    assert len(gmm) == 2 and all(len(v["alpha"]) == 5 and len(v["alpha"][0]) == 2 for v in gmm.values())
    assert on_disk["config"]["architecture"] == {"dim": 32, "depth": 2, "num_heads": 2, "head_dim": 16}


def test_schedule_warms_up_then_decays_to_min_lr(tmp_path):
    result = train(RunConfig(dataset="synthetic", preset="quick", epochs=3), tmp_path / "run", progress=False)
    lrs = [h["lr"] for h in result["history"]]
    assert lrs[0] > lrs[1] > lrs[2] == pytest.approx(PRESETS["quick"].min_lr, rel=1e-3)


def test_existing_checkpoint_needs_resume_and_the_same_config(tmp_path):
    config = RunConfig(dataset="synthetic", preset="quick", epochs=1)
    train(config, tmp_path / "run", progress=False)
    with pytest.raises(FileExistsError, match="pass resume=True"):
        train(config, tmp_path / "run", progress=False)
    with pytest.raises(ValueError, match="belongs to another config"):
        train(
            RunConfig(dataset="synthetic", preset="quick", epochs=1, seed=1),
            tmp_path / "run",
            resume=True,
            progress=False,
        )


def test_nan_loss_stops_with_clear_message_and_keeps_last_checkpoint(tmp_path, monkeypatch):
    calls = {"n": 0}
    real = train_mod.SoftTargetCrossEntropy

    class PoisonAfterFirstEpoch(real):
        def forward(self, x, target):
            calls["n"] += 1
            loss = super().forward(x, target)
            return loss * float("nan") if calls["n"] > 8 else loss  # quick: 8 steps per epoch

    monkeypatch.setattr(train_mod, "SoftTargetCrossEntropy", PoisonAfterFirstEpoch)
    with pytest.raises(TrainingDiverged, match="loss is nan at epoch 2, step 1.*checkpoint"):
        train(RunConfig(dataset="synthetic", preset="quick"), tmp_path / "run", progress=False)
    state = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert state["epoch"] == 0 and all(torch.isfinite(v).all() for v in state["model"].values())


@pytest.mark.parametrize(
    "config, match",
    [
        (RunConfig(model="resnet"), "unknown model 'resnet'; choices: cait, pit, swin, t2t, vit"),
        (RunConfig(dataset="imagenet"), "unknown data set.*imagenet"),
        (RunConfig(preset="fast"), "unknown preset 'fast'; choices: paper, cpu, quick"),
        (RunConfig(epochs=-1), "epochs must be a positive int, got -1"),
        (RunConfig(seed=-3), "seed must be a non-negative int, got -3"),
    ],
)
def test_bad_configs_are_rejected(config, match):
    with pytest.raises(ValueError, match=match):
        config.validate()


def _cli(*args, cwd=ROOT, **kw):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "gmmlib", *args], cwd=cwd, env=env, **kw)


def test_cli_reports_bad_input_with_exit_code_2(tmp_path):
    p = _cli(
        "train",
        "--preset",
        "quick",
        "--dataset",
        "nope",
        "--out",
        str(tmp_path / "x"),
        stderr=subprocess.PIPE,
        text=True,
    )
    _, err = p.communicate(timeout=120)
    assert p.returncode == 2 and "unknown data set" in err and "nope" in err


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_weights_and_metrics(tmp_path):
    args = ["train", "--preset", "quick", "--dataset", "synthetic", "--mask", "gmm", "--epochs", "8", "--no-progress"]
    env_cache = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    straight = _cli(*args, "--out", str(tmp_path / "straight"), **env_cache)
    assert straight.wait(timeout=300) == 0

    killed_dir = tmp_path / "killed"
    p = _cli(*args, "--out", str(killed_dir), **env_cache)
    progress = killed_dir / "progress.json"
    deadline = time.time() + 240
    while time.time() < deadline:  # kill it in the middle of epoch 2 or later
        if progress.exists() and len(json.loads(progress.read_text())["history"]) >= 1:
            break
        time.sleep(0.01)
    p.send_signal(signal.SIGKILL)
    assert p.wait(timeout=60) == -signal.SIGKILL, "the run finished before it could be killed"
    assert not (killed_dir / "result.json").exists()
    done = len(json.loads(progress.read_text())["history"])
    assert 1 <= done < 8

    resumed = _cli(*args, "--out", str(killed_dir), "--resume", **env_cache)
    assert resumed.wait(timeout=300) == 0
    a = json.loads((tmp_path / "straight" / "result.json").read_text())
    b = json.loads((killed_dir / "result.json").read_text())
    strip = lambda h: [{k: v for k, v in e.items() if "second" not in k and k != "data_wait_share"} for e in h]  # noqa: E731
    assert strip(a["history"]) == strip(b["history"])
    assert a["best_top1"] == b["best_top1"] and a["final_top1"] == b["final_top1"]
    wa = torch.load(tmp_path / "straight" / "checkpoint.pt", weights_only=True)["model"]
    wb = torch.load(killed_dir / "checkpoint.pt", weights_only=True)["model"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_both_data_paths_walk_the_same_order(tmp_path):
    """The batched path (DeviceLoader, here on CPU tensors) and the workers path (DataLoader) see the
    same images in the same order each epoch; only the augmentation draws differ."""
    runs = {
        p: train_mod.setup(RunConfig(dataset="synthetic", preset="quick", data_path=p), tmp_path / p)
        for p in ("workers", "batched")
    }
    for epoch in (0, 1):
        labels = {p: torch.cat([y for _, y in run.batches(epoch)]) for p, run in runs.items()}
        assert torch.equal(labels["workers"], labels["batched"])
        assert len(labels["workers"]) == runs["workers"].steps_per_epoch * PRESETS["quick"].batch_size
    x_cpu, _ = next(iter(runs["workers"].batches(0)))
    x_gpu, _ = next(iter(runs["batched"].batches(0)))
    assert x_cpu.shape == x_gpu.shape and x_gpu.dtype == torch.float32
    assert not (tmp_path / "workers").exists(), "setup writes nothing"


def test_batched_path_trains_and_is_recorded(tmp_path):
    result = train(
        RunConfig(dataset="synthetic", preset="quick"), tmp_path / "run", progress=False, data_pipeline="gpu"
    )
    assert result["data_pipeline"] == "batched" and result["compiled"] is False  # the old name, read as the new
    assert result["config"]["data_path"] == "batched" and result["key"] == RunConfig.from_result(result).key()
    assert result["history"][-1]["train_loss"] < result["history"][0]["train_loss"] + 0.5
    weights = torch.load(tmp_path / "run" / "weights.pt", weights_only=True)
    ckpt = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert weights.keys() == ckpt["model"].keys() and all(torch.equal(weights[k], ckpt["model"][k]) for k in weights)


def test_defaults_for_pipeline_and_compile():
    cpu, quick, paper = torch.device("cpu"), PRESETS["quick"], PRESETS["paper"]
    assert train_mod.resolve_data_pipeline(None, cpu) == "batched"
    assert train_mod.resolve_data_pipeline("auto", torch.device("cuda")) == "batched"
    assert train_mod.resolve_data_pipeline("gpu", cpu) == "batched"
    assert train_mod.resolve_data_pipeline("cpu", cpu) == "workers"
    # the run plan's defaults (issue 26): compiled only for the paper preset on a GPU with native bf16
    cuda, h100, t4, recent = torch.device("cuda"), (9, 0), (7, 5), "2.14.1"
    assert resolve_compile(None, cuda, paper, capability=h100, torch_version=recent) is True
    assert resolve_compile(None, cuda, paper, capability=t4, torch_version=recent) is False
    assert resolve_compile(None, cuda, paper, capability=h100, torch_version="2.5.1") is False
    assert resolve_compile(None, cuda, quick, capability=h100, torch_version=recent) is False
    assert resolve_compile(None, cpu, paper) is False
    assert resolve_compile(False, cuda, paper, capability=h100, torch_version=recent) is False
    with pytest.raises(ValueError, match="unknown data path 'tpu'; choose one of: batched, workers"):
        train_mod.resolve_data_pipeline("tpu", cpu)


def test_bad_devices_are_named(monkeypatch):
    with pytest.raises(ValueError, match="unknown device 'bogus'; use cpu, cuda or cuda:N"):
        train_mod.resolve_device("bogus")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="device 'cuda' asked for, but this machine has no CUDA GPU"):
        train_mod.resolve_device("cuda")
    assert train_mod.resolve_device(None) == torch.device("cpu")


def test_early_failures_leave_nothing_behind(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(ValueError, match=f"{blocker}, which is a file, not a folder"):
        train(RunConfig(dataset="synthetic", preset="quick"), blocker / "run", progress=False)
    with pytest.raises(ValueError, match="unknown device"):
        train(RunConfig(dataset="synthetic", preset="quick"), tmp_path / "a", device="bogus", progress=False)
    with pytest.raises(ValueError, match="unknown data set"):
        train(RunConfig(dataset="nope", preset="quick"), tmp_path / "b", progress=False)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_resume_without_checkpoint_warns_and_bad_checkpoints_are_named(tmp_path):
    config = RunConfig(dataset="synthetic", preset="quick", epochs=1)
    with pytest.warns(UserWarning, match="no checkpoint in .*run: starting fresh"):
        train(config, tmp_path / "run", resume=True, progress=False)
    other = RunConfig(dataset="synthetic", preset="quick", epochs=1, seed=4)
    with pytest.raises(ValueError, match=r"belongs to another config .*seed: checkpoint 0, this run 4"):
        train(other, tmp_path / "run", resume=True, progress=False)
    ckpt = tmp_path / "run" / "checkpoint.pt"
    ckpt.write_bytes(ckpt.read_bytes()[:1000])
    with pytest.raises(ValueError, match=f"{ckpt} is not a readable checkpoint .*delete it"):
        train(config, tmp_path / "run", resume=True, progress=False)
    ckpt.write_bytes(b"")
    with pytest.raises(ValueError, match=f"{ckpt} is not a readable checkpoint"):
        train(config, tmp_path / "run", resume=True, progress=False)


def test_paper_preset_is_the_official_recipe():
    """paper-facts section 5: the values of the official main.py, sampler and scheduler."""
    p = PRESETS["paper"]
    assert (p.epochs, p.passes_per_epoch, p.batch_size) == (100, 3, 128)  # 3 passes per epoch: 1,171 steps
    assert (p.lr, p.weight_decay, p.warmup_epochs, p.warmup_lr, p.min_lr) == (1e-3, 0.05, 10, 1e-6, 1e-6)
    assert p.label_smoothing == 0.1 and p.drop_path == 0.1
    assert (p.mix_prob, p.mix_switch_prob, p.mixup_alpha, p.cutmix_alpha) == (0.5, 0.5, 1.0, 1.0)
    assert p.autoaugment is True and p.random_erasing == 0.25
    assert p.model_overrides == {} and p.train_limit is None and p.test_limit is None
    steps = 50_000 * p.passes_per_epoch // p.batch_size
    assert steps == 1171 and steps * p.epochs == 117_100  # "about 117k steps"
