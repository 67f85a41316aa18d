"""Five ways the store could lose or falsify results without an error (issue 29), each pinned here:
promote and other lists, resume across code versions, staging aliases, repair from a backup, and a
mask that does not fit its tokens."""

import warnings

import pytest
import timm
import torch
from test_store import fake_record

from gmmlib.apply import apply_mask
from gmmlib.attention import MaskedAttention
from gmmlib.cli import main
from gmmlib.experiments.promote import promote
from gmmlib.masks import create
from gmmlib.store.merge import merge
from gmmlib.store.records import Store
from gmmlib.training.config import RunConfig

# the elm experiment at the quick preset: ViT without a mask (the shared baseline), ELM-ViT, GMM-ViT
BASE, ELM, GMM = (RunConfig(mask=m, pool="gap", preset="quick") for m in (None, "elm", "gmm"))


def test_promote_keeps_a_record_that_a_list_outside_the_registry_names(tmp_path):
    """A list of one's own (``experiments/my-notes.json``), of another code version or of a merged store
    is a list of the store like any other: the record it names stays."""
    results, staging = Store(tmp_path / "results"), Store(tmp_path / "pending")
    old_elm = fake_record(RunConfig(mask="elm", pool="gap", preset="quick", init_scheme=1))
    for record in (fake_record(BASE), old_elm):
        results.put(record)
    results.add("elm", [BASE.key(), old_elm["key"]])
    results.add("my-notes", [old_elm["key"]])  # not an experiment of the registry
    for config in (ELM, GMM):
        staging.put(fake_record(config, top1=51.0))
    staging.add("elm", [ELM.key(), GMM.key()])
    done = promote("elm", staging.root, preset="quick", results=results.root, log=lambda s: None)
    assert old_elm["key"] in results, "promote deleted a record that experiments/my-notes.json still names"
    assert done["removed"] == [] and results.experiment("my-notes") == [old_elm["key"]]
    assert old_elm["key"] not in results.experiment("elm")  # it still leaves the promoted experiment's list


def test_a_resumed_run_records_only_what_the_running_code_trained(tmp_path, monkeypatch):
    """A checkpoint left by modified code is not continued by clean code into a record that says
    ``gmmlib_modified: false``: the runner trains the run afresh (one line says so), and an explicit
    ``train(..., resume=True)`` refuses with one line naming the checkpoint and both code fingerprints."""
    from gmmlib.experiments.grids import run_file_name
    from gmmlib.experiments.runner import run_experiment
    from gmmlib.training import loop, provenance

    monkeypatch.setenv("GMMLIB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(provenance, "git_commit", lambda repo=None: {"commit": "abc123", "gmmlib_modified": False})
    config = RunConfig(pool="gap", preset="quick", dataset="synthetic")
    kw = dict(preset="quick", dataset="synthetic", only="mask=none", progress=False)

    def history(record):
        return [{k: v for k, v in e.items() if "second" not in k and k != "data_wait_share"} for e in record["history"]]

    run_experiment("elm", results=tmp_path / "clean", work_dir=tmp_path / "clean-work", log=lambda s: None, **kw)
    clean = Store(tmp_path / "clean").get(config.key())

    # modified code (another initialisation) trains one epoch in the runner's work folder, then stops
    out_dir = tmp_path / "work" / f"{run_file_name(config)}-{config.key()}"
    with monkeypatch.context() as m:
        real_seed = loop.seed_everything
        m.setattr(loop, "seed_everything", lambda seed: real_seed(seed + 1))
        m.setattr(provenance, "code_fingerprint", lambda: "0123456789abcdef" * 4, raising=False)

        class Stopped(Exception):
            pass

        def stop(record):
            raise Stopped

        with pytest.raises(Stopped):
            loop.train(config, out_dir, progress=False, on_epoch=stop)
    assert (out_dir / "checkpoint.pt").is_file()

    lines = []
    run_experiment("elm", results=tmp_path / "results", work_dir=tmp_path / "work", log=lines.append, **kw)
    record = Store(tmp_path / "results").get(config.key())
    assert record["git"]["gmmlib_modified"] is False
    assert history(record) == history(clean), "a record claiming clean code holds the modified code's numbers"
    assert record["best_top1"] == clean["best_top1"]
    assert any("other code" in line and "afresh" in line for line in lines), lines

    # the explicit resume of a checkpoint of other code is refused, naming it and both fingerprints
    monkeypatch.setattr(provenance, "code_fingerprint", lambda: "fedcba9876543210" * 4, raising=False)
    with pytest.raises(ValueError, match=rf"{out_dir / 'checkpoint.pt'} was made by other code .*fedcba987654"):
        loop.train(config, out_dir, resume=True, progress=False)


def test_promote_refuses_a_staging_folder_whose_records_are_the_results_records(tmp_path):
    """A staging folder that reaches the results' records through a symlink is the results store:
    promote deletes nothing, and says why."""
    results = Store(tmp_path / "results")
    for config in (BASE, ELM, GMM):
        results.put(fake_record(config))
    results.add("elm", [c.key() for c in (BASE, ELM, GMM)])
    staging = Store(tmp_path / "pending")
    staging.root.mkdir()
    (staging.root / "records").symlink_to(results.records_dir, target_is_directory=True)
    staging.add("elm", [c.key() for c in (BASE, ELM, GMM)])
    code = main(["promote", "elm", "--from", str(staging.root), "--preset", "quick", "--results", str(results.root)])
    assert all(c.key() in results for c in (BASE, ELM, GMM)), "promote deleted the results' records via the symlink"
    assert code == 2


def test_merge_repairs_an_unreadable_record_from_a_readable_backup(tmp_path):
    """A record of the results that cannot be read is replaced by the backup's readable one (the bad file
    is kept beside it as ``.corrupt``), not counted as already present."""
    results, backup = Store(tmp_path / "results"), Store(tmp_path / "backup")
    backup.put(fake_record(GMM, top1=51.0))
    backup.add("elm", [GMM.key()])
    results.records_dir.mkdir(parents=True)
    results.record_path(GMM.key()).write_text('{"key": "half written')
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the unreadable file is named in a warning while it is there
        done = merge([backup.root], into=results.root)
    assert results.get(GMM.key()) == backup.get(GMM.key()), "the corrupt record was kept over the backup's"
    assert done["copied"] == [GMM.key()] and done["present"] == []
    assert results.record_path(GMM.key()).with_name(f"{GMM.key()}.json.corrupt").read_text() == '{"key": "half written'


def test_a_mask_whose_grid_does_not_fit_the_tokens_is_refused():
    """A mask for a 4 x 4 grid fed 64 tokens, or a timm ViT of dynamic image size fed another size, raises a
    ValueError naming both sizes instead of treating the surplus tokens as unmasked prefix tokens."""
    torch.manual_seed(0)
    attn = MaskedAttention(32, num_heads=2, mask=create("gmm", grid=(4, 4), num_heads=2))
    attn(torch.randn(1, 16, 32))  # the grid's tokens
    attn(torch.randn(1, 17, 32))  # and a CLS token
    with pytest.raises(ValueError, match=r"4x4 grid \(16 tokens\).* 64 tokens"):
        attn(torch.randn(1, 64, 32))
    vit = timm.create_model(
        "vit_tiny_patch16_224", pretrained=False, img_size=32, patch_size=4, num_classes=10, depth=1,
        dynamic_img_size=True,
    ).eval()  # fmt: skip
    apply_mask(vit, "gmm")
    vit(torch.randn(1, 3, 32, 32))  # 8 x 8 patches and the CLS token
    with pytest.raises(ValueError, match=r"8x8 grid \(64 tokens\).* 145 tokens.*1 prefix"):
        vit(torch.randn(1, 3, 48, 48))  # 12 x 12 patches
