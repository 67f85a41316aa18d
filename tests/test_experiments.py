"""The experiment registry and runner (quick preset, synthetic data) and the results helpers."""

import dataclasses

import pytest

from gmmlib import stats as R
from gmmlib.book import figures
from gmmlib.experiments.grids import EXPERIMENTS, get_experiment, keeps_weights, matches
from gmmlib.experiments.runner import run_experiment
from gmmlib.readings import standard
from gmmlib.readings.standard import setting_gains
from gmmlib.stats.inference import t_interval
from gmmlib.stats.noise import seed_noise
from gmmlib.store.records import Store
from gmmlib.training.config import RunConfig


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GMMLIB_CACHE", str(tmp_path / "cache"))


def quick(name, tmp_path, **kw):
    return run_experiment(
        name,
        preset="quick",
        dataset="synthetic",
        results=tmp_path / "results",
        work_dir=tmp_path / "work",
        progress=False,
        log=lambda s: None,
        **kw,
    )


def test_registry_has_the_papers_experiments_with_valid_configs():
    assert {"headline", "exp1", "exp2-kernels", "exp2-init", "exp3", "elm", "retnet", "pooling", "beyond"} <= set(
        EXPERIMENTS
    )
    for name, e in EXPERIMENTS.items():
        configs = e.configs("cpu")
        for c in configs:
            c.validate()
        assert len({c.key() for c in configs}) == len(configs), name
    exp1 = EXPERIMENTS["exp1"].configs("cpu")
    assert len(exp1) == 5 * 4 * 2
    # the ablations: every setting and the unmasked ViT on the same 3 seeds, so each gain is paired
    kernels = EXPERIMENTS["exp2-kernels"].configs("cpu")
    assert {(c.mask_options.get("num_kernels", 5) if c.mask else None, c.seed) for c in kernels} == {
        (k, s) for k in (None, 1, 2, 3, 4, 5, 8, 10) for s in (0, 1, 2)
    }
    inits = EXPERIMENTS["exp2-init"].configs("cpu")
    assert {(c.mask_options.get("init", "official") if c.mask else None, c.seed) for c in inits} == {
        (i, s) for i in (None, "official", "identity", "zeros", "local") for s in (0, 1, 2)
    }
    # the defaults (K = 5, official init) are the headline's GMM-ViT runs, reused rather than retrained
    headline_keys = {c.key() for c in EXPERIMENTS["headline"].configs("cpu")}
    for name in ("exp2-kernels", "exp2-init"):
        assert len({c.key() for c in EXPERIMENTS[name].configs("cpu")} & headline_keys) == 6, name
    headline = EXPERIMENTS["headline"].configs("cpu")
    assert {c.pool for c in headline} == {"gap"} and sorted({c.seed for c in headline}) == [0, 1, 2, 3, 4]
    # CaiT and PiT, exp1's largest effects, get 3 seeds each; their seed-0 runs are exp1's
    seeds = EXPERIMENTS["exp1-seeds"].configs("cpu")
    assert {(c.model, c.mask, c.seed) for c in seeds} == {
        (m, mask, s) for m in ("cait", "pit") for mask in (None, "gmm") for s in (0, 1, 2)
    }
    exp1_keys = {c.key() for c in EXPERIMENTS["exp1"].configs("cpu")}
    assert {c.key() for c in seeds if c.seed == 0} <= exp1_keys
    # the paper-scale headline is the seed-0 pair, kept in an experiment of its own
    paper = EXPERIMENTS["headline-paper"].configs("paper")
    assert {c.key() for c in paper} == {c.key() for c in EXPERIMENTS["headline"].configs("paper") if c.seed == 0}
    assert [c.mask for c in paper] == [None, "gmm"] and {c.pool for c in paper} == {"gap"}


def test_every_comparison_the_verdict_reads_on_cifar10_has_three_paired_seeds():
    # the verdict reads each comparison once, from the first experiment that lists it: once every grid is run,
    # no row the book reads rests on fewer than 3 seeds with both arms (exp3's data sets are not on this machine;
    # the paper preset's runs are their own rows)
    first: dict = {}
    for name in standard.VERDICT_EXPERIMENTS:
        if name == "headline-paper":
            continue
        configs = [dataclasses.asdict(c) for c in EXPERIMENTS[name].configs("cpu") if c.dataset == "cifar10"]
        arms = ("mask", "mask_options", "seed")
        for c in configs:
            label = R.label(c)
            if not c["mask"] or label in first:
                continue
            masked_seeds = {m["seed"] for m in configs if R.label(m) == label}
            backbone = {k: v for k, v in c.items() if k not in arms}
            paired = {b["seed"] for b in configs if not b["mask"] and all(b[k] == v for k, v in backbone.items())}
            first[label] = (name, len(masked_seeds & paired))
    assert {label: where for label, where in first.items() if where[1] < 3} == {}
    for label in ("GMM-Swin", "GMM-T2T", "GMM-ViT (CLS)", "ELM-ViT (GAP)", "RetNet-ViT (causal, GAP)"):
        assert first[label][0] == "comparison-seeds", label


@pytest.mark.parametrize(
    "name", ["headline", "exp2-kernels", "exp2-init", "exp3", "elm", "retnet", "pooling", "beyond", "exp1"]
)
def test_one_run_of_each_experiment_end_to_end(name, tmp_path):
    first = EXPERIMENTS[name].configs("quick", "synthetic")[-1]  # the last one carries the experiment's mask
    out = quick(name, tmp_path, only=f"{first.name()}-quick")
    assert out["trained"] == [f"{first.name()}-quick"] and out.ok
    store = Store(tmp_path / "results")
    record = store.get(first.key())
    assert record["key"] == first.key() and record["trained_for"] == name and record["parallel"] == 1
    assert store.experiment(name) == [first.key()]
    assert bool(record["weights_file"]) == keeps_weights(first)  # weights only where a chapter loads them


def test_done_runs_are_skipped_and_same_configs_referenced_not_copied(tmp_path):
    assert len(quick("pooling", tmp_path)["trained"]) == 4
    again = quick("pooling", tmp_path)
    assert again["trained"] == [] and len(again["skipped"]) == 4
    elm = quick("elm", tmp_path)  # ViT and GMM-ViT with GAP were done under "pooling"
    assert len(elm["reused"]) == 2 and len(elm["trained"]) == 1
    store = Store(tmp_path / "results")
    assert len(store.keys()) == 5  # one record per run: 4 pooling runs and the ELM run
    shared = set(store.experiment("pooling")) & set(store.experiment("elm"))
    assert len(shared) == 2 and all(store.get(k)["trained_for"] == "pooling" for k in shared)
    assert quick("retnet", tmp_path, only="mask=none")["reused"] == ["vit-none-gap-synthetic-s0-quick"]
    assert len(store.keys()) == 5
    files = [p for p in (tmp_path / "results").rglob("*") if p.is_file()]
    assert len({p.read_bytes() for p in files}) == len(files)  # no two identical files
    # the weights of the headline's seed-0 runs (chapter 8 loads them) are kept once, whoever trained them
    kept = [k for k in store.keys() if store.get(k)["weights_file"]]
    assert sorted(store.get(k)["name"] for k in kept) == ["vit-gmm-gap-synthetic-s0", "vit-none-gap-synthetic-s0"]


def test_a_rerun_under_the_current_configuration_takes_the_place_of_its_stale_run(tmp_path):
    """A run listed under an older configuration (here the init before the paired one) leaves the
    experiment's list when its current version is trained or reused; its record stays in the store."""
    from test_store import fake_record

    store = Store(tmp_path / "results")
    stale = {}
    for mask in ("gmm", "elm"):
        old = fake_record(RunConfig(mask=mask, pool="gap", preset="quick", dataset="synthetic", init_scheme=1))
        store.put(old)
        store.add("elm", [old["key"]])
        stale[mask] = old["key"]
    assert R.stale("elm", "quick", tmp_path / "results") == ["vit-elm-gap-synthetic-s0", "vit-gmm-gap-synthetic-s0"]
    quick("pooling", tmp_path, only="vit-gmm-gap-synthetic-s0-quick")  # the current GMM-ViT, for another experiment
    out = quick("elm", tmp_path, only="mask=gmm")
    assert out["reused"] == ["vit-gmm-gap-synthetic-s0-quick"]
    current = RunConfig(mask="gmm", pool="gap", preset="quick", dataset="synthetic").key()
    assert sorted(store.experiment("elm")) == sorted([stale["elm"], current])
    assert quick("elm", tmp_path, only="mask=elm")["trained"] == ["vit-elm-gap-synthetic-s0-quick"]
    assert stale["elm"] not in store.experiment("elm") and R.stale("elm", "quick", tmp_path / "results") == []
    assert all(store.get(k) is not None for k in stale.values())  # the old records are kept
    # a merge may list a run beside its stale twin: the next pass over the grid takes the twin off
    store.add("elm", [stale["gmm"]])
    assert quick("elm", tmp_path, only="mask=gmm")["skipped"] == ["vit-gmm-gap-synthetic-s0-quick"]
    assert stale["gmm"] not in store.experiment("elm") and current in store.experiment("elm")


def test_missing_data_is_reported_not_fatal(tmp_path, monkeypatch):
    monkeypatch.setenv("GMMLIB_DATA", str(tmp_path / "empty"))
    out = run_experiment(
        "exp1",
        preset="quick",
        only="model=vit,dataset=cifar100",
        results=tmp_path / "r",
        work_dir=tmp_path / "w",
        progress=False,
        log=lambda s: None,
    )
    assert len(out["missing_data"]) == 2 and out["trained"] == [] and not out.ok
    assert "cifar100" in out.reasons[out["missing_data"][0]].lower()
    assert not (tmp_path / "w").exists() or not any((tmp_path / "w").rglob("*.pt"))


def test_parallel_runs_equal_sequential_ones(tmp_path):
    """--parallel 2 on CPU: each run in its own spawned process, seeded and recorded as if alone."""
    seq = quick("headline", tmp_path / "seq", only="seed=0")
    par = quick("headline", tmp_path / "par", only="seed=0", parallel=2)
    assert sorted(seq["trained"]) == sorted(par["trained"]) and len(par["trained"]) == 2
    a, b = Store(tmp_path / "seq" / "results"), Store(tmp_path / "par" / "results")
    assert a.keys() == b.keys() and b.experiment("headline") == a.experiment("headline")
    for key in a.keys():
        ra, rb = a.get(key), b.get(key)
        assert [h["test_top1"] for h in ra["history"]] == [h["test_top1"] for h in rb["history"]]
        assert ra["parallel"] == 1 and rb["parallel"] == 2
        assert bool(ra["weights_file"]) == bool(rb["weights_file"])
    with pytest.raises(ValueError, match="parallel must be a positive int, got 0"):
        quick("headline", tmp_path, parallel=0)


def test_filters():
    c = RunConfig(model="vit", mask="gmm", dataset="cifar10", seed=1)
    assert matches(c, "mask=gmm,seed=1") and not matches(c, "mask=none")
    assert matches(RunConfig(mask=None), "mask=none")
    assert matches(c, "vit-gmm") and not matches(c, "swin")
    with pytest.raises(ValueError, match="unknown filter field 'colour'"):
        matches(c, "colour=red")
    with pytest.raises(ValueError, match="matches no run"):
        run_experiment("elm", preset="quick", only="model=swin")
    with pytest.raises(ValueError, match="unknown experiment 'exp9'; choices: headline"):
        get_experiment("exp9")
    with pytest.raises(ValueError, match="unknown preset 'slow'"):
        run_experiment("elm", preset="slow")


def pd_isna(x):
    return x != x


def test_results_tables_and_plots(tmp_path, capsys):
    import matplotlib
    import matplotlib.pyplot

    matplotlib.use("Agg")
    quick("headline", tmp_path)
    res = tmp_path / "results"
    s = R.summary("headline", res)
    assert set(s["label"]) == {"ViT (GAP)", "GMM-ViT (GAP)"} and set(s["seeds"]) == {5}
    h = R.headline(res, preset="quick")
    assert h.best.gain == pytest.approx(h.best.mean_b - h.best.mean_a) and h.seeds == (0, 1, 2, 3, 4)
    assert len(h.best.diffs) == 5 and h.final.seeds == 5
    # the paper's numbers are data, and exp1 says plainly what was not rerun
    assert R.paper()["main_table"]["rows"]["vit"]["gmm"][0] == 95.06
    t = R.exp1_table(res)
    assert len(t) == 20 and t["note"].str.contains("not rerun here: python -m gmmlib run exp1").all()
    assert len(R.missing("elm", "quick", res)) == 3
    figures.plot_curves(R.load("headline", res))
    figures.plot_kernels(setting_gains("exp2-kernels", "num_kernels", 5, res, "quick"), None)

    # compare: the paired gain over the unmasked run, and the paper's cell only where it exists
    c = R.compare("headline", res, preset="quick").set_index("label")
    assert c.loc["GMM-ViT (GAP)", "gain"] == pytest.approx(h.best.gain)
    assert c.loc["GMM-ViT (GAP)", "gain_std"] == pytest.approx(h.best.gain_std)
    # with its t-interval over the 5 paired seeds, the one the headline reports
    low, high = t_interval(h.best.diffs)
    assert c.loc["GMM-ViT (GAP)", "pairs"] == 5 and low < c.loc["GMM-ViT (GAP)", "gain"] < high
    assert (c.loc["GMM-ViT (GAP)", "gain_low"], c.loc["GMM-ViT (GAP)", "gain_high"]) == pytest.approx((low, high))
    assert h.best.interval == pytest.approx((low, high))
    assert c["paper"].isna().all()  # synthetic data: the paper has no such cell
    assert list(c.index) == ["ViT (GAP)", "GMM-ViT (GAP)"]  # the grid's order: baseline first
    assert R.compare("headline", res, preset="cpu").empty
    # the kernel plot: gains by K on one axis (no second y-axis), ours from the paired runs, the
    # paper's from its own baseline, without its K = 1 point (which is that baseline)
    store = Store(res)
    seed0 = [c.key() for c in EXPERIMENTS["headline"].configs("quick", "synthetic") if c.seed == 0]
    store.add("exp2-kernels", seed0)  # an experiment is a list of keys: the same runs, no copies
    ax = figures.plot_kernels(
        setting_gains("exp2-kernels", "num_kernels", 5, res, "quick"),
        seed_noise(res, "quick"),
        ax=matplotlib.pyplot.subplots()[1],
        preset="quick",
    )
    assert ax.figure.axes == [ax]
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert list(lines["ours (quick preset)"].get_xdata()) == [5]
    seed0 = R.runs("exp2-kernels", res).set_index("mask")["best_top1"]
    assert lines["ours (quick preset)"].get_ydata()[0] == pytest.approx(seed0["gmm"] - seed0["none"])
    paper_k = [line for line in ax.get_lines() if len(line.get_xdata()) == 6]
    assert len(paper_k) == 1 and list(paper_k[0].get_xdata()) == [2, 3, 4, 5, 8, 10]
    assert paper_k[0].get_ydata()[3] == pytest.approx(94.75 - 94.17)
    gains = standard.setting_gains("exp2-kernels", "num_kernels", 5, res, preset="quick")
    assert [(r["value"], r["gain"]) for r in gains] == [(5, pytest.approx(seed0["gmm"] - seed0["none"]))]
    for key in store.keys():  # the same runs, relabelled as CIFAR-10
        r = store.get(key)
        r["config"]["dataset"] = "cifar10"
        store.put(r)
    c = R.compare("headline", res, preset="quick").set_index("label")
    assert c.loc["ViT (GAP)", "paper"] == 93.65 and pd_isna(c.loc["ViT (GAP)", "gain"])
    assert c.loc["GMM-ViT (GAP)", "paper_gain"] == pytest.approx(95.06 - 93.65)

    # the book's table: readable headers, empty columns dropped (one preset, so no paper-less spread)
    from gmmlib import book

    capsys.readouterr()
    assert book.show_comparison("headline", res) == "quick"
    shown = capsys.readouterr().out
    assert "gain over no mask" in shown and "paper: top-1" in shown and "93.65" in shown
    # a gain over several seeds comes with its interval; no speed read from training logs
    assert "95 % interval of the gain" in shown and "images/s" not in shown
    # in a notebook it is a styled table; a formatting error there would only be logged by IPython
    from unittest import mock

    tables = []
    with (
        mock.patch("IPython.get_ipython", return_value=object()),
        mock.patch("IPython.display.display", side_effect=tables.append),
    ):
        book.show_comparison("headline", res)
    html = tables[-1].to_html()  # after the note on runs not recorded
    assert "93.65" in html and "–" in html and "gain over no mask" in html
    assert book.show_comparison("elm", res) is None and "python -m gmmlib run elm" in capsys.readouterr().out
    # every gain comes with its reading by the book's one rule, the same as the verdict table's
    from gmmlib.readings.standard import comparisons

    book.show_comparison("headline", res, note_missing=False, columns=["seeds", "gain", "interval", "reading"])
    row = capsys.readouterr().out.splitlines()[-1]
    (read,) = [c for c in comparisons(res) if c["experiment"] == "headline"]
    assert row.startswith("GMM-ViT (GAP)") and row.rstrip().endswith(read["standing"])
    # a chapter picks its columns; a name that is not one is an error naming it
    book.show_comparison("headline", res, note_missing=False, columns=["seeds", "gain", "interval"])
    header = capsys.readouterr().out.splitlines()[0]
    assert "gain over no mask" in header and "paper" not in header and "top-1" not in header
    with pytest.raises(ValueError, match="'top1'"):
        book.show_comparison("headline", res, columns=["top1"])
    import matplotlib.pyplot as plt

    ax = figures.plot_curves(R.load("headline", res), ax=plt.subplots()[1], select=lambda c: c["mask"] == "gmm")
    assert {line.get_label() for line in ax.get_lines()} == {"GMM-ViT (GAP)"}


@pytest.mark.slow
def test_a_recorded_model_is_rebuilt_with_its_top1(tmp_path):
    """book.model_from_result rebuilds the trained model from the store, and it scores the recorded
    final top-1 on the same test images; initial=True gives the run's own step-0 weights."""
    import torch

    from gmmlib import book
    from gmmlib import data as gdata
    from gmmlib.data.batched_augment import normalize
    from gmmlib.training.config import PRESETS
    from gmmlib.training.loop import evaluate

    config = EXPERIMENTS["headline"].configs("quick", "synthetic")[1]  # seed 0, GMM-ViT: weights are kept
    out = quick("headline", tmp_path, only=f"{config.name()}-quick")
    assert out.ok and out["trained"]
    record = Store(tmp_path / "results").get(config.key())
    model = book.model_from_result(record, results=tmp_path / "results")
    x, y = gdata.load_arrays("synthetic", "test", limit=PRESETS["quick"].test_limit)
    info = gdata.get_info("synthetic")
    images = normalize(torch.from_numpy(x).permute(0, 3, 1, 2), info.mean, info.std)
    assert evaluate(model, images, torch.from_numpy(y)) == record["final_top1"]
    start = book.model_from_result(record, results=tmp_path / "results", initial=True)
    torch.manual_seed(config.seed)
    fresh = config.build_model()
    assert all(torch.equal(a, b) for a, b in zip(start.state_dict().values(), fresh.state_dict().values()))
    assert not all(torch.equal(a, b) for a, b in zip(start.state_dict().values(), model.state_dict().values()))


def test_runs_train_seed_by_seed_in_the_grids_order_within_a_seed(tmp_path, monkeypatch):
    # a long grid cut short leaves whole seeds: every setting of seed 0 before any of seed 1
    from gmmlib.experiments import runner

    order = []

    def not_trained(job):
        order.append(job.config)
        return "failed", "not trained in this test"

    monkeypatch.setattr(runner, "_train_job", not_trained)
    quick("exp2-init", tmp_path)
    grid = EXPERIMENTS["exp2-init"].configs("quick", "synthetic")
    assert [c.seed for c in order] == sorted(c.seed for c in grid)
    assert [c.key() for c in order if c.seed == 1] == [c.key() for c in grid if c.seed == 1]
