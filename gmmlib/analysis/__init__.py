"""What trained models do: attention maps and their locality (``attention_maps``), and what a run's
masks learned (``learned_masks``).
"""

from . import attention_maps as _attention_maps, learned_masks as _learned_masks
from .attention_maps import *  # noqa: F403  (each module's __all__ is its public API)
from .learned_masks import *  # noqa: F403  (each module's __all__ is its public API)

__all__ = list(dict.fromkeys([*_attention_maps.__all__, *_learned_masks.__all__]))
