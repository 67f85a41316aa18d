"""The book's sources: table of contents, notebooks stored clean, Colab badges and install cells,
the quick/full mode switch, citations, and a build that fails when a cell fails.

The notebooks themselves run under nbmake in QUICK mode (`make test`); the built HTML is
checked in a browser by tests/test_book_html.py.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import tomllib
import yaml

from gmmlib import book

ROOT = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
TOC = yaml.safe_load((ROOT / "_toc.yml").read_text())
NOTEBOOKS = sorted((ROOT / "book").glob("*.ipynb"))

sys.path.insert(0, str(ROOT / "tools"))
import build_book
import sync_install_cell


def _read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def test_config_is_a_jupyter_book_1_config():
    assert CONFIG["only_build_toc_files"] is True
    assert CONFIG["execute"]["execute_notebooks"] == "cache"
    assert CONFIG["execute"]["timeout"] > 0
    assert CONFIG["launch_buttons"]["colab_url"] == "https://colab.research.google.com"
    assert CONFIG["html"]["use_repository_button"] is True
    repo = CONFIG["repository"]
    assert repo["branch"] == "main" and "path_to_book" not in repo  # the config sits at the repository root
    assert {"dollarmath", "amsmath", "colon_fence"} <= set(CONFIG["parse"]["myst_enable_extensions"])
    assert {"sphinx.ext.autodoc", "sphinx.ext.napoleon"} <= set(CONFIG["sphinx"]["extra_extensions"])
    assert CONFIG["bibtex_bibfiles"] == ["references.bib"] and (ROOT / "references.bib").is_file()
    assert CONFIG["sphinx"]["config"]["nb_execution_raise_on_error"] is True


def test_generated_markdown_renders_as_myst_so_its_math_renders():
    # The chapters' generated answers print $\alpha$ and the like; myst-nb's default (commonmark)
    # would show the TeX raw.
    assert CONFIG["sphinx"]["config"]["nb_render_markdown_format"] == "myst"


def test_every_glossary_term_follows_an_empty_line():
    """Sphinx warns (and -W fails the build) when a term follows its predecessor's definition directly."""
    text = (ROOT / "book" / "glossary.md").read_text()
    block = text.split("```{glossary}", 1)[1].split("```", 1)[0].splitlines()
    terms = 0
    for before, line in zip(block, block[1:]):
        if line.strip() and not line.startswith((" ", ":")):
            terms += 1
            assert not before.startswith(" "), f"glossary term {line!r} needs an empty line before it"
    assert terms >= 20


def test_repository_url_is_the_same_in_pyproject():
    urls = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]
    assert urls["Repository"] == CONFIG["repository"]["url"]


def test_every_toc_page_exists_and_every_chapter_is_in_the_toc():
    docs = build_book.toc_files(ROOT)
    assert docs[0] == "book/00_preface"
    for doc in docs:
        assert (ROOT / f"{doc}.ipynb").is_file() or (ROOT / f"{doc}.md").is_file(), doc
    in_toc = {Path(d).name for d in docs}
    assert {p.stem for p in NOTEBOOKS} <= in_toc
    assert {"api", "references", "glossary", "12_verdict"} <= in_toc
    assert len(NOTEBOOKS) == 13


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_stored_without_outputs(path):
    nb = _read(path)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name} cell {i} has outputs: strip them before committing"
            assert cell.execution_count is None, f"{path.name} cell {i} has an execution count"
    assert nb.metadata.kernelspec.name == "python3"


def _colab_url(stem: str) -> str:
    url, branch = CONFIG["repository"]["url"].rstrip("/"), CONFIG["repository"]["branch"]
    owner_repo = url.split("github.com/", 1)[1]
    return f"https://colab.research.google.com/github/{owner_repo}/blob/{branch}/book/{stem}.ipynb"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_opens_with_title_badge_install_and_mode_cells(path):
    nb = _read(path)
    first, install, mode = nb.cells[:3]
    # 1. title and an "Open in Colab" badge that points at this very file on the configured branch
    assert first.cell_type == "markdown" and first.source.startswith("# ")
    links = re.findall(r"\]\((https://colab\.research\.google\.com/[^)\s]+)\)", first.source)
    assert links == [_colab_url(path.stem)], links
    assert "(images/colab-badge.svg)" in first.source and (ROOT / "book/images/colab-badge.svg").is_file()
    # 2. a hidden cell that installs gmmlib from the configured repository when the import fails
    assert install.cell_type == "code" and "hide-cell" in install.metadata.get("tags", [])
    src = install.source
    assert f'REPO_URL = "{CONFIG["repository"]["url"]}"' in src
    assert re.search(r"try:\s+import gmmlib\s+except ImportError:", src)
    assert '"git", "clone"' in src and f'"--branch", "{CONFIG["repository"]["branch"]}"' in src
    assert '"pip", "install"' in src and '"-e"' in src
    # 3. the shared helper decides QUICK or FULL
    assert mode.cell_type == "code" and "book.mode()" in mode.source


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_install_cell_is_the_generated_one(path):
    """Every chapter's install cell comes from one template (tools/sync_install_cell.py)."""
    install = next(c for c in _read(path).cells if c.cell_type == "code")
    assert install.source == sync_install_cell.install_cell(), f"{path.name}: run python tools/sync_install_cell.py"


def test_sync_install_cell_check_finds_and_fixes_a_drifted_cell(tmp_path):
    import json
    import shutil

    nb = tmp_path / "chapter.ipynb"
    shutil.copy(NOTEBOOKS[0], nb)
    data = json.loads(nb.read_text())
    first = next(c for c in data["cells"] if c["cell_type"] == "code")
    first["source"] = ["import gmmlib  # edited by hand"]
    nb.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    assert sync_install_cell.main(["--check", str(nb)]) == 1
    assert sync_install_cell.main([str(nb)]) == 0
    assert sync_install_cell.main(["--check", str(nb)]) == 0
    assert nb.read_text() == NOTEBOOKS[0].read_text()  # same cell, same formatting


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_reimplements_no_model_code(path):
    """Models, masks and training come from gmmlib: no class definitions in the chapters."""
    for cell in _read(path).cells:
        if cell.cell_type == "code":
            assert not re.search(r"^\s*class \w+", cell.source, flags=re.MULTILINE), f"{path.name} defines a class"


def test_every_citation_is_in_references_bib():
    bib = (ROOT / "references.bib").read_text()
    keys = set(re.findall(r"^@\w+\{([^,]+),", bib, flags=re.MULTILINE))
    required = {
        "li2023retnetconv",
        "sun2023retnet",
        "fan2024rmt",
        "dosovitskiy2021vit",
        "lee2021spt",
        "liu2021swin",
        "touvron2021cait",
        "heo2021pit",
        "yuan2021t2t",
        "press2022alibi",
        "dascoli2021convit",
        "touvron2021deit",
        "cubuk2019autoaugment",
        "zhang2018mixup",
        "yun2019cutmix",
        "krizhevsky2009cifar",
    }
    assert required <= keys
    cited = set()
    for path in [*NOTEBOOKS, *(ROOT / "book").glob("*.md")]:
        text = path.read_text()
        for group in re.findall(r"\{cite(?::[pt])?\}`([^`]+)`", text):
            cited |= {k.strip() for k in group.split(",")}
    assert cited and cited <= keys, f"cited but not in references.bib: {cited - keys}"


def test_api_page_documents_every_module():
    """Every module of the library (the command line apart) has its section on the API page."""
    api = (ROOT / "book" / "api.md").read_text()
    modules = [
        ".".join(p.relative_to(ROOT).with_suffix("").parts)
        for p in sorted((ROOT / "gmmlib").rglob("*.py"))
        if p.stem not in ("__init__", "__main__", "cli")
    ]
    assert len(modules) > 40
    assert [m for m in modules if f"{{automodule}} {m}\n" not in api] == []


@pytest.mark.parametrize(
    "env, quick",
    [
        ({}, False),
        ({"CI": "true"}, True),
        ({"GMMLIB_QUICK": "1"}, True),
        ({"GMMLIB_QUICK": "0", "CI": "true"}, False),
        ({"CI": "false"}, False),
        ({"GMMLIB_QUICK": "yes"}, True),
    ],
)
def test_quick_mode_switch(env, quick):
    assert book.is_quick(env) is quick


def test_mode_picks_synthetic_data_in_quick_mode(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("GMMLIB_QUICK", "1")
    monkeypatch.setenv("GMMLIB_DATA", str(tmp_path))
    settings = book.mode()
    assert settings.quick and settings.dataset == "synthetic" and settings.preset == "quick"
    assert "QUICK mode" in capsys.readouterr().out


def test_full_mode_uses_real_data_when_the_root_has_it_else_says_why(monkeypatch, tmp_path):
    monkeypatch.setenv("GMMLIB_QUICK", "0")
    monkeypatch.setenv("GMMLIB_DATA", str(tmp_path))
    settings = book.mode(verbose=False)
    assert not settings.quick and settings.dataset == "synthetic" and "GMMLIB_DATA" in settings.data_note
    # a root with the offline files: the mini npz first, else the full JPEG zip (located, not read)
    (tmp_path / "cifar10-jpeg.zip").write_bytes(b"")
    assert book.mode(verbose=False).dataset == "cifar10"
    (tmp_path / "cifar10-mini.npz").write_bytes(b"")
    settings = book.mode(verbose=False)
    assert settings.dataset == "cifar10-mini" and "cifar10-mini.npz" in settings.data_note


def test_show_source_and_row_as_image():
    import torch

    import gmmlib

    book.show_source(gmmlib.masks.GaussianMixtureMask.forward)  # prints outside IPython
    with pytest.raises(ValueError):
        book.show_source(gmmlib.masks.ELM, start="no such text")
    mask = torch.arange(64 * 64.0).reshape(64, 64)
    row = book.row_as_image(mask, (8, 8), (3, 4))
    assert row.shape == (8, 8) and torch.equal(row.flatten(), mask[3 * 8 + 4])


def test_book_holds_no_analysis_code():
    """Attention maps and their statistics live in gmmlib.analysis (all five families), not in the book helpers."""
    for name in ("attention_maps", "attention_probabilities", "mean_attention_distance"):
        assert not hasattr(book, name), name


@pytest.mark.slow
def test_a_failing_cell_fails_the_book_build(tmp_path):
    """The strict build (tools/build_book.py, used by `make book`) must not pass a notebook that raises."""
    src = build_book.stage(tmp_path / "book-src")  # the real config, extensions and pages
    (src / "_toc.yml").write_text("format: jb-book\nroot: book/broken\n")
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Broken"),
        nbformat.v4.new_code_cell("raise RuntimeError('deliberate')"),
    ]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, src / "book" / "broken.ipynb")
    env = {**os.environ, "GMMLIB_QUICK": "1"}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "build_book.py"), "--source", str(src), "--execute", "force"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.returncode != 0, proc.stdout[-2000:]
    assert "BOOK BUILD FAILED" in proc.stderr and "deliberate" in proc.stdout + proc.stderr


def test_pages_with_a_warning_or_a_machine_path_fail_the_build(tmp_path, monkeypatch):
    """tools/build_book.py rejects a page that shows a warning in a cell output or an absolute path
    of the machine that built it (the browser check builds the QUICK HTML through the same check)."""
    monkeypatch.setenv("GMMLIB_DATA", str(tmp_path / "data"))
    forbidden = build_book.machine_paths(ROOT)
    assert str(ROOT) in forbidden and str(tmp_path / "data") in forbidden
    clean = '<div class="output stream highlight-myst-ansi"><pre>results (40 recorded runs)</pre></div>'
    warned = (
        '<div class="output stderr highlight-myst-ansi"><pre>/tmp/ipykernel_1/2.py:40: '
        "UserWarning: The figure layout has changed to tight</pre></div>"
    )
    pathed = f'<div class="output stream"><pre>data  cifar10 from {tmp_path / "data"}/cifar10.zip</pre></div>'
    for name, body in {"clean": clean, "warned": warned, "pathed": pathed}.items():
        (tmp_path / f"{name}.html").write_text(f"<html><body>{body}</body></html>")
    assert build_book.page_problems(tmp_path, ["clean.html"], forbidden) == []
    (problem,) = build_book.page_problems(tmp_path, ["warned.html"], forbidden)
    assert "warning" in problem and "UserWarning: The figure layout" in problem
    (problem,) = build_book.page_problems(tmp_path, ["pathed.html"], forbidden)
    assert str(tmp_path / "data") in problem


def test_every_figure_has_a_numbered_caption_and_shows_alone():
    """A cell that draws a figure carries myst-nb figure metadata (caption and a unique name), so the
    HTML numbers it ("Fig. 5.2"); myst-nb wraps every displayed output of that cell in the figure, so
    the cell displays nothing else (a second display would duplicate the name and fail the strict
    build; printed text is a stream and stays outside the figure)."""
    names = {}
    for path in NOTEBOOKS:
        for cell in _read(path).cells:
            if cell.cell_type != "code":
                continue
            figure = cell.metadata.get("mystnb", {}).get("figure")
            if "plt.show()" not in cell.source:
                assert figure is None, f"{path.name} {cell.get('id')}: a caption on a cell without a figure"
                continue
            assert figure and figure.get("caption") and figure.get("name"), f"{path.name} {cell.get('id')}"
            names.setdefault(figure["name"], []).append(f"{path.name} {cell.get('id')}")
            shown = re.findall(r"^\s*(display|book\.show_\w+|book\.missing_note)\(", cell.source, re.M)
            assert not shown, f"{path.name} {cell.get('id')}: displays {shown} beside its figure"
    assert all(len(v) == 1 for v in names.values()), {k: v for k, v in names.items() if len(v) > 1}


def test_no_figure_text_below_9_points():
    """The style module sets fonts of 9 pt and up (gmmlib.book.figures.STYLE); no chapter shrinks them below the
    9 pt a reader needs on the page (tests/test_figures_readable.py measures them as shown)."""
    small = re.compile(r"fontsize\s*=\s*(?:[0-8](?:\.\d+)?\b|[\"'](?:x{0,2}-?small)[\"'])")
    for path in NOTEBOOKS:
        for cell in _read(path).cells:
            if cell.cell_type == "code":
                assert not small.search(cell.source), f"{path.name} {cell.get('id')}: {small.search(cell.source)[0]}"
