"""gmmlib.results: names from the registries, the headline verdict, the tables the chapters show."""

import pytest

from gmmlib import results
from gmmlib.data import get_info
from gmmlib.data.registry import PAPER_DATASETS
from gmmlib.models.registry import PAPER_FAMILIES, display_name


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
    from gmmlib.experiments import get_experiment

    grid = get_experiment("exp1").configs("quick")
    assert list(dict.fromkeys(c.model for c in grid)) == list(PAPER_FAMILIES)
    assert list(dict.fromkeys(c.dataset for c in grid)) == list(PAPER_DATASETS)
    assert len(grid) == len(PAPER_FAMILIES) * len(PAPER_DATASETS) * 2
