"""Training-step time of GMM-ViT over ViT (same pooling), measured side by side.

Prints, per device (CPU, and CUDA when present):

1. for each model size (``--sizes``: ``paper``, the paper's ViT; ``cpu``, the ``cpu`` preset's), the median over
   interleaved rounds of the ratio step_time(GMM-ViT) / step_time(ViT) for a full training step (forward,
   backward, AdamW) on 32 x 32 images, at the preset's batch (128). The goal on CPU is at most 1.05. On CPU it
   also prints the ratio of process CPU time, which a busy shared machine disturbs less than wall time;
2. with ``--family-rounds``, the paper-size Swin and CaiT (chapter 7's families) beside the ViT and GMM-ViT, each
   family's training step against the ViT's, in the same interleaved rounds;
3. one attention call (forward and backward) at the paper's ViT shape (64 images, 12 heads, 64 tokens of 16
   dims): no mask (PyTorch's fused kernel), the GMM's multiplicative mask with gmmlib's cache-blocked kernel and
   with plain autograd, and RetNet's additive decay through gmmlib's fused path (the cache-blocked kernel on
   CPU, SDPA on CUDA) and through SDPA with a bias, interleaved, each against no mask.

Both arms of a ratio run in the same rounds, so a load that slows the machine slows both.

    python benchmarks/gmm_overhead.py [--rounds 20] [--steps 1] [--pool gap] [--threads 1]
    python benchmarks/gmm_overhead.py --threads 1 --rounds 12 --family-rounds 5 --attention-rounds 20 --record results/benchmarks/gmm_overhead.json --note "..."     # what chapters 4 and 7 read

``--record PATH`` writes the figures, with the command, machine, date and commit, to a JSON file
(``benchmarks/_record.py``); ``--note`` says what the machine's load does not (e.g. that it was shared).
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Callable, Dict, List

import torch
import torch.nn.functional as F

import gmmlib
from gmmlib import masks
from gmmlib.attention import masked_attention
from gmmlib.training.config import PRESETS

import _record

GOAL = 1.05  # GMM-ViT's training step at most 5 % slower than ViT's, on CPU
SIZES = ("paper", "cpu")


def make_step(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=0.1)

    def step() -> None:
        loss = loss_fn(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def timed(step, n: int, device: torch.device) -> tuple[float, float]:
    """Mean (wall seconds, process CPU seconds) per step."""
    if device.type == "cuda":
        torch.cuda.synchronize()
    t, c = time.perf_counter(), time.process_time()
    for _ in range(n):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - t) / n, (time.process_time() - c) / n


def interleaved(steps: Dict[str, Callable[[], None]], rounds: int, n: int, device: torch.device) -> Dict[str, List]:
    """Per-round (wall, CPU) seconds of each step, the order alternating from round to round."""
    for fn in steps.values():  # warm-up: first calls allocate
        timed(fn, 2, device)
    times: Dict[str, List] = {k: [] for k in steps}
    for r in range(rounds):
        for k in list(steps) if r % 2 == 0 else list(reversed(steps)):
            times[k].append(timed(steps[k], n, device))
    return times


def _ratios(times: Dict[str, List], over: str, base: str, which: int) -> List[float]:
    return [a[which] / b[which] for a, b in zip(times[over], times[base])]


def _batch(batch: int, device: torch.device) -> tuple:
    torch.manual_seed(0)
    return torch.randn(batch, 3, 32, 32, device=device), torch.randint(0, 10, (batch,), device=device)


def families(device: torch.device, pool: str, rounds: int) -> dict:
    """The paper-size ViT, GMM-ViT, Swin and CaiT: each one's training step against the ViT's, same rounds."""
    preset = PRESETS["paper"]
    x, y = _batch(preset.batch_size, device)
    arms = {"ViT": ("vit", None), "GMM-ViT": ("vit", "gmm"), "Swin": ("swin", None), "CaiT": ("cait", None)}
    models = {
        k: gmmlib.create_model(name, mask=mask, **({"pool": pool} if name == "vit" else {})).to(device)
        for k, (name, mask) in arms.items()
    }
    times = interleaved({k: make_step(m.train(), x, y) for k, m in models.items()}, rounds, 1, device)
    median_ms = {k: 1e3 * statistics.median(t[0] for t in ts) for k, ts in times.items()}
    return {
        "batch": preset.batch_size,
        "params": {k: gmmlib.count_parameters(m) for k, m in models.items()},
        "median_step_ms": median_ms,
        "images_per_second": {k: 1e3 * preset.batch_size / ms for k, ms in median_ms.items()},
        "ratio_to_vit": {k: statistics.median(_ratios(times, k, "ViT", 0)) for k in models},
    }


def training_step(device: torch.device, size: str, pool: str, rounds: int, steps: int) -> dict:
    """ViT and GMM-ViT of one size, full training steps side by side."""
    preset = PRESETS[size]
    overrides = preset.model_overrides.get("vit", {})
    batch = preset.batch_size
    x, y = _batch(batch, device)
    models = {
        "ViT": gmmlib.create_model("vit", pool=pool, **overrides).to(device),
        "GMM-ViT": gmmlib.create_model("vit", pool=pool, mask="gmm", **overrides).to(device),
    }
    times = interleaved({k: make_step(m.train(), x, y) for k, m in models.items()}, rounds, steps, device)
    wall = _ratios(times, "GMM-ViT", "ViT", 0)
    out = {
        "batch": batch,
        "model_overrides": overrides,
        "params": {k: gmmlib.count_parameters(m) for k, m in models.items()},
        "median_step_ms": {k: 1e3 * statistics.median(t[0] for t in ts) for k, ts in times.items()},
        "ratio": statistics.median(wall),
        "ratio_min": min(wall),
        "ratio_max": max(wall),
        "round_ratios": wall,
    }
    out["images_per_second"] = {k: 1e3 * batch / ms for k, ms in out["median_step_ms"].items()}
    if device.type == "cpu":
        out["cpu_time_ratio"] = statistics.median(_ratios(times, "GMM-ViT", "ViT", 1))
    return out


def attention_call(device: torch.device, rounds: int) -> dict:
    """Forward and backward of one attention call at the paper's ViT shape, each variant against no mask:
    the GMM's multiplicative mask and RetNet's additive decay, each through gmmlib's kernel and its rival."""
    B, H, N, d = 64, 12, 64, 16
    torch.manual_seed(0)
    q, k, v = (torch.randn(B, H, N, d, device=device, requires_grad=True) for _ in range(3))
    mask = masks.create("gmm", grid=(8, 8), num_heads=H).to(device)().detach()  # the call is timed, not the mask
    decay = masks.create("retnet", grid=(8, 8), num_heads=H).to(device)()
    variants = {
        "no mask (fused SDPA)": lambda: masked_attention(q, k, v),
        "GMM, cache-blocked kernel": lambda: masked_attention(q, k, v, mask, "multiply", backend="fused"),
        "GMM, plain autograd": lambda: masked_attention(q, k, v, mask, "multiply", backend="manual"),
        # what backend="fused" gives an additive mask on this device (on CPU the cache-blocked kernel)
        "RetNet decay, gmmlib fused": lambda: masked_attention(q, k, v, decay, "add", backend="fused"),
        "RetNet decay, SDPA with a bias": lambda: F.scaled_dot_product_attention(q, k, v, attn_mask=decay),
    }

    def call(fn: Callable[[], torch.Tensor]) -> Callable[[], None]:
        return lambda: fn().sum().backward()

    times = interleaved({name: call(fn) for name, fn in variants.items()}, rounds, 1, device)
    base = "no mask (fused SDPA)"
    return {
        "shape": {"batch": B, "heads": H, "tokens": N, "head_dim": d},
        "median_ms": {k: 1e3 * statistics.median(t[0] for t in ts) for k, ts in times.items()},
        "ratio_to_no_mask": {k: statistics.median(_ratios(times, k, base, 0)) for k in variants},
    }


def bench(device: torch.device, args: argparse.Namespace) -> dict:
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"device: {name}; pool={args.pool}; {args.rounds} rounds x {args.steps} steps; torch {torch.__version__}")
    out: dict = {"training_step": {}}
    for size in args.sizes:
        s = training_step(device, size, args.pool, args.rounds, args.steps)
        out["training_step"][size] = s
        print(f" {size}-size ViT, batch {s['batch']} ({s['params']['ViT']:,} parameters):")
        for k, ms in s["median_step_ms"].items():
            print(f"  {k:8s} median step {ms:8.1f} ms  ({s['images_per_second'][k]:7.0f} images/s)")
        print(
            f"  ratio GMM-ViT / ViT, wall time: median {s['ratio']:.3f} "
            f"(min {s['ratio_min']:.3f}, max {s['ratio_max']:.3f})"
        )
        if "cpu_time_ratio" in s:
            print(f"  ratio GMM-ViT / ViT, CPU time:  median {s['cpu_time_ratio']:.3f}")
    if args.family_rounds:
        f = out["families"] = families(device, args.pool, args.family_rounds)
        print(f" paper-size families, batch {f['batch']}, {args.family_rounds} rounds:")
        for k, ms in f["median_step_ms"].items():
            print(f"  {k:8s} median step {ms:8.1f} ms  ({f['ratio_to_vit'][k]:.2f} x ViT)")
    if args.attention_rounds:
        a = attention_call(device, args.attention_rounds)
        out["attention_call"] = a
        print(f" one attention call, forward and backward, {args.attention_rounds} rounds:")
        for k, ms in a["median_ms"].items():
            print(f"  {k:31s} median {ms:7.2f} ms  ({a['ratio_to_no_mask'][k]:.2f} x no mask)")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--steps", type=int, default=1)
    ap.add_argument("--pool", choices=["gap", "cls"], default="gap")
    ap.add_argument("--sizes", type=lambda s: s.split(","), default=list(SIZES), help="comma-separated: paper,cpu")
    ap.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads on CPU (default: torch's; the recorded cpu-preset runs trained with 1)",
    )
    ap.add_argument(
        "--family-rounds",
        type=int,
        default=None,
        help="rounds of ViT, GMM-ViT, Swin, CaiT (default: half of --rounds; 0: skip)",
    )
    ap.add_argument(
        "--attention-rounds", type=int, default=None, help="rounds of the attention call (default: --rounds; 0: skip)"
    )
    _record.add_arguments(ap)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.family_rounds is None:
        args.family_rounds = max(1, args.rounds // 2)
    if args.attention_rounds is None:
        args.attention_rounds = args.rounds
    unknown = [s for s in args.sizes if s not in SIZES]
    if unknown:
        ap.error(f"unknown size(s) {', '.join(unknown)}: choose from {', '.join(SIZES)}")
    recorder = _record.Recorder("gmm_overhead", args)
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    figures = {device.type: bench(device, args) for device in devices}
    figures["goal"] = GOAL
    recorder.record(figures)


if __name__ == "__main__":
    main()
