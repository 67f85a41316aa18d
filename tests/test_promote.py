"""A complete rerun takes the place of an experiment's old runs in one step, and an incomplete one changes nothing."""

import pytest
import torch
from test_store import fake_record

from gmmlib.cli import main
from gmmlib.experiments.promote import promote
from gmmlib.store.records import Store
from gmmlib.training.config import RunConfig

# the elm experiment at the quick preset: ViT without a mask (the shared baseline), ELM-ViT, GMM-ViT
BASE, ELM, GMM = (RunConfig(mask=m, pool="gap", preset="quick") for m in (None, "elm", "gmm"))


def _stores(tmp_path):
    """Results list the baseline and two runs of the old init scheme (exp3 lists the old GMM too); the
    rerun of ELM and GMM is staged, with the GMM's weights (the headline keeps them) and the ELM's."""
    results, staging = Store(tmp_path / "results"), Store(tmp_path / "pending")
    old = {m: fake_record(RunConfig(mask=m, pool="gap", preset="quick", init_scheme=1)) for m in ("elm", "gmm")}
    for record in [fake_record(BASE), *old.values()]:
        results.put(record)
    results.add("elm", [BASE.key(), old["elm"]["key"], old["gmm"]["key"]])
    results.add("exp3", [old["gmm"]["key"]])
    for config in (ELM, GMM):
        staging.put(fake_record(config, top1=51.0), {"w": torch.zeros(1)})
    staging.add("elm", [ELM.key(), GMM.key()])
    return results, staging, old


def test_an_incomplete_rerun_is_refused_and_changes_nothing(tmp_path):
    results, staging, _ = _stores(tmp_path)
    staging.record_path(ELM.key()).unlink()
    before = {p: p.read_bytes() for root in (results.root, staging.root) for p in root.rglob("*") if p.is_file()}
    with pytest.raises(ValueError, match=r"elm: 1 of 3 runs .* \(vit-elm-gap-cifar10-s0-quick\); nothing was promoted"):
        promote("elm", staging.root, preset="quick", results=results.root, log=lambda s: None)
    after = {p: p.read_bytes() for root in (results.root, staging.root) for p in root.rglob("*") if p.is_file()}
    assert after == before
    assert (
        main(["promote", "elm", "--from", str(staging.root), "--preset", "quick", "--results", str(results.root)]) == 2
    )


def test_a_complete_rerun_replaces_the_old_runs_and_leaves_staging(tmp_path):
    results, staging, old = _stores(tmp_path)
    staging.add("exp3", [GMM.key()])  # another staged rerun still needs the GMM
    done = promote("elm", staging.root, preset="quick", results=results.root, log=lambda s: None)
    assert done["copied"] == ["vit-elm-gap-cifar10-s0-quick", "vit-gmm-gap-cifar10-s0-quick"]
    assert sorted(done["dropped"]) == ["vit-elm-gap-cifar10-s0-quick", "vit-gmm-gap-cifar10-s0-quick"]
    # the old ELM is listed nowhere now and leaves the store; exp3 still lists the old GMM
    assert done["removed"] == ["vit-elm-gap-cifar10-s0-quick"] and old["elm"]["key"] not in results
    assert old["gmm"]["key"] in results and results.experiment("exp3") == [old["gmm"]["key"]]
    assert sorted(results.experiment("elm")) == sorted(c.key() for c in (BASE, ELM, GMM))
    assert results.get(ELM.key())["best_top1"] == 51.0
    # weights only for the runs a chapter loads: the GMM (the headline keeps seed 0's), not the ELM
    assert results.get(GMM.key())["weights_file"] and results.weights_path(GMM.key()).is_file()
    assert results.get(ELM.key())["weights_file"] is None and not results.weights_path(ELM.key()).exists()
    # staging keeps only what another staged experiment lists
    assert ELM.key() not in staging and GMM.key() in staging
    assert "elm" not in staging.experiments() and staging.experiment("exp3") == [GMM.key()]


def test_a_staged_run_takes_the_place_of_a_record_of_the_same_key(tmp_path):
    """A rerun of the baseline itself (for example one first recorded from modified code) replaces it."""
    results, staging, _ = _stores(tmp_path)
    staging.put(fake_record(BASE, top1=52.0, git={"commit": "def456", "gmmlib_modified": False}))
    staging.add("elm", [BASE.key()])
    code = main(["promote", "elm", "--from", str(staging.root), "--preset", "quick", "--results", str(results.root)])
    assert code == 0
    record = results.get(BASE.key())
    assert record["best_top1"] == 52.0 and record["git"]["commit"] == "def456"
    assert not any(staging.records_dir.glob("*.json"))


def test_a_run_staged_for_another_experiment_completes_the_grid_and_stays_staged_for_it(tmp_path):
    """exp1 and exp3 share the Swin runs: the one trained for exp1 completes exp3's part, and stays
    staged until exp1 is promoted too."""
    results, staging = Store(tmp_path / "results"), Store(tmp_path / "pending")
    swin, swin_gmm = RunConfig(model="swin", preset="quick"), RunConfig(model="swin", mask="gmm", preset="quick")
    results.put(fake_record(swin))
    results.add("exp3", [swin.key()])
    staging.put(fake_record(swin_gmm, top1=51.0))
    staging.add("exp1", [swin_gmm.key()])
    done = promote("exp3", staging.root, preset="quick", results=results.root, only="model=swin", log=lambda s: None)
    assert done["copied"] == ["swin-gmm-default-cifar10-s0-quick"]
    assert sorted(results.experiment("exp3")) == sorted([swin.key(), swin_gmm.key()])
    assert swin_gmm.key() in staging and staging.experiment("exp1") == [swin_gmm.key()]
    done = promote("exp1", staging.root, preset="quick", results=results.root, only="model=swin,dataset=cifar10",
                   log=lambda s: None)  # fmt: skip
    assert done["replaced"] == ["swin-gmm-default-cifar10-s0-quick"] and swin_gmm.key() not in staging


def test_the_staging_folder_must_not_be_the_results_folder(tmp_path):
    results, _, _ = _stores(tmp_path)
    with pytest.raises(ValueError, match="is the results store"):
        promote("elm", results.root, preset="quick", results=results.root, log=lambda s: None)


def test_a_filter_promotes_the_part_of_a_grid_that_can_run_here(tmp_path):
    """exp1's other data sets cannot run here: its CIFAR-10 part is promoted alone (here: exp3's Swin)."""
    results, staging = Store(tmp_path / "results"), Store(tmp_path / "pending")
    swin, swin_gmm = RunConfig(model="swin", preset="quick"), RunConfig(model="swin", mask="gmm", preset="quick")
    old = {m: fake_record(RunConfig(model=m, mask="gmm", preset="quick", init_scheme=1)) for m in ("swin", "cait")}
    for record in (fake_record(swin), *old.values()):
        results.put(record)
    results.add("exp3", [swin.key(), old["swin"]["key"], old["cait"]["key"]])
    staging.put(fake_record(swin_gmm, top1=51.0))
    staging.add("exp3", [swin_gmm.key()])
    with pytest.raises(ValueError, match="exp3: 4 of 6 runs"):
        promote("exp3", staging.root, preset="quick", results=results.root, log=lambda s: None)
    done = promote("exp3", staging.root, preset="quick", results=results.root, only="model=swin", log=lambda s: None)
    assert done["copied"] == ["swin-gmm-default-cifar10-s0-quick"] and done["dropped"] == [
        "swin-gmm-default-cifar10-s0-quick"
    ]
    # the CaiT's old run is outside the filter: it stays listed
    assert sorted(results.experiment("exp3")) == sorted([swin.key(), swin_gmm.key(), old["cait"]["key"]])
    with pytest.raises(ValueError, match="selects no run"):
        promote("exp3", staging.root, preset="quick", results=results.root, only="model=t2t", log=lambda s: None)


def test_status_counts_each_grid_and_what_a_rerun_has_staged(tmp_path, capsys):
    from gmmlib.experiments.status import status

    results, staging, _ = _stores(tmp_path)

    def elm():
        return next(r for r in status("quick", results.root, staging.root) if r["experiment"] == "elm")

    assert elm() == {"experiment": "elm", "grid": 3, "recorded": 1, "missing": 2, "stale": 2, "staged": 2}
    args = ["--preset", "quick", "--results", str(results.root), "--staging", str(staging.root)]
    assert main(["status", *args]) == 0
    assert any(line.split() == ["elm", "3", "1", "2", "2", "2"] for line in capsys.readouterr().out.splitlines())
    promote("elm", staging.root, preset="quick", results=results.root, log=lambda s: None)
    assert elm() == {"experiment": "elm", "grid": 3, "recorded": 3, "missing": 0, "stale": 0, "staged": 0}
    assert "staged" not in status("quick", results.root)[0]
    assert main(["status", "--staging", str(tmp_path / "nowhere")]) == 2


def test_status_counts_a_run_staged_for_another_grid_that_shares_its_key(tmp_path):
    """comparison-seeds shares keys with datasize: the runner trains such a run once, under the grid it reaches
    first, and promote takes it for both, so status counts it staged for both."""
    from gmmlib.experiments.status import status

    results, staging = Store(tmp_path / "results"), Store(tmp_path / "pending")
    for config in (BASE, ELM):
        staging.put(fake_record(config))
    staging.add("pooling", [BASE.key(), ELM.key()])  # listed for another grid only
    elm = next(r for r in status("quick", results.root, staging.root) if r["experiment"] == "elm")
    assert elm == {"experiment": "elm", "grid": 3, "recorded": 0, "missing": 3, "stale": 0, "staged": 2}
    # promoted with the other grid, the shared run is in the results: promote lists it from there
    results.put(fake_record(GMM))
    results.add("exp3", [GMM.key()])
    elm = next(r for r in status("quick", results.root, staging.root) if r["experiment"] == "elm")
    assert elm == {"experiment": "elm", "grid": 3, "recorded": 0, "missing": 3, "stale": 0, "staged": 3}


def test_a_rerun_trains_what_results_lack_into_staging_and_is_promoted_whole(tmp_path, monkeypatch):
    """`gmmlib run --results pending --reuse-from results` trains only the runs results/ lacks (or holds from
    modified code), then `gmmlib promote` makes the experiment list the whole new grid."""
    from gmmlib.experiments.grids import get_experiment
    from gmmlib.experiments.runner import run_experiment

    monkeypatch.setenv("GMMLIB_CACHE", str(tmp_path / "cache"))
    results = Store(tmp_path / "results")
    base, elm = (RunConfig(mask=m, pool="gap", preset="quick", dataset="synthetic") for m in (None, "elm"))
    results.put(fake_record(base))
    results.put(fake_record(elm, git={"commit": "abc123", "gmmlib_modified": True}))
    results.add("elm", [base.key(), elm.key()])
    kw = dict(preset="quick", dataset="synthetic", work_dir=tmp_path / "work", progress=False, log=lambda s: None)
    out = run_experiment("elm", results=tmp_path / "pending", reuse_from=results.root, **kw)
    assert out["skipped"] == ["vit-none-gap-synthetic-s0-quick"]
    assert out["trained"] == ["vit-elm-gap-synthetic-s0-quick", "vit-gmm-gap-synthetic-s0-quick"]
    assert len(Store(tmp_path / "pending").experiment("elm")) == 2  # the baseline is not copied
    with pytest.raises(ValueError, match="is the results folder being filled"):
        run_experiment("elm", results=results.root, reuse_from=results.root, **kw)
    with pytest.raises(ValueError, match="is not a results folder"):
        run_experiment("elm", results=tmp_path / "pending", reuse_from=tmp_path / "nowhere", **kw)
    promote("elm", tmp_path / "pending", preset="quick", results=results.root, dataset="synthetic", log=lambda s: None)
    grid = get_experiment("elm").configs("quick", "synthetic")
    assert sorted(results.experiment("elm")) == sorted(c.key() for c in grid)
    assert results.get(elm.key())["git"]["commit"] != "abc123"  # the rerun took the modified run's place
