"""One-off rewrite (issue 28, item 2): records name their data by file name, size and sha256, never by where it lay.

Runs recorded before :func:`gmmlib.data.portable_source` carry ``data_source.path`` and ``data_source.cache_dir``,
absolute paths of the machine that trained them. This rewrites every record of the given results folders once:
``data_source`` through ``portable_source`` (the path becomes ``file``, its name; the cache folder goes), and any
other field whose value is an absolute path is dropped. Every other key and value stays as it was; the run's key
does not change (it hashes the configuration only). Files are written atomically, as the store writes them.

Usage: ``python tools/portable_records.py [RESULTS ...]`` (default: ``results`` and ``results/pending``);
``--check`` lists what would change and writes nothing.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any, List, Optional

from gmmlib.data import portable_source
from gmmlib.files import write_json

ROOT = Path(__file__).resolve().parents[1]

# POSIX (/work/..., a whole "/x"), Windows (C:\..., C:/...) and UNC (\\server\...) absolute paths
ABSOLUTE = re.compile(r"(?<![\w.~/:])/[^\s/]+/|^/[^\s/]+$|(?<![A-Za-z])[A-Za-z]:[\\/]|^\\\\")


def is_absolute_path(value: Any) -> bool:
    """Whether ``value`` is a string holding something that looks like an absolute POSIX or Windows path."""
    return isinstance(value, str) and ABSOLUTE.search(value) is not None


def _without_absolute_paths(value: Any) -> Any:
    # a field whose value is an absolute path is dropped; lists keep their length (their positions mean something)
    if isinstance(value, dict):
        return {k: _without_absolute_paths(v) for k, v in value.items() if not is_absolute_path(v)}
    if isinstance(value, list):
        return [_without_absolute_paths(v) for v in value]
    return value


def portable_record(record: dict) -> dict:
    """``record`` with its data named by file name, size and sha256 and no absolute path left.

    Args:
        record: a run record as the store holds it.
    """
    out = dict(record)
    if isinstance(out.get("data_source"), dict):
        out["data_source"] = portable_source(out["data_source"])
    return _without_absolute_paths(out)


def rewrite(results: Path, check: bool = False) -> List[Path]:
    """Rewrite the records of the results folder ``results`` that hold an absolute path; returns their files.

    Args:
        results: a results folder (its ``records/`` is read).
        check: list them only; write nothing.
    """
    changed = []
    for path in sorted((results / "records").glob("*.json")):
        record = json.loads(path.read_text())
        new = portable_record(record)
        if new != record:
            changed.append(path)
            if not check:
                write_json(path, new)
    return changed


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="*", type=Path, default=[ROOT / "results", ROOT / "results" / "pending"])
    parser.add_argument("--check", action="store_true", help="list what would change; write nothing")
    args = parser.parse_args(argv)
    for results in args.results:
        if not (results / "records").is_dir():
            print(f"portable_records: error: {results} has no records/ folder", file=sys.stderr)
            return 2
        changed = rewrite(results, args.check)
        print(f"{results}: {len(changed)} record(s) {'would change' if args.check else 'rewritten'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
