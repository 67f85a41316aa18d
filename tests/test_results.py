"""gmmlib.stats.tables: names from the registries, the headline verdict, the tables the chapters show."""

import math

import numpy as np
import pytest

from gmmlib import stats as results
from gmmlib.data import get_info
from gmmlib.data.registry import PAPER_DATASETS
from gmmlib.models.registry import PAPER_FAMILIES, display_name
from gmmlib.readings import ablations, standard
from gmmlib.stats import inference as stats
from gmmlib.stats.noise import seed_noise


def test_display_names_come_from_the_registries_in_the_papers_order():
    assert list(results.MODEL_NAMES) == list(PAPER_FAMILIES) == ["vit", "swin", "cait", "pit", "t2t"]
    assert results.MODEL_NAMES == {"vit": "ViT", "swin": "Swin", "cait": "CaiT", "pit": "PiT", "t2t": "T2T"}
    assert list(results.DATASET_NAMES) == list(PAPER_DATASETS)
    assert results.DATASET_NAMES == {
        "cifar10": "CIFAR-10",
        "cifar100": "CIFAR-100",
        "svhn": "SVHN",
        "tiny-imagenet": "Tiny-ImageNet",
    }
    assert get_info("synthetic").display_name == "synthetic"  # no printed name: the registry name
    assert display_name("no-such-family") == "no-such-family"
    assert results.label({"model": "cait", "mask": "gmm"}) == "GMM-CaiT"


def test_experiment_1_grid_is_the_papers_table():
    from gmmlib.experiments.grids import get_experiment

    grid = get_experiment("exp1").configs("quick")
    assert list(dict.fromkeys(c.model for c in grid)) == list(PAPER_FAMILIES)
    assert list(dict.fromkeys(c.dataset for c in grid)) == list(PAPER_DATASETS)
    assert len(grid) == len(PAPER_FAMILIES) * len(PAPER_DATASETS) * 2


# --- the headline verdict, on constructed result sets ---------------------------------------


def _headline(none: list, gmm: list, final_shift: float = 0.0):
    """What stats.headline returns for per-seed best top-1 of ViT and GMM-ViT (paired by position)."""
    from gmmlib.stats import Headline, paired

    final = ([v + final_shift for v in none], [v + final_shift for v in gmm])
    return Headline("cpu", tuple(range(len(none))), best=paired(none, gmm), final=paired(*final))


@pytest.mark.parametrize(
    "gains, outcome",
    [
        ([], "untested"),
        ([1.0], "too early"),
        ([-1.0], "too early"),
        ([0.5, 0.2, 0.1], "reproduced"),
        ([0.9, -0.1, 0.3], "same direction"),
        ([0.1, -0.5, 0.2], "not reproduced"),
        ([0.0, 0.0], "not reproduced"),
    ],
)
def test_judge_every_branch(gains, outcome):
    from gmmlib.readings.headline import OUTCOMES, judge

    assert judge(gains) == outcome and outcome in OUTCOMES


def test_headline_verdict_reproduced_with_scale_and_data():
    from gmmlib.readings.headline import headline_verdict

    v = headline_verdict(
        _headline([50.0, 50.5, 49.5], [52.0, 52.8, 51.2]),
        "cpu",
        1.41,
        scale={"depth": 4, "dim": 64, "epochs": 8},
        data_notes=["JPEG copy"],
    )
    assert v.outcome == "reproduced" and v.seeds == 3 and v.paired_gain == pytest.approx(2.0)
    assert v.lines[0].startswith("* **Reproduced in direction.**")
    assert "(per seed: +2.00, +2.30, +1.70)" in v.lines[0] and "The paper reports +1.41 points" in v.lines[0]
    assert any("**Not the paper's scale.**" in line and "4-layer, 64-wide ViT, 8 epochs" in line for line in v.lines)
    assert v.lines[-1] == "* **Data.** JPEG copy."
    assert (
        "* **What 3 seeds can tell.** The 95 % interval of the paired gain (Student's t) is [+1.25, +2.75] points: "
        "it excludes zero. With this seed-to-seed spread, 3 seeds detect a "
        "true gain of 0.98 points four times in five"
    ) in v.text
    assert not any(
        "Small against the noise" in line for line in v.lines
    )  # a gain of 2 against seed spreads of 0.5 and 0.8
    # a page that states the seeds' power elsewhere (the verdict chapter) leaves it out, and only it
    quiet = headline_verdict(_headline([50.0, 50.5, 49.5], [52.0, 52.8, 51.2]), "cpu", 1.41, power=False)
    assert (
        "four times in five" not in quiet.text and "it excludes zero." in quiet.text and "lies inside" not in quiet.text
    )


def test_headline_verdict_same_direction_is_small_against_the_noise():
    from gmmlib.readings.headline import headline_verdict

    v = headline_verdict(_headline([50.0, 52.0, 48.0], [51.0, 51.5, 48.5]), "paper", 1.41)
    assert v.outcome == "same direction"
    assert v.lines[0].startswith("* **Positive on average, not in every seed.**")
    assert any(line.startswith("* **Small against the noise.**") for line in v.lines)
    assert "(ViT 2.00, GMM-ViT 1.61 points)" in v.text  # each model's own spread, not one number for both
    assert not any("paper's scale" in line for line in v.lines)  # the paper preset is the paper's scale


def test_headline_verdict_not_reproduced_reports_the_final_epoch():
    from gmmlib.readings.headline import headline_verdict

    v = headline_verdict(_headline([50.0, 50.0], [49.0, 49.5], final_shift=1.0), "cpu", 1.41)
    assert v.outcome == "not reproduced" and v.lines[0].startswith("* **Not reproduced.**")
    assert "is [-3.93, +2.43] points: it includes zero." in v.text  # 2 seeds: t = 12.7
    assert "On the final epoch the paired gain is -0.75 ± 0.35 points, on the best epoch -0.75." in v.text


def test_headline_verdict_too_early_and_untested():
    from gmmlib.readings.headline import headline_verdict

    v = headline_verdict(_headline([50.0], [51.0]), "cpu", 1.41)
    assert v.outcome == "too early" and v.seeds == 1
    assert "(1 paired seed, cpu preset)" in v.lines[0] and "per seed" not in v.lines[0]
    assert v.lines[1].startswith("* **One seed cannot separate")
    untested = headline_verdict({}, None, 1.41)
    assert untested.outcome == "untested" and untested.paired_gain is None
    assert untested.text.startswith("* **Not yet tested.**") and "run headline --preset cpu" in untested.text


def test_verdict_and_summaries_read_the_store(tmp_path):
    """On an empty store every part says what is missing instead of showing a number."""
    from gmmlib.readings import headline as findings

    v = findings.verdict(tmp_path)
    assert v.outcome == "untested"
    assert v.lines[-1].startswith("* **The rest of the table** (20 of 20 cells")
    assert seed_noise(tmp_path) is None
    text = ablations.ablation("exp2-kernels", "num_kernels", 5, "K", tmp_path).text
    assert text.startswith("* `exp2-kernels`: no runs recorded yet")


def test_gain_text_and_exp1_table_columns(tmp_path):
    assert results.gain_text(93.65, 95.06, 1.41) == "93.65 → 95.06 (+1.41)"
    assert results.gain_text(float("nan"), float("nan"), float("nan")) == "not rerun"
    table = results.exp1_table(tmp_path)
    assert len(table) == 20 and (table["ours_cell"] == "not rerun").all()
    assert table["command"].str.startswith("python -m gmmlib run exp1").all()
    assert (table["note"] == "not rerun here: " + table["command"]).all()
    grid = results.exp1_pivot(table, "paper_cell")
    assert list(grid.index) == list(results.MODEL_NAMES.values())
    assert list(grid.columns) == list(results.DATASET_NAMES.values())
    assert grid.loc["ViT", "CIFAR-10"] == "93.65 → 95.06 (+1.41)"
    assert results.preset_of("headline", tmp_path) is None


def _store_with(tmp_path, experiment, configs_and_top1):
    from test_store import fake_record

    from gmmlib.store.records import Store

    store = Store(tmp_path)
    for config, top1 in configs_and_top1:
        store.put(fake_record(config, top1))
        store.add(experiment, [config.key()])
    return store


def _noise_of_one_gain(tmp_path, gains=(-0.5, 0.5, 0.0)):
    """A headline whose paired gains have a seed-to-seed std of 0.5."""
    from gmmlib.training.config import RunConfig

    runs = []
    for seed, g in enumerate(gains):
        runs += [(RunConfig(pool="gap", seed=seed), 50.0), (RunConfig(mask="gmm", pool="gap", seed=seed), 50.0 + g)]
    _store_with(tmp_path, "headline", runs)


@pytest.mark.parametrize("spread_out", [False, True])
def test_an_ablation_reading_ranks_nothing_that_noise_explains(tmp_path, spread_out):
    from gmmlib.training.config import RunConfig

    _noise_of_one_gain(tmp_path)
    gains = {1: 3.0, 2: -3.0, 3: 0.0} if spread_out else {1: 0.3, 2: -0.2, 3: 0.1}
    runs = [(RunConfig(pool="gap"), 50.0)]
    runs += [(RunConfig(mask="gmm", pool="gap", mask_options={"num_kernels": k}), 50.0 + g) for k, g in gains.items()]
    _store_with(tmp_path, "exp2-kernels", runs)
    text = ablations.ablation("exp2-kernels", "num_kernels", 5, "K", tmp_path).text
    assert "(3 of 7 settings recorded, cpu preset, one seed each)" in text
    assert "K=1: +3.00 (one seed)" in text if spread_out else "K=1: +0.30 (one seed)" in text
    assert not {"best", "worst", "highest", "lowest"} & set(text.lower().replace(",", " ").split())
    assert f"would spread by {stats.expected_range(3, 0.5):.2f} points on average" in text
    if spread_out:
        assert "**The spread is wider than noise alone gives** on both scales" in text and "cannot say which" in text
    else:
        assert "**The spread is what noise alone gives:**" in text and "rank no setting above another" in text


def test_comparisons_lists_each_comparison_once_with_its_interval_and_the_papers_gain(tmp_path):
    import math

    from gmmlib.readings import evidence
    from gmmlib.stats.inference import t_interval
    from gmmlib.store.records import Store
    from gmmlib.training.config import RunConfig

    _noise_of_one_gain(tmp_path, gains=(-0.5, 0.5, 0.3))
    store = Store(tmp_path)
    seed0 = [RunConfig(pool="gap"), RunConfig(mask="gmm", pool="gap")]
    store.add("exp1", [c.key() for c in seed0])  # exp1's ViT cell is the headline's seed 0
    _store_with(
        tmp_path,
        "exp2-kernels",
        [(seed0[0], 50.0), (RunConfig(mask="gmm", pool="gap", mask_options={"num_kernels": 2}), 50.4)],
    )
    rows = evidence.comparisons(tmp_path)
    assert [(r["experiment"], r["label"], r["seeds"]) for r in rows] == [
        ("headline", "GMM-ViT (GAP)", 3),
        ("exp2-kernels", "GMM-ViT (K=2, GAP)", 1),
    ]
    head, k2 = rows
    assert (head["low"], head["high"]) == pytest.approx(t_interval([-0.5, 0.5, 0.3]))
    assert head["gain"] == pytest.approx(0.1) and head["paper_gain"] == pytest.approx(95.06 - 93.65)
    assert k2["gain"] == pytest.approx(0.4) and math.isnan(k2["low"])
    assert k2["paper_gain"] == pytest.approx(94.76 - 94.17)  # the paper's K = 2 over its K = 1 (= no mask)
    assert head["mask"] == "gmm" and head["preset"] == "cpu" and head["dataset"] == "cifar10"
    table = evidence.table(tmp_path)
    low, high = t_interval([-0.5, 0.5, 0.3])
    assert table.loc["GMM-ViT (GAP)"].tolist() == [
        "headline", "cifar10", "cpu", "cpu, batched", 3, "+0.10", f"[{low:+.2f}, {high:+.2f}]", "+0.10", "includes zero", "+1.41 (main table)"
    ]  # fmt: skip
    assert (head["paper_source"], k2["paper_source"]) == ("main table", "K ablation")  # each from its own baseline
    assert table.loc["GMM-ViT (K=2, GAP)", "paper's gain"] == "+0.59 (K ablation)"
    assert table.loc["GMM-ViT (K=2, GAP)", "reading"] == "one seed" and k2["holds"] is None
    assert table.loc["GMM-ViT (K=2, GAP)", "95 % interval"] == "one seed"


def test_report_prints_every_comparison_and_refuses_a_missing_folder(tmp_path, capsys):
    from gmmlib.cli import main

    assert main(["report", "--results", str(tmp_path)]) == 0
    assert "no comparison is recorded yet" in capsys.readouterr().out
    _noise_of_one_gain(tmp_path, gains=(-0.5, 0.5, 0.3))
    assert main(["report", "--results", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "GMM-ViT (GAP)" in out and "+0.10" in out and "paired by seed, 95 % t-interval" in out
    assert "Holm's correction over every row with seeds" in out and "never as a test" in out
    assert main(["report", "--results", str(tmp_path / "nowhere")]) == 2
    assert "nowhere is not a results folder" in capsys.readouterr().err


def test_families_with_seeds_read_each_interval_and_take_the_place_of_the_one_seed_rows(tmp_path):
    from gmmlib.readings import evidence
    from gmmlib.readings import headline as findings
    from gmmlib.store.records import Store
    from gmmlib.training.config import RunConfig

    assert findings.families_with_seeds(tmp_path) == ""
    _noise_of_one_gain(tmp_path)  # the headline: a gain's seed noise of 0.5
    gains = {"pit": (-2.0, -2.5, -3.0), "cait": (0.5, -0.5, 0.0)}
    runs = []
    for model, per_seed in gains.items():
        for seed, g in enumerate(per_seed):
            runs += [
                (RunConfig(model=model, seed=seed), 50.0),
                (RunConfig(model=model, mask="gmm", seed=seed), 50.0 + g),
            ]
    _store_with(tmp_path, "exp1-seeds", runs)
    Store(tmp_path).add("exp1", [c.key() for c, _ in runs if c.seed == 0])  # exp1's one-seed cells are seed 0
    main = results.paper()["main_table"]["rows"]
    paper_gain = {m: main[m]["gmm"][0] - main[m]["none"][0] for m in gains}
    text = findings.families_with_seeds(tmp_path)
    pit_low, pit_high = stats.t_interval(gains["pit"])
    assert (
        f"GMM-PiT -2.50 [{pit_low:+.2f}, {pit_high:+.2f}] (3 seeds): the GMM lowers top-1 at this scale (it holds "
        "after Holm's correction) (the seeds added after the choice alone: -2.50, -3.00)" in text
    )
    assert "GMM-CaiT +0.00" in text and "neither clearly raises nor lowers" in text
    assert "seed 0 chose them, so only the seeds added after are unselected" in text
    assert f"{paper_gain['pit']:+.2f}" not in text  # the paper's gain is another scale: never a test of ours
    only_cait = findings.families_with_seeds(tmp_path, models=["cait"])
    assert "GMM-CaiT +0.00" in only_cait and "PiT" not in only_cait
    lines = findings.verdict(tmp_path).lines
    beyond = next(i for i, line in enumerate(lines) if line.startswith("* **Effects beyond the noise:** PiT -2.00"))
    assert lines[beyond].endswith("the next bullet gives them seeds of their own.") and lines[beyond + 1] == text
    rows = {r["label"]: r for r in evidence.comparisons(tmp_path)}
    assert rows["GMM-PiT"]["experiment"] == "exp1-seeds" and rows["GMM-PiT"]["seeds"] == 3
    assert rows["GMM-CaiT"]["experiment"] == "exp1-seeds" and rows["GMM-PiT"]["gain"] == pytest.approx(-2.5)
    # a family that comparison-seeds reruns on seeds: its own bullet, where no first seed chose it
    assert findings.families_rerun(tmp_path) == ""
    swin = [(RunConfig(model="swin", mask=m, seed=s), 50.0 + (0.3 + s / 10 if m else 0)) for s in range(3)
            for m in (None, "gmm")]  # fmt: skip
    _store_with(tmp_path, "comparison-seeds", swin)
    Store(tmp_path).add("exp1", [c.key() for c, _ in swin if c.seed == 0])
    rerun = findings.families_rerun(tmp_path)
    low, high = stats.t_interval([0.3, 0.4, 0.5])
    assert rerun.startswith(
        "* **On seeds, every other family** (`comparison-seeds`, cpu preset, trained on cpu, batched"
    )
    assert f"GMM-Swin +0.40 [{low:+.2f}, {high:+.2f}] (3 seeds): " in rerun and "GMM-PiT" not in rerun
    lines = findings.verdict(tmp_path).lines
    assert lines[lines.index(findings.families_with_seeds(tmp_path)) + 1] == rerun  # after exp1-seeds' families
    assert next(x for x in lines if x.startswith("* **The other families")).endswith(
        "the bullets below read them on seeds."
    )


def test_power_summary_and_caveats_read_the_store(tmp_path):
    from gmmlib.readings import evidence
    from gmmlib.stats.inference import minimum_detectable_effect, seeds_needed
    from gmmlib.training.config import RunConfig

    assert "No headline runs" in evidence.power_summary(tmp_path)
    _noise_of_one_gain(tmp_path)  # 3 seeds, a gain std of 0.5
    text = evidence.power_summary(tmp_path)
    assert "headline's 3 paired seeds (cpu preset), one seed's gain varies by 0.50 points" in text
    assert f"true gain of {minimum_detectable_effect(0.5, 3):.2f} points" in text
    assert f"takes {seeds_needed(1.41, 0.5)} paired seeds" in text
    notes = evidence.caveats(tmp_path)
    assert "at the `cpu` preset" in notes and "No run at the paper's scale" in notes
    assert "trained 8 epochs of one pass each, reaching" in notes
    assert "**Pairing.**" not in notes  # every masked run here was made under the paired init
    # a GMM run recorded before the paired init (its config has no init_scheme) is named; an ELM one is not
    _store_with(
        tmp_path,
        "elm",
        [(RunConfig(mask=m, pool="gap", seed=5, init_scheme=1), 50.0) for m in ("gmm", "elm")],
    )
    assert "1 of the 5 masked runs shown were trained before the paired initialisation" in evidence.caveats(tmp_path)


def test_a_comparison_that_pairs_runs_of_two_kinds_of_hardware_is_flagged(tmp_path):
    """The key does not say where a run trained: a GMM-ViT trained on a GPU paired with a CPU ViT is flagged."""
    from test_store import fake_record

    from gmmlib.readings import evidence
    from gmmlib.store.records import Store
    from gmmlib.training.config import RunConfig
    from gmmlib.training.provenance import hardware_kind

    _noise_of_one_gain(tmp_path)
    table = results.compare("headline", tmp_path)
    assert set(table["hardware"]) == {"cpu, batched"} and not table["mixed_hardware"].any()
    assert list(zip(table["label"], table["mask"])) == [("ViT (GAP)", "none"), ("GMM-ViT (GAP)", "gmm")]
    assert (
        "trained on one kind of hardware and data path throughout, its arms and seeds alike: cpu, batched."
        in evidence.caveats(tmp_path)
    )
    gpu = fake_record(RunConfig(mask="gmm", pool="gap", seed=7), data_pipeline="gpu")
    gpu["hardware"] = {**gpu["hardware"], "device": "cuda:0", "gpu": "H200"}
    assert hardware_kind(gpu) == "cuda, batched"
    store = Store(tmp_path)
    store.put(gpu)
    store.put(fake_record(RunConfig(pool="gap", seed=7)))
    store.add("headline", [gpu["key"], RunConfig(pool="gap", seed=7).key()])
    row = results.compare("headline", tmp_path).set_index("label").loc["GMM-ViT (GAP)"]
    assert row["hardware"] == "cpu, batched + cuda, batched" and row["mixed_hardware"]
    assert "* **Hardware.** GMM-ViT (GAP) (headline: cpu, batched + cuda, batched) pair runs trained on different" in (
        evidence.caveats(tmp_path)
    )


def test_epoch_lead_pairs_the_curves_by_seed(tmp_path):
    from gmmlib.readings import evidence

    assert evidence.epoch_lead("headline", tmp_path) == []
    _noise_of_one_gain(tmp_path, gains=(1.0, 2.0, -0.5))  # each run's curve: top-1 - 1, then top-1
    rows = evidence.epoch_lead("headline", tmp_path)
    assert [(r["epoch"], r["seeds"], r["ahead"]) for r in rows] == [(1, 3, 2), (2, 3, 2)]
    assert rows[0]["gain"] == pytest.approx(2.5 / 3)
    assert rows[0]["comparison"].diffs == pytest.approx((1.0, 2.0, -0.5))  # seed order, masked minus unmasked
    text = evidence.epoch_lead_text("headline", tmp_path)
    assert "mean over 3 paired seeds" in text and "1: +0.83 (2/3)" in text
    assert "no epoch's lead holds" in text and "locality prior that helps" not in text


def test_an_early_lead_holds_only_after_the_correction_over_every_epoch(tmp_path):
    """Five seeds that all lead by about 2 points in epoch 1 and are even by epoch 2: epoch 1's lead holds after
    Holm over the two looks (p well under 0.025), epoch 2's does not, and the text names the epoch and no mechanism."""
    from test_store import fake_record

    from gmmlib.readings import evidence
    from gmmlib.store.records import Store
    from gmmlib.training.config import RunConfig

    store = Store(tmp_path)
    for seed, (lead, last) in enumerate([(2.0, 0.3), (2.1, -0.4), (1.9, 0.1), (2.2, -0.2), (1.8, 0.2)]):
        none, gmm = RunConfig(pool="gap", seed=seed), RunConfig(mask="gmm", pool="gap", seed=seed)
        a, b = fake_record(none, 50.0), fake_record(gmm, 50.0)
        b["history"][0]["test_top1"] = a["history"][0]["test_top1"] + lead
        b["history"][1]["test_top1"] = a["history"][1]["test_top1"] + last
        for r in (a, b):
            store.put(r)
        store.add("headline", [none.key(), gmm.key()])
    rows = evidence.epoch_lead("headline", tmp_path)
    assert [r["holds"] for r in rows] == [True, False]
    assert rows[0]["p"] < 0.025 < rows[1]["p"]
    text = evidence.epoch_lead_text("headline", tmp_path)
    assert "after Holm's correction over the 2 looks, the lead holds in epoch 1 and not by the last" in text
    assert "+0.00 [" in text  # the last epoch's mean gain with its interval


def test_locality_reading_names_what_training_did_to_each_start():
    from gmmlib.readings import learned

    def change(a, b):
        return {"locality, step 0": a, "locality, trained": b, "scale, step 0": 1.0, "scale, trained": 1.5}

    text = learned.locality_reading(
        {
            "zeros": change(0.0, 0.4),
            "identity": change(0.0, 0.01),
            "official": change(1.3, 1.35),
            "local": change(0.8, 1.5),
            "wide": change(1.0, 0.5),
        }
    ).splitlines()
    assert text[0].startswith("* `zeros`: learned locality it did not start with (|M(0)| - |M(far)| from 0.00 to 0.40")
    assert "`identity`: stayed without locality" in text[1]
    assert "`official`: its locality barely moved" in text[2]
    assert "`local`: sharpened the locality" in text[3]
    assert "`wide`: lost part of the locality" in text[4] and text[4].endswith("; one seed).")
    # several seeds: each read on its own, the numbers their means
    agree = learned.locality_reading({"local": [change(0.8, 1.5), change(0.8, 1.7)]})
    assert agree == (
        "* `local`: sharpened the locality it started with in both seeds (|M(0)| - |M(far)| from 0.80 to 1.60; "
        "the scale |M(0)| from 1.00 to 1.50; means over 2 seeds)."
    )
    split = learned.locality_reading({"official": [change(1.3, 1.35), change(1.3, 2.0), change(1.3, 1.32)]})
    assert "the 3 seeds disagree: its locality barely moved in 2, sharpened the locality it started with in 1" in split
    with pytest.raises(ValueError, match="no run for init 'zeros'"):
        learned.locality_reading({"zeros": []})


def _ablation_with_noise(tmp_path, gains, vit=(0.5, -0.5, 0.0), gmm=(-0.5, 0.5, 0.0)):
    """A headline whose GMM-ViT runs have a seed std of 0.5 and whose gains have one of 1.0 (by default), and
    exp2-kernels settings K=1, 2, ... with the given one-seed gains over the headline's seed-0 ViT."""
    from gmmlib.training.config import RunConfig

    runs = []
    for seed, (v, g) in enumerate(zip(vit, gmm)):
        runs += [(RunConfig(pool="gap", seed=seed), 50.0 + v), (RunConfig(mask="gmm", pool="gap", seed=seed), 50.0 + g)]
    _store_with(tmp_path, "headline", runs)
    base = 50.0 + vit[0]
    settings = [
        (RunConfig(mask="gmm", pool="gap", mask_options={"num_kernels": k + 1}), base + g) for k, g in enumerate(gains)
    ]
    _store_with(tmp_path, "exp2-kernels", [(RunConfig(pool="gap"), base), *settings])


@pytest.mark.parametrize(
    "gains, verdict, reading",
    [
        (
            (0.3, -0.2, 0.1),
            "what noise alone gives",
            "**The spread is what noise alone gives:** these runs show no effect of K",
        ),
        ((1.0, -1.5, 0.0), "at the edge", "**The spread is at the edge of what noise gives**, depending on the scale"),
        ((1.0, 4.0, 7.0), "wider than noise", "**The spread is wider than noise alone gives** on both scales"),
    ],
)
def test_ablation_reads_the_spread_against_both_noise_scales_exactly(tmp_path, gains, verdict, reading):
    from gmmlib.stats.inference import expected_range, range_tail

    _ablation_with_noise(tmp_path, gains)
    a = ablations.ablation("exp2-kernels", "num_kernels", 5, "K", tmp_path)
    spread = max(gains) - min(gains)
    assert (a.preset, a.settings, a.pairs, a.total, a.noise_seeds) == ("cpu", [1, 2, 3], [1, 1, 1], 7, 3)
    assert a.gains == pytest.approx(gains) and a.spread == pytest.approx(spread)
    for key, std in (("run", 0.5), ("gain", 1.0)):
        assert a.scales[key]["std"] == pytest.approx(std)
        assert a.scales[key]["expected_range"] == pytest.approx(expected_range(3, std))
        assert a.scales[key]["p"] == pytest.approx(range_tail(3, std, spread))
    assert a.verdict == verdict and a.verdict in ablations.SPREAD_VERDICTS
    assert a.apart_from_zero == [] and "excludes zero" not in a.text  # one seed each: no interval
    assert [s["p"] < 0.05 for s in a.scales.values()].count(True) == ablations.SPREAD_VERDICTS.index(verdict)
    assert reading in a.text
    assert f"{stats.expected_range(3, 0.5):.2f} points on average with a GMM-ViT run's seed std (0.50)" in a.text
    assert f"or {stats.expected_range(3, 1.0):.2f} with the seed noise of a gain (1.00)" in a.text
    assert "measured over the headline's 3 seeds" in a.text
    assert not {"best", "worst", "highest", "lowest"} & set(a.text.lower().replace(",", " ").split())
    assert ("All 3 gains are positive" in a.text) == (min(gains) > 0)


def test_an_ablation_setting_whose_seeds_agree_by_luck_gets_the_pooled_interval(tmp_path):
    """exp2-kernels shares one noise scale: K=1's three gains agree (+0.50 each, a lone std of 0 and an interval
    of zero width), K=2's spread by 1 point; pooled over both (std sqrt(0.5) on 4 degrees of freedom), K=1's
    interval includes zero, it is no lead, and every reading of the grid (the ablation and the verdict table)
    uses the same pooled interval."""
    from gmmlib.readings import evidence
    from gmmlib.stats.inference import pooled_test
    from gmmlib.training.config import RunConfig

    runs = []
    for seed, k2 in enumerate((0.0, 1.0, 2.0)):
        runs += [
            (RunConfig(pool="gap", seed=seed), 50.0),
            (RunConfig(mask="gmm", pool="gap", seed=seed, mask_options={"num_kernels": 1}), 50.5),
            (RunConfig(mask="gmm", pool="gap", seed=seed, mask_options={"num_kernels": 2}), 50.0 + k2),
        ]
    _store_with(tmp_path, "exp2-kernels", runs)
    rows = standard.setting_gains("exp2-kernels", "num_kernels", 5, tmp_path)
    (low, high), p = pooled_test(0.5, 3, math.sqrt(0.5), 4)
    k1 = next(r for r in rows if r["value"] == 1)
    assert (k1["pooled_std"], k1["pooled_df"]) == (pytest.approx(math.sqrt(0.5)), 4)
    assert (k1["gain_low"], k1["gain_high"], k1["p_value"]) == (
        pytest.approx(low),
        pytest.approx(high),
        pytest.approx(p),
    )
    assert low < 0 < high
    assert ablations.ablation("exp2-kernels", "num_kernels", 5, "K", tmp_path).apart_from_zero == []
    row = next(r for r in evidence.comparisons(tmp_path) if r["label"] == "GMM-ViT (K=1, GAP)")
    assert (row["low"], row["high"], row["standing"]) == (pytest.approx(low), pytest.approx(high), "includes zero")


def test_ablation_without_noise_or_with_one_setting_reads_nothing(tmp_path):

    _ablation_with_noise(tmp_path, (0.3, -0.2), vit=(0.0,), gmm=(0.0,))  # a headline of one seed
    a = ablations.ablation("exp2-kernels", "num_kernels", 5, "K", tmp_path)
    assert a.verdict is None and a.spread is None and not a.scales
    assert a.text.endswith("K=2: -0.20 (one seed). No seed noise yet to read them against.")
    _ablation_with_noise(tmp_path / "one", (0.3,))
    one = ablations.ablation("exp2-kernels", "num_kernels", 5, "K", tmp_path / "one")
    assert one.verdict is None and one.text.endswith("One setting only: a spread needs two.")
    assert ablations.ablation("exp2-kernels", "num_kernels", 5, "K", tmp_path / "none").verdict is None


def _kernels_on_three_seeds(tmp_path, gains):
    """The headline (a std of 0.5 on both noise scales) and exp2-kernels' K=2 and K=3 on seeds 0-2, with the
    gains ``[(K=2, K=3) per seed]`` over each seed's unmasked ViT."""
    from gmmlib.training.config import RunConfig

    _noise_of_one_gain(tmp_path)
    runs = []
    for seed, (g2, g3) in enumerate(gains):
        runs += [(RunConfig(pool="gap", seed=seed), 50.0)]
        runs += [
            (RunConfig(mask="gmm", pool="gap", seed=seed, mask_options={"num_kernels": k}), 50.0 + g)
            for k, g in ((2, g2), (3, g3))
        ]
    _store_with(tmp_path, "exp2-kernels", runs)


def test_ablation_with_several_seeds_reads_each_gain_with_its_interval(tmp_path):

    _kernels_on_three_seeds(tmp_path, [(0.2, 0.5), (0.6, -0.1), (0.1, 0.3)])
    a = ablations.ablation("exp2-kernels", "num_kernels", 5, "K", tmp_path)
    assert a.pairs == [3, 3] and "95 % intervals where a setting has several seeds" in a.text
    sd, df = stats.pooled_std([float(np.std(g, ddof=1)) for g in ([0.2, 0.6, 0.1], [0.5, -0.1, 0.3])], [3, 3])
    (lo, hi), _ = stats.pooled_test(0.3, 3, sd, df)  # exp2-kernels' settings share one noise scale
    assert f"K=2: +0.30 [{lo:+.2f}, {hi:+.2f}] (3 seeds)," in a.text and "(one seed)" not in a.text
    assert a.scales["run"]["std"] == pytest.approx(0.5 / 3**0.5) and "0.50, divided by √3: 0.29" in a.text
    assert a.apart_from_zero == [] and "excludes zero" not in a.text  # both intervals hold zero


def test_ablation_reads_an_interval_apart_from_zero_as_a_lead_among_several(tmp_path):

    # K=2's gains agree (its pooled interval still excludes zero), K=3's do not, beside a headline of 3 seeds:
    # 3 tested comparisons, so K=2 holds only if its p-value survives Holm's 0.05 / 3
    _kernels_on_three_seeds(tmp_path, [(1.3, 0.5), (1.35, -0.1), (1.4, 0.3)])
    a = ablations.ablation("exp2-kernels", "num_kernels", 5, "K", tmp_path)
    assert a.apart_from_zero == [2]
    row = next(r for r in a.rows if r["value"] == 2)
    rows = {r["label"]: r for r in standard.comparisons(tmp_path)}
    assert rows[row["label"]]["p_value"] == pytest.approx(row["p_value"])
    expected = "holds after correction" if row["p_value"] <= 0.05 / 3 else "a lead"
    assert a.standings[2] == rows[row["label"]]["standing"] == expected
    if expected == "a lead":
        assert "The interval of K=2 excludes zero: a lead for more seeds, not yet a finding" in a.text
    else:
        assert "The interval of K=2 excludes zero and holds after Holm's correction" in a.text
    assert not {"best", "worst", "highest", "lowest"} & set(a.text.lower().replace(",", " ").split())


def test_ablation_reads_the_spread_on_the_seeds_every_setting_has(tmp_path):
    """A setting with more seeds than the others (the default, shared with the headline) shows its interval,
    but the spread is read on the seeds all settings have, where they share each seed's unmasked run."""
    from gmmlib.training.config import RunConfig

    _noise_of_one_gain(tmp_path)  # the headline: a std of 0.5 on both noise scales
    runs = [(RunConfig(pool="gap", seed=s), 50.0) for s in range(3)]
    runs += [
        (RunConfig(mask="gmm", pool="gap", seed=s, mask_options={"num_kernels": 2}), g)
        for s, g in enumerate((51.0, 49.0, 50.6))
    ]
    runs += [(RunConfig(mask="gmm", pool="gap", seed=0, mask_options={"num_kernels": 3}), 50.2)]
    _store_with(tmp_path, "exp2-kernels", runs)
    a = ablations.ablation("exp2-kernels", "num_kernels", 5, "K", tmp_path)
    assert a.pairs == [3, 1] and a.common_seeds == [0]
    assert a.gains == pytest.approx([0.2, 0.2]) and a.spread == pytest.approx(0.8)  # seed 0: +1.0 and +0.2
    assert "On the seed every setting has (0), their spread, largest minus smallest, is 0.80 points." in a.text
    assert "divided by" not in a.text and a.scales["gain"]["std"] == pytest.approx(0.5)
    assert "All 2 gains are positive on those seeds" in a.text


def test_default_setting_is_the_headlines_gmm_vit_and_its_gain_over_all_seeds(tmp_path):
    from gmmlib.stats.inference import t_interval
    from gmmlib.training.config import RunConfig

    _noise_of_one_gain(tmp_path)  # per-seed gains -0.5, +0.5, 0.0
    inits = {"identity": 0.2, "zeros": 5.0, "local": 0.6}
    runs = [(RunConfig(pool="gap"), 50.0), (RunConfig(mask="gmm", pool="gap"), 49.5)]
    runs += [(RunConfig(mask="gmm", pool="gap", mask_options={"init": i}), 50.0 + g) for i, g in inits.items()]
    _store_with(tmp_path, "exp2-init", runs)
    d = ablations.default_setting("exp2-init", "init", "official", tmp_path)
    lo, hi = t_interval([-0.5, 0.5, 0.0])
    assert d["seeds"] == [0] and d["per_seed"] == pytest.approx({0: -0.5, 1: 0.5, 2: 0.0})
    assert d["gain"] == pytest.approx(0.0) and d["interval"] == pytest.approx((lo, hi))
    assert (d["inside"], d["others"]) == (2, 3)
    assert "GMM-ViT of seed 0 (the same record)" in d["text"]
    assert "the lowest of the headline's 3 per-seed gains (seed 0: -0.50, seed 1: +0.50, seed 2: +0.00)" in d["text"]
    assert f"+0.00 points (95 % interval [{lo:+.2f}, {hi:+.2f}]); 2 of the 3 other settings' gains lie" in d["text"]
    assert d["text"].endswith("inside that interval (one seed each).")
    assert ablations.curves_gap("exp2-init", tmp_path) == {"runs": 5, "gaps": pytest.approx({1: 5.5, 2: 5.5})}
    _noise_of_one_gain(tmp_path / "alone")
    _store_with(tmp_path / "alone", "exp2-init", runs[:2])  # no other setting than the default
    alone = ablations.default_setting("exp2-init", "init", "official", tmp_path / "alone")
    assert alone["others"] == 0 and alone["text"].endswith(f"(95 % interval [{lo:+.2f}, {hi:+.2f}]).")
    assert ablations.default_setting("exp2-init", "init", "official", tmp_path / "empty") == {}
    assert ablations.curves_gap("exp2-init", tmp_path / "empty") == {}


def test_verdict_reads_the_initialisations_on_their_seeds(tmp_path):
    """Chapter 5's bullet on exp2-init: the seeds per setting, chapter 6's reading of the spread, and an
    interval that excludes zero named as a lead among several, not as a finding."""
    from gmmlib.readings import headline as findings
    from gmmlib.training.config import RunConfig

    _noise_of_one_gain(tmp_path)  # the official setting: the headline's GMM-ViT, gains -0.5, +0.5, 0.0
    runs = [(RunConfig(pool="gap", seed=s), 50.0) for s in range(3)]
    runs += [(RunConfig(mask="gmm", pool="gap", seed=s), 50.0 + g) for s, g in enumerate((-0.5, 0.5, 0.0))]
    for init, gains in (("identity", (0.5, 0.55, 0.6)), ("zeros", (0.5, -0.1, 0.3))):
        runs += [
            (RunConfig(mask="gmm", pool="gap", seed=s, mask_options={"init": init}), 50.0 + g)
            for s, g in enumerate(gains)
        ]
    _store_with(tmp_path, "exp2-init", runs)
    line = next(x for x in findings.verdict(tmp_path).lines if x.startswith("* **The initialisation.**"))
    spread = ablations.ablation("exp2-init", "init", "official", "init", tmp_path)
    assert "(chapter 6, cpu preset, 3 paired seeds per setting)" in line
    assert f"Chapter 6 reads their spread against the seed noise ({spread.verdict}): they do not rank" in line
    assert spread.apart_from_zero == ["identity"] and spread.standings["identity"] == "a lead"
    assert line.endswith(
        "The interval of init=identity excludes zero: a lead for more seeds, not yet a finding (it does not survive "
        "Holm's correction over every comparison the book reads)."
    )


def test_family_gains_reads_each_family_against_the_noise_and_names_the_seeds(tmp_path):
    from gmmlib.readings import families as one_seed
    from gmmlib.training.config import RunConfig

    assert one_seed.family_gains("exp3", tmp_path) == []  # nothing recorded
    _noise_of_one_gain(tmp_path)  # the headline: 3 seeds, a gain's seed noise of 0.5
    assert one_seed.family_gains("exp3", tmp_path) == []  # no exp3 runs yet
    runs = [(RunConfig(model="swin"), 50.0), (RunConfig(model="swin", mask="gmm"), 49.0)]
    runs += [(RunConfig(model="cait", seed=s), 50.0) for s in range(2)]
    runs += [(RunConfig(model="cait", mask="gmm", seed=s), 50.0 + g) for s, g in enumerate((0.5, 0.3))]
    _store_with(tmp_path, "exp3", runs)
    lines = one_seed.family_gains("exp3", tmp_path)
    main = results.paper()["main_table"]["rows"]
    swin_paper = main["swin"]["gmm"][0] - main["swin"]["none"][0]
    assert lines[0].startswith(
        f"* **Our gains** (cpu preset): GMM-Swin -1.00 (one seed; paper {swin_paper:+.2f}), GMM-CaiT +0.40 (2 seeds;"
    )
    assert "so these are 2.0, 1.1 times the noise (of a mean over n seeds: the noise divided by √n)." in lines[0]
    assert "GMM-ViT's row" not in lines[0]  # no ViT row here
    # fake records lead by the same amount every epoch: the masked Swin is below in both epochs of seed 0
    assert lines[-1].startswith("* **In the curves** (seed 0), the masked model's test top-1 is below its baseline's")
    assert "2 of 2 epochs for Swin, 0 of 2 epochs for CaiT" in lines[-1] and "not a finding" in lines[-1]
    assert not any("With seeds of their own" in line for line in lines)  # no exp1-seeds runs


def test_gains_against_noise_names_a_gain_beyond_the_largest_of_pure_noise(tmp_path):
    from gmmlib.readings import families as one_seed
    from gmmlib.stats.inference import largest_abs_quantile
    from gmmlib.training.config import RunConfig

    _noise_of_one_gain(tmp_path)  # a gain's seed noise of 0.5
    assert one_seed.gains_against_noise(["retnet", "beyond"], tmp_path).text == ""  # nothing recorded
    base = RunConfig(pool="gap")
    decays = [(base, 50.0), (RunConfig(mask="retnet", pool="gap"), 50.2)]
    _store_with(tmp_path, "retnet", decays)
    alibi = RunConfig(mask="alibi2d", pool="gap")
    _store_with(tmp_path, "beyond", [(base, 50.0), (decays[1][0], 50.2), (alibi, 52.0)])
    reading = one_seed.gains_against_noise(["retnet", "beyond"], tmp_path)
    text = reading.text
    assert reading.beyond == ["ALiBi-2D-ViT (GAP)"] and reading.noise == pytest.approx(0.5) and reading.one_seed
    assert reading.summary.startswith("* **Our runs** (2 masked configurations, one seed each): gains from +0.20")
    assert reading.summary.endswith("Only ALiBi-2D-ViT (GAP) lies beyond what noise alone gives; it needs seeds before it is a finding.")  # fmt: skip
    assert text.startswith("* **Each run is one seed** (cpu preset).")
    assert "RetNet-ViT (manhattan, GAP) +0.20 (+0.4), ALiBi-2D-ViT (GAP) +2.00 (+4.0)." in text  # each once
    assert f"Among 2 gains of pure noise, the largest lies beyond {largest_abs_quantile(2):.1f} times" in text
    assert text.endswith("ALiBi-2D-ViT (GAP) lies beyond it, a candidate for more seeds, not yet a finding.")


def test_the_answer_reads_every_comparison_by_one_rule_and_names_the_untested_scale(tmp_path):
    from gmmlib.readings import evidence
    from gmmlib.training.config import RunConfig

    assert "No comparison is recorded yet" in evidence.answer(tmp_path)
    _noise_of_one_gain(tmp_path, gains=(-0.5, 0.5, 0.3))  # the headline: 3 seeds, an interval across zero
    _store_with(tmp_path, "elm", [(RunConfig(pool="gap"), 50.0), (RunConfig(mask="elm", pool="gap"), 51.0)])
    text = evidence.answer(tmp_path)
    assert "Of the 2 comparisons recorded (cpu preset), 1 has seeds enough for an interval" in text
    assert (
        "None holds after Holm's correction over all 1." in text
        and "1 includes zero, and 1 rests on one seed and is not read." in text
    )
    assert "gains +0.10 points" in text and "no effect shown either way" in text
    assert "Nothing has been run at the paper's scale yet" in text
    _store_with(
        tmp_path, "elm", [(RunConfig(pool="gap", seed=1), 50.0), (RunConfig(mask="elm", pool="gap", seed=1), 50.5)]
    )
    assert "2 include zero." in evidence.answer(tmp_path)  # no one-seed comparison left: none named


def test_a_chapters_answer_groups_its_comparisons_by_the_one_rule(tmp_path):
    """The answer a chapter opens with: its experiments' comparisons only, grouped by standing, each with its
    interval and seeds; a one-seed comparison is named as not read; an unknown experiment is an error."""
    from gmmlib.readings import evidence
    from gmmlib.training.config import RunConfig

    _noise_of_one_gain(tmp_path)  # the headline: gains -0.5, +0.5, 0.0 over 3 seeds
    _store_with(tmp_path, "elm", [(RunConfig(pool="gap"), 50.0), (RunConfig(mask="elm", pool="gap"), 50.7)])  # one seed
    text = evidence.answer_for(["headline"], tmp_path)
    low, high = stats.t_interval([-0.5, 0.5, 0.0])
    assert (
        f"**No effect shown either way** (the 95 % interval includes zero): GMM-ViT (GAP) +0.00 [{low:+.2f}, " in text
    )
    assert "ELM" not in text and "One seed" not in text
    assert "**One seed, not read** (a single draw, no interval): ELM-ViT (GAP) +0.70." in (
        evidence.answer_for(["elm"], tmp_path)
    )
    assert "no comparison of `exp3` is recorded yet" in evidence.answer_for(["exp3"], tmp_path)
    with pytest.raises(ValueError, match=r"\['exp9'\] are not experiments the book reads"):
        evidence.answer_for(["exp9"], tmp_path)


def test_a_comparison_is_read_on_the_grid_with_the_most_seeds_wherever_that_grid_comes(tmp_path):
    """datasize (after elm in the book's order) holds the ELM at 50,000 images on three seeds: until
    comparison-seeds is promoted, the ELM's row is read there, in the place of elm's one-seed row."""
    from gmmlib.readings.standard import VERDICT_EXPERIMENTS, comparisons, rows_for
    from gmmlib.training.config import RunConfig

    assert VERDICT_EXPERIMENTS.index("elm") < VERDICT_EXPERIMENTS.index("datasize")
    _store_with(tmp_path, "elm", [(RunConfig(pool="gap", data_path="workers"), 50.0),
                                  (RunConfig(mask="elm", pool="gap", data_path="workers"), 51.0),
                                  (RunConfig(mask="gmm", pool="gap", data_path="workers"), 50.5)])  # fmt: skip
    gains = (-0.2, 0.4, 0.1)
    runs = [(RunConfig(pool="gap", seed=s, train_size=50_000), 50.0) for s in range(3)]
    runs += [(RunConfig(mask="elm", pool="gap", seed=s, train_size=50_000), 50.0 + g) for s, g in enumerate(gains)]
    _store_with(tmp_path, "datasize", runs)

    rows = comparisons(tmp_path)
    assert [r["mask"] for r in rows] == ["elm", "gmm"], "the ELM's row keeps its place"
    elm = rows[0]
    assert (elm["experiment"], elm["seeds"], elm["experiments"]) == ("datasize", 3, ["datasize", "elm"])
    assert elm["gain"] == pytest.approx(sum(gains) / 3)
    assert rows_for(["elm"], rows) == rows  # chapter 3 still reads both, the ELM on its seeds


def test_a_one_seed_comparison_rerun_on_seeds_elsewhere_is_read_there_by_every_reader(tmp_path, capsys):
    """comparison-seeds reruns retnet's one-seed comparison on three seeds (batched data path): the book reads it
    once, on those seeds; the chapter that reads `retnet` still answers with it (naming where it is read), its
    table says so under the rows, and the report names where each comparison's runs trained."""
    from gmmlib import book
    from gmmlib.readings import evidence
    from gmmlib.readings import families as one_seed
    from gmmlib.readings.standard import comparisons, rows_for
    from gmmlib.training.config import RunConfig

    decay = dict(mask="retnet", pool="gap", mask_options={"distance": "manhattan"})
    _store_with(tmp_path, "retnet", [(RunConfig(pool="gap", data_path="workers"), 50.0),
                                     (RunConfig(**decay, data_path="workers"), 51.0)])  # fmt: skip
    gains = (0.2, 0.6, 0.4)
    runs = [(RunConfig(pool="gap", seed=s), 50.0) for s in range(3)]
    runs += [(RunConfig(**decay, seed=s), 50.0 + g) for s, g in enumerate(gains)]
    _store_with(tmp_path, "comparison-seeds", runs)

    rows = comparisons(tmp_path)
    (row,) = [r for r in rows if r["mask"] == "retnet"]
    assert (row["experiment"], row["seeds"], row["experiments"]) == (
        "comparison-seeds",
        3,
        ["comparison-seeds", "retnet"],
    )
    assert rows_for(["retnet"], rows) == [row] and rows_for(["beyond"], rows) == []
    low, high = stats.t_interval(list(gains))
    text = evidence.answer_for(["retnet"], tmp_path)
    assert f"RetNet-ViT (manhattan, GAP) +0.40 [{low:+.2f}, {high:+.2f}] (3 seeds, `comparison-seeds`)" in text
    assert "One seed" not in text
    # the chapter's own table keeps its one seed, and the line under it gives the reading on three
    capsys.readouterr()
    book.show_comparison("retnet", tmp_path, note_missing=False, columns=["seeds", "gain", "reading"])
    shown = capsys.readouterr().out
    assert (
        "one seed" in shown
        and (
            f"**Read on more seeds elsewhere** (the book's one rule): RetNet-ViT (manhattan, GAP): +0.40 "
            f"[{low:+.2f}, {high:+.2f}] over 3 seeds of `comparison-seeds` (cpu, batched), {row['standing']}."
        )
        in shown
    )
    book.show_comparison("comparison-seeds", tmp_path, note_missing=False, columns=["seeds", "gain"])
    assert "elsewhere" not in capsys.readouterr().out  # read where it is shown: no line
    assert evidence.table(rows=rows).loc["RetNet-ViT (manhattan, GAP)", "trained on"] == "cpu, batched"
    # chapter 10's one-seed reading against the noise says its draws are replaced, and sums up the seeded reading
    _noise_of_one_gain(tmp_path)
    noise = one_seed.gains_against_noise(["retnet"], tmp_path)
    assert noise.one_seed and noise.seeded == ["RetNet-ViT (manhattan, GAP)"]
    assert noise.text.endswith("It is read on more seeds in the line under its table above; those "
                               "readings, not these draws, are the chapter's.")  # fmt: skip
    assert noise.summary == "* " + evidence.answer_for(["retnet"], tmp_path)
    assert "* **Seeds.** Every one of the 2 comparisons has 3 paired seeds or more" in evidence.caveats(tmp_path)
    causal = RunConfig(mask="retnet", pool="gap", mask_options={"distance": "causal"}, data_path="workers")
    _store_with(tmp_path, "retnet", [(causal, 49.0)])  # a second one-seed decay, rerun nowhere: named apart
    noise = one_seed.gains_against_noise(["retnet"], tmp_path)
    assert noise.seeded == ["RetNet-ViT (manhattan, GAP)"] and noise.text.endswith(
        "RetNet-ViT (manhattan, GAP) is read on more seeds in the line under its table above; those readings, not "
        "these draws, are the chapter's."
    )
