"""What the recorded runs say, as structured results and the sentences the chapters print: the headline
(``headline``), the one standard every comparison is read by (``standard``), the ablations (``ablations``), the families and priors against the seed noise
(``families``), the evidence table and caveats (``evidence``), what the masks learned (``learned``),
the gains as the training set shrinks (``datasize``, its sentences in ``datasize_text``) and how scarce its smallest subset is for the model
(``data_scarcity``).
"""

from . import (
    ablations as _ablations,
    standard as _standard,
    datasize as _datasize,
    datasize_text as _datasize_text,
    data_scarcity as _data_scarcity,
    evidence as _evidence,
    families as _families,
    headline as _headline,
    learned as _learned,
)
from .standard import *  # noqa: F403  (each module's __all__ is its public API)
from .ablations import *  # noqa: F403  (each module's __all__ is its public API)
from .headline import *  # noqa: F403  (each module's __all__ is its public API)
from .families import *  # noqa: F403  (each module's __all__ is its public API)
from .evidence import *  # noqa: F403  (each module's __all__ is its public API)
from .learned import *  # noqa: F403  (each module's __all__ is its public API)
from .datasize import *  # noqa: F403  (each module's __all__ is its public API)
from .datasize_text import *  # noqa: F403  (each module's __all__ is its public API)
from .data_scarcity import *  # noqa: F403  (each module's __all__ is its public API)
from . import budget, cost, family_standing, gmm_init, speed  # noqa: F401  (chapters 1, 4, 7; book.readings.speed.…)
from . import elm, paper_tables  # noqa: F401  (chapter 3: book.readings.elm.read_elm())

__all__ = list(
    dict.fromkeys(
        [
            *_standard.__all__,
            *_ablations.__all__,
            *_headline.__all__,
            *_families.__all__,
            *_evidence.__all__,
            *_learned.__all__,
            *_datasize.__all__,
            *_datasize_text.__all__,
            *_data_scarcity.__all__,
        ]
    )
)
