"""The results store: keys of normalised configs, one record per run, corrupt files,
and the committed results/ (one record per run, no copies, a small tracked tree)."""

import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest
import torch

from gmmlib import stats as R
from gmmlib.experiments.grids import EXPERIMENTS, keeps_weights
from gmmlib.experiments.status import missing_runs, stale_runs
from gmmlib.files import check_folder_writable
from gmmlib.store.records import Store
from gmmlib.training import config as config_module
from gmmlib.training.config import RunConfig, config_key

ROOT = Path(__file__).resolve().parents[1]
# The checkout travels to the GPU machine with the CIFAR-10 zip (62 MB) under its 64 MiB limit: the tracked tree must
# stay under 4.5 MB. Records dominate it: about 6 KB a run, 64 KB for an ELM's (its learned masks, packed), and the
# two weight files a chapter loads (0.6 MB each).
TREE_LIMIT_BYTES = 4.5e6


def fake_record(config: RunConfig, top1: float = 50.0, **extra) -> dict:
    """A run record as train() writes it, without training (the store only reads these fields)."""
    history = [
        {"epoch": e + 1, "train_loss": 2.0 - e / 10, "test_top1": top1 - 1 + e, "lr": 1e-3, "epoch_seconds": 1.0,
         "images_per_second": 100.0, "data_wait_share": 0.1}
        for e in range(2)
    ]  # fmt: skip
    return {
        "name": config.name(),
        "key": config.key(),
        "config": config.resolved(),
        "history": history,
        "best_top1": max(h["test_top1"] for h in history),
        "final_top1": history[-1]["test_top1"],
        "wall_seconds": 2.0,
        "cost": {"params": 1000, "macs": 2000, "flops": 4000},
        "mask_parameters": {},
        "data_source": {"name": config.dataset, "kind": "generated"},
        "seed": config.seed,
        "versions": {"torch": torch.__version__, "gmmlib": "0.0.1"},
        "git": {"commit": "abc123", "gmmlib_modified": False},
        "hardware": {"device": "cpu", "cpu": "test cpu", "torch_threads": 2},
        "platform": "test",
        **extra,
    }


# ---- keys: options normalised before hashing --------------------------------------------------------


def test_default_options_written_or_not_are_one_run():
    gmm = RunConfig(mask="gmm", pool="gap")
    spellings = ({"num_kernels": 5}, {"num_kernels": "5"}, {"init": "official"}, {"truncate_like_official": "false"})
    for options in spellings:
        other = RunConfig(mask="gmm", pool="gap", mask_options=options)
        assert other.key() == gmm.key() and other.name() == gmm.name() == "vit-gmm-gap-cifar10-s0", options
    assert RunConfig(mask="gmm", mask_options={"num_kernels": 3}).key() != gmm.key()
    assert RunConfig(mask="gmm", mask_options={"num_kernels": "3"}).name() == "vit-gmm-numkernels3-default-cifar10-s0"
    assert gmm.resolved()["mask_options"] == {"num_kernels": 5, "init": "official", "truncate_like_official": False}
    # the experiments' grids need not leave the defaults out by hand any more
    kernels = {c.key() for c in EXPERIMENTS["exp2-kernels"].configs("cpu")}
    assert {c.key() for c in EXPERIMENTS["headline"].configs("cpu") if c.seed == 0} <= kernels


@pytest.mark.parametrize(
    "options, match",
    [
        ({"truncate_like_official": "False"}, None),
        ({"truncate_like_official": "Flase"}, "truncate_like_official='Flase'.*expected true or false"),
        ({"truncate_like_official": 1}, "expected true or false"),
        ({"num_kernels": "3.5"}, "num_kernels='3.5'.*expected an integer"),
        ({"num_kernels": True}, "expected an integer"),
        ({"num_kernels": 0}, "num_kernels must be an int >= 1"),
        ({"init": "bogus"}, "unknown GMM init 'bogus'"),
        ({"colour": "red"}, "unknown mask option.*colour.*accepted: num_kernels, init"),
    ],
)
def test_mask_options_parse_strictly(options, match):
    config = RunConfig(mask="gmm", mask_options=options)
    if match is None:
        config.validate()
        assert config.resolved()["mask_options"]["truncate_like_official"] is False
    else:
        with pytest.raises(ValueError, match=match):
            config.validate()


def test_options_without_a_mask_and_unknown_masks_are_rejected():
    with pytest.raises(ValueError, match=r"mask options \(num_kernels=3\) given without a mask"):
        RunConfig(mask_options={"num_kernels": 3}).validate()
    with pytest.raises(ValueError, match="unknown mask 'bogus'; choices: alibi2d, elm, gmm"):
        RunConfig(mask="bogus").validate()
    with pytest.raises(ValueError, match=r"model 'swin' supports pool in \('gap',\), got 'cls'"):
        RunConfig(model="swin", pool="cls").validate()  # before any data loads, not when the model is built
    retnet = RunConfig(mask="retnet", mask_options={"gammas": "[0.9, 0.8, 0.7, 0.6]"})
    assert retnet.resolved()["mask_options"]["gammas"] == [0.9, 0.8, 0.7, 0.6]


def test_the_key_changes_with_its_version(monkeypatch):
    config = RunConfig(mask="gmm")
    key = config.key()
    assert key == config_key(config.resolved()) and len(key) == 12
    monkeypatch.setattr(config_module, "KEY_VERSION", config_module.KEY_VERSION + 1)
    assert config.key() != key


def test_from_result_builds_the_recorded_run():
    config = RunConfig(mask="gmm", mask_options={"num_kernels": 3}, preset="quick", seed=2, dataset="synthetic")
    record = fake_record(config)
    again = RunConfig.from_result(record)
    assert again.key() == record["key"] and again.name() == config.name()
    assert sum(p.numel() for p in again.build_model().parameters()) == sum(
        p.numel() for p in config.build_model().parameters()
    )
    # a preset changed since the run: the recorded architecture still builds the recorded model
    record["config"]["architecture"] = {**record["config"]["architecture"], "depth": 1}
    assert len(RunConfig.from_result(record).build_model().blocks) == 1


# ---- the store ----------------------------------------------------------------------------------


def test_one_record_per_run_and_experiments_list_keys(tmp_path):
    store = Store(tmp_path)
    config = RunConfig(mask="gmm", pool="gap", preset="quick", dataset="synthetic")
    record = fake_record(config)
    store.put(record, {"w": torch.ones(3)})
    store.add("headline", [record["key"]])
    store.add("elm", [record["key"]])
    assert store.keys() == [record["key"]] and record["key"] in store
    assert store.experiment("headline") == store.experiment("elm") == [record["key"]]
    got = store.get(record["key"])
    assert got["weights_file"] == f"{record['key']}.weights.pt"
    assert torch.equal(torch.load(store.weights_path(record["key"]), weights_only=True)["w"], torch.ones(3))
    assert [r["key"] for r in store.load("elm")] == [record["key"]]
    files = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert files == [
        "experiments/elm.json",
        "experiments/headline.json",
        f"records/{record['key']}.json",
        f"records/{record['key']}.weights.pt",
    ]  # no temporary files left, no copies


@pytest.mark.parametrize(
    "content, reason",
    [
        ('{"key": "abc", "config": {', "not JSON"),
        ("[1, 2]", "a JSON list, not a run record"),
        ('{"key": "other", "config": {}, "history": []}', "its key is 'other'"),
    ],
)
def test_an_unreadable_record_is_named_and_set_aside(tmp_path, content, reason):
    (tmp_path / "records").mkdir()
    bad = tmp_path / "records" / "abc.json"
    bad.write_text(content)
    Store(tmp_path).add("elm", ["abc"])
    with pytest.warns(UserWarning, match=f"{bad}.*{reason}"):  # readers skip it, naming it
        assert Store(tmp_path).load("elm") == []
    assert bad.exists()
    store = Store(tmp_path, repair=True)  # the runner sets it aside
    assert store.get("abc") is None
    assert not bad.exists() and (tmp_path / "records" / "abc.json.corrupt").read_text() == content
    assert [str(e.path) for e in store.set_aside] == [str(bad)] and reason in store.set_aside[0].reason


def test_a_corrupt_experiment_list_is_set_aside(tmp_path):
    (tmp_path / "experiments").mkdir()
    (tmp_path / "experiments" / "elm.json").write_text('{"runs": ')
    store = Store(tmp_path, repair=True)
    assert store.experiment("elm") == [] and (tmp_path / "experiments" / "elm.json.corrupt").exists()


def test_folder_checks_create_nothing(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="lies under .*file, which is a file"):
        check_folder_writable(tmp_path / "file" / "sub", "--out")
    with pytest.raises(ValueError, match="is a file, not a folder"):
        check_folder_writable(tmp_path / "file", "--results")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        with pytest.raises(ValueError, match="read-only"):
            check_folder_writable(ro / "a" / "b", "--out")
    finally:
        ro.chmod(0o755)
    check_folder_writable(tmp_path / "new" / "deep", "--out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "ro"]


def test_a_run_recorded_under_an_older_configuration_is_missing_and_stale(tmp_path, capsys):
    store = Store(tmp_path)
    current = RunConfig(model="vit", mask=None, pool="gap", preset="quick", dataset="cifar10")
    record = fake_record(current)
    store.put(record)
    store.add("elm", [record["key"]])
    assert current.key() not in {c.key() for c in missing_runs("elm", "quick", tmp_path)}
    # the same run name, recorded when the quick preset had 3 epochs: not the run the grid asks for
    old = fake_record(current)
    old["config"]["preset_values"]["epochs"] = 3
    old["key"] = config_key(old["config"])
    store.put(old)
    store.add("elm", [old["key"]])
    assert old["name"] == record["name"] and old["key"] != record["key"]
    assert [r["key"] for r in stale_runs("elm", "quick", tmp_path)] == [old["key"]]
    assert R.stale("elm", "quick", tmp_path) == [old["name"]]
    assert len(R.missing("elm", "quick", tmp_path)) == 2  # ELM and GMM; the ViT is recorded
    store.get(record["key"])
    (tmp_path / "records" / f"{record['key']}.json").unlink()  # only the stale one left
    todo = R.missing("elm", "quick", tmp_path)
    assert len(todo) == 3 and any(record["name"] in t for t in todo)
    from gmmlib import book

    book.missing_note("elm", "quick", tmp_path)
    out = capsys.readouterr().out
    assert "older configuration" in out and old["name"] in out and "0 of 3 runs" in out
    assert out.count("python -m gmmlib run elm --preset quick --only ") == 3  # a few missing runs: one command each
    book.missing_note("exp2-kernels", "quick", tmp_path)  # many: the one command that trains only those
    out = capsys.readouterr().out
    assert "0 of 24 runs" in out and "python -m gmmlib run exp2-kernels --preset quick\n" in out and "--only" not in out


# ---- the committed results/ ---------------------------------------------------------------------


def test_committed_results_are_one_record_per_run():
    results = ROOT / "results"
    store = Store(results)
    keys = store.keys()
    assert len(keys) >= 30
    for key in keys:
        record = store.get(key)
        assert record["key"] == key == config_key(record["config"]), key
        assert {"versions", "git", "hardware", "data_source"} <= set(record), key
        assert "reused_from" not in record and "experiment" not in record
    for name in store.experiments():
        assert name in EXPERIMENTS and set(store.experiment(name)) <= set(keys), name
    # weights only where a chapter loads them (chapter 8: the headline's seed-0 ViT and GMM-ViT)
    kept = {k for k in keys if store.get(k)["weights_file"]}
    assert kept == {k for k in keys if keeps_weights(RunConfig.from_result(store.get(k)))}
    assert {store.get(k)["name"] for k in kept} == {"vit-none-gap-cifar10-s0", "vit-gmm-gap-cifar10-s0"}


def _tracked() -> list:
    out = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z"], capture_output=True, check=True).stdout
    return [ROOT / p for p in out.decode().split("\0") if p and (ROOT / p).is_file()]


def test_results_hold_no_two_identical_files():
    files = [p for p in _tracked() if p.is_relative_to(ROOT / "results")]
    digests = {}
    for p in files:
        digests.setdefault(hashlib.sha256(p.read_bytes()).hexdigest(), []).append(p.relative_to(ROOT).as_posix())
    assert [names for names in digests.values() if len(names) > 1] == []


def test_tracked_tree_stays_small():
    sizes = {p.relative_to(ROOT).as_posix(): os.path.getsize(p) for p in _tracked()}
    total = sum(sizes.values())
    largest = ", ".join(f"{name} {size / 1e3:.0f} KB" for name, size in sorted(sizes.items(), key=lambda x: -x[1])[:5])
    assert total < TREE_LIMIT_BYTES, (
        f"tracked tree is {total / 1e6:.2f} MB (limit {TREE_LIMIT_BYTES / 1e6} MB); the largest files: {largest}"
    )


def test_a_complete_rerun_trained_apart_replaces_the_old_listing(tmp_path):
    """Reruns go into a side store (results/pending/) while the book reads the old complete grid;
    `gmmlib merge --replace` then makes the new grid the experiment's list, keeping old records."""
    from gmmlib import cli

    main, pending = Store(tmp_path / "results"), Store(tmp_path / "pending")
    old = [RunConfig(mask=m, seed=0, init_scheme=1) for m in (None, "gmm")]
    for c in old:
        main.put(fake_record(c))
    main.add("headline", [c.key() for c in old])
    main.add("exp1", [old[1].key()])
    new = [RunConfig(mask=m, seed=s) for s in (0, 1) for m in (None, "gmm")]
    assert new[0].key() == old[0].key() and new[1].key() != old[1].key()  # only the masked run changes
    for c in new:
        pending.put(fake_record(c))
    pending.add("headline", [c.key() for c in new])
    assert main.experiment("headline") == sorted(c.key() for c in old)  # untouched until promoted
    assert cli.main(["merge", str(pending.root), "--results", str(main.root), "--replace"]) == 0
    assert main.experiment("headline") == sorted(c.key() for c in new)
    assert main.experiment("exp1") == [old[1].key()] and old[1].key() in main  # still there for exp1
    with pytest.raises(ValueError, match="without a record here"):
        main.add("headline", ["000000000000"], replace=True)
    # without --replace an experiment's list is the union
    main.add("headline", [old[1].key()])
    assert old[1].key() in main.experiment("headline")


def test_json_is_written_as_json_dumps_reads_it_with_plain_lists_on_one_line(tmp_path):
    """write_json's text parses to what json.dumps(indent=1) gives, for every kind of value a record holds, and
    keeps a list of plain values (an ELM's rows) on one line."""
    from gmmlib.files import write_json

    data = {"a": [[0.5, -1.25], [2, None]], "b": {"c": [], "d": {}, 1: True, None: [{"e": "f"}]}, "g": float("nan")}
    text = write_json(tmp_path / "r.json", data).read_text()
    assert json.loads(text, parse_constant=str) == json.loads(json.dumps(data, indent=1), parse_constant=str)
    assert "  [0.5, -1.25],\n  [2, null]\n" in text and text.endswith("}\n")
