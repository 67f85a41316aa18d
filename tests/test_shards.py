"""A grid shared by several machines: --shard i/n, stores merged from several folders, and a locked key list."""

import json
import multiprocessing

import pytest

from gmmlib import cli
from gmmlib.experiments.grids import get_experiment
from gmmlib.experiments.runner import parse_shard, run_experiment, shard_of
from gmmlib.store.merge import merge
from gmmlib.store.records import Store


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GMMLIB_CACHE", str(tmp_path / "cache"))


def test_shards_split_a_grid_without_overlap():
    configs = get_experiment("exp1").configs("cpu")
    for n in (1, 3, 4, 7):
        parts = [shard_of(configs, (i, n)) for i in range(n)]
        keys = [c.key() for part in parts for c in part]
        assert sorted(keys) == sorted(c.key() for c in configs)  # each run in exactly one shard
        assert max(map(len, parts)) - min(map(len, parts)) <= 1
    assert shard_of(configs, None) == configs
    assert parse_shard("2/5") == (2, 5)
    for bad in ("5/5", "-1/2", "1", "a/b", "0/0"):
        with pytest.raises(ValueError, match=f"shard must be i/n with 0 <= i < n .*got '{bad}'"):
            parse_shard(bad)


def _run(tmp_path, results, shard):
    return run_experiment(
        "elm", preset="quick", dataset="synthetic", results=results, work_dir=tmp_path / "work",
        progress=False, log=lambda s: None, shard=shard,
    )  # fmt: skip


@pytest.mark.slow
def test_two_machines_fill_one_grid_and_merge(tmp_path):
    a = _run(tmp_path, tmp_path / "a", (0, 2))
    b = _run(tmp_path, tmp_path / "b", (1, 2))
    assert len(a["trained"]) + len(b["trained"]) == 3 and not set(a["trained"]) & set(b["trained"])
    assert sorted(a["other_shard"]) == sorted(b["trained"])
    done = merge([tmp_path / "a", tmp_path / "b"], into=tmp_path / "all")
    assert len(done["copied"]) == 3 and done["experiments"] == ["elm"]
    store = Store(tmp_path / "all")
    assert len(store.experiment("elm")) == 3 and all(store.get(k) for k in store.experiment("elm"))
    again = _run(tmp_path, tmp_path / "all", (0, 2))  # the merged grid is complete for every shard
    assert not again["trained"] and len(again["skipped"]) == 3
    assert (
        merge([tmp_path / "a"], into=tmp_path / "all")["present"]
        == json.loads((tmp_path / "a" / "experiments" / "elm.json").read_text())["runs"]
    )
    # the same key trained elsewhere (another device, another top-1) is another run: reported, never copied over
    key = json.loads((tmp_path / "a" / "experiments" / "elm.json").read_text())["runs"][0]
    other = Store(tmp_path / "a").get(key)
    other["hardware"]["device"], other["best_top1"] = "cuda:0", other["best_top1"] + 1.0
    Store(tmp_path / "gpu").put(other)
    done = merge([tmp_path / "gpu"], into=tmp_path / "all")
    assert done["differ"] == [key] and not done["copied"] and not done["present"]
    assert store.get(key)["best_top1"] == other["best_top1"] - 1.0


@pytest.mark.slow
def test_the_cli_runs_a_shard_and_merges(tmp_path, capsys):
    args = [
        "run",
        "elm",
        "--preset",
        "quick",
        "--dataset",
        "synthetic",
        "--no-progress",
        "--work-dir",
        str(tmp_path / "w"),
    ]
    assert cli.main([*args, "--shard", "2/3", "--results", str(tmp_path / "s2")]) == 0
    assert "trained: 1" in capsys.readouterr().out
    assert cli.main(["merge", str(tmp_path / "s2"), "--results", str(tmp_path / "all")]) == 0
    assert "copied 1 record(s)" in capsys.readouterr().out
    record = next(iter(Store(tmp_path / "s2").keys()))
    other = Store(tmp_path / "s2").get(record)
    other["hardware"] = {**other["hardware"], "device": "cuda:0"}  # the same run trained on other hardware
    Store(tmp_path / "elsewhere").put(other)
    assert cli.main(["merge", str(tmp_path / "elsewhere"), "--results", str(tmp_path / "all")]) == 0
    assert "note: kept this folder's record of 1 key(s) that a source holds as another run" in capsys.readouterr().out
    assert cli.main([*args, "--shard", "3/3"]) == 2
    assert "shard must be i/n" in capsys.readouterr().err
    assert cli.main(["merge", str(tmp_path / "nothing"), "--results", str(tmp_path / "all")]) == 2
    assert "nothing is not a results folder" in capsys.readouterr().err


def _add_keys(root, prefix):
    store = Store(root)
    for i in range(40):
        store.add("grid", [f"{prefix}{i:03d}"])


def test_concurrent_runners_keep_every_key(tmp_path):
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_add_keys, args=(tmp_path, p)) for p in ("a", "b", "c")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert all(p.exitcode == 0 for p in procs)
    assert len(Store(tmp_path).experiment("grid")) == 120
