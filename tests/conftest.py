"""Fixtures shared by several test files."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture
def book_style():
    """Figures drawn as a chapter draws them: in the book's style (chapters apply it in book.mode())."""
    from gmmlib.book import figures

    with matplotlib.rc_context():
        figures.apply_style()
        yield
    plt.close("all")
