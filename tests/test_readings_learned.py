"""Readings that chapters 3 and 8 used to compute in their cells, now in gmmlib.readings.learned and
gmmlib.readings.elm: every rule that decides a word of them, on constructed numbers whose answer is known."""

import math

import pytest

from gmmlib.readings.elm import elm_gain_reading, elm_structure_reading, read_elm
from gmmlib.readings.learned import (
    MasksLearned,
    head_locality_reading,
    identity_reading,
    movement_reading,
    own_patch_reading,
    what_masks_learn,
)


def _head(layer, head, alphas, change, m0, m0_after, sigmas=(10.0, 20.0)):
    return {
        "layer": layer,
        "head": head,
        "alpha, step 0": list(alphas),
        "sigma, step 0": list(sigmas),
        "|alpha change|": change,
        "|sigma change|": 0.5,
        "M(0), step 0": m0,
        "M(0), trained": m0_after,
    }


def test_movement_is_read_against_the_starting_spread_and_names_sign_flips():
    # alphas -2 and +2 at step 0: spread (population std) 2; every head moved by 0.1 -> 5 %
    still = {0: [_head("blocks.0", h, (-2.0, 2.0), 0.1, 1.0, 1.1) for h in range(4)]}
    text = movement_reading(still)
    assert text.startswith("**Training barely moves the mask: each $\\alpha$ by 0.10 on average, 5% of the spread")
    assert "(2.00); the sign of $M(0)$ changed in no head.**" in text
    assert "1 seed (4 heads)" in text and "Each $\\sigma$ moved by 0.50, 10% of its spread (5.00)" in text
    flipped = {
        0: [_head("blocks.0", 0, (-2.0, 2.0), 1.5, 4.0, 4.0)],
        3: [_head("blocks.1", 2, (-2.0, 2.0), 1.5, -0.05, 0.2)],
    }
    text = movement_reading(flipped)
    assert text.startswith("**Training moves the mask: each $\\alpha$ by 1.50")  # 75 % of the spread is not "barely"
    assert "changed in 1 of 2 heads.**" in text and "seed 3's `blocks.1` head 2, -0.05 to +0.20" in text
    assert "It started within 0.05 of zero, where the median head's $|M(0)|$ is 2.02." in text
    with pytest.raises(ValueError, match="no GMM head"):
        movement_reading({})


def _rows(model, distances):
    """head_locality rows of one model: {state: [per (layer, head) distance]} on 2 layers x 2 heads."""
    return [
        {"model": model, "state": state, "layer": i // 2, "head": i % 2, "distance": d, "own patch": 0.0}
        for state, values in distances.items()
        for i, d in enumerate(values)
    ]


def test_head_locality_says_which_heads_are_local_and_since_when():
    uniform = 4.0  # local: below 3.2
    rows = _rows("ViT", {"step 0": [4.1, 4.0, 4.2, 4.1], "trained": [3.9, 4.3, 3.5, 4.4]})
    rows += _rows("GMM-ViT", {"step 0": [2.5, 4.0, 3.0, 4.1], "trained": [2.0, 3.0, 3.5, 4.2]})
    text = head_locality_reading(rows, uniform)
    vit, gmm = text.split("\n\n")
    assert vit.startswith("**ViT: no head is local, after training or at step 0.**")
    assert "between 3.50 and 4.40 patches, none below 3.20 (80% of uniform attention's 4.00)" in vit
    assert vit.endswith("It learned no locality these images show.")
    assert gmm.startswith("**GMM-ViT: 2 of 4 heads are local after training, 1 of them already at step 0.**")
    assert "Local from the start: layer 0 head 0 (2.50 to 2.00)." in gmm
    assert "1 became local in training: layer 0 head 1 (4.00 to 3.00)." in gmm
    assert "1 local at step 0 is no longer: layer 1 head 0 (3.00 to 3.50)." in gmm
    lost = head_locality_reading(_rows("M", {"step 0": [2.0, 4.0, 4.0, 4.0], "trained": [4.0] * 4}), uniform)
    assert lost.startswith("**M: no head is local after training.**") and "learned no locality" not in lost


def test_own_patch_reading_splits_heads_by_the_sign_of_m0():
    vit = [{"model": "ViT", "own patch": w} for w in (0.01, 0.03)]
    gmm = [{"model": "GMM", "own patch": w, "M(0)": m} for w, m in ((0.05, 2.0), (0.04, -1.0))]
    text = own_patch_reading(vit + gmm, 64)
    assert "(uniform attention: 1/64 = 0.016): ViT: 0.020 (2 heads); GMM heads with M(0) > 0: 0.050 (1 heads)" in text
    assert "does not turn a query away from itself" in text  # 0.04 >= 1/64
    away = own_patch_reading([{"model": "GMM", "own patch": 0.001, "M(0)": -3.0}], 64)
    assert "look away from their own patch" in away


def test_identity_reading_compares_the_sigma_gradient_with_adams_epsilon():
    gradients = [
        {"mean |dL/dalpha|": 2e-3, "mean |dL/dsigma|": 1e-11, "largest |dL/dsigma|": 2e-11, "mean sigma": 1000.0}
    ]
    text = identity_reading(gradients, {0: [900.0] * 4, 1: [900.0] * 4}, 1000.0, (8, 8), 1e-3, 16)
    assert text.startswith(
        "**`identity` cannot learn locality in a short run: the loss's gradient on its $\\sigma$ is 1e-11, 1,000 times smaller"
    )
    assert "lr $\\cdot g / \\epsilon$ = 2e-06 per step" in text and "the update rounds away" in text
    assert "ends at 900.00 (the same to the 6 decimals" in text and "in all 2 seeds" in text
    assert "common factor of 0.900" in text
    assert f"flat to {1 - math.exp(-98 / 2e6):.0e}" in text  # d^2 = 7^2 + 7^2 on the 8 x 8 grid
    moving = identity_reading(
        [{**gradients[0], "largest |dL/dsigma|": 1e-6}], {0: [850.0, 950.0]}, 1000.0, (8, 8), 1e-3, 16
    )
    assert "a negligible move" in moving and "between 850.00 and 950.00 in the one seed" in moving


def test_the_answer_is_the_bold_sentence_of_each_reading():
    learned = MasksLearned("cpu", [], [], {})
    assert "no trained GMM-ViT" in learned.answer
    learned.texts = {
        "movement": "**A moves.** detail",
        "locality": "**B: none.** x\n\n**C: two.** y",
        "own patch": "**D.**",
    }
    assert learned.answer.endswith("(`cpu` preset; the attention from no saved weights): A moves. B: none. C: two.")


def test_what_masks_learn_without_runs(tmp_path):
    learned = what_masks_learn("synthetic", 4, lambda record, initial=False: None, results=tmp_path)
    assert learned.gmm_runs == [] and learned.texts == {} and "no trained GMM-ViT" in learned.answer
    assert read_elm(tmp_path).run is None and "no trained ELM-ViT" in read_elm(tmp_path).answer


def _structure(distance, query=0.1, key=0.1, diagonal=0.0, rest=0.0):
    return {
        "distance": distance,
        "distance, shuffled (95%)": 0.01,
        "query (row)": query,
        "key (column)": key,
        "diagonal mean": diagonal,
        "off-diagonal mean": rest,
        "std": 1.0,
        "largest |M|": 2.0,
    }


RUN = {"config": {"seed": 0, "preset_values": {"name": "cpu", "epochs": 8, "passes_per_epoch": 1}}}


def test_elm_structure_reading_locality_stripes_and_self_inhibition():
    text = elm_structure_reading({"blocks.0": _structure(0.02), "blocks.1": _structure(0.05, key=0.6)}, RUN)
    assert text.startswith("**No locality: the distance between two patches explains 2% to 5% of the variance")
    assert "in `blocks.1` the key alone explains 60% (the columns of one colour" in text
    assert (
        "**No self-inhibition: in no layer does the diagonal lie clearly below the rest.**" in text
        and "(seed 0, `cpu` preset: 8 epochs of one pass each) against the paper's 100 epochs of 3 passes each" in text
    )
    local = elm_structure_reading({"blocks.0": _structure(0.6, diagonal=-1.5)}, RUN)
    assert local.startswith("**Partly local: the distance between two patches explains up to 60%")
    assert "single patches" not in local and "**Self-inhibition in 1 of 1 layers.**" in local
    with pytest.raises(ValueError, match="no ELM layer"):
        elm_structure_reading({}, RUN)


def test_elm_gain_is_read_by_the_books_one_standard():
    one = {"seeds": 1, "gain": 0.72, "low": math.nan, "high": math.nan, "final_gain": 0.5, "standing": "one seed"}
    text = elm_gain_reading(one, 0.74, pending=2)
    assert text.startswith("**One seed is not read as a gain: ELM-ViT's +0.72 points")
    assert (
        "final epoch +0.50" in text
        and "0.74 points" in text
        and text.endswith("2 more runs of the `elm` grid are not recorded yet.")
    )
    assert "not recorded" not in elm_gain_reading(one, None)
    row = {**one, "seeds": 3, "low": 0.1, "high": 1.2}
    assert elm_gain_reading({**row, "standing": "a lead"}, 0.74).startswith(
        "**A lead, not a finding: over 3 paired seeds"
    )
    assert "holds after Holm's correction" in elm_gain_reading({**row, "standing": "holds after correction"}, 0.74)
    zero = elm_gain_reading({**row, "low": -0.2, "standing": "includes zero"}, 0.74)
    assert zero.startswith("**No gain shown") and "[-0.20, +1.20] includes zero" in zero
    assert "paper publishes no ELM accuracy" in zero and "seed noise" not in zero  # an interval, not the noise
    elsewhere = elm_gain_reading({**row, "standing": "includes zero", "low": -0.2, "experiment": "comparison-seeds",
                                  "hardware": "cpu, batched"}, 0.74)  # fmt: skip
    assert "These seeds are the `comparison-seeds` grid's (trained on cpu, batched); the table above" in elsewhere
    assert "grid's (trained" not in zero  # the elm grid's own seeds need no note
