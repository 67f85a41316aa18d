"""The book's two modes, QUICK (seconds, synthetic data) and FULL (the recorded runs, real data)."""

from __future__ import annotations

import os
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional

import torch

from .display import setup_figures

__all__ = ["QUICK_ENV", "is_quick", "BookSettings", "shown_path", "pick_dataset", "mode"]


QUICK_ENV = "GMMLIB_QUICK"


_TRUE = ("1", "true", "yes", "on")


_FALSE = ("0", "false", "no", "off")


def is_quick(environ: Optional[Dict[str, str]] = None) -> bool:
    """QUICK when ``GMMLIB_QUICK`` is true, or when it is unset and ``CI`` is true.

    ``GMMLIB_QUICK=0`` forces FULL mode even on CI.
    """
    env = os.environ if environ is None else environ
    flag = env.get(QUICK_ENV, "").strip().lower()
    if flag in _TRUE:
        return True
    if flag in _FALSE:
        return False
    return env.get("CI", "").strip().lower() in _TRUE


@dataclass(frozen=True)
class BookSettings:
    """What a chapter should do in this mode.

    Args:
        quick: QUICK mode (synthetic data, seconds per notebook).
        dataset: data set for live demos and for the pictures of real images.
        data_note: one line on where the data comes from, or why it is synthetic.
        preset: training preset of the live demos (always "quick": a few steps).
        demo_epochs: epochs of a live demo (None keeps the preset's 2).
        results: the results folder the chapters read.
        device: torch device of the live demos.
        seed: seed of the live demos.
    """

    quick: bool
    dataset: str
    data_note: str
    preset: str
    demo_epochs: Optional[int]
    results: Path
    device: str
    seed: int = 0

    @property
    def label(self) -> str:
        return "QUICK" if self.quick else "FULL"

    @property
    def real_data(self) -> bool:
        return self.dataset != "synthetic"


def shown_path(path: str | os.PathLike, root: Optional[str | os.PathLike] = None) -> str:
    """``path`` as a page may print it: relative to the repository, or to the data root as
    ``$GMMLIB_DATA/...``, never the absolute path of the machine that built the book."""
    from .. import data as gdata

    path = Path(path).resolve()
    bases = [(Path(__file__).resolve().parents[2], "")]
    try:
        bases.append((Path(gdata.data_root(root)).resolve(), "$GMMLIB_DATA/"))
    except (OSError, ValueError, TypeError):
        pass
    for base, prefix in bases:
        try:
            rel = path.relative_to(base).as_posix()
        except ValueError:
            continue
        return prefix.rstrip("/") or "." if rel == "." else prefix + rel
    return f".../{path.name}"


def pick_dataset(quick: bool, root: Optional[str | os.PathLike] = None) -> tuple[str, str]:
    """The data set for live demos: synthetic in QUICK mode; else cifar10-mini, cifar10 or synthetic.

    Returns:
        ``(name, note)``; the note says why synthetic data was chosen in FULL mode.
    """
    from .. import data as gdata

    if quick:
        return "synthetic", "QUICK mode uses the synthetic CIFAR-shaped data set (no download, seconds)"
    for name in ("cifar10-mini", "cifar10"):
        try:
            src = gdata.describe_source(name, root, sha256=False)
        except (gdata.DataNotFoundError, FileNotFoundError, ValueError):
            continue
        return name, f"{name} from {shown_path(src['path'], root)}" + (f" ({src['note']})" if src.get("note") else "")
    where = shown_path(gdata.data_root(root), root)
    return "synthetic", (
        f"no CIFAR-10 found in the data root {where} (set GMMLIB_DATA to a folder holding cifar10-mini.npz, "
        "cifar10-jpeg.zip or cifar-10-batches-py/); the live demos use synthetic data instead"
    )


def mode(verbose: bool = True) -> BookSettings:
    """Decide QUICK or FULL mode, print it, and return the settings for this chapter."""
    import warnings

    with warnings.catch_warnings():  # tqdm.auto warns once when ipywidgets is missing; the book uses no bars
        warnings.filterwarnings("ignore", message="IProgress not found")
        from ..store.paths import results_dir

    quick = is_quick()
    dataset, note = pick_dataset(quick)
    settings = BookSettings(
        quick=quick,
        dataset=dataset,
        data_note=note,
        preset="quick",
        demo_epochs=None if quick else 6,
        results=results_dir(),
        device="cuda" if torch.cuda.is_available() else "cpu",
    )
    setup_figures()
    if verbose:
        from ..store.records import Store

        n = len(Store(settings.results).keys())
        lines = {
            "live demos": f"preset {settings.preset!r}, {settings.demo_epochs or 2} epochs on {dataset!r}, {settings.device}",
            "data": note,
            "results": f"{shown_path(settings.results)} ({n} recorded runs)",
        }
        print(f"{settings.label} mode" + (" (GMMLIB_QUICK=0 for FULL mode)" if quick else ""))
        for key, text in lines.items():
            print(textwrap.fill(text, width=76, initial_indent=f"  {key:<11s}", subsequent_indent=" " * 13))
    return settings
