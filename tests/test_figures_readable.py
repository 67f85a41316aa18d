"""Every figure of the book can be read where the book shows it (issue 27, item 5).

The book's HTML shows a figure's PNG at its pixel width, shrunk to the content column when wider (660 CSS px in a
1,280 px window: gmmlib.book.style.COLUMN_PX). gmmlib.book.figure_check computes the size each text then has on the
page; these tests check it on figures whose answer is known, then run tools/check_figures.py, which executes every
chapter in QUICK mode and checks every figure it shows.
"""

import io
import os
import json
import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import nbformat  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from gmmlib.book import figure_check, figures  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TOOL = ROOT / "tools" / "check_figures.py"


pytestmark = pytest.mark.usefixtures("book_style")  # tests/conftest.py: the book's style, as chapters draw


def _small_text(problems):
    return [p for p in problems if "below 9 pt" in p]


def test_the_book_style_passes_and_a_6_pt_label_fails():
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    ax.set(title="title", xlabel="x", ylabel="y")
    assert figure_check.figure_problems(fig) == []
    ax.set_xlabel("x", fontsize=6)
    (problem,) = _small_text(figure_check.figure_problems(fig))
    assert "a 6 pt font" in problem and "'x'" in problem


@pytest.mark.parametrize("where", ["tick labels", "legend", "colourbar label", "annotation", "suptitle"])
def test_every_kind_of_text_is_measured(where):
    fig, ax = plt.subplots()
    image = ax.imshow(np.arange(4.0).reshape(2, 2), aspect="auto")  # fills the width: the PNG is not cropped
    bar = fig.colorbar(image, ax=ax, label="value")
    if where == "tick labels":
        ax.tick_params(labelsize=6)
    elif where == "legend":
        ax.plot([0, 1], label="a line")
        ax.legend(fontsize=6)
    elif where == "colourbar label":
        bar.set_label("value", fontsize=6)
    elif where == "annotation":
        ax.annotate("note", (0, 0), fontsize=6)
    else:
        fig.suptitle("suptitle", fontsize=6)
    assert _small_text(figure_check.figure_problems(fig)), where


def test_a_10_pt_label_in_a_figure_twice_the_column_width_fails():
    """The page shrinks a figure wider than the column, and its text with it."""
    for width, fails in ((figures.COLUMN_WIDTH, False), (2 * figures.COLUMN_WIDTH, True)):
        fig, ax = plt.subplots(figsize=(width, 2))
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlabel("a 10 pt label", fontsize=10)
        problems = _small_text(figure_check.figure_problems(fig))
        assert bool(problems) == fails, (width, problems)
        if fails:
            assert "a 10 pt font" in problems[0]
            assert figure_check.shown_points(10, fig) == pytest.approx(5.0, abs=0.2)


def test_the_size_on_the_page_follows_the_inline_backends_png():
    """A figure narrower than the column is shown at its pixel size (150 dpi: 1.5625 CSS px per point); the PNG the
    inline backend saves (IPython's print_figure, bbox_inches="tight") is as wide as figure_check assumes."""
    from PIL import Image

    pylabtools = pytest.importorskip("IPython.core.pylabtools")
    for width in (3.0, figures.COLUMN_WIDTH, 9.0):
        fig, ax = plt.subplots(figsize=(width, 2.5))
        ax.plot([0, 1], label="a")
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))  # outside the axes: the PNG grows with it
        png = Image.open(io.BytesIO(pylabtools.print_figure(fig, "png")))
        assert figure_check.image_width_px(fig) == pytest.approx(png.size[0], abs=2)
        expected = fig.dpi / 96 * min(1.0, figures.COLUMN_PX / png.size[0])
        assert figure_check.shown_scale(fig) == pytest.approx(expected, rel=0.01)
    fig, ax = plt.subplots(figsize=(3, 2))
    assert figure_check.shown_points(6, fig) == pytest.approx(6 * 150 / 96)  # small figures read larger


def test_colours_need_a_legend_that_names_each():
    fig, ax = plt.subplots()
    ax.plot([0, 1])
    ax.plot([1, 0])
    (problem,) = figure_check.figure_problems(fig)
    assert "2 colours and no legend" in problem
    ax.lines[0].set_label("rising")
    ax.lines[1].set_label("falling")
    ax.legend()
    assert figure_check.figure_problems(fig) == []
    ax.plot([0.5, 0.5])  # a third colour, drawn after the legend: unnamed
    (problem,) = figure_check.figure_problems(fig)
    assert "1 of its 3 colours in no legend" in problem


def test_a_legend_must_tell_its_entries_apart():
    """Twelve heads on matplotlib's ten-colour cycle: heads 0 and 10 look the same in the legend (Fig. 4.2)."""
    fig, ax = plt.subplots()
    for h in range(12):
        ax.plot([0, h], label=f"head {h}")
    ax.legend(ncol=3)
    assert figure_check.figure_problems(fig) == [
        "the legend draws 'head 0' and 'head 10' alike",
        "the legend draws 'head 1' and 'head 11' alike",
    ]
    for h in (10, 11):
        ax.lines[h].set_linestyle("--")
    ax.legend(ncol=3)
    assert figure_check.figure_problems(fig) == []


def test_a_grid_without_legends_is_one_problem():
    fig, axes = plt.subplots(2, 2)
    for ax in axes.flat:
        ax.plot([0, 1])
        ax.plot([1, 0])
    (problem,) = figure_check.figure_problems(fig)
    assert problem.startswith("4 axes draw several colours and no legend names them")


def test_reference_lines_and_one_colour_need_no_legend():
    fig, axes = plt.subplots(1, 2)
    for i in range(5):  # one curve per head, one colour: the caption says what they are
        axes[0].plot([0, 1], [i, i + 1], color="C0")
    axes[0].axhline(0, color="black")
    axes[0].axhspan(-1, 1, color="0.85")
    axes[1].plot([0, 1], color="C1")
    axes[1].plot([1, 0], "k--")
    assert figure_check.figure_problems(fig) == []


def test_one_figure_legend_explains_every_panel():
    fig, axes = plt.subplots(1, 2)
    for ax in axes:
        ax.plot([0, 1], color="C0", label="GMM")
        ax.plot([1, 0], color="C1", label="none")
    axes[1].legend()
    assert figure_check.figure_problems(fig) == []


def test_colour_maps_need_a_labelled_colourbar():
    fig, axes = plt.subplots(1, 2)
    axes[0].imshow(np.eye(3))
    assert any("without a colourbar" in p for p in figure_check.figure_problems(fig))
    plt.close(fig)
    fig, axes = plt.subplots(1, 2)
    figures.heatmaps(axes, [np.eye(3), -np.eye(3)])  # one colourbar for both panels, on their shared scale
    assert figure_check.figure_problems(fig) == ["a colourbar has no label: say what its colours measure (label=...)"]
    plt.close(fig)
    fig, axes = plt.subplots(1, 2)
    figures.heatmaps(axes, [np.eye(3), -np.eye(3)], label="mask value")
    axes[0].plot(1, 1, "w*")  # a marker on a map
    assert figure_check.figure_problems(fig) == []
    plt.close(fig)
    fig, ax = plt.subplots()
    ax.imshow(np.zeros((4, 4, 3)))  # a photo shows itself
    assert figure_check.figure_problems(fig) == []


def _chapter(path: Path) -> Path:
    """A small chapter: a readable figure, one with a 6 pt label, one left open at the end of its cell."""
    cells = [
        nbformat.v4.new_code_cell("import matplotlib.pyplot as plt\nfrom gmmlib import book\nbook.setup_figures()"),
        ("fig, ax = plt.subplots()\nax.plot([0, 1], label='a')\nax.legend()\nplt.show()", "fig-good", "Readable."),
        ("fig, ax = plt.subplots()\nax.set_xlabel('tiny', fontsize=6)\nplt.show()", "fig-tiny", "A tiny label."),
        ("fig, ax = plt.subplots()\nax.plot([0, 1])\nax.plot([1, 0])", "fig-open", "Two lines, no legend."),
    ]
    nb = nbformat.v4.new_notebook()
    for c in cells:
        if isinstance(c, tuple):
            source, name, caption = c
            c = nbformat.v4.new_code_cell(source, metadata={"mystnb": {"figure": {"name": name, "caption": caption}}})
        nb.cells.append(c)
    nbformat.write(nb, path)
    return path


@pytest.mark.slow
def test_the_tool_names_the_chapter_figure_and_problem(tmp_path):
    """The hooked kernel sees figures shown with plt.show and figures a cell leaves open, and the tool gives each
    finding to the cell that drew it."""
    notebook = _chapter(tmp_path / "ch.ipynb")
    out = tmp_path / "findings.json"
    proc = subprocess.run(
        [sys.executable, str(TOOL), str(notebook), "--json", str(out)], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 1, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 2, proc.stdout
    assert lines[0].startswith('ch.ipynb fig-tiny ("A tiny label."): 1 text(s) below 9 pt')
    assert lines[1].startswith('ch.ipynb fig-open ("Two lines, no legend."): axes 1: 2 colours and no legend')
    report = json.loads(out.read_text())
    (chapter,) = report["notebooks"]
    assert [f["name"] for f in chapter["figures"]] == ["fig-good", "fig-tiny", "fig-open"]
    assert [f["cell"] for f in chapter["figures"]] == [1, 2, 3]
    assert report["column_px"] == figures.COLUMN_PX and chapter["error"] is None
    nb = nbformat.read(notebook, as_version=4)
    assert len(nb.cells) == 4 and not any(c.get("outputs") for c in nb.cells)  # the chapter file is untouched


@pytest.mark.slow
def test_every_chapters_figures_are_readable_at_column_width(tmp_path):
    """Runs every chapter in QUICK mode and checks each figure it shows (measured: 6 min one chapter at a time, about
    4.5 min with --jobs 2, on two busy cores)."""
    out = tmp_path / "findings.json"
    proc = subprocess.run(
        [sys.executable, str(TOOL), "--json", str(out), "--jobs", "2"],
        capture_output=True,
        text=True,
        timeout=3000,
        env={**os.environ, "GMMLIB_QUICK": "1"},
    )
    report = json.loads(out.read_text())
    chapters = {r["notebook"]: r for r in report["notebooks"]}
    assert set(chapters) == {p.name for p in (ROOT / "book").glob("*.ipynb")}
    assert sum(len(r["figures"]) for r in chapters.values()) >= 10  # the hook saw the book's figures
    assert proc.returncode == 0, f"figures a reader cannot read:\n{proc.stdout}"
