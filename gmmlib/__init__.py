"""gmmlib: locality masks (ELM, GMM, RetNet decay, ...) for Vision Transformers on small data.

The library behind the executable book on "Toward a Deeper Understanding: RetNet
Viewed through Convolution" (Li & Zhang, arXiv 2309.05375).

The public core lives at the top: the masks (:mod:`gmmlib.masks`), masked attention
(:mod:`gmmlib.attention`), :func:`create_model`, :func:`apply_mask` for timm models and
:func:`profile` (parameters, MACs, FLOPs). The sub-packages, from the bottom up: ``data``,
``models``, ``training``, ``store``, ``experiments``, ``stats``, ``readings``, ``analysis``
and ``book`` (what the chapters import).
"""

from . import attention, masks
from .apply import apply_mask
from .attention import MaskedAttention, masked_attention
from .cost import count_parameters, profile
from .models import create_model, list_models
from .training.provenance import __version__

__all__ = [
    "__version__",
    "attention",
    "masks",
    "masked_attention",
    "MaskedAttention",
    "create_model",
    "list_models",
    "apply_mask",
    "profile",
    "count_parameters",
]
