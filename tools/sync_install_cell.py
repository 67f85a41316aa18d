"""Write every chapter's install cell (its first code cell) from one template.

    python tools/sync_install_cell.py           # rewrite the cells that differ
    python tools/sync_install_cell.py --check   # exit 1 and name the notebooks whose cell differs

The cell lets a chapter run on Colab or in a fresh environment: when ``import gmmlib`` fails it
clones the book's repository (the library, the notebooks and the recorded ``results/``) at the
configured branch and installs it editable. The repository URL and branch come from
``_config.yml``, so the cell, the Colab badges and the launch buttons agree.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]

TEMPLATE = """\
# Colab or a fresh environment: clone the book's repository (library,
# notebooks and the recorded results/), install gmmlib editable, import it.
import warnings

# tqdm's note when ipywidgets is absent (the book shows no progress bars)
warnings.filterwarnings("ignore", message="IProgress not found")
REPO_URL = "{url}"
try:
    import gmmlib
except ImportError:
    import pathlib
    import subprocess
    import sys

    repo = pathlib.Path("{folder}")
    if not repo.exists():
        clone = ["git", "clone", "--depth", "1", "--branch", "{branch}"]
        subprocess.run([*clone, REPO_URL, str(repo)], check=True)
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "-e"]
    subprocess.run([*pip, str(repo)], check=True)
    # importable now, without restarting the kernel
    sys.path.insert(0, str(repo.resolve()))
    import gmmlib"""


def install_cell(root: Path = ROOT) -> str:
    """The install cell's source for the repository configured in ``root/_config.yml``."""
    repo = yaml.safe_load((root / "_config.yml").read_text())["repository"]
    url = repo["url"].rstrip("/")
    return TEMPLATE.format(url=url, branch=repo["branch"], folder=url.rsplit("/", 1)[-1])


def _source_lines(text: str) -> list[str]:
    lines = text.split("\n")
    return [line + "\n" for line in lines[:-1]] + [lines[-1]]


def sync(path: Path, check: bool, source: str) -> bool:
    """Bring one notebook's install cell in line; returns whether it differed."""
    nb = json.loads(path.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    if not code:
        raise ValueError(f"{path}: no code cell")
    cell = code[0]
    tags = cell.setdefault("metadata", {}).setdefault("tags", [])
    differs = "".join(cell["source"]) != source or "hide-cell" not in tags
    if differs and not check:
        cell["source"] = _source_lines(source)
        if "hide-cell" not in tags:
            tags.append("hide-cell")  # hidden in the HTML, still run on Colab
        path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    return differs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="change nothing; exit 1 when a cell differs")
    ap.add_argument("notebooks", nargs="*", type=Path, help="default: every book/*.ipynb")
    args = ap.parse_args(argv)
    source = install_cell()
    notebooks = args.notebooks or sorted((ROOT / "book").glob("*.ipynb"))
    differ = [p for p in notebooks if sync(p, args.check, source)]
    for p in differ:
        print(f"{p}: install cell {'differs from' if args.check else 'rewritten from'} the template")
    if args.check and differ:
        print("run: python tools/sync_install_cell.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
