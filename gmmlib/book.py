"""Helpers for the book's notebooks: quick or full mode, library code shown in the text, figures.

Every chapter starts with::

    from gmmlib import book
    settings = book.mode()

which prints QUICK or FULL and returns a :class:`BookSettings`. QUICK mode (``GMMLIB_QUICK=1``,
or ``CI=true``) runs every notebook top to bottom in seconds on synthetic data; FULL mode (the
default) reads the committed ``results/`` and trains only small live demos, on real CIFAR-10
when the data root (``GMMLIB_DATA``) has it.

The helpers here only *show*: every model, mask, training piece, statistic and verdict the book
runs comes from the rest of :mod:`gmmlib` (attention maps from :mod:`gmmlib.analysis`, tables
from :mod:`gmmlib.results`, generated text from :mod:`gmmlib.findings`). How a chapter shows recorded
results (comparison tables, missing runs) lives in :mod:`gmmlib.book_tables`; its functions are
re-exported here, so chapters call them as ``book.show_comparison`` and so on.
"""

from __future__ import annotations

import ast
import inspect
import os
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

import torch
from torch import Tensor, nn

from .book_tables import COMPARISON_COLUMNS, command, missing_note, not_yet, show_comparison
from .results import preset_of

__all__ = [
    "BookSettings",
    "is_quick",
    "pick_dataset",
    "mode",
    "show_source",
    "show_markdown",
    "command",
    "not_yet",
    "setup_figures",
    "row_as_image",
    "run_demo",
    "model_from_result",
    "preset_of",
    "missing_note",
    "show_comparison",
    "COMPARISON_COLUMNS",
]

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
    from . import data as gdata

    path = Path(path).resolve()
    bases = [(Path(__file__).resolve().parents[1], "")]
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
    from . import data as gdata

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
        from .experiments import results_dir

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
        from .store import Store

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


def _display(obj: Any, plain: str) -> None:
    """Display ``obj`` in a notebook; in plain Python, print ``plain`` instead."""
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:
        get_ipython = None
    if get_ipython is None or get_ipython() is None:
        print(plain)
    else:
        display(obj)


def _display_markdown(text: str) -> None:
    try:
        from IPython.display import Markdown
    except ImportError:
        print(text)
        return
    _display(Markdown(text), text)


def show_markdown(text: str) -> None:
    """Display Markdown from a code cell (text that is computed from results)."""
    _display_markdown(textwrap.dedent(text).strip())


def show_source(
    obj: Any,
    start: Optional[str] = None,
    stop: Optional[str] = None,
    skip_docstring: bool = False,
) -> None:
    """Show the source of a gmmlib function, class or method as a highlighted block.

    Args:
        obj: what to show (``inspect.getsource`` must find it).
        start: show from the first line containing this text (default: the first line).
        stop: show up to and including the first line after ``start`` containing this text.
        skip_docstring: leave out the docstring of a function or class.
    """
    lines = textwrap.dedent(inspect.getsource(obj)).splitlines()
    if skip_docstring:
        lines = _drop_docstring(lines)
    first = 0
    if start is not None:
        first = next((i for i, line in enumerate(lines) if start in line), None)
        if first is None:
            raise ValueError(f"{start!r} not found in the source of {obj!r}")
    last = len(lines) - 1
    if stop is not None:
        last = next((i for i in range(first, len(lines)) if stop in lines[i]), None)
        if last is None:
            raise ValueError(f"{stop!r} not found after {start!r} in the source of {obj!r}")
    excerpt = textwrap.dedent("\n".join(lines[first : last + 1]))
    module = getattr(inspect.getmodule(obj), "__name__", "")
    where = f"{module}.{getattr(obj, '__qualname__', '')}".strip(".")
    note = "" if (first == 0 and last == len(lines) - 1 and not skip_docstring) else " (excerpt)"
    _display_markdown(f"`{where}`{note}:\n\n```python\n{excerpt}\n```")


def _drop_docstring(lines: list[str]) -> list[str]:
    """Remove the docstring of the (first) function or class in ``lines``."""
    tree = ast.parse("\n".join(lines))
    node = tree.body[0] if tree.body else None
    if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) or not node.body:
        return lines
    first = node.body[0]
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
        return lines[: first.lineno - 1] + lines[first.end_lineno :]
    return lines


def setup_figures() -> None:
    """The book's matplotlib style (:func:`gmmlib.figures.apply_style`: 150 dpi, fonts of 8 pt and up)."""
    from .figures import apply_style

    apply_style()


def row_as_image(mask: Tensor, grid: Sequence[int], query: int | Sequence[int]) -> Tensor:
    """Row ``query`` of an (N, N) mask, laid out on the (h, w) patch grid: what one query sees.

    Args:
        mask: (N, N) tensor (or (1, N, N)).
        grid: (h, w) of the patch grid.
        query: token index, or a (row, column) position on the grid.
    """
    h, w = int(grid[0]), int(grid[1])
    if not isinstance(query, int):
        query = int(query[0]) * w + int(query[1])
    m = mask.reshape(-1, h * w, h * w)[0]
    return m[query].reshape(h, w).detach()


def run_demo(settings: BookSettings, **config: Any) -> Dict[str, Any]:
    """Train one small live demo in a temporary folder and return its result dict.

    Args:
        settings: from :func:`mode` (data set, preset, epochs, device, seed).
        **config: :class:`~gmmlib.train.RunConfig` fields, e.g. ``model="vit", mask="gmm", pool="gap"``.
    """
    import tempfile

    from .config import RunConfig
    from .train import train

    fields = dict(dataset=settings.dataset, preset=settings.preset, epochs=settings.demo_epochs, seed=settings.seed)
    fields.update(config)
    with tempfile.TemporaryDirectory(prefix="gmmlib-demo-") as tmp:
        return train(RunConfig(**fields), tmp, progress=False, device=settings.device)


def model_from_result(
    result: Dict[str, Any], results: Optional[str | os.PathLike] = None, initial: bool = False
) -> Optional[nn.Module]:
    """Rebuild the model of a recorded run: trained (from its saved weights) or as it started.

    Args:
        result: a run record (from :func:`gmmlib.results.load`).
        results: the results folder (default :func:`gmmlib.experiments.results_dir`).
        initial: build the model at step 0 instead: the run's seed is set before the
            model is built, exactly as :func:`gmmlib.train.train` does, so the
            initial weights (masks included) are the run's own.

    Returns:
        The model in eval mode, or None when trained weights are asked for and the store
        kept none for this run (it keeps them only for the runs a chapter loads).
    """
    from .config import RunConfig
    from .experiments import results_dir
    from .store import Store
    from .train import seed_everything

    path = None
    if not initial:
        path = Store(results_dir(results)).weights_path(result["key"])
        if not result.get("weights_file") or not path.is_file():
            return None
    config = RunConfig.from_result(result)
    seed_everything(int(config.seed))
    model = config.build_model()
    if path is not None:
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model.eval()
