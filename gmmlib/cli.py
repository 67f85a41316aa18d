"""Command line: ``gmmlib train``, ``gmmlib run``, ``gmmlib list`` and ``gmmlib demo``.

    gmmlib train --model vit --mask gmm --dataset cifar10 --preset cpu --seed 0 --out runs/my-run
    gmmlib run headline --preset cpu            # every missing run of an experiment
    gmmlib run exp1 --preset cpu --only dataset=cifar10
    gmmlib list                                 # experiments, models, masks, presets, data sets
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import List, Optional


def _mask_options(pairs: List[str]) -> dict:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"--mask-option takes KEY=VALUE, got {pair!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def _train(args: argparse.Namespace) -> int:
    from .config import RunConfig
    from .train import train

    config = RunConfig(
        model=args.model,
        mask=None if args.mask in (None, "none") else args.mask,
        mask_options=_mask_options(args.mask_option),
        pool=args.pool,
        dataset=args.dataset,
        preset=args.preset,
        seed=args.seed,
        epochs=args.epochs,
    )
    out = args.out or f"runs/{config.name()}-{config.preset}"
    result = train(
        config, out, resume=args.resume, root=args.data, device=args.device, progress=not args.no_progress, compile=args.compile
    )
    print(f"{result['name']}: best top-1 {result['best_top1']:.2f}%, final {result['final_top1']:.2f}% -> {out}/result.json")
    return 0


def _run(args: argparse.Namespace) -> int:
    from .experiments import run_experiment

    outcome = run_experiment(
        args.experiment,
        preset=args.preset,
        only=args.only,
        dataset=args.dataset,
        results=args.results,
        work_dir=args.work_dir,
        root=args.data,
        device=args.device,
        progress=not args.no_progress,
    )
    print(", ".join(f"{k}: {len(v)}" for k, v in outcome.items()))
    return 0


def _list(args: argparse.Namespace) -> int:
    from . import data, experiments, list_models, masks
    from .config import PRESETS

    print("experiments:\n" + experiments.describe())
    print("models:   " + ", ".join(list_models()))
    print("masks:    " + ", ".join(masks.list_masks()))
    print("presets:  " + ", ".join(PRESETS))
    print("datasets: " + ", ".join(data.DATASETS))
    return 0


def _demo(args: argparse.Namespace) -> int:
    from .demo import main as demo

    return demo()


def build_parser() -> argparse.ArgumentParser:
    from . import list_models
    from .config import PRESETS

    p = argparse.ArgumentParser(prog="gmmlib", description="Locality masks for ViTs on small data.")
    sub = p.add_subparsers(dest="command", required=True)

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--preset", default="cpu", choices=list(PRESETS))
    common.add_argument("--data", default=None, help="data root (default: $GMMLIB_DATA)")
    common.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda when available)")
    common.add_argument("--no-progress", action="store_true", help="no progress bars")

    t = sub.add_parser("train", parents=[common], help="train one run")
    t.add_argument("--model", default="vit", choices=list_models())
    t.add_argument("--mask", default=None, help="mask kind, or none")
    t.add_argument("--mask-option", action="append", default=[], metavar="KEY=VALUE", help="e.g. num_kernels=3")
    t.add_argument("--pool", default=None, choices=["gap", "cls"])
    t.add_argument("--dataset", default="cifar10")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--epochs", type=int, default=None, help="override the preset's epochs")
    t.add_argument("--out", default=None, help="output folder (default: runs/<run name>)")
    t.add_argument("--resume", action="store_true", help="continue from the output folder's checkpoint")
    t.add_argument("--compile", action="store_true", help="torch.compile the model (worth it on CUDA)")
    t.set_defaults(func=_train)

    r = sub.add_parser("run", parents=[common], help="run the missing runs of an experiment")
    r.add_argument("experiment")
    r.add_argument("--only", default=None, help="substring of run names, or field=value[,field=value]")
    r.add_argument("--dataset", default=None, help="run the whole grid on this data set")
    r.add_argument("--results", default=None, help="results folder (default: results/ of this checkout)")
    r.add_argument("--work-dir", default="runs", help="checkpoints of runs in progress")
    r.set_defaults(func=_run)

    sub.add_parser("list", help="list experiments, models, masks, presets, data sets").set_defaults(func=_list)
    sub.add_parser("demo", help="a short end-to-end demo").set_defaults(func=_demo)
    return p


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileExistsError, FileNotFoundError) as e:
        print(f"gmmlib: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
