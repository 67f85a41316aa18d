"""The book's figure style: the column a figure is shown in, the matplotlib defaults, one colour per mask kind.

:mod:`gmmlib.book.figures` re-exports all of it; the figure functions and the readability check
(:mod:`gmmlib.book.figure_check`) read it from here.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

__all__ = [
    "COLUMN_PX",
    "COLUMN_WIDTH",
    "STYLE",
    "MASK_COLOURS",
    "MASK_NAMES",
    "PAPER_MARKER",
    "apply_style",
    "mask_colour",
]

# The book's content column, in CSS pixels: what the HTML (Jupyter Book 1, sphinx-book-theme 1.3) gives an image
# in a browser window 1,280 px wide, a common laptop and the window of tests/test_book_html.py (measured in
# headless Chromium: 596 px at 1,200, the narrowest desktop layout; 774 px from 1,440 on). A wider image is shrunk
# to it (max-width: 100%), its text with it (gmmlib.book.figure_check).
COLUMN_PX = 660
_PAD_INCHES = 0.1  # the padding the inline backend's bbox_inches="tight" adds on each side
# The width (inches) of a figure whose PNG just fills the column: it shows a 9 pt font as 9 pt (a CSS inch is 96 px).
COLUMN_WIDTH = round(COLUMN_PX / 96 - 2 * _PAD_INCHES, 3)

STYLE: Dict[str, Any] = {
    "figure.dpi": 150,
    "savefig.dpi": 150,
    "savefig.pad_inches": _PAD_INCHES,
    "figure.figsize": (COLUMN_WIDTH, 3.4),
    "figure.constrained_layout.use": True,
    "font.size": 10,
    "axes.titlesize": 10,
    "axes.labelsize": 10,
    "figure.titlesize": 10,
    "figure.labelsize": 10,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "legend.fontsize": 9,
    "legend.title_fontsize": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "image.cmap": "viridis",
}

# One colour per mask kind, in every chapter ("none" is the unmasked model).
MASK_COLOURS: Dict[str, str] = {
    "none": "#555555",
    "gmm": "#1f77b4",
    "elm": "#2ca02c",
    "retnet": "#9467bd",
    "alibi2d": "#8c564b",
    "relpos": "#e377c2",
}
_OTHER = "#17becf"
# What a legend calls each mask kind.
MASK_NAMES: Dict[str, str] = {
    "none": "no mask",
    "gmm": "GMM",
    "elm": "ELM",
    "retnet": "RetNet decay",
    "alibi2d": "2-D ALiBi",
    "relpos": "relative position bias",
}

# The paper's numbers are drawn as hollow diamonds in the colour of their mask, ours as filled dots.
PAPER_MARKER: Dict[str, Any] = {"marker": "D", "markerfacecolor": "none", "linestyle": "none"}


def apply_style() -> None:
    """Set the book's matplotlib defaults (:data:`STYLE`)."""
    import matplotlib as mpl

    mpl.rcParams.update(STYLE)


def mask_colour(mask: Optional[str]) -> str:
    """The colour of a mask kind (None or "none" for the unmasked model)."""
    return MASK_COLOURS.get(mask or "none", _OTHER)
