"""gmmlib: locality masks (ELM, GMM, RetNet decay, ...) for Vision Transformers on small data.

The library behind the executable book on "Toward a Deeper Understanding: RetNet
Viewed through Convolution" (Li & Zhang, arXiv 2309.05375).
"""

from . import attention, masks
from .apply import apply_mask
from .attention import MaskedAttention, masked_attention
from .cost import count_parameters, profile
from .models import create_model, list_models

__version__ = "0.1.0"

__all__ = [
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
