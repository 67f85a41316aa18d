"""Training-step time of GMM-ViT over ViT (same pooling), measured side by side.

Prints, per device (CPU, and CUDA when present), the median over interleaved rounds of
the ratio step_time(GMM-ViT) / step_time(ViT) for a full training step (forward,
backward, AdamW) at batch 128 on 32 x 32 images. The goal on CPU is at most 1.05.
On CPU it also prints the ratio of process CPU time, which a busy shared machine
disturbs less than wall time.

    python benchmarks/gmm_overhead.py [--rounds 20] [--steps 1] [--pool gap]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import gmmlib


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


def bench(device: torch.device, pool: str, rounds: int, steps: int, batch: int) -> None:
    torch.manual_seed(0)
    x = torch.randn(batch, 3, 32, 32, device=device)
    y = torch.randint(0, 10, (batch,), device=device)
    models = {
        "ViT": gmmlib.create_model("vit", pool=pool).to(device),
        "GMM-ViT": gmmlib.create_model("vit", pool=pool, mask="gmm").to(device),
    }
    steps_fn = {k: make_step(m.train(), x, y) for k, m in models.items()}
    for fn in steps_fn.values():  # warm-up
        timed(fn, 2, device)
    times = {k: [] for k in models}
    ratios, cpu_ratios = [], []
    for r in range(rounds):
        order = list(models) if r % 2 == 0 else list(reversed(models))  # interleave, alternate order
        t = {k: timed(steps_fn[k], steps, device) for k in order}
        for k in models:
            times[k].append(t[k][0])
        ratios.append(t["GMM-ViT"][0] / t["ViT"][0])
        cpu_ratios.append(t["GMM-ViT"][1] / t["ViT"][1])
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"device: {name}; pool={pool}; batch {batch}; {rounds} rounds x {steps} steps; torch {torch.__version__}")
    for k in models:
        med = statistics.median(times[k])
        print(f"  {k:8s} median step {med * 1e3:8.1f} ms  ({batch / med:7.0f} images/s)")
    print(
        f"  ratio GMM-ViT / ViT, wall time: median {statistics.median(ratios):.3f} (min {min(ratios):.3f}, max {max(ratios):.3f})"
    )
    if device.type == "cpu":
        print(f"  ratio GMM-ViT / ViT, CPU time:  median {statistics.median(cpu_ratios):.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--steps", type=int, default=1)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--pool", choices=["gap", "cls"], default="gap")
    args = ap.parse_args()
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    for device in devices:
        bench(device, args.pool, args.rounds, args.steps, args.batch)


if __name__ == "__main__":
    main()
