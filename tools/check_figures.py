"""Check that every figure a chapter shows can be read where the book shows it.

    python tools/check_figures.py                                  # every chapter of book/, QUICK mode
    python tools/check_figures.py book/05_experiment1.ipynb        # one chapter
    python tools/check_figures.py --json findings.json --jobs 2    # keep the measurements; two chapters at once

Each chapter runs top to bottom with nbclient in QUICK mode (``GMMLIB_QUICK=1`` unless the environment sets it),
with a first cell, never saved, that hooks figure display: ``matplotlib.pyplot.show`` and the inline backend's
end-of-cell flush both pass every open figure to :func:`gmmlib.book.figure_check.figure_report` first, which writes
one JSON line per figure. Findings are matched to the cell that showed them, so each problem line names the
chapter, the figure (its ``mystnb`` name and caption) and what a reader cannot read:

    05_experiment1.ipynb fig-05-exp1-curves ("Test top-1 per epoch ..."): 12 text(s) below 9 pt as shown ...

The exit status is 1 when any figure has a problem or a chapter fails to run. tests/test_figures_readable.py runs
this on every chapter.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Dict, List, Sequence

ROOT = Path(__file__).resolve().parents[1]

# The first cell: runs in the chapter's kernel. Figures are inspected before display closes them.
HOOK = """\
import json as _json
import weakref as _weakref

import matplotlib.pyplot as _plt
from IPython import get_ipython as _get_ipython
from matplotlib._pylab_helpers import Gcf as _Gcf

from gmmlib.book.figure_check import figure_report as _figure_report

_checked = _weakref.WeakSet()


def _check_open_figures(*_):
    for manager in _Gcf.get_all_fig_managers():
        fig = manager.canvas.figure
        if fig in _checked:
            continue
        _checked.add(fig)
        try:
            report = _figure_report(fig)
        except Exception as e:  # a figure the check cannot measure is a finding, not a crash of the chapter
            report = {"problems": [f"could not be measured: {type(e).__name__}: {e}"]}
        with open(FINDINGS, "a") as f:
            f.write(_json.dumps(report) + "\\n")


_show = _plt.show


def _checked_show(*args, **kwargs):
    _check_open_figures()
    return _show(*args, **kwargs)


_plt.show = _checked_show
# before the inline backend's flush_figures, which displays and closes what a cell left open
_get_ipython().events.callbacks["post_execute"].insert(0, _check_open_figures)
"""


def _figure_of(cell) -> Dict[str, str]:
    figure = cell.get("metadata", {}).get("mystnb", {}).get("figure", {})
    return {"name": figure.get("name", ""), "caption": " ".join(str(figure.get("caption", "")).split())}


def _images(cell) -> int:
    return sum("image/png" in o.get("data", {}) for o in cell.get("outputs", []))


def check_notebook(path: str | os.PathLike, timeout: int = 600) -> Dict[str, Any]:
    """Run one chapter with the hook and return its findings.

    Returns:
        ``{"notebook", "seconds", "error", "figures"}``; each figure: ``cell`` (index in the chapter), ``id``,
        ``name`` and ``caption`` (from the cell's ``mystnb.figure``), ``problems`` and the measurements of
        :func:`gmmlib.book.figure_check.figure_report`.
    """
    import nbformat
    from nbclient import NotebookClient

    path = Path(path).resolve()
    nb = nbformat.read(path, as_version=4)
    figures: List[Dict[str, Any]] = []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        findings = Path(tmp) / "figures.jsonl"
        findings.touch()
        nb.cells.insert(0, nbformat.v4.new_code_cell(f"FINDINGS = {str(findings)!r}\n" + HOOK))  # in memory only
        seen = [0]

        def attribute(cell, cell_index, **_):
            """Give the figures a cell's execution wrote (the hook writes them before the cell's reply) to it."""
            lines = findings.read_text().splitlines()
            for line in lines[seen[0] :]:
                figures.append(
                    {"cell": cell_index - 1, "id": cell.get("id", ""), **_figure_of(cell), **json.loads(line)}
                )
            seen[0] = len(lines)

        client = NotebookClient(
            nb,
            timeout=timeout,
            kernel_name="python3",
            resources={"metadata": {"path": str(path.parent)}},
            on_cell_executed=attribute,
        )
        error = None
        try:
            client.execute()
        except Exception as e:  # a chapter that fails is reported with the others
            error = f"{type(e).__name__}: {str(e).strip().splitlines()[-1] if str(e).strip() else ''}"
    checked: Dict[int, int] = {}
    for f in figures:
        checked[f["cell"]] = checked.get(f["cell"], 0) + 1
    for i, cell in enumerate(nb.cells[1:]):
        named = _figure_of(cell)
        if named["name"] and _images(cell) > checked.get(i, 0):
            figures.append(
                {
                    "cell": i,
                    "id": cell.get("id", ""),
                    **named,
                    "problems": [f"shows {_images(cell) - checked.get(i, 0)} image(s) the check did not see"],
                }
            )
    return {"notebook": path.name, "seconds": round(time.perf_counter() - start, 1), "error": error, "figures": figures}


def problem_lines(result: Dict[str, Any]) -> List[str]:
    """One line per problem of a chapter: chapter, figure name and caption, the problem."""
    lines = []
    if result["error"]:
        lines.append(f"{result['notebook']}: the chapter failed to run: {result['error']}")
    for f in result["figures"]:
        what = f.get("name") or f"cell {f['cell']} (no figure name)"
        caption = f.get("caption", "")
        if caption:
            what += f' ("{caption[:60]}{"..." if len(caption) > 60 else ""}")'
        lines += [f"{result['notebook']} {what}: {p}" for p in f["problems"]]
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", help="chapters to check (default: every book/*.ipynb)")
    parser.add_argument("--json", help="write every figure's measurements and problems to this file")
    parser.add_argument("--jobs", type=int, default=1, help="chapters run at once")
    parser.add_argument("--timeout", type=int, default=600, help="seconds a cell may take")
    args = parser.parse_args(argv)
    paths = [Path(p) for p in args.notebooks] or sorted((ROOT / "book").glob("*.ipynb"))
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        parser.error(f"no such notebook: {', '.join(missing)}")
    os.environ.setdefault("GMMLIB_QUICK", "1")  # the kernels inherit it
    start = time.perf_counter()
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs) as pool:
            results = list(pool.map(check_notebook, paths, [args.timeout] * len(paths)))
    else:
        results = [check_notebook(p, args.timeout) for p in paths]
    lines = [line for r in results for line in problem_lines(r)]
    for line in lines:
        print(line)
    shown = sum(len(r["figures"]) for r in results)
    print(
        f"{len(lines)} problem(s) in {shown} figure(s) of {len(results)} chapter(s), "
        f"{time.perf_counter() - start:.0f} s",
        file=sys.stderr,
    )
    if args.json:
        from gmmlib.book.figure_check import MIN_POINTS
        from gmmlib.book.style import COLUMN_PX

        report = {
            "column_px": COLUMN_PX,
            "min_points": MIN_POINTS,
            "mode": os.environ["GMMLIB_QUICK"],
            "notebooks": results,
        }
        Path(args.json).write_text(json.dumps(report, indent=1))
    return 1 if lines else 0


if __name__ == "__main__":
    sys.exit(main())
