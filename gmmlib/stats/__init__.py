"""Statistics of recorded runs: paired gains, intervals and power (``inference``), the paper's numbers
(``paper``), records as tables (``tables``), the seed noise (``noise``) and a gain's trend along an axis (``trend``).
"""

from . import inference as _inference, noise as _noise, paper as _paper, tables as _tables, trend as _trend
from .inference import *  # noqa: F403  (each module's __all__ is its public API)
from .paper import *  # noqa: F403  (each module's __all__ is its public API)
from .tables import *  # noqa: F403  (each module's __all__ is its public API)
from .noise import *  # noqa: F403  (each module's __all__ is its public API)
from .trend import *  # noqa: F403  (each module's __all__ is its public API)

__all__ = list(
    dict.fromkeys([*_inference.__all__, *_paper.__all__, *_tables.__all__, *_noise.__all__, *_trend.__all__])
)
