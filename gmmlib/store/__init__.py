"""The results store: one record per run and experiments as lists of keys (``records``), what a record must
hold (``schema``), merging folders (``merge``), where the store lives (``paths``), and the claims that let one
process at a time train a run (``claims``).
"""

from . import claims as _claims, merge as _merge, paths as _paths, records as _records, schema as _schema
from .paths import *  # noqa: F403  (each module's __all__ is its public API)
from .schema import *  # noqa: F403  (each module's __all__ is its public API)
from .records import *  # noqa: F403  (each module's __all__ is its public API)
from .merge import *  # noqa: F403  (each module's __all__ is its public API)
from .claims import *  # noqa: F403  (each module's __all__ is its public API)

__all__ = list(dict.fromkeys([*_paths.__all__, *_schema.__all__, *_records.__all__, *_merge.__all__, *_claims.__all__]))
