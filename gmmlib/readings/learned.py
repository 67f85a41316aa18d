"""What training did to the masks, read per initialisation and seed (chapter 8)."""

from __future__ import annotations

from typing import Dict, Mapping, Sequence

__all__ = ["locality_reading"]


def locality_reading(changes: Dict[str, Dict[str, float] | Sequence[Dict[str, float]]], tolerance: float = 0.1) -> str:
    """Markdown: what training did to each initialisation's locality (from :func:`gmmlib.analysis.locality_change`).

    Args:
        changes: ``{init name: locality_change(run)}``, or a list of them, one per seed: each seed is
            read on its own, and the line says whether the seeds agree; the numbers are their means.
        tolerance: a locality below this (in units of M) counts as none; a change smaller than this
            share of the starting locality counts as barely moved.
    """
    lines = []
    for init, per_seed in changes.items():
        per_seed = [per_seed] if isinstance(per_seed, Mapping) else list(per_seed)
        if not per_seed:
            raise ValueError(f"no run for init {init!r}: expected at least one locality_change")
        verdicts = [_locality_verdict(c["locality, step 0"], c["locality, trained"], tolerance) for c in per_seed]
        mean = {k: sum(c[k] for c in per_seed) / len(per_seed) for k in per_seed[0]}
        n = len(per_seed)
        if n == 1:
            said, seeds = verdicts[0], "one seed"
        elif len(set(verdicts)) == 1:
            said, seeds = f"{verdicts[0]} in {'both' if n == 2 else f'all {n}'} seeds", f"means over {n} seeds"
        else:
            counts = ", ".join(f"{v} in {verdicts.count(v)}" for v in dict.fromkeys(verdicts))
            said, seeds = f"the {n} seeds disagree: {counts}", f"means over {n} seeds"
        lines.append(
            f"* `{init}`: {said} (|M(0)| - |M(far)| from {mean['locality, step 0']:.2f} to "
            f"{mean['locality, trained']:.2f}; the scale |M(0)| from {mean['scale, step 0']:.2f} to "
            f"{mean['scale, trained']:.2f}; {seeds})."
        )
    return "\n".join(lines)


def _locality_verdict(a: float, b: float, tolerance: float) -> str:
    """What training did to a locality of ``a`` at step 0 that ended at ``b``."""
    if a < tolerance:
        return "learned locality it did not start with" if b >= tolerance else "stayed without locality"
    if abs(b - a) <= tolerance * a:
        return "its locality barely moved"
    return "sharpened the locality it started with" if b > a else "lost part of the locality it started with"
