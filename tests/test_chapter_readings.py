"""Readings that chapters 6 and 9 used to compute in their cells, now in gmmlib.readings: every rule that
decides a word of them, on constructed numbers."""

import pytest
from test_store import fake_record

from gmmlib.readings.ablations import Ablation, paper_kernels, what_the_ablations_show
from gmmlib.readings.families import pooling_reading, pooling_table
from gmmlib.stats import DATASET_NAMES, paper
from gmmlib.store.records import Store
from gmmlib.training.config import RunConfig


def test_the_papers_kernel_ablation_is_read_against_its_k1_column():
    table = paper()["kernel_ablation"]
    reading = paper_kernels(DATASET_NAMES)
    for dataset, values in table["rows"].items():
        by_k = dict(zip(table["kernels"], values))
        assert reading.gains[dataset] == {k: pytest.approx(v - by_k[1]) for k, v in by_k.items() if k >= 2}
        masked = [v for k, v in by_k.items() if k >= 2]
        assert reading.spread[dataset] == pytest.approx(max(masked) - min(masked))
        assert f"* {DATASET_NAMES[dataset]}: gains of {min(reading.gains[dataset].values()):+.2f}" in reading.text
    tops = {
        max((k for k in table["kernels"] if k >= 2), key=dict(zip(table["kernels"], v)).get)
        for v in table["rows"].values()
    }
    assert ("with no K on top on every data set" in reading.text) == (len(tops) > 1)
    assert reading.text.endswith("so the table ranks no K above another.")


def _ablation(experiment, verdict, pairs=(3, 3), apart=(), seeds=(0, 1, 2)):
    return Ablation(
        experiment,
        "K",
        preset="cpu",
        gains=[0.1, 0.2],
        pairs=list(pairs),
        spread=0.1,
        common_seeds=list(seeds),
        scales={"run": {"expected_range": 0.5}},
        verdict=verdict,
        apart_from_zero=list(apart),
    )


def test_the_ablations_closing_bullets_say_what_noise_allows_and_no_more():
    paper_k = paper_kernels(DATASET_NAMES)
    quiet = _ablation("exp2-kernels", "what noise alone gives", apart=(4,))
    wide = _ablation("exp2-init", "wider than noise", pairs=(1, 1), seeds=(0,))
    text = what_the_ablations_show(quiet, wide, 0.5, paper_k)
    assert "rank no setting above another" in text and "The interval of K=4 excludes zero" in text
    assert "The initialisation may matter" in text and "one seed each" in text
    assert "With 3 seeds per setting (as `exp2-kernels` has)" in text and "**What they do not show:**" in text
    nothing = what_the_ablations_show(_ablation("exp2-kernels", None), _ablation("exp2-init", None), None, paper_k)
    assert nothing.count("\n* ") == 0 and "paper's kernel ablation" in nothing  # the paper's bullet alone
    one = what_the_ablations_show(_ablation("a", None, seeds=(0,)), _ablation("b", None, seeds=(0,)), 0.5, paper_k)
    assert "goes unseen with one seed" in one


def _pooling_store(tmp_path, cells, noise_gains=(-0.5, 0.5, 0.0)):
    store = Store(tmp_path)
    for (pool, mask), top1 in cells.items():
        record = fake_record(RunConfig(mask=mask, pool=pool), top1=top1)
        store.put(record)
        store.add("pooling", [record["key"]])
    for seed, gain in enumerate(noise_gains):  # the headline's seeds give the noise (std 0.5)
        for mask, top1 in ((None, 50.0), ("gmm", 50.0 + gain)):
            record = fake_record(RunConfig(mask=mask, pool="gap", seed=seed, data_path="workers"), top1=top1)
            store.put(record)
            store.add("headline", [record["key"]])


def test_the_pooling_confound_splits_into_its_four_contrasts():
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        assert pooling_reading(tmp) == "" and pooling_table(tmp) is None
        cells = {("cls", None): 50.0, ("cls", "gmm"): 50.2, ("gap", None): 50.3, ("gap", "gmm"): 50.6}
        _pooling_store(tmp, cells)
        text = pooling_reading(tmp)
    assert text.startswith(
        "Paired by seed (cpu preset): the official-style comparison (GMM with GAP against ViT with CLS) +0.60; "
        "the mask with GAP on both sides +0.30; the mask with CLS on both sides +0.20; "
        "the pooling alone (GAP against CLS, no mask) +0.30."
    )
    assert "one seed per cell: a draw, not read either way (the seed noise of one gain is 0.50 points)" in text


def test_a_pooling_effect_from_one_seed_is_never_called_an_effect_or_its_absence(tmp_path):
    cells = {("cls", None): 50.0, ("cls", "gmm"): 50.0, ("gap", None): 52.0, ("gap", "gmm"): 52.0}
    _pooling_store(tmp_path, cells)
    text = pooling_reading(tmp_path)
    assert "the pooling alone (GAP against CLS, no mask) +2.00" in text
    assert text.endswith("These runs neither show a pooling effect nor rule one out.")


def test_a_pooling_grid_with_seeds_reads_each_contrast_with_its_interval(tmp_path):
    from gmmlib.stats.inference import t_interval

    store = Store(tmp_path)
    for seed, lift in enumerate((0.2, 0.6, 0.4)):
        for (pool, mask), top1 in {("cls", None): 50.0, ("cls", "gmm"): 50.0 + lift, ("gap", None): 50.0,
                                   ("gap", "gmm"): 50.0}.items():  # fmt: skip
            record = fake_record(RunConfig(mask=mask, pool=pool, seed=seed), top1=top1)
            store.put(record)
            store.add("pooling", [record["key"]])
    text = pooling_reading(tmp_path)
    low, high = t_interval([0.2, 0.6, 0.4])
    assert f"the mask with CLS on both sides +0.40 [{low:+.2f}, {high:+.2f}]" in text
    assert "one seed" not in text


def test_the_pooling_confound_is_read_on_the_grid_with_the_most_seeds_and_names_it(tmp_path):
    """The one-seed pooling grid and comparison-seeds' three seeds of the same four cells (batched data path,
    beside ELM runs that are no pooling cell): the reading takes the seeds, says whose runs they are and where
    they trained; with one seed each, the pooling grid is read, as before."""
    from gmmlib.stats.inference import t_interval

    _pooling_store(tmp_path, {("cls", None): 50.0, ("cls", "gmm"): 50.2, ("gap", None): 50.3, ("gap", "gmm"): 50.6})
    store = Store(tmp_path)
    for seed, lift in enumerate((0.2, 0.6, 0.4)):
        cells = {("cls", None): 50.0, ("cls", "gmm"): 50.0 + lift, ("gap", None): 50.0, ("gap", "gmm"): 50.0,
                 ("gap", "elm"): 60.0}  # fmt: skip
        for (pool, mask), top1 in cells.items():
            record = fake_record(RunConfig(mask=mask, pool=pool, seed=seed), top1=top1)
            store.put(record)
            store.add("comparison-seeds", [record["key"]])
    text = pooling_reading(tmp_path)
    low, high = t_interval([0.2, 0.6, 0.4])
    assert text.startswith("Paired by seed (cpu preset; the `comparison-seeds` grid's runs, trained on cpu, batched):")
    assert f"the mask with CLS on both sides +0.40 [{low:+.2f}, {high:+.2f}]" in text and "one seed" not in text
    assert "the mask with GAP on both sides +0.00" in text  # the ELM runs are not read as GMM cells
    table = pooling_table(tmp_path)  # the cells the reading reads, means over their seeds
    assert table.index.name == "pool (`comparison-seeds`, 3 seeds per cell)"
    assert table.loc["CLS", "GMM"] == pytest.approx(50.4) and table.loc["GAP", "no mask"] == pytest.approx(50.0)
    # with as few seeds in comparison-seeds as in the pooling grid, the pooling grid is read
    for seed in (1, 2):
        store.add("comparison-seeds", [], drop=[RunConfig(mask="gmm", pool="cls", seed=seed).key()])
    assert pooling_reading(tmp_path).startswith("Paired by seed (cpu preset): the official-style comparison")
    assert pooling_table(tmp_path).loc["CLS", "GMM"] == pytest.approx(50.2)
