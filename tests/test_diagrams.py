"""The block diagram of where a mask enters attention (gmmlib.book.diagrams): readable, inside its figure, and
saying which way the mask is combined."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from gmmlib import book  # noqa: E402


@pytest.mark.parametrize("combine, op, kernel", [("multiply", "×", "cache-blocked"), ("add", "+", "fused SDPA")])
def test_the_mask_meets_the_logits_before_the_softmax_with_readable_text(combine, op, kernel):
    book.figures.apply_style()
    ax = book.diagrams.mask_in_attention(combine=combine)
    fig = ax.figure
    fig.canvas.draw()
    texts = [t for t in ax.texts if t.get_text()]
    words = [t.get_text() for t in texts]
    assert op in words and any(kernel in w for w in words) and any("softmax" in w for w in words)
    assert min(t.get_fontsize() for t in texts) >= 9
    frame = fig.bbox
    for t in texts:  # nothing is cut off at the figure's edge
        box = t.get_window_extent()
        assert frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1, t.get_text()
    plt.close(fig)
    with pytest.raises(ValueError, match="combine"):
        book.diagrams.mask_in_attention(combine="divide")
