"""The paper's five small-data model families, built by name with :func:`create_model`."""

from . import cait, pit, swin, t2t, vit  # noqa: F401  (importing a family registers it)
from .registry import create_model, list_models, register_model

__all__ = ["create_model", "list_models", "register_model"]
