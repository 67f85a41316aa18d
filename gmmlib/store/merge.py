"""Merging results folders (of several machines, shards or a backup) into one store."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Iterable, List, Optional

from .records import PathLike, Store

__all__ = ["merge"]


def merge(sources: Iterable[PathLike], into: Optional[PathLike] = None, replace: bool = False) -> Dict[str, List[str]]:
    """Merge the stores in ``sources`` (results folders of several machines or shards) into ``into``.

    Args:
        sources: results folders to read.
        into: the results folder to fill (default: ``results/`` of this checkout).
        replace: each experiment the sources list replaces the target's list (see
            :meth:`Store.merge_from`); with several sources, the last one listing it wins.

    Returns:
        ``{"copied": keys, "present": keys, "differ": keys, "experiments": names}`` over all sources.
    """
    target = Store(into)
    target.check_writable()
    total: Dict[str, List[str]] = {"copied": [], "present": [], "differ": [], "experiments": []}
    for source in sources:
        if not Path(source).is_dir():
            raise ValueError(f"{source} is not a results folder")
        for k, v in target.merge_from(source, replace=replace).items():
            total[k] += [x for x in v if x not in total[k]]
    return total
