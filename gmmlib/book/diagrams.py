"""Block diagrams the chapters draw (they take no data): where a mask enters one head's attention.

:func:`mask_in_attention` draws the path from tokens to output, with the mask built from the patch distances
joining the logits: multiplied into them (the GMM and ELM, ``combine="multiply"``) or added to them (RetNet's
decay, ALiBi, ``combine="add"``), and which attention kernel computes each.
"""

from __future__ import annotations

from typing import Any, Optional, Tuple

__all__ = ["mask_in_attention"]

_FILL = {"data": "#f2f2f2", "mask": "#d6e6f4", "op": "#ffffff"}  # mask blocks in the GMM's blue, lightened
_EDGE = "0.25"


def _box(ax: Any, centre: Tuple[float, float], size: Tuple[float, float], text: str, kind: str = "data") -> dict:
    """A rounded box of ``size`` (data units) around ``centre``; returns its edges for the arrows."""
    from matplotlib.patches import FancyBboxPatch

    (x, y), (w, h) = centre, size
    ax.add_patch(
        FancyBboxPatch(
            (x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0,rounding_size=0.08",
            facecolor=_FILL[kind], edgecolor=_EDGE, linewidth=1.0,
        )
    )  # fmt: skip
    ax.text(x, y, text, ha="center", va="center", fontsize="large" if kind == "op" else None)
    return {"left": (x - w / 2, y), "right": (x + w / 2, y), "top": (x, y + h / 2), "bottom": (x, y - h / 2)}


def _line(ax: Any, *points: Tuple[float, float], arrow: bool = True) -> None:
    """A polyline through ``points``, with an arrowhead at the last one."""
    xs, ys = zip(*points)
    ax.plot(xs[:-1] + (xs[-1],), ys, color=_EDGE, lw=1.0, solid_capstyle="butt")
    if arrow:
        ax.annotate(
            "", xy=points[-1], xytext=points[-2],
            arrowprops={"arrowstyle": "-|>", "color": _EDGE, "lw": 1.0, "shrinkA": 0, "shrinkB": 0},
        )  # fmt: skip


def mask_in_attention(ax: Optional[Any] = None, combine: str = "multiply") -> Any:
    """Draw one head's masked attention as a block diagram on ``ax`` (by default a new figure as wide as the
    style's default, i.e. the book's column, and 3.4 inches high; texts in the style's font size).

    Args:
        ax: the axes to draw on.
        combine: ``"multiply"`` (the GMM: ``softmax(M * S) V``) or ``"add"`` (``softmax(S + M) V``).

    Returns:
        The axes.

    Raises:
        ValueError: ``combine`` is neither.
    """
    if combine not in ("multiply", "add"):
        raise ValueError(f"combine must be 'multiply' or 'add', got {combine!r}")
    import matplotlib as mpl
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(mpl.rcParams["figure.figsize"][0], 3.4))
    ax.set_xlim(0, 10)
    ax.set_ylim(0, 5)
    ax.axis("off")
    top, h = 3.3, 0.8
    # the attention path, left to right
    tokens = _box(ax, (0.55, top), (0.9, h), "tokens\nx")
    qk = _box(ax, (2.1, top), (1.4, h), "Q = xW$_q$\nK = xW$_k$")
    logits = _box(ax, (3.95, top), (1.7, h), "S = QK$^\\top$/$\\sqrt{d}$\n(N × N logits)")
    op = _box(ax, (5.45, top), (0.5, 0.5), "×" if combine == "multiply" else "+", "op")
    soft = _box(ax, (6.65, top), (1.3, h), "softmax\n(each row)")
    times_v = _box(ax, (8.0, top), (0.7, 0.5), "· V")
    out = _box(ax, (9.3, top), (0.8, 0.5), "out")
    for a, b in ((tokens, qk), (qk, logits), (logits, op), (op, soft), (soft, times_v), (times_v, out)):
        _line(ax, a["right"], b["left"])
    # the values, on a lane above
    v = _box(ax, (2.1, 4.55), (1.4, 0.5), "V = xW$_v$")
    _line(ax, tokens["top"], (tokens["top"][0], 4.55), v["left"])
    _line(ax, v["right"], (times_v["top"][0], 4.55), times_v["top"])
    # the mask, built from the fixed patch distances; it meets the logits before the softmax
    dist = _box(ax, (1.55, 0.7), (2.5, 0.9), "patch distances $d_{ij}$\n(fixed, N × N)", "mask")
    gmm = "$M_h(i,j) = \\sum_k \\alpha_{k,h} \\exp(-d_{ij}^2 / 2\\sigma_{k,h}^2)$\n2K learnable numbers per head"
    mask = _box(ax, (5.45, 0.7), (3.7, 0.9), gmm, "mask")
    _line(ax, dist["right"], mask["left"])
    _line(ax, mask["top"], op["bottom"])
    where = (
        "multiplied into the logits,\nbefore the softmax: gmmlib's\ncache-blocked kernel (fused\nSDPA takes only an added mask)"
        if combine == "multiply"
        else "added to the logits,\nbefore the softmax:\nPyTorch's fused SDPA\ntakes it"
    )
    ax.text(5.65, 2.05, where, ha="left", va="center", color="0.2")
    return ax
