"""The paper's training recipe and a crash-safe, resumable training loop.

The recipe (SPT-LSA's, which the official GMM code inherits; paper-facts section 5):
AutoAugment, random crop (padding 4), flip, Mixup/CutMix (p 0.5, switch 0.5), random
erasing 0.25, label smoothing 0.1, stochastic depth 0.1, AdamW (lr 1e-3, wd 0.05 on
every parameter), linear warm-up then per-step cosine to 1e-6, batch 128, 100 epochs
of three passes each. Three presets scale it:

* ``paper``: the recipe as published, for a GPU.
* ``cpu``: the same recipe with small models (a 4-layer, 64-wide ViT that keeps the
  8 x 8 token grid) and 8 single-pass epochs, so that one ViT run on full CIFAR-10
  takes about 12 minutes on 2 CPU cores (600 images/s with augmentation).
* ``quick``: a few steps on a few hundred images, for tests and CI.

Each epoch starts from RNG states derived from (seed, epoch) alone, and a checkpoint
is written atomically at every epoch end, so a run killed at any moment and resumed
ends with the same weights and metrics as an uninterrupted one (on CPU).
"""

from __future__ import annotations

import hashlib
import random
import time
from pathlib import Path
from typing import Any, Callable, Dict, Optional

import numpy as np
import torch
from timm.data import Mixup
from timm.loss import SoftTargetCrossEntropy
from timm.scheduler import CosineLRScheduler
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from . import data as gdata
from .cost import profile
from .config import PRESETS, Preset, RunConfig
from .provenance import environment, save_torch, write_json

__all__ = [
    "Preset",
    "PRESETS",
    "RunConfig",
    "TrainingDiverged",
    "train",
    "seed_everything",
    "evaluate",
    "mask_parameters",
]


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _epoch_seed(seed: int, epoch: int) -> int:
    # Every epoch's randomness depends on (seed, epoch) only: resuming at an epoch
    # boundary replays exactly what an uninterrupted run would have drawn.
    return int.from_bytes(hashlib.sha256(f"{seed}:{epoch}".encode()).digest()[:4], "little")


def _worker_init(worker_id: int) -> None:
    s = torch.initial_seed() % 2**32
    random.seed(s)
    np.random.seed(s)


def _normalised_tensor(x: np.ndarray, info: gdata.DatasetInfo) -> torch.Tensor:
    t = torch.from_numpy(x).permute(0, 3, 1, 2).float().div_(255)
    mean = torch.tensor(info.mean).view(1, 3, 1, 1)
    std = torch.tensor(info.std).view(1, 3, 1, 1)
    return (t - mean) / std


@torch.no_grad()
def evaluate(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 500) -> float:
    """Top-1 accuracy in percent on pre-normalised images."""
    model.eval()
    device = next(model.parameters()).device
    correct = 0
    for i in range(0, len(images), batch_size):
        x = images[i : i + batch_size].to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            pred = model(x).argmax(1).cpu()
        correct += int((pred == labels[i : i + batch_size]).sum())
    return 100.0 * correct / len(images)


def mask_parameters(model: nn.Module) -> Dict[str, Dict[str, Any]]:
    """The learned parameters of every attention mask in ``model``, as nested lists."""
    from .masks import AttentionMask

    out = {}
    for name, m in model.named_modules():
        if isinstance(m, AttentionMask):
            # 6 decimals keep the JSON small (an ELM is 4,096 numbers per layer)
            out[name] = {k: v.detach().double().cpu().round(decimals=6).tolist() for k, v in m.named_parameters()}
            out[name]["kind"] = type(m).__name__
    return out


def _device(device: Optional[str]) -> torch.device:
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def train(
    config: RunConfig,
    out_dir: str | Path,
    resume: bool = False,
    root: Optional[str | Path] = None,
    device: Optional[str] = None,
    progress: bool = True,
    compile: bool = False,
    on_epoch: Optional[Callable[[Dict[str, Any]], None]] = None,
) -> Dict[str, Any]:
    """Train one run, writing a checkpoint per epoch and ``result.json`` at the end.

    Args:
        config: the run.
        out_dir: folder for ``checkpoint.pt``, ``progress.json`` and ``result.json``.
        resume: continue from ``out_dir/checkpoint.pt`` if it exists (it must be of
            the same config); without it an existing checkpoint is an error.
        root: data root (default: ``GMMLIB_DATA``).
        device: "cpu", "cuda", ... (default: CUDA when available).
        progress: show tqdm bars.
        compile: ``torch.compile`` the model (CUDA).
        on_epoch: called with each epoch's metrics.

    Returns:
        The result dict also written to ``out_dir/result.json``.

    Raises:
        TrainingDiverged: the loss became NaN/inf (the last checkpoint is kept).
    """
    preset = config.get_preset()
    key = config.key()
    out_dir = Path(out_dir)
    ckpt_path = out_dir / "checkpoint.pt"
    dev = _device(device)
    info = gdata.get_info(config.dataset)

    state = None
    if ckpt_path.exists():
        if not resume:
            raise FileExistsError(f"{ckpt_path} exists: pass resume=True (--resume) or choose another output folder")
        state = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        if state["key"] != key:
            raise ValueError(f"{ckpt_path} belongs to another config (key {state['key']}, this run is {key})")
    out_dir.mkdir(parents=True, exist_ok=True)

    x_train, y_train = gdata.load_arrays(config.dataset, "train", root, limit=preset.train_limit)
    x_test, y_test = gdata.load_arrays(config.dataset, "test", root, limit=preset.test_limit)
    test_images = _normalised_tensor(x_test, info)
    test_labels = torch.from_numpy(y_test)
    train_set = gdata.ArrayDataset(
        x_train,
        y_train,
        gdata.build_transforms(
            config.dataset, train=True, autoaugment=preset.autoaugment, random_erasing=preset.random_erasing
        ),
    )

    seed_everything(config.seed)  # model initialisation
    model = config.build_model()
    cost = profile(model, info.image_size)
    model.to(dev)
    optimizer = torch.optim.AdamW(model.parameters(), lr=preset.lr, weight_decay=preset.weight_decay)
    steps_per_epoch = (len(train_set) * preset.passes_per_epoch) // preset.batch_size
    if steps_per_epoch < 1:
        raise ValueError(f"{len(train_set)} training images give no full batch of {preset.batch_size}")
    total_steps = steps_per_epoch * preset.epochs
    warmup_steps = min(int(round(preset.warmup_epochs * steps_per_epoch)), total_steps - 1)
    scheduler = CosineLRScheduler(
        optimizer,
        t_initial=max(total_steps - warmup_steps, 1),
        lr_min=preset.min_lr,
        warmup_t=warmup_steps,
        warmup_lr_init=preset.warmup_lr,
        warmup_prefix=True,
        t_in_epochs=False,
    )
    mixup = Mixup(
        mixup_alpha=preset.mixup_alpha,
        cutmix_alpha=preset.cutmix_alpha,
        prob=preset.mix_prob,
        switch_prob=preset.mix_switch_prob,
        label_smoothing=preset.label_smoothing,
        num_classes=info.num_classes,
    )
    criterion = SoftTargetCrossEntropy()

    history: list = []
    start_epoch = 0
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        history = state["history"]
        start_epoch = state["epoch"] + 1
    step_model = torch.compile(model) if compile else model

    for epoch in range(start_epoch, preset.epochs):
        epoch_seed = _epoch_seed(config.seed, epoch)
        seed_everything(epoch_seed)
        gen = torch.Generator().manual_seed(epoch_seed)
        order = torch.cat([torch.randperm(len(train_set), generator=gen) for _ in range(preset.passes_per_epoch)])
        loader = DataLoader(
            train_set,
            batch_size=preset.batch_size,
            sampler=order.tolist(),
            drop_last=True,
            num_workers=preset.num_workers,
            worker_init_fn=_worker_init,
            generator=gen,
            pin_memory=dev.type == "cuda",
            prefetch_factor=4 if preset.num_workers > 0 else None,
        )
        model.train()
        t0 = time.perf_counter()
        wait = 0.0
        loss_sum, n_seen = 0.0, 0
        bar = tqdm(total=steps_per_epoch, desc=f"{config.name()} {epoch + 1}/{preset.epochs}", disable=not progress)
        tick = time.perf_counter()
        for step, (x, y) in enumerate(loader):
            wait += time.perf_counter() - tick
            x, y = x.to(dev, non_blocking=True), y.to(dev, non_blocking=True)
            x, soft = mixup(x, y)
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=dev.type == "cuda"):
                loss = criterion(step_model(x), soft)
            if not torch.isfinite(loss):
                bar.close()
                raise TrainingDiverged(
                    f"loss is {loss.item()} at epoch {epoch + 1}, step {step + 1} of {config.name()}; "
                    f"the last good checkpoint ({ckpt_path}, epoch {start_epoch if not history else history[-1]['epoch']}) is kept"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step_update(epoch * steps_per_epoch + step + 1)
            loss_sum += loss.item() * len(x)
            n_seen += len(x)
            bar.update(1)
            if step % 10 == 0:
                elapsed = time.perf_counter() - t0
                bar.set_postfix(loss=f"{loss_sum / n_seen:.3f}", img_s=f"{n_seen / max(elapsed, 1e-9):.0f}")
            tick = time.perf_counter()
        bar.close()
        train_time = time.perf_counter() - t0
        top1 = evaluate(model, test_images, test_labels)
        record = {
            "epoch": epoch + 1,
            "train_loss": loss_sum / max(n_seen, 1),
            "test_top1": top1,
            "lr": optimizer.param_groups[0]["lr"],
            "train_seconds": train_time,
            "epoch_seconds": time.perf_counter() - t0,
            "images_per_second": n_seen / train_time,
            "data_wait_share": wait / train_time,
        }
        history.append(record)
        save_torch(
            ckpt_path,
            {"key": key, "epoch": epoch, "model": model.state_dict(), "optimizer": optimizer.state_dict(), "history": history},
        )
        write_json(out_dir / "progress.json", {"name": config.name(), "key": key, "history": history})
        if on_epoch is not None:
            on_epoch(record)
        if progress:
            tqdm.write(
                f"{config.name()} epoch {epoch + 1}: loss {record['train_loss']:.4f}, top-1 {top1:.2f}%, "
                f"{record['images_per_second']:.0f} img/s, data wait {100 * record['data_wait_share']:.1f}%"
            )

    tops = [h["test_top1"] for h in history]
    result = {
        "name": config.name(),
        "key": key,
        "config": config.resolved(),
        "history": history,
        "best_top1": max(tops),
        "final_top1": tops[-1],
        "wall_seconds": sum(h["epoch_seconds"] for h in history),
        "cost": cost,
        "mask_parameters": mask_parameters(model),
        "data_source": gdata.describe_source(config.dataset, root),
        "seed": config.seed,
        **environment(dev),
    }
    write_json(out_dir / "result.json", result)
    return result
