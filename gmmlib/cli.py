"""Command line: ``gmmlib env``, ``train``, ``run``, ``status``, ``merge``, ``promote``, ``report``, ``list``, ``demo``.

    gmmlib env                                  # first, on a new machine: the run plan, data and folders
    gmmlib env --gpu T4                         # the plan a Colab T4 gets, on any machine
    gmmlib train --model vit --mask gmm --dataset cifar10 --preset cpu --seed 0 --out runs/my-run
    gmmlib run headline --preset cpu            # every missing run of an experiment
    gmmlib run exp1 --preset cpu --only dataset=cifar10 --parallel 2
    gmmlib run headline-paper --preset paper --download --output /content/drive/MyDrive/gmm   # Colab
    gmmlib status --staging results/pending     # what each experiment has recorded, lacks and has staged
    gmmlib promote exp2-kernels --from results/pending   # a complete rerun replaces the old runs
    gmmlib report                               # every comparison's gain, interval and seeds
    gmmlib list                                 # experiments, models, masks, presets, data sets

Every fault the user can fix (a bad name or value, a missing or damaged file, a folder
that cannot be written) ends with one line on stderr, ``gmmlib: error: ...``, naming the
value or file and what to do, and exit status 2; everything is checked before any data
loads, and a failed command leaves no empty output folder behind. ``run`` exits with 2
too when any run failed or lacked data, or a result file was corrupt (it is set aside).
SIGINT and SIGTERM end a command with one line naming what it resumes from, and exit status 130 or 143.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import warnings
from pathlib import Path
from typing import Dict, Iterator, List, Optional

EXIT_ERROR = 2


class CommandError(ValueError):
    """A fault the user can fix; ``main`` prints it as one ``gmmlib: error:`` line and exits with 2."""


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def parse_mask_options(pairs: List[str]) -> Dict[str, str]:
    """``["num_kernels=3", ...]`` -> ``{"num_kernels": "3"}``; the values are parsed by the mask's types
    (:func:`gmmlib.training.options.normalise_mask_options`), strictly."""
    out: Dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise CommandError(f"--mask-option takes KEY=VALUE (e.g. num_kernels=3), got {pair!r}")
        if key.strip() in out:
            raise CommandError(f"--mask-option {key.strip()} given twice")
        out[key.strip()] = value.strip()
    return out


@contextlib.contextmanager
def _notes() -> Iterator[None]:
    """Warnings (e.g. "no checkpoint in ...: starting fresh") as one ``gmmlib: note:`` line each."""

    def show(message, category, filename, lineno, file=None, line=None):  # noqa: ANN001
        print(f"gmmlib: note: {_one_line(str(message))}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.simplefilter("default")
        warnings.filterwarnings("ignore", message="IProgress not found")
        warnings.showwarning = show
        yield


@contextlib.contextmanager
def _no_empty_folder(path: Path) -> Iterator[None]:
    """On failure, remove ``path`` and the parents this command created, if they are empty."""
    path = Path(path).absolute()
    created = []
    p = path
    while not p.exists():
        created.append(p)
        p = p.parent
    try:
        yield
    except BaseException:
        for p in created:  # deepest first
            try:
                p.rmdir()
            except OSError:
                break
        raise


def _device(name: Optional[str]) -> Optional[str]:
    from .experiments.runner import checked_device

    return checked_device(name)


def _train(args: argparse.Namespace) -> int:
    from .data import fetch
    from .experiments.machine import output_folders
    from .files import check_folder_writable
    from .training.config import RunConfig
    from .training.loop import train

    config = RunConfig(
        model=args.model,
        mask=None if args.mask in (None, "none") else args.mask,
        mask_options=parse_mask_options(args.mask_option),
        pool=args.pool,
        dataset=args.dataset,
        preset=args.preset,
        seed=args.seed,
        epochs=args.epochs,
        data_path=args.data_pipeline or "batched",
        train_size=args.train_size,
    )
    config.validate()
    device = _device(args.device)
    _, work = output_folders(args.output)
    out = Path(args.out or work / f"{config.name()}-{config.preset}")
    check_folder_writable(out, "--out")
    if (out / "checkpoint.pt").exists() and not args.resume:
        raise CommandError(f"{out / 'checkpoint.pt'} exists: pass --resume to continue it, or choose another --out")
    extra = {"compile": args.compile} if args.compile is not None else {}
    if args.download:
        fetch(config.dataset, args.data)
    with _no_empty_folder(out):
        result = train(
            config,
            out,
            resume=args.resume,
            root=args.data,
            device=device,
            progress=not args.no_progress,
            precision=args.precision,
            **extra,
        )
    best, final = result["best_top1"], result["final_top1"]
    if int(os.environ.get("RANK", "0")) == 0:  # under torchrun, rank 0 reports
        print(f"{result['name']}: best top-1 {best:.2f}%, final {final:.2f}% -> {out}/result.json")
    return 0


def _run(args: argparse.Namespace) -> int:
    from .experiments.machine import output_folders
    from .experiments.runner import parse_shard, run_experiment

    results, work_dir = output_folders(args.output, args.results, args.work_dir)
    if results.exists() and not results.is_dir():
        raise CommandError(f"--results {results} is a file, not a folder: point --results at a folder")
    outcome = run_experiment(
        args.experiment,
        preset=args.preset,
        only=args.only,
        dataset=args.dataset,
        results=results,
        work_dir=work_dir,
        root=args.data,
        device=_device(args.device),
        progress=not args.no_progress,
        parallel=args.parallel,
        compile=args.compile,
        data_pipeline=args.data_pipeline,
        shard=None if args.shard is None else parse_shard(args.shard),
        reuse_from=args.reuse_from,
        download=args.download,
        precision=args.precision,
    )
    if int(os.environ.get("RANK", "0")) != 0:
        return 0 if outcome.ok else EXIT_ERROR  # under torchrun, rank 0 reports
    print(", ".join(f"{k}: {len(v)}" for k, v in outcome.items() if v or k != "other_shard"))
    if outcome.ok:
        return 0
    first = {kind: outcome[kind][0] for kind in ("failed", "missing_data", "corrupt") if outcome[kind]}
    problems, hints = [], []
    if "corrupt" in first:
        problems.append(f"{len(outcome['corrupt'])} corrupt file(s): {outcome.reasons[first['corrupt']]}")
        hints.append("look into the .corrupt file(s)")
    if "failed" in first:
        name = first["failed"]
        problems.append(f"{len(outcome['failed'])} run(s) failed ({name}: {outcome.reasons[name]})")
        hints.append("fix the cause")
    if "missing_data" in first:
        name = first["missing_data"]
        problems.append(f"{len(outcome['missing_data'])} run(s) lacked data ({name}: {outcome.reasons[name]})")
        hints.append("point --data or GMMLIB_DATA at the data")
    raise CommandError(f"{args.experiment}: {'; '.join(problems)}; {', '.join(hints)} and run the same command again")


def _require_folder(path: Optional[str], option: str = "") -> None:
    """A results folder named on the command line must exist (None: the option was not given)."""
    if path is not None and not Path(path).is_dir():
        raise CommandError(f"{option + ' ' if option else ''}{path} is not a results folder")


def _merge(args: argparse.Namespace) -> int:
    from .store.merge import merge

    for source in args.sources:
        _require_folder(source)
    done = merge(args.sources, into=args.results, replace=args.replace)
    print(
        f"copied {len(done['copied'])} record(s), {len(done['present'])} already present; "
        f"experiments: {', '.join(done['experiments']) or 'none'}"
    )
    if done["differ"]:
        print(
            f"note: kept this folder's record of {len(done['differ'])} key(s) that a source holds as another run "
            f"(other hardware or another top-1): {', '.join(done['differ'])}. The key does not say where a run "
            "trained; to keep both, merge into a separate results folder, and compare runs trained on one kind "
            "of hardware"
        )
    return 0


def _promote(args: argparse.Namespace) -> int:
    from .experiments.promote import promote

    _require_folder(args.staging)
    done = promote(
        args.experiment, args.staging, preset=args.preset, results=args.results, only=args.only, dataset=args.dataset
    )
    print(
        f"{args.experiment}: {len(done['copied']) + len(done['replaced'])} staged run(s) promoted, "
        f"{len(done['dropped'])} old run(s) off the list, {len(done['removed'])} record(s) removed"
    )
    return 0


def _status(args: argparse.Namespace) -> int:
    from .experiments.status import status

    _require_folder(args.staging, "--staging")
    rows = status(args.preset, args.results, args.staging)
    columns = ["grid", "recorded", "missing", "stale"] + ["staged"] * (args.staging is not None)
    print(f"{'experiment':16s}" + "".join(f"{c:>10s}" for c in columns) + f"   ({args.preset} preset)")
    for row in rows:
        print(f"{row['experiment']:16s}" + "".join(f"{row[c]:10d}" for c in columns))
    return 0


def _report(args: argparse.Namespace) -> int:
    from .readings.evidence import table

    _require_folder(args.results, "--results")
    t = table(args.results)
    if t.empty:
        print("no comparison is recorded yet: run `gmmlib run headline --preset cpu` first")
        return 0
    print("gains in points: masked minus unmasked best-epoch top-1, paired by seed, 95 % t-interval")
    print(t.to_string())
    print(
        "reading: one rule for every row (gmmlib.readings.standing): an interval that excludes zero 'holds after "
        "correction' only if its paired t-test survives Holm's correction over every row with seeds, else it is "
        "'a lead'; the paper's gain is another model at another scale, shown for orientation, never as a test"
    )
    return 0


def _list(args: argparse.Namespace) -> int:
    from . import data, list_models, masks
    from .experiments import grids as experiments
    from .training.config import PRESETS

    print("experiments:\n" + experiments.describe())
    print("models:   " + ", ".join(list_models()))
    print("masks:    " + ", ".join(masks.list_masks()))
    print("presets:  " + ", ".join(PRESETS))
    print("datasets: " + ", ".join(data.DATASETS))
    return 0


def _env(args: argparse.Namespace) -> int:
    from .experiments.machine import describe_machine

    lines = describe_machine(
        gpu=args.gpu,
        preset=args.preset,
        torch_version=args.torch,
        device=None if args.gpu else _device(args.device),
        data=args.data,
        dataset=args.dataset,
        data_path=args.data_pipeline,
        output=args.output,
        results=args.results,
        work_dir=args.work_dir,
    )
    print("\n".join(lines))
    return 0


def _demo(args: argparse.Namespace) -> int:
    from .training.demo import main as demo

    return demo()


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one ``gmmlib: error:`` line (exit 2), like every other error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_ERROR, f"gmmlib: error: {_one_line(message)} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    from . import list_models
    from .training.config import DATA_PATHS, PRESETS
    from .training.plan import GPUS, PRECISIONS

    p = _Parser(prog="gmmlib", description="Locality masks for ViTs on small data.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--preset", default="cpu", choices=list(PRESETS))
    common.add_argument("--data", default=None, help="data root (default: $GMMLIB_DATA)")
    common.add_argument("--device", default=None, help="cpu, cuda, cuda:N (default: cuda when available)")
    common.add_argument("--no-progress", action="store_true", help="no progress bars")
    common.add_argument(
        "--data-pipeline",
        default=None,
        choices=[*DATA_PATHS, "gpu", "cpu", "auto"],
        help="batched: the whole split augmented in chunks on the device (default); workers: DataLoader "
        "workers with PIL transforms (the old names gpu, cpu, auto mean batched, workers, batched)",
    )
    common.add_argument(
        "--compile",
        default=None,
        action=argparse.BooleanOptionalAction,
        help="torch.compile the training step (default: the run plan's, see gmmlib env)",
    )
    common.add_argument("--precision", default=None, choices=list(PRECISIONS), help="default: the run plan's")
    common.add_argument("--download", action="store_true", help="fetch the data set's splits with torchvision first")
    common.add_argument(
        "--output", default=None, metavar="DIR", help="results in DIR/results, checkpoints in DIR/runs ($GMMLIB_OUTPUT)"
    )

    t = sub.add_parser("train", parents=[common], help="train one run")
    t.add_argument("--model", default="vit", choices=list_models())
    t.add_argument("--mask", default=None, help="mask kind, or none")
    t.add_argument("--mask-option", action="append", default=[], metavar="KEY=VALUE", help="e.g. num_kernels=3")
    t.add_argument("--pool", default=None, choices=["gap", "cls"])
    t.add_argument("--dataset", default="cifar10")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--epochs", type=int, default=None, help="override the preset's epochs")
    t.add_argument(
        "--train-size",
        type=int,
        default=None,
        help="train on a nested class-balanced subset of this many images, for as many steps as on all of them",
    )
    t.add_argument("--out", default=None, help="output folder (default: runs/<run name>, under --output if given)")
    t.add_argument("--resume", action="store_true", help="continue from the output folder's checkpoint")
    t.set_defaults(func=_train)

    r = sub.add_parser("run", parents=[common], help="run the missing runs of an experiment")
    r.add_argument("experiment")
    r.add_argument("--only", default=None, help="substring of run names, or field=value[,field=value]")
    r.add_argument("--dataset", default=None, help="run the whole grid on this data set")
    r.add_argument("--results", default=None, help="results folder (default: --output's, or results/ of this checkout)")
    r.add_argument("--work-dir", default=None, help="checkpoints of runs in progress (default: --output's, or runs)")
    r.add_argument("--parallel", type=int, default=1, metavar="N", help="train N runs side by side (processes)")
    r.add_argument(
        "--reuse-from",
        default=None,
        metavar="DIR",
        help="a results folder whose runs are not trained again (a rerun into results/pending: results)",
    )

    r.add_argument(
        "--shard", default=None, metavar="I/N", help="train only every N-th run of the grid from the I-th (0 <= I < N)"
    )
    r.set_defaults(func=_run)

    m = sub.add_parser("merge", help="merge results folders of other machines or shards into one")
    m.add_argument("sources", nargs="+", help="results folders to read")
    m.add_argument("--results", default=None, help="results folder to fill (default: results/ of this checkout)")
    m.add_argument(
        "--replace",
        action="store_true",
        help="each experiment the sources list replaces the target's list (a complete rerun supersedes old runs)",
    )
    m.set_defaults(func=_merge)

    st = sub.add_parser("status", help="each experiment's grid: runs recorded, missing, stale, staged")
    st.add_argument("--preset", default="cpu", choices=list(PRESETS))
    st.add_argument("--results", default=None, help="results folder (default: results/ of this checkout)")
    st.add_argument("--staging", default=None, help="a folder a rerun is trained into, e.g. results/pending")
    st.set_defaults(func=_status)

    pr = sub.add_parser("promote", help="move a complete rerun of an experiment from a staging folder into results")
    pr.add_argument("experiment")
    pr.add_argument("--from", dest="staging", required=True, help="the results folder the rerun was trained into")
    pr.add_argument("--preset", default="cpu", choices=list(PRESETS))
    pr.add_argument("--results", default=None, help="results folder to fill (default: results/ of this checkout)")
    pr.add_argument("--only", default=None, help="promote the part of the grid this filter selects (as for run)")
    pr.add_argument("--dataset", default=None, help="the grid as run on this data set (as for run)")
    pr.set_defaults(func=_promote)

    rp = sub.add_parser("report", help="every comparison recorded: its paired gain, interval, seeds, and the paper's")
    rp.add_argument("--results", default=None, help="results folder (default: results/ of this checkout)")
    rp.set_defaults(func=_report)

    e = sub.add_parser("env", help="the run plan of this machine (or of --gpu), its data and output folders")
    e.add_argument("--gpu", default=None, type=str.upper, choices=list(GPUS), help="print the plan this GPU would get")
    e.add_argument("--torch", default=None, metavar="VERSION", help="plan for this torch release")
    e.add_argument("--preset", default="paper", choices=list(PRESETS))
    e.add_argument("--data", default=None, help="data root (default: $GMMLIB_DATA)")
    e.add_argument("--dataset", default="cifar10", help="the data set looked for in the data root")
    e.add_argument("--device", default=None, help="cpu, cuda, cuda:N (default: cuda when available)")
    e.add_argument("--data-pipeline", default=None, choices=[*DATA_PATHS, "gpu", "cpu", "auto"])
    e.add_argument("--output", default=None, metavar="DIR", help="as for run ($GMMLIB_OUTPUT)")
    e.add_argument("--results", default=None, help="as for run")
    e.add_argument("--work-dir", default=None, help="as for run")
    e.set_defaults(func=_env)

    sub.add_parser("list", help="list experiments, models, masks, presets, data sets").set_defaults(func=_list)
    sub.add_parser("demo", help="a short end-to-end demo").set_defaults(func=_demo)
    return p


def _message(e: BaseException) -> str:
    """One line for an expected error: the exception's own message, or an OSError's file and cause."""
    if isinstance(e, OSError) and e.filename is not None and not isinstance(e, FileExistsError):
        return f"cannot use {e.filename}: {e.strerror or e}; choose another path or fix its permissions"
    return _one_line(str(e)) or type(e).__name__


def main(argv: Optional[List[str]] = None) -> int:
    """Run the command line; returns the exit status (0, or 2 for an error the user can fix)."""
    from .data import CorruptDataError
    from .training.checkpoint import Interrupted, interrupt_on_signals
    from .training.loop import TrainingDiverged

    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:  # --help (0) or a usage error (2, one line already printed)
        return e.code if isinstance(e.code, int) else EXIT_ERROR
    try:
        with _notes(), interrupt_on_signals():
            return args.func(args)
    except (ValueError, OSError, CorruptDataError, TrainingDiverged, Interrupted) as e:
        # ValueError: bad names/values, unreadable checkpoints; OSError: missing data (DataNotFoundError),
        # folders that cannot be written, existing checkpoints; Interrupted: SIGINT, SIGTERM (exit 130, 143)
        if not (getattr(e, "every_rank", False) and int(os.environ.get("RANK", "0")) != 0):  # torchrun: one line
            print(f"gmmlib: {'' if isinstance(e, Interrupted) else 'error: '}{_message(e)}", file=sys.stderr)
        return getattr(e, "exit_status", EXIT_ERROR)


if __name__ == "__main__":
    sys.exit(main())
