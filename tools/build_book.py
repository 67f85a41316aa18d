"""Build the book's HTML and fail on any notebook error or Sphinx warning.

    python tools/build_book.py                       # what `make book` runs: FULL mode, jupyter-cache
    python tools/build_book.py --stage DIR                  # copy the sources (what `make test` runs nbmake on)
    python tools/build_book.py --source DIR --execute off   # a staged copy whose notebooks already ran

Jupyter Book 1 exits 0 even when a cell raises. This script makes the build strict:

* ``-W --keep-going``: every Sphinx warning (a broken reference, a missing citation, an
  execution failure reported as a warning) fails the build, after all of it is reported;
* ``nb_execution_raise_on_error`` (set in ``_config.yml``) turns a failing cell into an error;
* the log is searched for execution failures and ``_build/html/reports/`` for error logs, in
  case a future version only warns;
* every page of ``_toc.yml`` must exist in the HTML;
* no page shows a warning in a cell's output or an absolute path of the machine that built it
  (the repository, the data root, the home folder): :func:`page_problems`.

``execute_notebooks: cache`` re-executes a notebook only when its code changed, but the chapters
also read ``results/`` and depend on the mode and the data found. The script fingerprints those
inputs and, when they change, clears the jupyter-cache and rebuilds every page (Sphinx would
otherwise re-read only the edited ones), so a rebuild never shows stale results.
"""

from __future__ import annotations

import argparse
import hashlib
import html as html_lib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
FAILURE_MARKERS = ("Execution Failed", "Executing notebook failed", "CellExecutionError", "nbclient.exceptions")


def stage(target: Path, notebooks: bool = True) -> Path:
    """Copy the book's sources (config, toc, bibliography, book/) to ``target``.

    With ``notebooks=False`` only the other files are refreshed and the (executed) notebooks
    already in ``target`` are kept.
    """
    target = target.resolve()
    if target == ROOT:
        raise ValueError("refusing to stage onto the repository itself")
    if notebooks and target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True, exist_ok=True)
    for name in ("_config.yml", "_toc.yml", "references.bib"):
        shutil.copy(ROOT / name, target / name)
    ignore = [".ipynb_checkpoints", "_build", "__pycache__"] + ([] if notebooks else ["*.ipynb"])
    shutil.copytree(ROOT / "book", target / "book", ignore=shutil.ignore_patterns(*ignore), dirs_exist_ok=True)
    return target


def toc_files(source: Path) -> list[str]:
    """Every document of ``_toc.yml`` (root first), without suffix."""
    toc = yaml.safe_load((source / "_toc.yml").read_text())
    files = [toc["root"]]

    def walk(entries):
        for e in entries or []:
            if "file" in e:
                files.append(e["file"])
            walk(e.get("sections"))
            walk(e.get("chapters"))

    for part in toc.get("parts", []):
        walk(part.get("chapters"))
    walk(toc.get("chapters"))
    return [str(Path(f).with_suffix("")) for f in files]


def inputs_fingerprint() -> str:
    """Hash of what the notebooks read besides their code: mode, data choice, results/."""
    from gmmlib import book
    from gmmlib.store.paths import results_dir

    quick = book.is_quick()
    dataset, _ = book.pick_dataset(quick)
    h = hashlib.sha256(json.dumps({"quick": quick, "dataset": dataset}).encode())
    results = results_dir()
    if results.is_dir():
        for f in sorted(p for p in results.rglob("*") if p.is_file()):
            h.update(str(f.relative_to(results)).encode())
            h.update(hashlib.sha256(f.read_bytes()).digest())
    return h.hexdigest()


def build(source: Path, execute: str | None, log_path: Path, every_page: bool = False) -> int:
    """Run jupyter-book; returns its exit status. ``execute`` overrides the config's mode;
    ``every_page`` re-reads (and so re-executes) every page, not only the edited ones."""
    if execute is not None:
        config = yaml.safe_load((source / "_config.yml").read_text())
        config.setdefault("execute", {})["execute_notebooks"] = execute
        (source / "_config.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    jb = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(jb), "build", str(source), "-W", "--keep-going"] + (["--all"] if every_page else [])
    print("$", " ".join(cmd), flush=True)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert proc.stdout is not None
        for line in proc.stdout:
            sys.stdout.write(line)
            log.write(line)
        return proc.wait()


def check(source: Path, status: int, log_path: Path) -> list[str]:
    """Problems found after a build (empty when it is clean)."""
    problems = []
    text = log_path.read_text(errors="replace")
    if status != 0:
        problems.append(f"jupyter-book exited with status {status} (-W turns warnings into errors; see above)")
        # Name the warnings here too: a caller that keeps only the log's tail would lose them.
        plain = re.sub(r"\x1b\[[0-9;]*m", "", text)
        problems += [f"  {line.strip()[:400]}" for line in plain.splitlines() if _SPHINX_PROBLEM.search(line)][:20]
    for marker in FAILURE_MARKERS:
        if marker in text:
            problems.append(f"the build log mentions {marker!r}")
    html = source / "_build" / "html"
    reports = sorted((html / "reports").glob("**/*.log")) if (html / "reports").is_dir() else []
    for r in reports:
        problems.append(f"execution report {r.relative_to(source)}:\n{r.read_text(errors='replace')[-3000:]}")
    for doc in toc_files(source):
        if not (html / f"{doc}.html").is_file():
            problems.append(f"page missing from the HTML: {doc}.html")
    problems += page_problems(html, [f"{doc}.html" for doc in toc_files(source)], machine_paths(source))
    return problems


_SPHINX_PROBLEM = re.compile(r"\b(WARNING|ERROR|CRITICAL|SEVERE):")

# A cell output that reports a warning (myst-nb renders stderr as "output stderr"; a warning
# printed to stdout still names its class).
_WARNING = re.compile(r"\b[A-Z]\w*Warning\b")
_OUTPUT = re.compile(r'<div class="output (?:stderr|stream|text_plain)[^"]*">(.*?)</div>', re.S)


def machine_paths(source: Path = ROOT) -> list[str]:
    """Absolute paths of this machine that must never appear on a page: checkout, book source, data root, home."""
    paths = {str(ROOT), str(source.resolve()), str(Path.home())}
    data = os.environ.get("GMMLIB_DATA")
    if data:
        paths.add(str(Path(data).expanduser().resolve()))
        paths.add(str(Path(data).expanduser().absolute()))
    return sorted(p for p in paths if len(p) > 1)


def page_problems(html_dir: Path, pages: list[str], forbidden: list[str]) -> list[str]:
    """Warnings in cell outputs and absolute machine paths anywhere in the text of ``pages``."""
    problems = []
    for page in pages:
        path = html_dir / page
        if not path.is_file():
            continue
        text = path.read_text(errors="replace")
        for block in _OUTPUT.findall(text):
            plain = html_lib.unescape(re.sub(r"<[^>]+>", "", block))
            found = _WARNING.search(plain)
            if found:
                line = next(ln for ln in plain.splitlines() if found.group(0) in ln)
                problems.append(f"{page}: a cell output shows a warning: {line.strip()[:200]}")
        visible = html_lib.unescape(text)
        for p in forbidden:
            if p in visible:
                problems.append(f"{page}: shows the absolute path {p!r} of the machine that built it")
    return problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", type=Path, default=ROOT, help="book root (holds _config.yml); default: the repository")
    ap.add_argument(
        "--execute",
        choices=["cache", "force", "off", "auto"],
        default=None,
        help="override execute_notebooks (only for a staged copy; the file is rewritten)",
    )
    ap.add_argument(
        "--stage",
        type=Path,
        default=None,
        metavar="DIR",
        help="only copy the book's sources to DIR (for nbmake --overwrite and a later --execute off build)",
    )
    args = ap.parse_args(argv)
    if args.stage is not None:
        print(f"staged the book's sources in {stage(args.stage)}")
        return 0
    source = args.source.resolve()
    if args.execute is not None and source == ROOT:
        ap.error("--execute rewrites _config.yml: use it on a staged copy (--source), not on the repository")
    build_dir = source / "_build"
    stamp = build_dir / ".book-inputs"
    cache = build_dir / ".jupyter_cache"
    fingerprint = inputs_fingerprint()
    changed = not stamp.exists() or stamp.read_text() != fingerprint
    if changed and cache.exists():
        # Sphinx alone re-reads only edited pages: --all below makes it re-execute the others too
        print("results/, the mode or the data changed since the last build: clearing the execution cache", flush=True)
        shutil.rmtree(cache)
    build_dir.mkdir(exist_ok=True)
    stamp.write_text(fingerprint)  # what the cached executions (old or about to be made) were made with
    t0 = time.perf_counter()
    log_path = build_dir / "book-build.log"
    status = build(source, args.execute, log_path, every_page=changed)
    problems = check(source, status, log_path)
    elapsed = time.perf_counter() - t0
    if problems:
        print(f"\nBOOK BUILD FAILED after {elapsed:.0f} s:", file=sys.stderr)
        for p in problems:
            print(f"  - {p}", file=sys.stderr)
        return 1
    print(f"\nbook built in {elapsed:.0f} s: {build_dir / 'html' / 'index.html'}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
