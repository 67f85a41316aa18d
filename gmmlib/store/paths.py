"""Where the results store lives: ``--results``, ``GMMLIB_RESULTS``, or ``results/`` of this checkout."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

__all__ = ["results_dir"]


def results_dir(path: Optional[str | Path] = None) -> Path:
    """The results folder: ``path``, ``GMMLIB_RESULTS``, or ``results/`` of this checkout."""
    if path is not None:
        return Path(path)
    if os.environ.get("GMMLIB_RESULTS"):
        return Path(os.environ["GMMLIB_RESULTS"])
    return Path(__file__).resolve().parents[2] / "results"
