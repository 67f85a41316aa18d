"""The paper's published numbers (``paper_numbers.json``), always labelled as the paper's."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict

__all__ = ["paper"]


@lru_cache(maxsize=1)
def paper() -> Dict[str, Any]:
    """The paper's published numbers (README tables, kernel ablation, SPT-LSA context)."""
    return json.loads((Path(__file__).with_name("paper_numbers.json")).read_text())
