"""The seed noise: how much a paired gain moves from seed to seed, read from the headline's seeds.

Every reading that puts a gain against "the noise" takes it from :func:`seed_noise`, at the preset
the book shows for the headline unless it names another.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from .tables import headline

__all__ = ["seed_noise"]


def seed_noise(results: Optional[str | Path] = None, preset: Optional[str] = None) -> Optional[float]:
    """Seed-to-seed std of the headline's paired best-epoch gain (points): the scale a one-seed gain is read against.

    Args:
        results: the results folder.
        preset: the headline's preset to read (default: the one the book shows, :func:`gmmlib.stats.preset_of`).

    Returns:
        None until the headline has two paired seeds at that preset.
    """
    h = headline(results, preset)
    return h.best.gain_std if h is not None else None
