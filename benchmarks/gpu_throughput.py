"""Training throughput at the paper's scale: the data path alone, ViT and GMM-ViT side by side, runs in parallel.

Prints, for one preset (default ``paper``) on real CIFAR-10 when a data root is given (``--data`` or
``GMMLIB_DATA``), else on the synthetic set (same image shape):

1. the data path alone (images/s): the gpu pipeline (split on the device, batched augmentation)
   and, for comparison, the cpu pipeline (DataLoader workers);
2. full training steps (images/s) of ViT and GMM-ViT (GAP, K = 5), built exactly as ``gmmlib train``
   builds them (:func:`gmmlib.training.loop.setup` and :func:`gmmlib.training.loop.train_step`), timed in interleaved
   rounds after warm-up (compilation included in the warm-up), and the GMM / ViT step-time ratio;
3. N runs side by side (``--parallel N``): N processes, each training its own run, timed over the
   same window; their total images/s;
4. the projected minutes for one run of the preset (epochs x passes x training images; 15M for the
   paper preset on CIFAR-10), alone and N at a time.

    python benchmarks/gpu_throughput.py                       # on a GPU: paper preset, defaults
    python benchmarks/gpu_throughput.py --data ../shared/data --parallel 4
    python benchmarks/gpu_throughput.py --device cpu --preset quick --steps 3 --rounds 2 --warmup 1 --parallel 2
    python benchmarks/gpu_throughput.py --device cpu --preset paper --data-epochs 0 --parallel 1 --steps 2 --rounds 3 --warmup 1 --threads 1 --record results/benchmarks/throughput_cpu_paper.json  # chapter 1 reads it

Speed figures come from here, never from training logs. ``--record PATH`` writes them, with the command,
machine, date and commit, to a JSON file (``benchmarks/_record.py``); ``--data-epochs 0`` skips the data path.
"""

from __future__ import annotations

import argparse
import itertools
import multiprocessing as mp
import os
import statistics
import tempfile
import time
from typing import Iterator, Optional

import torch

from gmmlib import data as gdata
from gmmlib.training.config import DATA_PATHS, PRESETS, RunConfig
from gmmlib.training.loop import TrainingRun, setup, train_step
from gmmlib.training.runtime import resolve_device

import _record

MODELS = {"ViT": dict(model="vit", mask=None, pool="gap"), "GMM-ViT": dict(model="vit", mask="gmm", pool="gap")}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _dataset(root: Optional[str]) -> str:
    if root or os.environ.get("GMMLIB_DATA"):
        try:
            gdata.describe_source("cifar10", root, sha256=False)
            return "cifar10"
        except gdata.DataNotFoundError:
            pass
    return "synthetic"


def _batches(run: TrainingRun) -> Iterator:
    for epoch in itertools.count():
        yield from run.batches(epoch)


def _setup(name: str, args: argparse.Namespace, dataset: str, pipeline: str) -> TrainingRun:
    config = RunConfig(**MODELS[name], dataset=dataset, preset=args.preset, seed=0)
    out = tempfile.mkdtemp(prefix="gmmlib-bench-")  # setup writes nothing there
    return setup(config, out, root=args.data, device=args.device, compile=args.compile, data_pipeline=pipeline)


def _time_steps(run: TrainingRun, batches: Iterator, steps: int, start: int) -> float:
    """Seconds for ``steps`` training steps, data included."""
    run.model.train()
    _sync(run.device)
    t = time.perf_counter()
    for i in range(steps):
        x, y = next(batches)
        train_step(run, x, y, start + i)
    _sync(run.device)
    return time.perf_counter() - t


def data_path(args: argparse.Namespace, dataset: str) -> dict:
    """Images/s of each pipeline's batches alone (no model), over whole epochs: the gpu path after one
    warm-up epoch, the cpu path as a run meets it (its DataLoader workers start every epoch)."""
    out = {}
    for pipeline in ("gpu", "cpu"):
        run = _setup("ViT", args, dataset, pipeline)
        if pipeline == "gpu":
            for _ in run.batches(0):
                pass
        _sync(run.device)
        t, n = time.perf_counter(), 0
        for epoch in range(1, 1 + args.data_epochs):
            for x, _ in run.batches(epoch):
                n += len(x)
        _sync(run.device)
        out[pipeline] = n / (time.perf_counter() - t)
        del run
    return out


def side_by_side(args: argparse.Namespace, dataset: str) -> dict:
    """Median images/s of ViT and GMM-ViT over interleaved rounds, and the median per-round ratio."""
    runs = {name: _setup(name, args, dataset, args.pipeline) for name in MODELS}
    its = {name: _batches(run) for name, run in runs.items()}
    for name, run in runs.items():  # warm-up, compilation included
        _time_steps(run, its[name], args.warmup, 1)
    times: dict = {name: [] for name in MODELS}
    ratios = []
    for r in range(args.rounds):
        order = list(MODELS) if r % 2 == 0 else list(reversed(MODELS))
        t = {name: _time_steps(runs[name], its[name], args.steps, 1 + args.warmup + r * args.steps) for name in order}
        for name in MODELS:
            times[name].append(t[name])
        ratios.append(t["GMM-ViT"] / t["ViT"])
    batch = runs["ViT"].preset.batch_size
    out = {name: args.steps * batch / statistics.median(ts) for name, ts in times.items()}
    out["ratio"] = statistics.median(ratios)
    out["ratio_range"] = (min(ratios), max(ratios))
    out["compiled"] = runs["ViT"].compiled
    out["pipeline"] = runs["ViT"].data_pipeline
    out["images_per_run"] = runs["ViT"].steps_per_epoch * batch * runs["ViT"].preset.epochs
    return out


def _worker(name: str, args: argparse.Namespace, dataset: str, barrier, results) -> None:
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // args.parallel))
    run = _setup(name, args, dataset, args.pipeline)
    it = _batches(run)
    _time_steps(run, it, args.warmup, 1)
    barrier.wait()  # every process starts timing together
    seconds = _time_steps(run, it, args.steps * args.rounds, 1 + args.warmup)
    results.put(args.steps * args.rounds * run.preset.batch_size / seconds)


def parallel(args: argparse.Namespace, dataset: str, name: str) -> list:
    """Images/s of each of ``args.parallel`` processes training ``name`` at the same time."""
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(args.parallel), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(name, args, dataset, barrier, results)) for _ in range(args.parallel)]
    for p in procs:
        p.start()
    rates = [results.get(timeout=3600) for _ in procs]
    for p in procs:
        p.join()
    return rates


def main(argv: Optional[list] = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="paper", choices=list(PRESETS))
    ap.add_argument("--data", default=None, help="data root with CIFAR-10 (default: $GMMLIB_DATA; else synthetic)")
    ap.add_argument("--device", default=None, help="default: cuda when available")
    ap.add_argument(
        "--pipeline",
        default="batched",
        choices=[*DATA_PATHS, "gpu", "cpu", "auto"],
        help="data path of the training runs",
    )
    ap.add_argument("--compile", default=None, action=argparse.BooleanOptionalAction, help="default: auto")
    ap.add_argument("--steps", type=int, default=50, help="training steps per timed round")
    ap.add_argument("--rounds", type=int, default=6, help="interleaved rounds of ViT and GMM-ViT")
    ap.add_argument("--warmup", type=int, default=30, help="untimed steps first (compilation, CUDA graphs)")
    ap.add_argument("--data-epochs", type=int, default=1, help="epochs timed for the data path alone (0: skip)")
    ap.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads on CPU (default: torch's; the recorded cpu-preset runs trained with 1)",
    )
    ap.add_argument("--parallel", type=int, default=4, help="runs side by side for the parallel figure (1: skip)")
    _record.add_arguments(ap)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    recorder = _record.Recorder("gpu_throughput", args, device)
    dataset = _dataset(args.data)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"device: {name}; torch {torch.__version__}; preset {args.preset}; data: {dataset}")
    figures: dict = {"dataset": dataset}

    if args.data_epochs > 0:
        d = figures["data_path"] = data_path(args, dataset)
        print(f"data path alone: gpu pipeline {d['gpu']:,.0f} img/s; cpu pipeline {d['cpu']:,.0f} img/s")

    s = side_by_side(args, dataset)
    print(
        f"training ({s['pipeline']} pipeline, compiled: {s['compiled']}; {args.rounds} rounds x {args.steps} steps, "
        "median):"
    )
    for model in MODELS:
        minutes = s["images_per_run"] / s[model] / 60
        print(f"  {model:8s} {s[model]:9,.0f} img/s   one run ({s['images_per_run']:,} images): {minutes:6.1f} min")
    lo, hi = s["ratio_range"]
    print(f"  GMM-ViT / ViT step time: {s['ratio']:.3f} (rounds {lo:.3f} to {hi:.3f})")
    figures["side_by_side"] = {
        "images_per_second": {model: s[model] for model in MODELS},
        "minutes_per_run": {model: s["images_per_run"] / s[model] / 60 for model in MODELS},
        "images_per_run": s["images_per_run"],
        "ratio": s["ratio"],
        "ratio_min": lo,
        "ratio_max": hi,
        "compiled": s["compiled"],
        "pipeline": s["pipeline"],
    }

    if args.parallel > 1:
        for model in MODELS:
            rates = parallel(args, dataset, model)
            total = sum(rates)
            minutes = s["images_per_run"] * args.parallel / total / 60
            each = ", ".join(f"{r:,.0f}" for r in rates)
            print(
                f"  {args.parallel} x {model} in parallel: {total:,.0f} img/s in total ({each}); "
                f"{args.parallel} runs in {minutes:.1f} min"
            )
            figures.setdefault("parallel", {})[model] = {"images_per_second": rates, "minutes_for_all": minutes}
    recorder.record(figures)


if __name__ == "__main__":
    main()
