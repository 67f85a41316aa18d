"""What defines and runs one training: the presets and :class:`RunConfig` (``config``), the mask
options (``options``), how it runs on this device (``plan``), where it runs (``runtime``), its
batches (``batches``), checkpoints (``checkpoint``), provenance (``provenance``), one step and its
checks (``step``), the resumable loop (``loop``), what a finished run records (``record``) and a
recorded run's model rebuilt (``rebuild``).
"""

from . import (
    batches as _batches,
    checkpoint as _checkpoint,
    config as _config,
    loop as _loop,
    options as _options,
    plan as _plan,
    provenance as _provenance,
    rebuild as _rebuild,
    record as _record,
    runtime as _runtime,
    step as _step,
)
from .config import *  # noqa: F403  (each module's __all__ is its public API)
from .options import *  # noqa: F403  (each module's __all__ is its public API)
from .plan import *  # noqa: F403  (each module's __all__ is its public API)
from .runtime import *  # noqa: F403  (each module's __all__ is its public API)
from .batches import *  # noqa: F403  (each module's __all__ is its public API)
from .checkpoint import *  # noqa: F403  (each module's __all__ is its public API)
from .provenance import *  # noqa: F403  (each module's __all__ is its public API)
from .step import *  # noqa: F403  (each module's __all__ is its public API)
from .loop import *  # noqa: F403  (each module's __all__ is its public API)
from .record import *  # noqa: F403  (each module's __all__ is its public API)
from .rebuild import *  # noqa: F403  (each module's __all__ is its public API)

__all__ = list(
    dict.fromkeys(
        [
            *_config.__all__,
            *_options.__all__,
            *_plan.__all__,
            *_runtime.__all__,
            *_batches.__all__,
            *_checkpoint.__all__,
            *_provenance.__all__,
            *_step.__all__,
            *_loop.__all__,
            *_record.__all__,
            *_rebuild.__all__,
        ]
    )
)
