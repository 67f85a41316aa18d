"""One training step and the checks around it: the plan's autocast and loss scaling, whether compilation
really happened at the first step, the finite-loss check agreed across torchrun's ranks, and evaluation."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Optional

import torch
from torch import distributed as dist
from torch import nn

from .plan import precision_for
from .runtime import autocast, compiled_graphs

if TYPE_CHECKING:  # the loop builds the run and calls these steps
    from .loop import TrainingRun

__all__ = ["TrainingDiverged", "check_finite", "evaluate", "train_step"]


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept.

    ``every_rank``: under torchrun, every process raised it together (the check is agreed across ranks).
    """

    def __init__(self, message: str, every_rank: bool = False) -> None:
        super().__init__(message)
        self.every_rank = every_rank


def _step(run: "TrainingRun", x: torch.Tensor, soft: torch.Tensor, step: int) -> torch.Tensor:
    with autocast(run.plan.precision, run.device.type):
        loss = run.criterion(run.step_model(x), soft)
    run.optimizer.zero_grad(set_to_none=True)
    if run.scaler is None:
        loss.backward()
        run.optimizer.step()
    else:  # float16: scaled so that small gradients do not underflow; a step with inf/NaN gradients is skipped
        run.scaler.scale(loss).backward()
        run.scaler.step(run.optimizer)
        run.scaler.update()
    run.scheduler.step_update(step)
    return loss.detach()


def _run_eagerly(run: "TrainingRun", why: str) -> None:
    """Drop compilation for the rest of the run, with one warning; the record then says it ran eagerly."""
    run.step_model = getattr(run.step_model, "_orig_mod", run.step_model)
    run.plan = run.plan.eager(why)
    run.compile_unchecked = False
    warnings.warn(f"{run.config.name()}: {why}; the run continues uncompiled (recorded as such)", stacklevel=3)


def train_step(run: "TrainingRun", x: torch.Tensor, y: torch.Tensor, step: int) -> torch.Tensor:
    """One optimiser step on a batch (Mixup/CutMix, the plan's autocast and loss scaling); returns the loss.

    The first step of a compiled run checks that compilation happened: a failure (outside torchrun, where
    every rank must take the same path) or a silent fallback to eager switches the run to eager mode.
    """
    x, soft = run.mixup(x, y)
    if not run.compile_unchecked:
        return _step(run, x, soft, step)
    graphs = compiled_graphs()
    try:
        loss = _step(run, x, soft, step)
    except Exception as e:  # the compiler's errors have no common type
        if run.distributed.world_size > 1:
            raise
        _run_eagerly(run, f"compilation failed ({type(e).__name__}: {str(e).strip().splitlines()[0][:200]})")
        return _step(run, x, soft, step)
    if compiled_graphs() == graphs:
        _run_eagerly(run, "compilation fell back: the first step compiled nothing")
    run.compile_unchecked = False
    return loss


def check_finite(run: "TrainingRun", losses: torch.Tensor, upto: int, epoch: int) -> None:
    """Raise :class:`TrainingDiverged` when a loss so far is NaN/inf; under torchrun, on every rank together.

    A rank that raised alone would leave the others waiting in the next all-reduce until the process
    group times out, so the ranks agree first: each shares its first bad step and that loss.
    """
    bad = (~torch.isfinite(losses[:upto])).nonzero()
    ddp = run.distributed
    found = torch.zeros(2, ddp.world_size, device=losses.device)  # (step + 1 or 0, loss) per rank
    if len(bad):
        found[0, ddp.rank], found[1, ddp.rank] = int(bad[0]) + 1, losses[int(bad[0])]
    if ddp.world_size > 1:
        dist.all_reduce(found)  # a sum of one rank's entries and zeros
    ranks = found[0].nonzero()
    if len(ranks):
        rank = int(ranks[0])
        step, value = int(found[0, rank].item()) - 1, found[1, rank].item()
        last = run.history[-1]["epoch"] if run.history else 0
        where = f" on rank {rank} of {ddp.world_size}" if ddp.world_size > 1 else ""
        raise TrainingDiverged(
            f"loss is {value} at epoch {epoch + 1}, step {step + 1} of {run.config.name()}{where}; "
            f"the last good checkpoint ({run.ckpt_path}, epoch {last}) is kept",
            every_rank=ddp.world_size > 1,
        )


@torch.no_grad()
def evaluate(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    batch_size: int = 500,
    precision: Optional[str] = None,
) -> float:
    """Top-1 accuracy in percent on pre-normalised images.

    Args:
        precision: "float32", "float16" or "bfloat16" autocast (None: the run plan's for the model's device).
    """
    model.eval()
    device = next(model.parameters()).device
    if precision is None:
        capability = torch.cuda.get_device_capability(device) if device.type == "cuda" else None
        precision = precision_for(device.type, capability)
    correct = 0
    for i in range(0, len(images), batch_size):
        x = images[i : i + batch_size].to(device, non_blocking=True)
        with autocast(precision, device.type):
            pred = model(x).argmax(1).cpu()
        correct += int((pred == labels[i : i + batch_size]).sum())
    return 100.0 * correct / len(images)
