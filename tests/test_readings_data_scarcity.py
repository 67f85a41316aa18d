"""How scarce the smallest training subset is for the unmasked ViT (gmmlib.readings.data_scarcity), on records
whose accuracy and training loss are set, so the answer is known."""

import pytest
from test_store import fake_record

from gmmlib.readings.data_scarcity import CLOSER_FIT, scarcity_summary, scarcity_text, unmasked_by_size
from gmmlib.training.config import RunConfig


def _records(loss_at: dict, top1_at: dict, seeds: int = 2, masked_too: bool = True) -> list:
    out = []
    for n, loss in loss_at.items():
        for s in range(seeds):
            for mask in (None, "gmm") if masked_too else (None,):
                r = fake_record(RunConfig(mask=mask, pool="gap", seed=s, train_size=n), top1=top1_at[n] + s)
                r["history"][-1]["train_loss"] = (
                    loss + (0.5 if mask else 0.0) + s / 100
                )  # the GMM's rows must not count
                r["best_top1"] = top1_at[n] + s + (5.0 if mask else 0.0)
                out.append(r)
    return out


def test_each_size_reads_the_unmasked_vit_only_averaged_over_its_seeds():
    records = _records({50_000: 2.0, 2_500: 1.9}, {50_000: 50.0, 2_500: 48.0})
    rows = unmasked_by_size(records)
    assert [r.size for r in rows] == [2_500, 50_000]  # ascending, whatever the records' order
    small, large = rows
    assert small.seeds == 2 and small.test_top1 == pytest.approx(48.5) and small.train_loss == pytest.approx(1.905)
    assert large.test_top1 == pytest.approx(50.5) and large.train_loss == pytest.approx(2.005)
    # fake records have two epochs: each of 2,500 images is seen 20 times as often as each of 50,000
    assert small.passes == pytest.approx(40.0) and large.passes == pytest.approx(2.0)
    assert small.params == 1000
    # the passes follow from the whole split's steps, not from the largest size recorded so far
    partial = unmasked_by_size(_records({10_000: 2.0, 2_500: 1.9}, {10_000: 50.0, 2_500: 48.0}))
    assert [r.passes for r in partial] == pytest.approx([40.0, 10.0])
    assert unmasked_by_size([r for r in records if r["config"]["preset"] == "paper"]) == []


def test_the_text_says_hardly_more_closely_below_the_threshold_and_more_closely_above():
    mild = scarcity_text(unmasked_by_size(_records({50_000: 2.0, 2_500: 1.96}, {50_000: 50.0, 2_500: 49.0})))
    assert "falls by 1.00 points" in mild and "20-fold cut" in mild and "(2 % lower)" in mild
    assert "hardly more closely" in mild and "only mildly scarce" in mild
    loss_small = 2.0 * (1 - CLOSER_FIT) - 0.05
    scarce = scarcity_text(unmasked_by_size(_records({50_000: 2.0, 2_500: loss_small}, {50_000: 50.0, 2_500: 40.0})))
    assert "falls by 10.00 points" in scarce and "fits them more closely" in scarce and "mildly" not in scarce


def test_with_fewer_than_two_sizes_nothing_is_read():
    assert "not read" in scarcity_text(unmasked_by_size(_records({2_500: 1.9}, {2_500: 48.0})))
    assert "not read" in scarcity_text([])


def test_the_answers_sentence_gives_the_cost_of_the_cut_and_the_regime():
    mild = scarcity_summary(unmasked_by_size(_records({50_000: 2.0, 2_500: 1.96}, {50_000: 50.0, 2_500: 49.0})))
    assert mild.startswith("For scale: over the 20-fold cut from 50,000 to 2,500 images")
    assert "loses 1.00 points of top-1" in mild and "hardly more closely" in mild and "only mildly scarce" in mild
    scarce = scarcity_summary(unmasked_by_size(_records({50_000: 2.0, 2_500: 1.5}, {50_000: 50.0, 2_500: 40.0})))
    assert "(training loss 25 % lower)" in scarce and "scarce at the small end" in scarce
    assert scarcity_summary(unmasked_by_size(_records({2_500: 1.9}, {2_500: 48.0}))) == ""
