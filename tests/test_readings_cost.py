"""Chapters 1, 4 and 7's readings, moved out of their cells: cost against the paper (gmmlib.readings.cost), a
run's budget (gmmlib.readings.budget) and what a GMM initialisation does at step 0 (gmmlib.readings.gmm_init),
each on inputs whose answer is known."""

import pandas as pd
import pytest

import gmmlib
from gmmlib.readings import budget, cost, family_standing, gmm_init
from gmmlib.training.config import RunConfig


def test_a_count_agrees_with_the_paper_to_the_digit_it_prints():
    assert cost.printed_equal(2.692, 2.7) and cost.printed_equal(2.66, 2.7)
    assert not cost.printed_equal(2.64, 2.7)
    table = pd.DataFrame(
        {
            "family": ["vit", "vit"],
            "mask": ["none", "gmm"],
            "params (M)": [2.69, 2.69],
            "MACs (M)": [170.9, 171.4],
            "FLOPs (M)": [400.0, 401.0],
            "paper: params (M)": [2.7, 2.7],
            "paper: MACs (M)": [170.9, 170.9],
        },
        index=["ViT", "GMM-ViT"],
    )
    assert cost.paper_agreement(table) == {"params": ["ViT", "GMM-ViT"], "MACs": ["ViT"]}
    text = cost.agreement_text(table)
    assert "parameter counts agree with the paper's in 2 of 2 rows." in text
    assert "MAC counts agree with the paper's in 1 of 2 rows (not: GMM-ViT)." in text
    # one MAC is two FLOPs: 400 FLOPs of which 2 x 170.9 are MACs leave 14.55 % uncounted
    assert cost.flops_beyond_macs(table) == {"ViT": pytest.approx((400 - 341.8) / 400)}


def test_the_masks_product_is_one_multiplication_per_head_and_token_pair():
    model = gmmlib.create_model("vit", mask="gmm", pool="gap", dim=32, depth=3, num_heads=2, head_dim=16)
    assert cost.mask_products(model) == 3 * 2 * 64**2
    assert cost.mask_products(gmmlib.create_model("vit", pool="gap", dim=32, depth=3, num_heads=2)) == 0


def test_the_cost_table_is_profile_of_the_built_models_beside_the_papers_row():
    table = cost.cost_table(families=("vit",))
    assert list(table.index) == ["ViT", "GMM-ViT"]
    ours = gmmlib.profile(gmmlib.create_model("vit", mask="gmm", pool="gap"))
    row = table[table["mask"] == "gmm"].iloc[0]
    assert row["params (M)"] == ours["params"] / 1e6 and row["FLOPs (M)"] == ours["flops"] / 1e6
    assert row["paper: params (M)"] == gmmlib.stats.paper()["main_table"]["rows"]["vit"]["params_m"]
    # the GMM adds parameters and counted FLOPs but no MACs
    none = table[table["mask"] == "none"].iloc[0]
    assert row["MACs (M)"] == none["MACs (M)"] and row["params (M)"] > none["params (M)"]
    lines = cost.uncounted_lines(table, families=("vit",))
    assert len(lines) == 3 and lines[0].startswith("FLOPs not counted as MACs: ")


def test_cpu_sizes_compare_each_family_with_the_vit_at_both_scales():
    sizes = cost.cpu_sizes(("vit", "cait"))
    vit_params = gmmlib.count_parameters(cost.build("vit", preset="cpu"))
    assert sizes.loc["ViT", "cpu preset: params"] == vit_params
    assert sizes.loc["ViT", "cpu: params / ViT's"] == 1.0
    cait = sizes.loc["CaiT"]
    assert cait["cpu: params / ViT's"] == gmmlib.count_parameters(cost.build("cait", preset="cpu")) / vit_params
    assert "cannot be answered at `cpu` scale" in cost.cpu_scale_text(sizes)


def test_the_answer_reads_one_seed_rows_not_at_all_and_seeded_rows_by_their_standing():
    sizes = cost.cpu_sizes(("vit", "cait"))
    rows = [
        {"label": "GMM-Swin", "experiment": "exp3", "seeds": 1, "gain": -0.57, "low": float("nan"),
         "high": float("nan"), "standing": "one seed"},
        {"label": "GMM-CaiT", "experiment": "exp1-seeds", "seeds": 3, "gain": -1.26, "low": -1.92, "high": -0.59,
         "standing": "a lead"},
        {"label": "GMM-ViT", "experiment": "headline", "seeds": 5, "gain": 0.39, "low": -0.53, "high": 1.31,
         "standing": "includes zero"},
    ]  # fmt: skip
    text = family_standing.answer_text(sizes, rows, "SPEED.")
    assert "GMM-CaiT -1.26 points over 3 seeds, 95 % interval [-1.92, -0.59]: a lead that the mask lowers" in text
    assert "GMM-ViT +0.39 points over 5 seeds, 95 % interval [-0.53, +1.31]: its interval includes zero" in text
    assert "GMM-Swin has one seed, and a one-seed comparison is not read" in text
    assert "-0.57" not in text and text.endswith("SPEED.") and text.startswith("**Question:**")
    assert "none is recorded yet" in family_standing.answer_text(sizes, [], "")
    lines = family_standing.standing_lines(rows)
    assert len(lines) == 3 and lines[-1].startswith("* **GMM-Swin**: one seed.") and "-0.57" not in lines[-1]
    assert "holds after Holm's correction" in family_standing.standing_phrase(
        {**rows[1], "standing": "holds after correction"}
    )


def _store(tmp_path, runs):
    from test_store import fake_record

    from gmmlib.store.records import Store

    store = Store(tmp_path)
    for config, minutes, device in runs:
        record = fake_record(config, 50.0, wall_seconds=60.0 * minutes)
        record["hardware"] = {"device": device, "cpu": "Test CPU", "torch_threads": 1}
        store.put(record)
        store.add("headline", [config.key()])


def test_a_runs_budget_is_its_records_wall_time_and_images(tmp_path):
    _store(
        tmp_path,
        [
            (RunConfig(pool="gap", seed=0), 10.0, "cpu"),
            (RunConfig(mask="gmm", pool="gap", seed=0), 14.0, "cpu"),
            (RunConfig(pool="gap", seed=1), 12.0, "cpu"),
            (RunConfig(pool="gap", seed=2), 99.0, "cuda"),  # another device: not this budget
        ],
    )
    b = budget.cpu_run_budget(results=tmp_path)
    assert sorted(b.minutes) == [10.0, 12.0, 14.0] and b.median_minutes == 12.0
    assert len(b.baseline) == 2 and b.machines == ["Test CPU (1 torch thread)"]
    assert "took 10 to 14 minutes each, median 12, by their records' wall time, on Test CPU (1 torch thread)" in (
        b.minutes_text()
    )
    # fake records have 2 epochs of the cpu preset: 50,000 images in whole batches of 128 per epoch
    assert b.images == 2 * (50_000 // 128 * 128)
    assert budget.paper_images() == 100 * 3 * 50_000
    answer = budget.scale_answer(tmp_path)
    assert answer.startswith("**Question:**") and "not recorded yet" in answer and "(2 seeds)" in answer
    assert budget.cpu_run_budget(results=tmp_path / "empty").minutes_text() == ""


@pytest.mark.parametrize("init, prior", [("official", False), ("local", True), ("identity", False), ("zeros", False)])
def test_an_init_is_a_locality_prior_only_when_it_sharpens_near_logits_by_design(init, prior):
    s = gmm_init.survey_init(init, heads=2000)
    assert s.is_locality_prior is prior
    if init == "official":  # alpha's sign is symmetric: as many heads sharpen as reverse the near logits
        assert abs(s.near_sharpened - s.near_reversed) < 0.05 and 0.4 < s.negative_at_0 < 0.6
        assert "not a locality prior" in gmm_init.init_text(s)
    if init == "local":  # every head: M(0) = 1, falling with distance
        assert s.near_sharpened == 1.0 and s.flat == 0.0 and s.negative_at_0 == 0.0
    if init == "identity":  # M = 1 at every distance
        assert s.flat == 1.0 and s.sign_flips == 0.0
    with pytest.raises(ValueError, match="positive"):
        gmm_init.survey_init(init, heads=0)


def test_a_family_is_read_from_the_experiment_with_the_most_seeds_of_its_comparison(tmp_path):
    from test_store import fake_record

    from gmmlib.store.records import Store

    store = Store(tmp_path)

    def put(experiment, config, top1):
        store.put(fake_record(config, top1))
        store.add(experiment, [config.key()])

    for seed, gain in enumerate((0.5, -0.5, 0.0)):  # the headline: 3 paired seeds of the ViT
        put("headline", RunConfig(pool="gap", seed=seed), 50.0)
        put("headline", RunConfig(mask="gmm", pool="gap", seed=seed), 50.0 + gain)
    put("exp3", RunConfig(pool="gap"), 50.0)
    put("exp3", RunConfig(mask="gmm", pool="gap"), 50.5)
    put("exp3", RunConfig(model="swin"), 50.0)
    put("exp3", RunConfig(model="swin", mask="gmm"), 49.0)
    rows = family_standing.family_comparisons("exp3", tmp_path)
    assert [(r["label"], r["experiment"], r["seeds"]) for r in rows] == [
        ("GMM-ViT (GAP)", "headline", 3),
        ("GMM-Swin", "exp3", 1),
    ]
    assert rows[0]["gain"] == pytest.approx(0.0) and rows[1]["standing"] == "one seed"
    assert family_standing.family_comparisons("exp3", tmp_path / "empty") == []
