"""Whether a figure can be read where the book shows it: text size on the page, and colours that are explained.

The book's HTML (Jupyter Book 1, sphinx-book-theme) shows a figure's PNG at its pixel width, or shrunk to the
content column when it is wider (``max-width: 100%``). The inline backend saves the PNG at the figure's dpi with
``bbox_inches="tight"`` (the drawn extent plus ``savefig.pad_inches`` on each side). So a text of ``s`` points is
``s * dpi / 72`` image pixels, shown at ``min(1, column / image width)`` CSS pixels each, and a CSS pixel is
0.75 CSS points: it reads as ``s * dpi / 96 * min(1, column / image width)`` points on the page.

:func:`figure_problems` lists what a reader cannot read (texts under :data:`MIN_POINTS` as shown) or cannot
decode (colours no legend names, colour maps without a labelled colourbar); :func:`figure_report` adds the
sizes behind it. ``tools/check_figures.py`` runs them on every figure a chapter shows.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Dict, Iterator, List, Set

from .style import COLUMN_PX, COLUMN_WIDTH

__all__ = ["MIN_POINTS", "CSS_PX_PER_INCH", "shown_scale", "shown_points", "figure_problems", "figure_report"]

MIN_POINTS = 9.0  # the smallest text a reader should meet on the page, in CSS points (12 CSS px)
CSS_PX_PER_INCH = 96.0


def _renderer(fig):
    fig.canvas.draw()  # lays the figure out (constrained layout) as saving it would
    if not hasattr(fig.canvas, "get_renderer"):
        raise TypeError(f"cannot measure a figure drawn on {type(fig.canvas).__name__}; expected an Agg canvas")
    return fig.canvas.get_renderer()


def image_width_px(fig) -> float:
    """The width in pixels of the PNG the inline backend saves: tight bounding box plus padding, at the figure's dpi."""
    import matplotlib as mpl

    pad = mpl.rcParams["savefig.pad_inches"]
    pad = 0.0 if pad == "layout" else float(pad)
    box = fig.get_tightbbox(_renderer(fig))
    return (box.width + 2 * pad) * fig.dpi


def shown_scale(fig, column_px: float = COLUMN_PX) -> float:
    """Page points per figure point: ``dpi / 96`` for a figure that fits the column, less for a wider one."""
    return fig.dpi / CSS_PX_PER_INCH * min(1.0, column_px / image_width_px(fig))


def shown_points(size: float, fig, column_px: float = COLUMN_PX) -> float:
    """The size in CSS points a text of ``size`` points in ``fig`` has on the page."""
    return size * shown_scale(fig, column_px)


@contextmanager
def _texts_drawn() -> Iterator[List[Any]]:
    """Collect every non-empty text matplotlib draws inside the block (hidden tick labels and empty titles are not
    drawn, so they are not checked)."""
    from matplotlib.text import Text

    drawn: List[Any] = []
    original = Text.draw

    def draw(self, renderer):
        if self.get_visible() and self.get_text().strip():
            drawn.append(self)
        return original(self, renderer)

    Text.draw = draw
    try:
        yield drawn
    finally:
        Text.draw = original


def _hex(colour) -> str | None:
    """A colour as ``#rrggbb``, or None for a transparent one or a neutral one (black, white, greys): neutrals draw
    reference lines, bands and markers, which the caption explains."""
    from matplotlib.colors import to_rgba

    try:
        r, g, b, a = to_rgba(colour)
    except (ValueError, TypeError):
        return None
    if a == 0 or max(r, g, b) - min(r, g, b) < 0.02:
        return None
    return "#{:02x}{:02x}{:02x}".format(round(r * 255), round(g * 255), round(b * 255))


def _colours(artist) -> Set[str]:
    """The non-neutral colours an artist is drawn in."""
    from matplotlib.collections import Collection
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    found = []
    if isinstance(artist, Line2D):
        if artist.get_linestyle() not in ("None", "none", "", " "):
            found.append(artist.get_color())
        if artist.get_marker() not in (None, "None", "none", "", " "):
            found += [artist.get_markerfacecolor(), artist.get_markeredgecolor()]
    elif isinstance(artist, Patch):
        found += [artist.get_facecolor() if artist.get_fill() else None, artist.get_edgecolor()]
        if artist.get_linewidth() == 0:
            found = found[:1]
    elif isinstance(artist, Collection):
        found += list(artist.get_facecolors()) + (
            list(artist.get_edgecolors()) if max(artist.get_linewidths(), default=0) else []
        )
    return {h for h in map(_hex, [c for c in found if c is not None]) if h}


def _colour_mapped(artist) -> bool:
    """Whether the artist's colours come from a colour map (an image of values, a scatter coloured by value)."""
    from matplotlib.collections import Collection
    from matplotlib.image import AxesImage

    if isinstance(artist, AxesImage):
        array = artist.get_array()
        return array is not None and array.ndim == 2  # an RGB(A) photo shows itself
    if isinstance(artist, Collection) and artist.get_array() is not None:
        return len(_colours(artist)) > 1
    return False


def _colourbars(fig) -> List[Any]:
    from matplotlib.axes import Axes

    return [ax._colorbar for ax in fig.findobj(Axes) if getattr(ax, "_colorbar", None) is not None]


def _explained_by(mappable, colourbars) -> bool:
    """A colour-mapped artist is explained by its own colourbar or by one on the same scale (same map and limits)."""
    if getattr(mappable, "colorbar", None) is not None:
        return True
    key = (mappable.get_cmap().name, tuple(mappable.get_clim()))
    return any((cb.mappable.get_cmap().name, tuple(cb.mappable.get_clim())) == key for cb in colourbars)


def _legend_twins(legends) -> List[str]:
    """Legend entries a reader cannot tell apart: the same colours, line style and marker under two names (12 heads
    drawn with matplotlib's 10-colour cycle)."""
    from matplotlib.lines import Line2D

    problems = []
    for legend in legends:
        seen: Dict[Any, str] = {}
        for handle, text in zip(legend.legend_handles, legend.get_texts()):
            style = (frozenset(_colours(handle)), type(handle).__name__)
            if isinstance(handle, Line2D):
                style += (handle.get_linestyle(), handle.get_marker())
            if not style[0]:
                continue  # a neutral key (a grey band, a black line) is told apart by its label
            if style in seen and seen[style] != text.get_text():
                problems.append(f"the legend draws {seen[style]!r} and {text.get_text()!r} alike")
            seen.setdefault(style, text.get_text())
    return problems


def _axes_name(ax, index: int) -> str:
    title = ax.get_title() or ax.get_ylabel() or ax.get_xlabel()
    return f"axes {index + 1}" + (f" ({title.splitlines()[0][:40]!r})" if title else "")


def _measure(fig, column_px: float, min_points: float) -> Dict[str, Any]:
    from matplotlib.axes import Axes
    from matplotlib.legend import Legend

    with _texts_drawn() as drawn:
        scale = float(shown_scale(fig, column_px))
    problems: List[str] = []
    small = sorted(
        {(t.get_fontsize(), t.get_text().strip()) for t in drawn if t.get_fontsize() * scale < min_points - 1e-6}
    )
    width, height = fig.get_size_inches()
    if small:
        size, sample = small[0]
        needed = min_points / scale
        problems.append(
            f"{len(small)} text(s) below {min_points:g} pt as shown (smallest {size * scale:.1f} pt: a {size:g} pt font, "
            f"e.g. {sample.splitlines()[0][:30]!r}); the figure is {width:.2f} in wide and shown at {scale:.2f}: make it "
            f"at most {COLUMN_WIDTH:.2f} in wide (book.figures.COLUMN_WIDTH) or its fonts at least {needed:.1f} pt"
        )
    colourbars = _colourbars(fig)
    for cb in colourbars:
        if not (cb.ax.get_ylabel() or cb.ax.get_xlabel() or cb.ax.get_title()).strip():
            problems.append("a colourbar has no label: say what its colours measure (label=...)")
    legend_colours: Set[str] = set()
    legends = fig.findobj(Legend)
    for legend in legends:
        for handle in legend.legend_handles:
            legend_colours |= _colours(handle)
    problems += _legend_twins(legends)
    cbar_axes = {id(cb.ax) for cb in colourbars}
    unnamed: List[str] = []  # one line for all the axes of a grid with the same fault
    for i, ax in enumerate(a for a in fig.findobj(Axes) if id(a) not in cbar_axes):
        if not ax.get_visible():
            continue
        artists = [a for a in (*ax.lines, *ax.patches, *ax.collections, *ax.images) if a.get_visible()]
        mapped = [a for a in artists if _colour_mapped(a)]
        if any(not _explained_by(a, colourbars) for a in mapped):
            problems.append(f"{_axes_name(ax, i)}: a colour map without a colourbar (add one with a label)")
        colours = set().union(*(_colours(a) for a in artists if a not in mapped)) if artists else set()
        if len(colours) > 1:
            missing = colours - legend_colours
            if not legends:
                unnamed.append(f"{_axes_name(ax, i)}: {len(colours)} colours")
            elif missing:
                problems.append(
                    f"{_axes_name(ax, i)}: {len(missing)} of its {len(colours)} colours in no legend "
                    f"({', '.join(sorted(missing)[:4])}{', ...' if len(missing) > 4 else ''})"
                )
    if len(unnamed) == 1:
        problems.append(f"{unnamed[0]} and no legend to name them")
    elif unnamed:
        problems.append(
            f"{len(unnamed)} axes draw several colours and no legend names them ({'; '.join(unnamed[:3])}; ...)"
        )
    return {
        "width_in": round(float(width), 3),
        "height_in": round(float(height), 3),
        "dpi": float(fig.dpi),
        "shown_scale": round(scale, 4),
        "smallest_shown_pt": round(float(min((t.get_fontsize() * scale for t in drawn), default=float("nan"))), 2),
        "texts": len(drawn),
        "problems": problems,
    }


def figure_problems(fig, column_px: float = COLUMN_PX, min_points: float = MIN_POINTS) -> List[str]:
    """What a reader of the book cannot read or decode in ``fig``, one sentence each (empty: none).

    Checks every text matplotlib draws (titles, axis labels, tick labels, legend texts, colourbar labels,
    annotations) against ``min_points`` at the size it is shown in a column ``column_px`` CSS pixels wide; that
    every colourbar has a label; that a colour-mapped image has a colourbar on its scale; and that an axes drawing
    data in more than one colour (greys, black and white aside) has every colour in a legend of the figure.
    """
    return _measure(fig, column_px, min_points)["problems"]


def figure_report(fig, column_px: float = COLUMN_PX, min_points: float = MIN_POINTS) -> Dict[str, Any]:
    """:func:`figure_problems` with the measurements behind it: the figure's size (inches) and dpi, the scale at
    which the page shows it, its smallest text as shown (points) and the number of texts drawn."""
    return _measure(fig, column_px, min_points)
