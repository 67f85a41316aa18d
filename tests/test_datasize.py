"""The data-size axis: nested class-balanced subsets, a fixed number of steps, and the data path in the key."""

import glob
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from gmmlib import data as gdata
from gmmlib.experiments.grids import TRAIN_SIZES, get_experiment
from gmmlib.training import loop as train_mod
from gmmlib.training.config import PRESETS, SUBSET_SEED, RunConfig, config_key

RESULTS = Path(__file__).resolve().parents[1] / "results"


def test_subsets_are_class_balanced_and_nested():
    y = np.repeat(np.arange(10), 500)[np.random.default_rng(3).permutation(5000)]
    small, large = gdata.subset_indices(y, 250, seed=0), gdata.subset_indices(y, 1000, seed=0)
    assert len(set(small)) == 250 and len(set(large)) == 1000
    assert set(small) <= set(large), "the smaller subset lies inside the larger one"
    assert np.bincount(y[small], minlength=10).tolist() == [25] * 10
    assert np.bincount(y[large], minlength=10).tolist() == [100] * 10
    assert not set(gdata.subset_indices(y, 250, seed=1)) == set(small), "another seed draws other images"
    with pytest.raises(ValueError, match="subset size must be a positive int, got 0"):
        gdata.subset_indices(y, 0)


def test_train_size_is_in_the_key_only_when_it_is_a_subset():
    full = RunConfig(mask="gmm", pool="gap")
    assert RunConfig(mask="gmm", pool="gap", train_size=50_000).key() == full.key()
    small = RunConfig(mask="gmm", pool="gap", train_size=2_500)
    assert small.key() != full.key() and small.name() == "vit-gmm-gap-cifar10-n2500-s0"
    resolved = small.resolved()
    assert resolved["train_size"] == 2_500 and resolved["train_subset_seed"] == SUBSET_SEED
    assert full.resolved()["train_size"] == 50_000  # every record says how many images it trained on
    assert config_key(resolved) == small.key() and RunConfig.from_result(resolved).key() == small.key()
    for bad in (0, 9, 50_001, 2.5, True):
        with pytest.raises(ValueError, match=rf"train_size must be an int from 10 .* to 50,000 .*got {bad!r}"):
            RunConfig(train_size=bad).validate()


def test_data_path_is_in_the_key_unless_it_is_the_workers_every_old_record_used():
    batched, workers = RunConfig(), RunConfig(data_path="workers")
    assert batched.key() != workers.key()
    assert RunConfig(data_path="gpu").key() == batched.key() and RunConfig(data_path="cpu").key() == workers.key()
    old = workers.resolved()
    del old["data_path"], old["train_size"]  # a record made before either field existed
    assert config_key(old) == workers.key()
    assert RunConfig.from_result({"config": old, "data_pipeline": "cpu"}).key() == workers.key()
    with pytest.raises(ValueError, match="unknown data path 'disk'; choose one of: batched, workers"):
        RunConfig(data_path="disk").validate()


def test_every_recorded_run_keeps_its_key():
    records = [json.loads(Path(f).read_text()) for f in glob.glob(str(RESULTS / "records" / "*.json"))]
    assert records
    for r in records:
        assert config_key(r["config"]) == r["key"] == RunConfig.from_result(r).key(), r["name"]


def test_datasize_grid_pairs_each_size_and_seed_and_nests_the_sizes():
    configs = get_experiment("datasize").configs("cpu")
    assert {c.data_path for c in configs} == {"batched"}
    pairs = {(c.train_size, c.seed) for c in configs if c.mask in (None, "gmm")}
    assert pairs == {(n, s) for n in TRAIN_SIZES for s in range(5)}
    for n, s in pairs:
        arms = [c for c in configs if (c.train_size, c.seed) == (n, s) and c.mask in (None, "gmm")]
        assert sorted(str(c.mask) for c in arms) == ["None", "gmm"]
    priors = {(c.mask, c.train_size) for c in configs if c.mask not in (None, "gmm")}
    assert priors == {(m, n) for m in ("elm", "retnet", "alibi2d") for n in (2_500, 50_000)}
    assert len(configs) == len({c.key() for c in configs}) == 5 * 5 * 2 + 3 * 2 * 3
    # the experiments recorded on the workers keep that path, so their records still fill their grids
    assert {c.data_path for c in get_experiment("headline").configs("cpu")} == {"workers"}


def test_a_subset_run_takes_the_steps_of_the_whole_set_and_both_arms_see_the_same_images(tmp_path):
    quick = PRESETS["quick"]
    runs = {
        mask: train_mod.setup(
            RunConfig(mask=mask, pool="gap", dataset="synthetic", preset="quick", train_size=64), tmp_path / str(mask)
        )
        for mask in (None, "gmm")
    }
    full = train_mod.setup(RunConfig(dataset="synthetic", preset="quick"), tmp_path / "full")
    for run in runs.values():
        assert run.steps_per_epoch == full.steps_per_epoch == quick.train_limit // quick.batch_size
    for epoch in (0, 1):
        seen = {m: [x for x, _ in run.batches(epoch)] for m, run in runs.items()}
        assert all(torch.equal(a, b) for a, b in zip(seen[None], seen["gmm"])), "same images, same order, same draws"
    labels = torch.cat([y for _, y in runs[None].batches(0)])
    assert len(labels) == full.steps_per_epoch * quick.batch_size
    _, y = gdata.load_arrays("synthetic", "train", limit=quick.train_limit)
    per_class = np.bincount(y[gdata.subset_indices(y, 64, SUBSET_SEED)], minlength=10)
    assert sorted(set(per_class)) == [6, 7]  # class-balanced: 64 images over 10 classes
    passes = len(labels) // 64  # the 64 images, each seen as often as the steps of the whole set need
    assert torch.bincount(labels, minlength=10).tolist() == (passes * per_class).tolist()


def test_a_subset_run_records_what_rebuilds_its_subset(tmp_path):
    config = RunConfig(dataset="synthetic", preset="quick", train_size=64, epochs=1)
    result = train_mod.train(config, tmp_path / "run", progress=False)
    assert result["config"]["train_size"] == 64 and result["key"] == config.key()
    subset = result["data_source"]["train_subset"]
    assert (subset["size"], subset["of"], subset["seed"]) == (64, PRESETS["quick"].train_limit, SUBSET_SEED)
    _, y = gdata.load_arrays("synthetic", "train", limit=PRESETS["quick"].train_limit)
    chosen = np.sort(gdata.subset_indices(y, 64, subset["seed"])).astype("<i8")
    import hashlib

    assert hashlib.sha256(chosen.tobytes()).hexdigest() == subset["indices_sha256"]
    assert not any(str(v).startswith("/") for v in result["data_source"].values()), "no absolute path"


def test_run_refuses_a_data_path_the_grid_does_not_list(tmp_path):
    from gmmlib.experiments.runner import run_experiment

    with pytest.raises(ValueError, match="runs on the workers data path at the cpu preset; --data-pipeline batched"):
        run_experiment("headline", preset="cpu", results=tmp_path, data_pipeline="batched")
