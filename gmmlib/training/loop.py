"""The paper's training recipe and a crash-safe, resumable training loop, in a few named steps.

The recipe (SPT-LSA's, which the official GMM code inherits; paper-facts section 5):
AutoAugment, random crop (padding 4), flip, Mixup/CutMix (p 0.5, switch 0.5), random
erasing 0.25, label smoothing 0.1, stochastic depth 0.1, AdamW (lr 1e-3, wd 0.05 on
every parameter), linear warm-up then per-step cosine to 1e-6, batch 128, 100 epochs
of three passes each. The presets that scale it live in :mod:`gmmlib.training.config`.

:func:`train` is the whole run; it is made of steps that benchmarks and other runners reuse:
:func:`setup` (data, model, optimiser, schedule, resume), :func:`run_epoch` (one epoch of
steps, then :func:`evaluate`), :func:`save_checkpoint` and :func:`result_record`.

Two data paths feed the same steps (``RunConfig.data_path``, part of the run's key).
``"batched"`` (the default): the training split held as one uint8 tensor on the device and the
whole recipe applied per image to large chunks at once (:class:`gmmlib.data.DeviceLoader`), on a
GPU or on the CPU. ``"workers"``: torchvision's transforms on PIL images in DataLoader workers
(the path of the runs recorded before). How the steps run on the device (precision, loss scaling,
compilation, CUDA graphs, the attention path) is the run plan's (:mod:`gmmlib.training.plan`),
chosen once in :func:`setup` and recorded as it ran: a compilation that fails or falls back at the
first step is dropped with one warning and the run goes on eagerly.

With ``RunConfig.train_size`` a run trains on a nested class-balanced subset of the training
set for the same number of steps as on all of it.

Each epoch starts from RNG states derived from (seed, epoch) alone, and a checkpoint
is written atomically at every epoch end, so a run killed at any moment and resumed
ends with the same weights and metrics as an uninterrupted one (on CPU).

Started by ``torchrun --nproc_per_node=N``, one run trains across N processes with
DistributedDataParallel: the global batch stays the preset's (each rank takes its slice of
every global batch of the same per-(seed, epoch) order), only rank 0 writes, and a checkpoint
resumes with any N.
"""

from __future__ import annotations

import dataclasses
import random
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import numpy as np
import torch
from timm.data import Mixup
from timm.loss import SoftTargetCrossEntropy
from timm.scheduler import CosineLRScheduler
from torch import distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from .. import data as gdata
from ..cost import profile
from ..data.batched_augment import normalize
from ..files import check_folder_writable, save_torch, write_json
from . import provenance
from .batches import batches_for, epoch_seed
from .checkpoint import Interrupted, checkpointed_epochs, code_mismatch, load_checkpoint
from .config import SUBSET_SEED, Preset, RunConfig, data_path_name
from .plan import PRECISIONS, RunPlan, plan_for
from .record import result_record
from .runtime import (
    Distributed,
    compile_model,
    grad_scaler,
    init_distributed,
    resolve_data_pipeline,
    resolve_device,
)
from .step import TrainingDiverged, check_finite, evaluate, train_step

__all__ = [
    "TrainingDiverged",
    "TrainingRun",
    "train",
    "setup",
    "run_epoch",
    "save_checkpoint",
    "seed_everything",
    "evaluate",
]

_CHECK_EVERY = 25  # steps between loss checks: each one waits for the GPU, so not every step

# what resuming does with a checkpoint made by other code (see train's ``other_code``)
OTHER_CODE = ("refuse", "restart", "resume")


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def save_checkpoint(run: "TrainingRun", epoch: int) -> None:
    """Write ``checkpoint.pt`` (model, optimiser, history) and ``progress.json``, each atomically (rank 0 only)."""
    if run.distributed.rank != 0:
        return
    save_torch(
        run.ckpt_path,
        {
            "key": run.key,
            "config": run.config.resolved(),
            "epoch": epoch,
            "model": run.model.state_dict(),
            "optimizer": run.optimizer.state_dict(),
            "history": run.history,
            "data_pipeline": run.data_pipeline,
            **({"scaler": run.scaler.state_dict()} if run.scaler is not None else {}),
            "code": provenance.code_fingerprint(),  # a resume checks that the same code continues it
            "resumed_from_code": run.resumed_from_code,  # kept through later resumes, for the result
        },
    )
    write_json(run.out_dir / "progress.json", {"name": run.config.name(), "key": run.key, "history": run.history})


# ------------------------------------------------------------------------------------------ the steps


@dataclass
class TrainingRun:
    """Everything one run needs between its steps (built by :func:`setup`)."""

    config: RunConfig
    preset: Preset
    device: torch.device
    out_dir: Path
    model: nn.Module
    step_model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: CosineLRScheduler
    mixup: Mixup
    criterion: nn.Module
    batches: Callable[[int], Iterator[Tuple[torch.Tensor, torch.Tensor]]]
    steps_per_epoch: int
    test_images: torch.Tensor
    test_labels: torch.Tensor
    cost: Dict[str, Any]
    data_pipeline: str
    plan: RunPlan
    scaler: Optional[torch.amp.GradScaler] = None
    history: List[Dict[str, Any]] = field(default_factory=list)
    start_epoch: int = 0
    resumed_from_code: Optional[str] = None  # the checkpoint's code, when other code was resumed on purpose
    distributed: Distributed = field(default_factory=Distributed)
    compile_unchecked: bool = False  # a compiled run whose first step has not yet shown that it compiled

    @property
    def key(self) -> str:
        return self.config.key()

    @property
    def compiled(self) -> bool:
        """Whether the step runs compiled (false after a fallback to eager)."""
        return self.plan.compile

    @property
    def ckpt_path(self) -> Path:
        return self.out_dir / "checkpoint.pt"


def setup(
    config: RunConfig,
    out_dir: str | Path,
    resume: bool = False,
    root: Optional[str | Path] = None,
    device: Optional[str] = None,
    compile: Optional[bool] = None,
    data_pipeline: Optional[str] = None,
    other_code: str = "refuse",
    download: bool = False,
    precision: Optional[str] = None,
) -> TrainingRun:
    """Everything before the first step: checks, model, data, optimiser, schedule, and the resumed state.

    Every check that can fail runs before the data loads, and nothing is written here.
    See :func:`train` for the arguments.
    """
    preset = config.get_preset()  # validates the config
    if other_code not in OTHER_CODE:
        raise ValueError(f"other_code must be one of {', '.join(OTHER_CODE)}, got {other_code!r}")
    if precision is not None and precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of: {', '.join(PRECISIONS)}")
    ddp = init_distributed(device)
    if preset.batch_size % ddp.world_size:
        raise ValueError(f"the batch of {preset.batch_size} does not split over {ddp.world_size} processes")
    dev = resolve_device(f"cuda:{ddp.local_rank}" if ddp.backend == "nccl" else device)
    pipeline = resolve_data_pipeline(config.data_path if data_pipeline is None else data_pipeline, dev)
    plan = plan_for(dev, preset, world_size=ddp.world_size, compile=compile, data_path=pipeline)
    if precision is not None:  # asked for: float16 is scaled wherever it runs
        plan = dataclasses.replace(plan, precision=precision, grad_scaler=precision == "float16")
    out_dir = Path(out_dir)
    check_folder_writable(out_dir, "output folder")
    ckpt_path = out_dir / "checkpoint.pt"
    state, resumed_from_code = None, None
    if ckpt_path.exists():
        if not resume:
            raise FileExistsError(f"{ckpt_path} exists: pass resume=True (--resume) or choose another output folder")
        state = load_checkpoint(ckpt_path, config)
        mismatch = code_mismatch(ckpt_path, state)
        if mismatch is not None and other_code == "refuse":
            raise ValueError(
                f"{mismatch}: continued here, its numbers would be recorded as this code's; delete it to train "
                "this run afresh (from Python: train(..., other_code='restart'), or 'resume' to record it as modified)"
            )
        if mismatch is not None and other_code == "restart":
            # every process of a torchrun decides alike; the old checkpoint is overwritten at the first epoch's end
            warnings.warn(f"{mismatch}: starting fresh", stacklevel=2)
            state = None
        elif mismatch is not None:  # "resume": continued on purpose, and said so in the result
            resumed_from_code = state.get("code") or "unrecorded"
    elif resume:
        warnings.warn(f"no checkpoint in {out_dir}: starting fresh", stacklevel=2)

    seed_everything(config.seed)  # model initialisation
    model = config.build_model()
    info = gdata.get_info(config.dataset)
    x_train, y_train = gdata.load_arrays(config.dataset, "train", root, download, limit=preset.train_limit)
    x_test, y_test = gdata.load_arrays(config.dataset, "test", root, download, limit=preset.test_limit)
    test_images = normalize(torch.from_numpy(x_test).permute(0, 3, 1, 2), info.mean, info.std)
    # the steps of the whole training set, whatever the subset: only the number of distinct images varies
    images_per_epoch = len(x_train) * preset.passes_per_epoch
    steps_per_epoch = images_per_epoch // preset.batch_size
    if steps_per_epoch < 1:
        raise ValueError(f"{len(x_train)} training images give no full batch of {preset.batch_size}")
    if config.train_size is not None and config.train_size < len(x_train):
        chosen = gdata.subset_indices(y_train, config.train_size, SUBSET_SEED)
        x_train, y_train = x_train[chosen], y_train[chosen]
    make_batches = batches_for(pipeline)
    # the plan's worker count (the preset's, or one per spare core); the key keeps the preset's own value
    loader_preset = dataclasses.replace(preset, num_workers=plan.workers)
    batches = make_batches(config, loader_preset, x_train, y_train, dev, ddp, images_per_epoch)

    cost = profile(model, info.image_size)
    model.to(dev)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=preset.lr, weight_decay=preset.weight_decay, fused=plan.fused_optimizer or None
    )
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
    run = TrainingRun(
        config=config,
        preset=preset,
        device=dev,
        out_dir=out_dir,
        model=model,
        step_model=model,
        optimizer=optimizer,
        scheduler=scheduler,
        mixup=mixup,
        criterion=SoftTargetCrossEntropy(),
        batches=batches,
        steps_per_epoch=steps_per_epoch,
        test_images=test_images.to(dev) if dev.type == "cuda" else test_images,
        test_labels=torch.from_numpy(y_test),
        cost=cost,
        data_pipeline=pipeline,
        plan=plan,
        scaler=grad_scaler(plan, dev.type),
        distributed=ddp,
    )
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        run.history = list(state["history"])
        run.start_epoch = state["epoch"] + 1
        run.resumed_from_code = resumed_from_code or state.get("resumed_from_code")
        if run.scaler is not None and state.get("scaler"):
            run.scaler.load_state_dict(state["scaler"])
        if state.get("data_pipeline", pipeline) != pipeline:
            warnings.warn(
                f"{ckpt_path} was trained with the {state['data_pipeline']} data pipeline, resuming with {pipeline}: "
                "the augmentation draws of the remaining epochs differ from an uninterrupted run",
                stacklevel=2,
            )
    if ddp.world_size > 1:  # gradients (mask parameters included) are averaged over the ranks
        run.step_model = DistributedDataParallel(model, device_ids=[dev.index] if dev.type == "cuda" else None)
    if plan.compile:
        # CUDA graphs (where the plan has them) pay at batch 128, where the step is launch-bound
        run.step_model = compile_model(run.step_model, plan)
        run.compile_unchecked = True
    return run


def run_epoch(run: TrainingRun, epoch: int, progress: bool = True) -> Dict[str, Any]:
    """Train one epoch (0-based ``epoch``), evaluate, and return the epoch's record."""
    ddp = run.distributed
    seed_everything(epoch_seed(run.config.seed, epoch) + ddp.rank)  # Mixup, stochastic depth
    run.model.train()
    losses = torch.zeros(run.steps_per_epoch, device=run.device)
    batch = run.preset.batch_size  # global: every step covers one global batch
    bar = tqdm(
        total=run.steps_per_epoch, desc=f"{run.config.name()} {epoch + 1}/{run.preset.epochs}", disable=not progress
    )
    t0 = tick = time.perf_counter()
    wait = 0.0
    step = -1
    for step, (x, y) in enumerate(run.batches(epoch)):
        wait += time.perf_counter() - tick
        losses[step] = train_step(run, x, y, epoch * run.steps_per_epoch + step + 1)
        bar.update(1)
        if (step + 1) % _CHECK_EVERY == 0:
            check_finite(run, losses, step + 1, epoch)
            elapsed = time.perf_counter() - t0
            bar.set_postfix(loss=f"{losses[: step + 1].mean().item():.3f}", img_s=f"{(step + 1) * batch / elapsed:.0f}")
        tick = time.perf_counter()
    bar.close()
    check_finite(run, losses, step + 1, epoch)
    train_loss = losses[: step + 1].mean()
    if ddp.world_size > 1:
        dist.all_reduce(train_loss)  # a sum (gloo has no average)
        train_loss = train_loss / ddp.world_size
    if run.device.type == "cuda":
        torch.cuda.synchronize(run.device)
    train_time = time.perf_counter() - t0
    n_seen = (step + 1) * batch
    # every rank: the same weights, the same top-1
    top1 = evaluate(run.model, run.test_images, run.test_labels, precision=run.plan.precision)
    return {
        "epoch": epoch + 1,
        "train_loss": train_loss.item(),
        "test_top1": top1,
        "lr": run.optimizer.param_groups[0]["lr"],
        "train_seconds": train_time,
        "epoch_seconds": time.perf_counter() - t0,
        "images_per_second": n_seen / train_time,
        "data_wait_share": wait / train_time,
    }


def train(
    config: RunConfig,
    out_dir: str | Path,
    resume: bool = False,
    root: Optional[str | Path] = None,
    device: Optional[str] = None,
    progress: bool = True,
    compile: Optional[bool] = None,
    data_pipeline: Optional[str] = None,
    on_epoch: Optional[Callable[[Dict[str, Any]], None]] = None,
    other_code: str = "refuse",
    download: bool = False,
    precision: Optional[str] = None,
) -> Dict[str, Any]:
    """Train one run, writing a checkpoint per epoch, then ``weights.pt`` and ``result.json``.

    Args:
        config: the run.
        out_dir: folder for ``checkpoint.pt``, ``progress.json``, ``weights.pt`` and ``result.json``;
            created at the first checkpoint, so a run that fails early leaves nothing behind.
        resume: continue from ``out_dir/checkpoint.pt`` (it must be of the same config; without
            one, a warning says the run starts fresh); without it an existing checkpoint is an error.
        root: data root (default: ``GMMLIB_DATA``).
        device: "cpu", "cuda", ... (default: CUDA when available).
        progress: show tqdm bars.
        compile: ``torch.compile`` the training step (None: the run plan's choice, the paper preset on a
            GPU of capability >= 8.0 with a recent torch; see :func:`gmmlib.training.plan.plan_for`).
        data_pipeline: override ``config.data_path`` ("batched" or "workers"; the old names "gpu"/"cpu"
            are read as these); recorded in the result, and part of the key of the run it records.
        on_epoch: called with each epoch's metrics.
        other_code: what ``resume`` does with a checkpoint made by other code than this process runs
            (another commit, modified code, or code before checkpoints recorded theirs; see
            :func:`gmmlib.training.provenance.code_fingerprint`): "refuse" (a ValueError naming it),
            "restart" (train afresh, with a warning) or "resume" (continue it; the result then says
            ``gmmlib_modified: true`` and names the checkpoint's code under ``resumed_from_code``).
        download: fetch missing data with torchvision (every split the run reads; needs internet).
        precision: "float32", "float16" (with loss scaling) or "bfloat16" autocast instead of the plan's.

    Returns:
        The result dict also written to ``out_dir/result.json``.

    Raises:
        ValueError: a bad config, device, pipeline, output folder or checkpoint (before any data loads).
        TrainingDiverged: the loss became NaN/inf (the last checkpoint is kept).
        Interrupted: SIGINT or SIGTERM (see :func:`gmmlib.training.checkpoint.interrupt_on_signals`); its message
            names the checkpoint to resume from.
    """
    if data_pipeline is not None:
        config = dataclasses.replace(config, data_path=data_path_name(data_pipeline))
    run = setup(
        config, out_dir, resume, root, device, compile, other_code=other_code, download=download, precision=precision
    )
    lead = run.distributed.rank == 0
    progress = progress and lead
    try:
        for epoch in range(run.start_epoch, run.preset.epochs):
            record = run_epoch(run, epoch, progress)
            run.history.append(record)
            save_checkpoint(run, epoch)
            if on_epoch is not None:
                on_epoch(record)
            if progress:
                tqdm.write(
                    f"{config.name()} epoch {epoch + 1}: loss {record['train_loss']:.4f}, "
                    f"top-1 {record['test_top1']:.2f}%, {record['images_per_second']:.0f} img/s, "
                    f"data wait {100 * record['data_wait_share']:.1f}%"
                )
    except Interrupted as e:  # SIGINT or SIGTERM: the checkpoint of the last whole epoch is what a rerun continues
        saved = checkpointed_epochs(run.ckpt_path)  # read back: the signal may have come as it was being replaced
        e.left = e.left or (
            f"{run.ckpt_path} holds {saved} of {run.preset.epochs} epochs; resume=True (--resume) continues from it"
            if saved
            else f"{config.name()} stopped before its first epoch ended, so there is nothing to resume"
        )
        raise
    result = result_record(run, root)
    if run.resumed_from_code is not None:
        # part of the history comes from other code: the record must not pass for this clean commit's
        result["git"] = {**result["git"], "gmmlib_modified": True}
        result["resumed_from_code"] = run.resumed_from_code
    if lead:
        save_torch(run.out_dir / "weights.pt", run.model.state_dict())  # before result.json: a result has its weights
        write_json(run.out_dir / "result.json", result)
    if run.distributed.world_size > 1:
        dist.barrier()  # the others return once the result exists
    return result
