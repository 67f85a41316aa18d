"""The README's badges (CI, the published book, Binder, Colab), built from ``_config.yml``.

    python tools/badges.py            # print the badge block
    python tools/badges.py --write    # put it into README.md, between the two markers
    python tools/badges.py --check    # exit 1 when README.md's block differs (tests/test_workflows.py)

``_config.yml`` holds the one repository URL and branch of the project (and the Binder and Colab
addresses of the launch buttons), so the badges, the launch buttons of the book and the workflow
badge links cannot drift apart. The Binder and Colab badges open the book's first chapter (the
root of ``_toc.yml``) with the same addresses that the book's launch buttons use.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from urllib.parse import urlparse

import yaml

ROOT = Path(__file__).resolve().parents[1]
START = "<!-- badges: start (written by tools/badges.py from _config.yml; do not edit by hand) -->"
END = "<!-- badges: end -->"
INTERFACES = {"classic": "tree", "jupyterlab": "lab/tree"}  # as sphinx-book-theme builds launch links


def github_repo(root: Path = ROOT) -> tuple[str, str, str]:
    """``(url, owner, name)`` of the GitHub repository named in ``_config.yml``."""
    url = yaml.safe_load((root / "_config.yml").read_text())["repository"]["url"].rstrip("/")
    url = url.removesuffix(".git")
    parsed = urlparse(url)
    parts = parsed.path.strip("/").split("/")
    if parsed.netloc != "github.com" or len(parts) != 2:
        raise ValueError(f"_config.yml's repository url is not a GitHub repository: {url}")
    return url, parts[0], parts[1]


def pages_url(root: Path = ROOT) -> str:
    """Where GitHub Pages serves the book (.github/workflows/book.yml deploys it)."""
    _, owner, name = github_repo(root)
    if name.lower() == f"{owner.lower()}.github.io":
        return f"https://{name.lower()}/"
    return f"https://{owner.lower()}.github.io/{name}/"


def first_notebook(root: Path = ROOT) -> str:
    """The book's first chapter as a repository path (``book/00_preface.ipynb``)."""
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    return str(Path(toc["root"]).with_suffix(".ipynb"))


def binder_url(notebook: str, root: Path = ROOT) -> str:
    """The Binder launch address of a notebook, as the book's launch button builds it."""
    config = yaml.safe_load((root / "_config.yml").read_text())
    launch = config["launch_buttons"]
    _, owner, name = github_repo(root)
    ui = INTERFACES[launch.get("notebook_interface", "classic")]
    branch = config["repository"].get("branch", "main")
    return f"{launch['binderhub_url'].rstrip('/')}/v2/gh/{owner}/{name}/{branch}?urlpath={ui}/{notebook}"


def colab_url(notebook: str, root: Path = ROOT) -> str:
    """The Colab address of a notebook, as the book's launch button builds it."""
    config = yaml.safe_load((root / "_config.yml").read_text())
    _, owner, name = github_repo(root)
    branch = config["repository"].get("branch", "main")
    return f"{config['launch_buttons']['colab_url'].rstrip('/')}/github/{owner}/{name}/blob/{branch}/{notebook}"


def badges(root: Path = ROOT) -> str:
    """The badge block, markers included."""
    url, _, _ = github_repo(root)
    launch = yaml.safe_load((root / "_config.yml").read_text())["launch_buttons"]
    notebook = first_notebook(root)
    lines = [
        f"[![CI]({url}/actions/workflows/ci.yml/badge.svg)]({url}/actions/workflows/ci.yml)",
        f"[![Book]({url}/actions/workflows/book.yml/badge.svg)]({pages_url(root)})",
        f"[![Binder]({launch['binderhub_url'].rstrip('/')}/badge_logo.svg)]({binder_url(notebook, root)})",
        f"[![Open in Colab](https://colab.research.google.com/assets/colab-badge.svg)]({colab_url(notebook, root)})",
    ]
    return "\n".join([START, *lines, END])


def readme_block(text: str) -> str | None:
    """The badge block of a README (markers included), or None when it has none."""
    if START not in text or END not in text:
        return None
    start = text.index(START)
    return text[start : text.index(END, start) + len(END)]


def write(readme: Path, block: str) -> None:
    """Replace the README's badge block, or insert it under the title when there is none."""
    text = readme.read_text()
    old = readme_block(text)
    if old is not None:
        text = text.replace(old, block)
    else:
        title, _, rest = text.partition("\n")
        text = f"{title}\n\n{block}\n{rest}"
    readme.write_text(text)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = ap.add_mutually_exclusive_group()
    group.add_argument("--write", action="store_true", help="write the block into README.md")
    group.add_argument("--check", action="store_true", help="exit 1 when README.md's block is stale")
    args = ap.parse_args(argv)
    block = badges()
    readme = ROOT / "README.md"
    if args.write:
        write(readme, block)
        print(f"badges written to {readme}")
    elif args.check:
        if readme_block(readme.read_text()) != block:
            print("README.md's badges differ from _config.yml: run python tools/badges.py --write", file=sys.stderr)
            return 1
    else:
        print(block)
    return 0


if __name__ == "__main__":
    sys.exit(main())
