"""The paper's experiments as named grids (``grids``), which of their runs are recorded (``status``),
the runner that trains what a grid lacks (``runner``), and the promotion of a complete rerun (``promote``).
"""

from . import grids as _grids, promote as _promote, runner as _runner, status as _status
from .grids import *  # noqa: F403  (each module's __all__ is its public API)
from .status import *  # noqa: F403  (each module's __all__ is its public API)
from .runner import *  # noqa: F403  (each module's __all__ is its public API)
from .promote import *  # noqa: F403  (each module's __all__ is its public API)

__all__ = list(dict.fromkeys([*_grids.__all__, *_status.__all__, *_runner.__all__, *_promote.__all__]))
