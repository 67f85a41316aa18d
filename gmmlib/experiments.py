"""The paper's experiments as named grids of runs, and a runner that fills them in.

``gmmlib run EXPERIMENT --preset cpu`` trains every run of the grid whose result is
missing, one after another. A run's result lives in
``results/<experiment>/<run>.json`` and carries the hash of its full configuration:
a file with the same hash is never trained again, and a run already done under
another experiment with the same hash is reused (copied, with a note) instead of
being trained twice. Checkpoints live in ``runs/`` (not committed); a stopped runner
started again resumes the run it was in.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional

import torch

from .data import DataNotFoundError
from .provenance import save_torch, write_json
from .config import PRESETS, RunConfig
from .train import train

__all__ = ["Experiment", "EXPERIMENTS", "list_experiments", "get_experiment", "run_experiment", "results_dir", "matches"]

_SEEDS3 = (0, 1, 2)
_FAMILIES = ("vit", "swin", "cait", "pit", "t2t")
_DATASETS = ("cifar10", "cifar100", "svhn", "tiny-imagenet")


@dataclass(frozen=True)
class Experiment:
    """A named grid of runs.

    Args:
        name: registry name.
        title: one line for listings and the book.
        grid: the runs, as RunConfig keyword dicts (preset is added at run time).
    """

    name: str
    title: str
    grid: Callable[[], List[Dict[str, Any]]]

    def configs(self, preset: str, dataset: Optional[str] = None) -> List[RunConfig]:
        """The runs of this experiment under ``preset`` (all on ``dataset`` if given)."""
        configs, seen = [], set()
        for kw in self.grid():
            config = RunConfig(preset=preset, **{**kw, **({"dataset": dataset} if dataset else {})})
            if config.key() not in seen:
                seen.add(config.key())
                configs.append(config)
        return configs


def _vit(mask: Optional[str] = None, pool: str = "gap", seed: int = 0, **mask_options) -> Dict[str, Any]:
    return dict(model="vit", mask=mask, pool=pool, dataset="cifar10", seed=seed, mask_options=mask_options)


EXPERIMENTS: Dict[str, Experiment] = {
    e.name: e
    for e in [
        Experiment(
            "headline",
            "ViT vs GMM-ViT (K = 5), both with GAP pooling, CIFAR-10, 3 seeds",
            lambda: [_vit(mask, seed=s) for s in _SEEDS3 for mask in (None, "gmm")],
        ),
        Experiment(
            "exp1",
            "Experiment 1: five ViT families x four data sets, without and with GMM",
            lambda: [
                dict(model=m, mask=mask, dataset=d, pool="gap" if m == "vit" else None)
                for d in _DATASETS
                for m in _FAMILIES
                for mask in (None, "gmm")
            ],
        ),
        Experiment(
            "exp2-kernels",
            "Experiment 2a: number of Gaussian kernels K of GMM-ViT on CIFAR-10",
            # The unmasked ViT is the baseline each K is measured against. K = 5 and the official
            # init are the defaults, written without options so that they reuse the headline's run.
            lambda: [_vit(None)] + [_vit("gmm", **({} if k == 5 else {"num_kernels": k})) for k in (1, 2, 3, 4, 5, 8, 10)],
        ),
        Experiment(
            "exp2-init",
            "Experiment 2b: initialisation of alpha and sigma of GMM-ViT on CIFAR-10",
            lambda: [_vit(None)] + [_vit("gmm", **({} if i == "official" else {"init": i})) for i in ("official", "identity", "zeros", "local")],
        ),
        Experiment(
            "exp3",
            "Experiment 3: GMM-ViT against Swin and CaiT, with and without GMM, and their cost",
            lambda: [_vit(None), _vit("gmm")]
            + [dict(model=m, mask=mask, dataset="cifar10") for m in ("swin", "cait") for mask in (None, "gmm")],
        ),
        Experiment(
            "elm",
            "No mask vs ELM vs GMM on ViT, CIFAR-10",
            lambda: [_vit(None), _vit("elm"), _vit("gmm")],
        ),
        Experiment(
            "retnet",
            "RetNet-style decay masks on ViT, CIFAR-10: 2-D Manhattan (RMT), Euclidean, 1-D causal",
            lambda: [_vit(None)] + [_vit("retnet", distance=d) for d in ("manhattan", "euclidean", "causal")],
        ),
        Experiment(
            "pooling",
            "The pooling confound: CLS vs GAP, each without and with GMM, on ViT, CIFAR-10",
            lambda: [_vit(mask, pool=p) for p in ("cls", "gap") for mask in (None, "gmm")],
        ),
        Experiment(
            "beyond",
            "Beyond the paper: RMT decay, 2-D ALiBi and a Swin-style relative bias on ViT, CIFAR-10",
            lambda: [_vit(None), _vit("gmm"), _vit("retnet", distance="manhattan"), _vit("alibi2d"), _vit("relpos")],
        ),
    ]
}


def list_experiments() -> List[str]:
    """Names accepted by :func:`run_experiment`."""
    return list(EXPERIMENTS)


def get_experiment(name: str) -> Experiment:
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}; choices: {', '.join(EXPERIMENTS)}")
    return EXPERIMENTS[name]


def results_dir(path: Optional[str | Path] = None) -> Path:
    """The results folder: ``path``, ``GMMLIB_RESULTS``, or ``results/`` of this checkout."""
    if path is not None:
        return Path(path)
    if os.environ.get("GMMLIB_RESULTS"):
        return Path(os.environ["GMMLIB_RESULTS"])
    return Path(__file__).resolve().parents[1] / "results"


def run_command(experiment: str, preset: str = "cpu", only: Optional[str] = None) -> str:
    """The command line that runs (the missing runs of) an experiment."""
    cmd = f"python -m gmmlib run {experiment} --preset {preset}"
    return f"{cmd} --only {only}" if only else cmd


def run_file_name(config: RunConfig) -> str:
    return f"{config.name()}-{config.preset}"


def matches(config: RunConfig, only: Optional[str]) -> bool:
    """Does ``config`` pass the filter? ``only`` is a substring of the run name, or
    comma-separated ``field=value`` pairs (``mask=none`` matches no mask)."""
    if not only:
        return True
    if "=" not in only:
        return only in run_file_name(config)
    fields = dataclasses.asdict(config)
    for pair in only.split(","):
        key, _, value = pair.partition("=")
        key = key.strip()
        if key not in fields:
            raise ValueError(f"unknown filter field {key!r}; fields: {', '.join(fields)}")
        actual = fields[key]
        if str(actual if actual is not None else "none").lower() != value.strip().lower():
            return False
    return True


def _index(results: Path) -> Dict[str, Path]:
    """key -> result file, over every experiment folder."""
    index = {}
    for f in sorted(results.glob("*/*.json")):
        try:
            index.setdefault(json.loads(f.read_text())["key"], f)
        except (ValueError, KeyError, OSError):
            continue
    return index


def _keep_weights(model_state: Dict[str, torch.Tensor], target: Path, limit_bytes: int = 2 << 20) -> Optional[str]:
    size = sum(t.numel() * t.element_size() for t in model_state.values())
    if size >= limit_bytes:
        return None
    save_torch(target, model_state)
    return target.name


def run_experiment(
    name: str,
    preset: str = "cpu",
    only: Optional[str] = None,
    dataset: Optional[str] = None,
    results: Optional[str | Path] = None,
    work_dir: str | Path = "runs",
    root: Optional[str | Path] = None,
    device: Optional[str] = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> Dict[str, List[str]]:
    """Train every missing run of an experiment, one after another.

    Args:
        name: experiment name (see :func:`list_experiments`).
        preset: training preset ("paper", "cpu", "quick").
        only: filter (see :func:`matches`).
        dataset: run the whole grid on this data set instead of the grid's own.
        results: results folder (default :func:`results_dir`).
        work_dir: folder for checkpoints of runs in progress.
        root: data root.
        device: torch device.
        progress: tqdm bars.
        log: where one-line status messages go.

    Returns:
        Run names by outcome: "trained", "skipped" (already done), "reused" (same
        config done elsewhere), "missing_data".
    """
    experiment = get_experiment(name)
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choices: {', '.join(PRESETS)}")
    results = results_dir(results)
    outcome: Dict[str, List[str]] = {"trained": [], "skipped": [], "reused": [], "missing_data": []}
    configs = [c for c in experiment.configs(preset, dataset) if matches(c, only)]
    if not configs:
        raise ValueError(f"filter {only!r} matches no run of {name!r}")
    for config in configs:
        run = run_file_name(config)
        target = results / name / f"{run}.json"
        key = config.key()
        if target.exists() and json.loads(target.read_text()).get("key") == key:
            outcome["skipped"].append(run)
            continue
        same = _index(results).get(key)
        if same is not None and same != target:
            data = json.loads(same.read_text())
            data["experiment"] = name
            # name the run that was trained, not a copy of it
            data["reused_from"] = data.get("reused_from") or str(same.relative_to(results))
            write_json(target, data)
            weights = same.with_name(same.stem + ".weights.pt")
            if weights.exists():
                shutil.copyfile(weights, target.with_name(f"{run}.weights.pt"))
            outcome["reused"].append(run)
            log(f"{name}/{run}: same config as {data['reused_from']}, reused")
            continue
        log(f"{name}/{run}: training ({config.key()})")
        try:
            result = train(config, Path(work_dir) / name / run, resume=True, root=root, device=device, progress=progress)
        except DataNotFoundError as e:
            outcome["missing_data"].append(run)
            log(f"{name}/{run}: not run, data missing: {e}")
            continue
        state = torch.load(Path(work_dir) / name / run / "checkpoint.pt", map_location="cpu", weights_only=False)
        result["weights_file"] = _keep_weights(state["model"], target.with_name(f"{run}.weights.pt"))
        result["experiment"] = name
        write_json(target, result)
        outcome["trained"].append(run)
        log(f"{name}/{run}: best top-1 {result['best_top1']:.2f}, final {result['final_top1']:.2f}")
    return outcome


def describe(names: Optional[Iterable[str]] = None) -> str:
    """A listing of experiments and their run counts."""
    lines = []
    for n in names or EXPERIMENTS:
        e = get_experiment(n)
        lines.append(f"{n:14s} {len(e.grid()):3d} runs  {e.title}")
    return "\n".join(lines)
