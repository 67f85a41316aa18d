"""The one namespace the book's chapters import (d2l's way): ``from gmmlib import book``.

Every chapter starts with::

    from gmmlib import book
    settings = book.mode()

which prints QUICK or FULL and returns a :class:`BookSettings`. QUICK mode (``GMMLIB_QUICK=1``,
or ``CI=true``) runs every notebook top to bottom in seconds on synthetic data; FULL mode (the
default) reads the committed ``results/`` and trains only small live demos, on real CIFAR-10
when the data root (``GMMLIB_DATA``) has it.

This package only *shows*: the modes (``settings``), Markdown and the library's source
(``display``), the live demos (``demos``), recorded results as tables (``tables``) and the figures
(``figures``, which take rows and draw, never load runs). What it shows comes from the rest of
:mod:`gmmlib`, reachable from here as ``book.stats`` (paired gains, the paper's numbers, records as
tables, the seed noise), ``book.readings`` (what the runs say, and the sentences the chapters print),
``book.analysis`` (attention maps, learned masks) and ``book.experiments`` (the grids).
"""

from .. import analysis, experiments, readings, stats
from . import figures, tables
from . import diagrams  # noqa: F401  (block diagrams that take no data: book.diagrams.mask_in_attention)
from . import figures_datasize  # noqa: F401  (chapter 9: accuracy and the paired gain against train size)
from .demos import model_from_result, row_as_image, run_demo
from .display import setup_figures, show_markdown, show_source
from .settings import QUICK_ENV, BookSettings, is_quick, mode, pick_dataset, shown_path
from .tables import COMPARISON_COLUMNS, command, missing_note, not_yet, show_comparison

preset_of = stats.preset_of

__all__ = [
    "analysis",
    "experiments",
    "readings",
    "stats",
    "figures",
    "tables",
    "BookSettings",
    "QUICK_ENV",
    "is_quick",
    "mode",
    "pick_dataset",
    "shown_path",
    "show_markdown",
    "show_source",
    "setup_figures",
    "row_as_image",
    "run_demo",
    "model_from_result",
    "preset_of",
    "command",
    "not_yet",
    "missing_note",
    "show_comparison",
    "COMPARISON_COLUMNS",
]
