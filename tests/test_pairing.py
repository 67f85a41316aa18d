"""Paired by construction: at one seed, a masked model's backbone starts as the unmasked one's.

The headline's per-seed difference is a paired comparison only if the two arms differ in
the mask and nothing else. These tests build every family with every mask kind the way a
training run does (``seed_everything`` then ``RunConfig.build_model``) and compare every
tensor the two models share at step 0.
"""

from __future__ import annotations

import pytest
import torch

from gmmlib import masks
from gmmlib.models.registry import PAPER_FAMILIES, create_model
from gmmlib.training.config import INIT_SCHEME, RunConfig, config_key
from gmmlib.training.loop import seed_everything

MASKS = [(kind, {}) for kind in masks.list_masks()] + [("gmm", {"init": "local"}), ("gmm", {"num_kernels": 2})]


def _initial_state(config: RunConfig) -> dict:
    seed_everything(config.seed)
    model = config.build_model()
    has_mask = any(isinstance(m, masks.AttentionMask) for m in model.modules())
    assert has_mask == (config.mask is not None), config.name()
    return model.state_dict()


def _shared_differences(plain: dict, masked: dict) -> list:
    missing = sorted(set(plain) - set(masked))
    assert not missing, f"the masked model lacks backbone tensors {missing[:5]}"
    return [name for name, t in plain.items() if not torch.equal(t, masked[name])]


@pytest.mark.parametrize("family", PAPER_FAMILIES)
@pytest.mark.parametrize(
    "kind,options",
    MASKS,
    ids=lambda v: str(v) if not isinstance(v, dict) else "-".join(map(str, v.values())) or "default",
)
def test_masked_backbone_starts_equal_to_unmasked(family: str, kind: str, options: dict) -> None:
    for seed in (0, 1):
        plain = _initial_state(RunConfig(model=family, seed=seed))
        masked_config = RunConfig(model=family, mask=kind, mask_options=options, seed=seed)
        masked = _initial_state(masked_config)
        assert _shared_differences(plain, masked) == [], f"{family} + {kind} {options}, seed {seed}"
        # and the global generator is where the unmasked build left it: training draws match too
        seed_everything(seed)
        RunConfig(model=family, seed=seed).build_model()
        after_plain = torch.rand(4)
        seed_everything(seed)
        masked_config.build_model()
        assert torch.equal(torch.rand(4), after_plain)


def test_random_mask_values_depend_on_the_seed_and_differ_between_layers() -> None:
    def alphas(seed: int) -> list:
        return [p for n, p in _initial_state(RunConfig(mask="gmm", seed=seed)).items() if n.endswith("alpha")]

    s0, s1 = alphas(0), alphas(1)
    assert len(s0) >= 2
    assert not torch.equal(s0[0], s1[0])  # another seed, another draw
    assert not torch.equal(s0[0], s0[1])  # each layer its own draw
    assert all(torch.equal(a, b) for a, b in zip(s0, alphas(0)))  # and the same seed repeats it


def test_create_model_pairs_by_default_from_the_global_seed() -> None:
    torch.manual_seed(3)
    plain = create_model("vit", dim=32, depth=2, num_heads=2, head_dim=16).state_dict()
    torch.manual_seed(3)
    masked = create_model("vit", mask="gmm", dim=32, depth=2, num_heads=2, head_dim=16).state_dict()
    assert _shared_differences(plain, masked) == []
    with pytest.raises(ValueError, match="mask_rng must be one of .*'stream'"):
        create_model("vit", mask="gmm", mask_rng="stream")


def test_scheme_1_rebuilds_the_old_unpaired_init_and_keeps_old_keys() -> None:
    """Runs recorded before the paired init read as scheme 1: rebuilt as they trained, under their old key."""
    new = RunConfig(mask="gmm")
    assert new.init_scheme == INIT_SCHEME == 2 and new.resolved()["init_scheme"] == 2
    old_record = {k: v for k, v in new.resolved().items() if k != "init_scheme"}
    old = RunConfig.from_result(old_record)
    assert old.init_scheme == 1 and old.key() == config_key(old_record) != new.key()
    # the old scheme drew the mask from the global stream, which shifted the backbone
    plain = _initial_state(RunConfig())
    assert _shared_differences(plain, _initial_state(old)) != []
    # an unmasked run's key does not carry the scheme: its init is the same under both
    assert "init_scheme" not in RunConfig().resolved()
    assert RunConfig.from_result(RunConfig().resolved()).key() == RunConfig().key()
    with pytest.raises(ValueError, match="init_scheme must be one of"):
        RunConfig(mask="gmm", init_scheme=7).validate()
