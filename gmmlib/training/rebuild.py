"""A recorded run's model rebuilt: as it started (the run's own initial weights, masks included) or trained."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any, Mapping, Optional

import numpy as np
import torch
from torch import nn

from .checkpoint import load_weights
from .config import RunConfig
from .loop import seed_everything

__all__ = ["model_from_record"]


def model_from_record(record: Mapping[str, Any], weights: Optional[str | Path] = None) -> nn.Module:
    """The model of a recorded run, in eval mode.

    The run's seed is set before the model is built, exactly as :func:`gmmlib.training.train` does,
    so without ``weights`` the model is the run's own at step 0. The caller's random state (Python,
    NumPy, torch) is left as it was.

    Args:
        record: a run record (or its ``config``): the configuration is rebuilt with
            :meth:`RunConfig.from_result`, with the architecture it recorded.
        weights: a state dict file of the trained model (``records/<key>.weights.pt``) to load.
    """
    python_state, numpy_state = random.getstate(), np.random.get_state()
    try:
        with torch.random.fork_rng(devices=[]):
            config = RunConfig.from_result(record)  # checking the config may draw random numbers too
            seed_everything(int(config.seed))
            model = config.build_model()
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)
    if weights is not None:  # another model's weights: one line naming the file, not load_state_dict's page
        load_weights(model, Path(weights))
    return model.eval()
