"""How a chapter shows things: Markdown, the library's own source, the figure style."""

from __future__ import annotations

import ast
import inspect
import textwrap
from typing import Any, Optional

__all__ = ["show_markdown", "show_source", "setup_figures"]


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
    """The book's matplotlib style (:func:`gmmlib.book.figures.apply_style`: 150 dpi, fonts of 9 pt and up, figures
    as wide as the book's column, ``book.figures.COLUMN_WIDTH`` inches, so the page shows their fonts at size).

    A figure set wider than the column is shrunk on the page with its text: ``tools/check_figures.py`` says which.
    """
    from .figures import apply_style

    apply_style()
