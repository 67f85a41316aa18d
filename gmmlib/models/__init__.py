"""The paper's five small-data model families, built by name with :func:`create_model`."""

from . import vit  # noqa: F401  (registers "vit")
from . import cait, pit, swin, t2t  # noqa: F401  (register "cait", "pit", "swin", "t2t")
from .registry import create_model, list_models, register_model

__all__ = ["create_model", "list_models", "register_model"]
