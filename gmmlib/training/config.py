"""What defines a run: the presets of the paper's recipe and :class:`RunConfig`.

A :class:`Preset` is a scaled version of the official recipe (``paper``, ``cpu``,
``quick``); a :class:`RunConfig` names one run (model family, mask, data set,
preset, seed), builds its model, and hashes its full resolved configuration, with
the mask options normalised (:mod:`gmmlib.training.options`), into the run's key
(:func:`config_key`). The training loop itself lives in :mod:`gmmlib.training.loop`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional

from torch import nn

from .. import data as gdata
from ..models import create_model, list_models
from .options import non_default_options, normalise_mask_options, probe_mask

__all__ = [
    "Preset",
    "PRESETS",
    "RunConfig",
    "config_key",
    "KEY_VERSION",
    "INIT_SCHEME",
    "RUN_FIELDS",
    "DATA_PATHS",
    "data_path_name",
    "SUBSET_SEED",
]

# Part of every key: bump it when what a key covers, or how it is normalised, changes, so
# that old keys can never collide with new ones (the store's migration recomputes them).
# 2: mask options normalised (parsed, defaults filled in) before hashing.
KEY_VERSION = 2

# How masked models draw their random initial mask values (see RunConfig.init_scheme).
INIT_SCHEME = 2
INIT_SCHEMES = (1, 2)

# How training batches are made and augmented. "batched": the split held as one uint8 tensor and
# the whole recipe applied per image to large chunks at once (gmmlib.data.BatchedAugment), on the
# GPU or the CPU; "workers": torchvision's PIL transforms in DataLoader worker processes. Every
# record made before the data path was part of a run's key used the workers (on CPU), so a key
# leaves the field out when it is "workers" and those records keep their keys.
DATA_PATHS = ("batched", "workers")
_DATA_PATH_ALIASES = {"gpu": "batched", "cpu": "workers", "auto": "batched"}  # the names records used before

# The data seed of every training subset (RunConfig.train_size): drawn once, so the subsets are nested.
SUBSET_SEED = 0


def data_path_name(name: Optional[str]) -> str:
    """The data path's name, old names read as new (``"gpu"`` -> ``"batched"``, ``"cpu"`` -> ``"workers"``).

    Raises:
        ValueError: an unknown name.
    """
    if name is None:
        return "batched"
    name = _DATA_PATH_ALIASES.get(name, name)
    if name not in DATA_PATHS:
        raise ValueError(f"unknown data path {name!r}; choose one of: {', '.join(DATA_PATHS)}")
    return name


@dataclass(frozen=True)
class Preset:
    """A scaled version of the paper's recipe.

    Args:
        name: preset name.
        epochs: epochs (each of ``passes_per_epoch`` shuffled passes over the data).
        warmup_epochs: linear warm-up length in epochs (per-step).
        passes_per_epoch: 3 in the official code (its "repeated augmentation" sampler).
        batch_size, lr, min_lr, warmup_lr, weight_decay: optimiser and schedule.
        label_smoothing, mix_prob, mix_switch_prob, mixup_alpha, cutmix_alpha: loss and mixing.
        autoaugment, random_erasing, drop_path: augmentation and regularisation.
        model_overrides: per model family, architecture options (widths, depths).
        train_limit, test_limit: class-balanced subsets (None: the whole split).
        num_workers: DataLoader worker processes for augmentation on the "workers" data path; None: as
            many as the machine's cores allow (see :func:`gmmlib.training.plan.workers_for`), so that a
            2-core Colab VM is not asked for 8. Part of the key (presets that fix it keep their keys).
    """

    name: str
    epochs: int
    warmup_epochs: float
    passes_per_epoch: int = 1
    batch_size: int = 128
    lr: float = 1e-3
    min_lr: float = 1e-6
    warmup_lr: float = 1e-6
    weight_decay: float = 0.05
    label_smoothing: float = 0.1
    mix_prob: float = 0.5
    mix_switch_prob: float = 0.5
    mixup_alpha: float = 1.0
    cutmix_alpha: float = 1.0
    autoaugment: bool = True
    random_erasing: float = 0.25
    drop_path: float = 0.1
    model_overrides: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    train_limit: Optional[int] = None
    test_limit: Optional[int] = None
    num_workers: Optional[int] = None

    def as_dict(self) -> Dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["model_overrides"] = {k: dict(v) for k, v in self.model_overrides.items()}
        return d


# Chosen once, before any comparison was run (book chapter 1 explains the choice):
# the smallest widths that keep each family's token grids (8 x 8 for ViT, CaiT and
# T2T; 16/8/4 for PiT and Swin) so the masks see the same geometry as in the paper.
_CPU_MODELS = {
    "vit": dict(dim=64, depth=4, num_heads=4, head_dim=16),
    "cait": dict(dim=64, depth=3, cls_depth=1, num_heads=4, head_dim=16, mlp_dim=128),
    "pit": dict(dim=32, depth=(1, 2, 1), num_heads=(1, 2, 4), head_dim=16),
    "swin": dict(dim=32, depth=(1, 2, 1), num_heads=(1, 2, 4)),
    "t2t": dict(dim=64, depth=4, num_heads=4, token_dim=32),
}
_QUICK_MODELS = {
    "vit": dict(dim=32, depth=2, num_heads=2, head_dim=16),
    "cait": dict(dim=32, depth=2, cls_depth=1, num_heads=2, head_dim=16, mlp_dim=64),
    "pit": dict(dim=16, depth=(1, 1, 1), num_heads=(1, 2, 4), head_dim=8),
    "swin": dict(dim=16, depth=(1, 1, 1), num_heads=(1, 2, 4)),
    "t2t": dict(dim=32, depth=2, num_heads=2, token_dim=16),
}

PRESETS: Dict[str, Preset] = {
    # the official recipe's loader has 8 workers; here they follow the CPU count (a Colab VM has 2 cores)
    "paper": Preset("paper", epochs=100, warmup_epochs=10, passes_per_epoch=3, num_workers=None),
    "cpu": Preset(
        "cpu",
        epochs=8,
        warmup_epochs=1,
        model_overrides=_CPU_MODELS,
        num_workers=1,
    ),
    "quick": Preset(
        "quick",
        epochs=2,
        warmup_epochs=0.5,
        batch_size=32,
        model_overrides=_QUICK_MODELS,
        train_limit=256,
        test_limit=128,
        num_workers=0,
    ),
}


@dataclass
class RunConfig:
    """Everything that defines one training run (and its result's key).

    Args:
        model: model family (see :func:`gmmlib.list_models`).
        mask: mask kind or None.
        mask_options: options of the mask kind (e.g. ``{"num_kernels": 3}``).
        pool: "gap"/"cls", or None for the family's default.
        dataset: data set name (see :data:`gmmlib.data.DATASETS`).
        preset: one of :data:`PRESETS`.
        seed: random seed.
        epochs: override the preset's number of epochs.
        model_options: architecture overrides on top of the preset's.
        init_scheme: how a masked model's random mask values are drawn. 2 (the default):
            from a stream of their own derived from ``seed``, so every weight the model
            shares with the unmasked one starts equal (the comparison is paired by
            construction). 1: from the global generator mid-construction, which shifts the
            backbone's draws; records made before scheme 2 have no ``init_scheme`` and
            read as 1. Part of a masked run's key; an unmasked run's init is the same under
            both, so its key leaves the field out.
        data_path: ``"batched"`` (the default) or ``"workers"`` (see :data:`DATA_PATHS`); the old
            names ``"gpu"``/``"cpu"`` are read as these.
        train_size: train on a class-balanced subset of this many training images (None: all of
            them). The number of optimiser steps stays that of the whole training set (an epoch
            is still one pass's worth of steps over all of it), so only the number of distinct
            images changes; subsets of one data set are nested (:func:`gmmlib.data.subset_indices`
            with :data:`SUBSET_SEED`).
    """

    model: str = "vit"
    mask: Optional[str] = None
    mask_options: Dict[str, Any] = field(default_factory=dict)
    pool: Optional[str] = None
    dataset: str = "cifar10"
    preset: str = "cpu"
    seed: int = 0
    epochs: Optional[int] = None
    model_options: Dict[str, Any] = field(default_factory=dict)
    init_scheme: int = INIT_SCHEME
    data_path: str = "batched"
    train_size: Optional[int] = None

    def full_train_size(self) -> int:
        """Images in the training set before any ``train_size`` subset: the preset's limit, or the whole split."""
        limit = PRESETS[self.preset].train_limit if self.preset in PRESETS else None
        return limit if limit is not None else gdata.get_info(self.dataset).expected_count("train")

    def validate(self) -> None:
        """Raise a clear ValueError for an unknown name or an impossible value."""
        if self.model not in list_models():
            raise ValueError(f"unknown model {self.model!r}; choices: {', '.join(list_models())}")
        if self.preset not in PRESETS:
            raise ValueError(f"unknown preset {self.preset!r}; choices: {', '.join(PRESETS)}")
        gdata.get_info(self.dataset)  # raises with the list of data sets
        if self.epochs is not None and (
            not isinstance(self.epochs, int) or isinstance(self.epochs, bool) or self.epochs < 1
        ):
            raise ValueError(f"epochs must be a positive int, got {self.epochs!r}")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {self.seed!r}")
        if self.init_scheme not in INIT_SCHEMES:
            raise ValueError(f"init_scheme must be one of {INIT_SCHEMES}, got {self.init_scheme!r}")
        self.data_path = data_path_name(self.data_path)
        if self.train_size is not None:
            full = self.full_train_size()
            classes = gdata.get_info(self.dataset).num_classes
            if (
                not isinstance(self.train_size, int)
                or isinstance(self.train_size, bool)
                or not classes <= self.train_size <= full
            ):
                raise ValueError(
                    f"train_size must be an int from {classes} (one image per class) to {full:,} "
                    f"(the whole training set), got {self.train_size!r}"
                )
        from ..models.registry import check_pool

        check_pool(self.model, self.pool)  # a pooling the family does not offer
        options = normalise_mask_options(self.mask, self.mask_options)  # unknown mask/option, wrong type
        if self.mask is not None:
            self._check_mask_values(options)

    def _check_mask_values(self, options: Dict[str, Any]) -> None:
        # Values the constructor rejects (num_kernels=0, init="bogus") fail here, before any data
        # loads: build the mask once on a small grid, with this run's head count where it is one.
        heads = {**PRESETS[self.preset].model_overrides.get(self.model, {}), **self.model_options}.get("num_heads")
        heads = heads[0] if isinstance(heads, (list, tuple)) else heads
        probe = dict(options)
        if not isinstance(heads, int):
            heads = 1
            probe.pop("gammas", None)  # one per head: checked when the model is built
        try:
            probe_mask(self.mask, probe, heads, isolate=self.init_scheme >= 2)
        except ValueError as e:
            raise ValueError(f"mask {self.mask!r}: {e}") from None

    def normalised_mask_options(self, full: bool = True) -> Dict[str, Any]:
        """The mask options parsed and with their defaults (``full``), or only those that differ from them.

        Raises:
            ValueError: an unknown mask or option, a badly typed value, options without a mask.
        """
        if full:
            return normalise_mask_options(self.mask, self.mask_options)
        return non_default_options(self.mask, self.mask_options)

    def get_preset(self) -> Preset:
        self.validate()
        preset = PRESETS[self.preset]
        return preset if self.epochs is None else dataclasses.replace(preset, epochs=self.epochs)

    def architecture(self) -> Dict[str, Any]:
        """Model options: the preset's for this family, then ``model_options``."""
        arch = dict(self.get_preset().model_overrides.get(self.model, {}))
        arch.update(self.model_options)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in arch.items()}

    def resolved(self) -> Dict[str, Any]:
        """The full configuration: this run's fields (mask options normalised), the preset and the architecture."""
        d = dataclasses.asdict(self)
        if self.mask is None or self.init_scheme == 1:
            del d["init_scheme"]  # scheme 1 records never had the field; unmasked runs do not depend on it
        d["preset_values"] = self.get_preset().as_dict()
        d["mask_options"] = self.normalised_mask_options()
        d["architecture"] = self.architecture()
        d["train_size"] = self.train_size if self.train_size is not None else self.full_train_size()
        if d["train_size"] != self.full_train_size():
            d["train_subset_seed"] = SUBSET_SEED
        return d

    def key(self) -> str:
        """A short hash of :meth:`resolved` (see :func:`config_key`): equal keys, equal runs."""
        return config_key(self.resolved())

    def name(self) -> str:
        """A readable run name, e.g. ``vit-gmm-gap-cifar10-s0``; options at their defaults are left out."""
        try:
            options = self.normalised_mask_options(full=False)
        except ValueError:  # an invalid config still gets a name for its error message
            options = dict(self.mask_options)
        parts = [self.model, self.mask or "none"]
        parts += [f"{k}{v}" for k, v in sorted(options.items())]
        parts += [self.pool or "default", self.dataset]
        if self.train_size is not None and self.preset in PRESETS and self.train_size != self.full_train_size():
            parts.append(f"n{self.train_size}")
        parts.append(f"s{self.seed}")
        return "-".join(str(p).replace("_", "").replace("/", "").replace(" ", "") for p in parts)

    @classmethod
    def from_result(cls, result: Mapping[str, Any]) -> "RunConfig":
        """The config of a recorded run (a result record, or its ``config`` dict).

        Where the preset's architecture has changed since the run was recorded, the
        recorded architecture is kept as ``model_options``, so :meth:`build_model`
        still builds the model the run trained.
        """
        recorded = result.get("config", result)
        config = cls(**{f: recorded[f] for f in RUN_FIELDS if f in recorded})
        if "init_scheme" not in recorded:
            config.init_scheme = 1 if config.mask is not None else INIT_SCHEME
        if "data_path" not in recorded:  # made before the data path was part of the config: the record says
            config.data_path = data_path_name(
                result.get("data_pipeline", "workers") if "config" in result else "workers"
            )
        else:
            config.data_path = data_path_name(config.data_path)
        config.mask_options = dict(config.mask_options or {})
        config.model_options = dict(config.model_options or {})
        arch = recorded.get("architecture")
        if arch is not None and config.preset in PRESETS and config.architecture() != arch:
            config.model_options = dict(arch)
        return config

    def build_model(self) -> nn.Module:
        """The run's model, freshly initialised from the global RNG (seed it first for the run's own init).

        Under ``init_scheme`` 2 the mask's random values come from their own stream seeded
        by ``seed``, so the backbone equals the unmasked run's at the same global seed.
        """
        preset = self.get_preset()
        info = gdata.get_info(self.dataset)
        return create_model(
            self.model,
            num_classes=info.num_classes,
            img_size=info.image_size,
            mask=self.mask,
            pool=self.pool,
            mask_rng="own" if self.init_scheme >= 2 else "global",
            mask_seed=self.seed,
            drop_path=preset.drop_path,
            # only the options that differ from the defaults: a default left out keeps the family's own
            # choice (GMM on PiT's and T2T's large grids truncates like the official float32 code)
            **({"mask_options": self.normalised_mask_options(full=False)} if self.mask else {}),
            **self.architecture(),
        )


RUN_FIELDS = tuple(f.name for f in dataclasses.fields(RunConfig))


def config_key(resolved: Mapping[str, Any]) -> str:
    """The key of a resolved configuration (:meth:`RunConfig.resolved`, or a record's ``config``).

    A 12-hex-digit hash of the configuration with its mask options normalised and
    :data:`KEY_VERSION`, so a recorded run's key can be recomputed from its record alone.
    Fields added after runs were recorded leave the hash at their old value, so those
    records keep their keys: ``data_path`` when it is ``"workers"``, ``train_size`` when it
    is the whole training set.
    """
    d = dict(resolved)
    d["mask_options"] = normalise_mask_options(d.get("mask"), d.get("mask_options"))
    if data_path_name(d.pop("data_path", "workers")) != "workers":
        d["data_path"] = data_path_name(resolved["data_path"])
    if "train_subset_seed" not in d:  # the whole training set
        d.pop("train_size", None)
    d["key_version"] = KEY_VERSION
    blob = json.dumps(d, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]
