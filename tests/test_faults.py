"""The faults a real user meets (issue 28), each pinned here: records that name the machine that made them,
tampered records and checkpoints, a full disk and unwritable folders, two processes on one store."""

import errno
import json
import multiprocessing
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import torch
from test_store import fake_record

from gmmlib.cli import main
from gmmlib.experiments.promote import promote
from gmmlib.files import NotWritten
from gmmlib.store.records import Store
from gmmlib.training.checkpoint import load_checkpoint
from gmmlib.training.config import RunConfig, config_key
from gmmlib.training.provenance import code_fingerprint
from gmmlib.training.rebuild import model_from_record

ROOT = Path(__file__).resolve().parents[1]
# the elm experiment at the quick preset: ViT without a mask (the shared baseline), ELM-ViT, GMM-ViT
BASE, ELM, GMM = (RunConfig(mask=m, pool="gap", preset="quick") for m in (None, "elm", "gmm"))

# ---- portable records: no absolute path in a committed record ----------------------------------------------

# POSIX (/work/..., a whole "/x"), Windows (C:\..., C:/...) and UNC (\\server\...) absolute paths; a URL's
# "//host/" and a relative "exp1/run.json" are not
ABSOLUTE = re.compile(r"(?<![\w.~/:])/[^\s/]+/|^/[^\s/]+$|(?<![A-Za-z])[A-Za-z]:[\\/]|^\\\\")
COMMITTED = sorted((ROOT / "results").rglob("*.json"))


def _absolute_paths(value, where=""):
    """``(field, value)`` of every string in ``value`` (nested dicts and lists) that holds an absolute path."""
    if isinstance(value, dict):
        return [hit for k, v in value.items() for hit in _absolute_paths(v, f"{where}.{k}")]
    if isinstance(value, list):
        return [hit for i, v in enumerate(value) for hit in _absolute_paths(v, f"{where}[{i}]")]
    return [(where, value)] if isinstance(value, str) and ABSOLUTE.search(value) else []


@pytest.mark.parametrize(
    "text, absolute",
    [
        ("/work/shared/data/cifar10-jpeg.zip", True),
        ("/root", True),
        ("cached in /root/.cache/gmmlib", True),
        ("C:\\Users\\me\\data.zip", True),
        ("d:/data/cifar10", True),
        ("\\\\server\\share\\cifar10", True),
        ("exp1/pit-none-default-cifar10-s0-cpu.json", False),
        ("cifar10-jpeg.zip", False),
        ("https://github.com/gmmlib/gmm-book", False),
        ("JPEG q75 copy of CIFAR-10; accuracies may differ slightly", False),
        ("bf16 autocast", False),
    ],
)
def test_the_absolute_path_pattern_tells_paths_from_names(text, absolute):
    assert bool(ABSOLUTE.search(text)) is absolute


def test_no_committed_record_holds_an_absolute_path_and_its_key_is_its_configs():
    """A record names its data by file name, size and sha256 (``gmmlib.data.portable_source``), never by where
    it lay on the machine that trained it; the one-off rewrite (tools/portable_records.py) kept every key."""
    records = [p for p in COMMITTED if p.parent.name == "records"]
    assert len(records) >= 65
    found = {
        p.relative_to(ROOT).as_posix(): hits for p in COMMITTED if (hits := _absolute_paths(json.loads(p.read_text())))
    }
    assert not found, f"{len(found)} file(s) hold an absolute path, e.g. {next(iter(found.items()))}"
    for path in records:
        record = json.loads(path.read_text())
        assert record["key"] == config_key(record["config"]) == path.name[: -len(".json")], path
        source = record["data_source"]
        assert "path" not in source and "cache_dir" not in source, path
        assert source.get("sha256") or source["kind"] == "generated", f"{path}: its data is not named by sha256"


# ---- tampered records, lists and checkpoints: each named in one line, the rest still read -----------------

HEADLINE = json.loads((ROOT / "results" / "experiments" / "headline.json").read_text())["runs"]


def _set(field, value):
    def tamper(record):
        *path, last = field.split(".")
        inner = record
        for part in path:
            inner = inner[part]
        if value is _DROP:
            del inner[last]
        else:
            inner[last] = value
        return record

    return tamper


_DROP = object()
# an ELM layer's packed weight whose text was cut short (a hand edit, a truncated copy)
_PACKED_CUT_SHORT = {
    "shape": [1, 64, 64],
    "packing": "int32 millionths, little-endian, byte-shuffled, zlib, url-safe base64",
    "millionths": "eNqVdwc8Vf8b",
}


@pytest.fixture
def results(tmp_path):
    """A copy of the committed results (records and lists; no weights, nothing staged)."""
    root = tmp_path / "results"
    shutil.copytree(ROOT / "results" / "experiments", root / "experiments")
    (root / "records").mkdir()
    for path in (ROOT / "results" / "records").glob("*.json"):
        shutil.copy(path, root / "records" / path.name)
    return root


def _cli(capsys, *argv):
    """``(exit status, stdout, stderr lines)`` of one command; a traceback fails the test where it is raised."""
    rc = main(list(map(str, argv)))
    out, err = capsys.readouterr()
    return rc, out, err.strip().splitlines()


@pytest.mark.parametrize(
    "tamper, reason",
    [
        (_set("best_top1", "high"), "its best_top1 is a str ('high'), not a number"),
        (_set("hardware", _DROP), "it has no hardware"),
        (_set("cost", None), "its cost is null, not a dict"),
        (_set("config.seed", "zero"), "its config.seed is a str ('zero'), not an int"),
        (_set("config.model", 5), "its config.model is an int (5), not a str"),
        (_set("config.mask_options", {"num_kernels": "many"}), "its config is not a run's (mask options "),
        (_set("history", [{"epoch": 1}]), "it has no history[0].test_top1"),
        (_set("history", ["epoch 1"]), "its history[0] is a str, not an epoch"),
        (_set("history", []), "its history is empty"),
        (lambda record: [record], "a JSON list, not a run record"),
        (_set("mask_parameters", {"blocks.0.attn.mask": [0.5]}), "its mask_parameters are not {layer: {parameter"),
        (_set("mask_parameters", {"blocks.0.attn.mask": {"weight": _PACKED_CUT_SHORT}}),
         "its mask_parameters do not read: a packed mask parameter of shape [1, 64, 64] does not unpack"),
    ],
    ids=["top1-text", "no-hardware", "null-cost", "seed-text", "model-number", "bad-option", "epoch-fields",
         "epoch-text", "no-epochs", "a-list", "mask-layer-list", "mask-cut-short"],
)  # fmt: skip
def test_a_record_of_wrong_types_or_missing_fields_is_named_and_the_rest_is_read(results, capsys, tamper, reason):
    """Valid JSON that is not a record readers can use: ``Store.get`` gives None with one warning naming the file
    and what is wrong; ``Store.load``, ``gmmlib status`` and ``gmmlib report`` read the other runs."""
    key = HEADLINE[0]
    path = results / "records" / f"{key}.json"
    path.write_text(json.dumps(tamper(json.loads(path.read_text())), indent=1))
    store = Store(results)
    with pytest.warns(UserWarning) as caught:
        assert store.get(key) is None
    assert len(caught) == 1 and str(caught[0].message).startswith(f"{path} is not valid ({reason}"), caught[0]
    assert sorted(r["key"] for r in store.load("headline")) == sorted(HEADLINE[1:])
    for command in ("status", "report"):
        rc, out, err = _cli(capsys, command, "--results", results)
        assert rc == 0 and len(err) == 1 and err[0].startswith(f"gmmlib: note: {path} is not valid"), (command, err)
    assert "GMM-ViT (GAP)" in out  # the headline's other seeds still make its row


def test_a_listed_key_without_a_record_and_a_record_under_another_name_are_named(results, capsys):
    """A list naming a key whose record is gone, and a record file whose name is not its key (renamed or copied
    by hand): each is one note of ``gmmlib status``, and the rest of the store is read."""
    gone, moved = HEADLINE[0], HEADLINE[1]
    (results / "records" / f"{gone}.json").unlink()
    renamed = results / "records" / "0123456789ab.json"
    (results / "records" / f"{moved}.json").rename(renamed)
    store = Store(results)
    with pytest.warns(UserWarning) as caught:
        assert sorted(r["key"] for r in store.load("headline")) == sorted(HEADLINE[2:])
    listed = str(results / "experiments" / "headline.json")
    assert {str(w.message) for w in caught} == {
        f"{listed} lists {k}, which has no record in {results / 'records'}" for k in (gone, moved)
    }
    rc, out, err = _cli(capsys, "status", "--results", results)
    assert rc == 0 and len(err) == 3 and all(line.startswith("gmmlib: note: ") for line in err), err
    assert any(f"{renamed} is not valid (its key is '{moved}', not '0123456789ab' as its name says)" in e for e in err)
    assert sum(f"lists {k}, which has no record" in e for e in err for k in (gone, moved)) == 2
    assert "headline" in out
    rc, out, err = _cli(capsys, "report", "--results", results)
    assert rc == 0 and "GMM-ViT (GAP)" in out and len(err) == 2, err


def _checkpoint_of(config, weights_of, path):
    """A checkpoint that says it is ``config``'s but holds the model (and optimiser) of ``weights_of``."""
    model = weights_of.build_model()
    state = {
        "key": config.key(),
        "config": config.resolved(),
        "epoch": 0,
        "model": model.state_dict(),
        "optimizer": torch.optim.AdamW(model.parameters()).state_dict(),
        "history": [],
        "code": code_fingerprint(),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)


@pytest.mark.parametrize(
    "other, detail",
    [
        (RunConfig(mask="gmm", dataset="synthetic", preset="quick"), r"tensors this model does not have \(e.g. "),
        (RunConfig(model="pit", dataset="synthetic", preset="quick"), "this model's tensors missing"),
    ],
    ids=["masked", "another-family"],
)
def test_a_checkpoint_of_another_model_is_named_in_one_line(tmp_path, monkeypatch, capsys, other, detail):
    """A checkpoint whose key says this run but whose tensors are another model's (a file copied over, edited):
    ``train --resume`` ends with one line naming it, before any data loads, never load_state_dict's traceback."""
    monkeypatch.setenv("GMMLIB_CACHE", str(tmp_path / "cache"))
    config = RunConfig(dataset="synthetic", preset="quick")
    ckpt = tmp_path / "run" / "checkpoint.pt"
    _checkpoint_of(config, other, ckpt)
    before = ckpt.read_bytes()
    rc, _, err = _cli(capsys, "train", "--preset", "quick", "--dataset", "synthetic", "--no-progress",
                      "--out", tmp_path / "run", "--resume")  # fmt: skip
    assert rc == 2 and len(err) == 1, err
    assert re.match(
        rf"gmmlib: error: {re.escape(str(ckpt))} holds another model's weights than this run's \(.*{detail}", err[0]
    )
    assert err[0].endswith("delete it to start this run afresh") and ckpt.read_bytes() == before
    with pytest.raises(ValueError, match="holds another model's weights"):
        load_checkpoint(ckpt, config)


def test_a_weights_file_of_another_model_is_named_in_one_line(tmp_path):
    """``records/<key>.weights.pt`` swapped for another run's: rebuilding the recorded model names the file."""
    config, other = RunConfig(dataset="synthetic", preset="quick"), RunConfig(model="pit", preset="quick")
    weights = tmp_path / "records" / f"{config.key()}.weights.pt"
    weights.parent.mkdir()
    torch.save(other.build_model().state_dict(), weights)
    with pytest.raises(ValueError, match=rf"^{re.escape(str(weights))} holds the weights of another model than \w+: "):
        model_from_record({"config": config.resolved()}, weights)
    torch.save(config.build_model().state_dict(), weights)
    assert model_from_record({"config": config.resolved()}, weights) is not None


# ---- a full disk, read-only folders, odd paths: one line naming the folder, the previous files intact --------


@pytest.fixture
def disk_full(monkeypatch):
    """``disk_full(after=0, only=None)``: of the files gmmlib writes from then on (``only``: those of that name),
    the first ``after`` land and every later one is written to /dev/full, whose writes fail with ENOSPC as on
    a full disk (after a real open, a real write and a real error)."""
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full on this system")
    real, mode = tempfile.mkstemp, os.stat("/dev/full").st_mode

    def arm(after: int = 0, only: str = None) -> None:
        left = [after]

        def mkstemp(*args, **kwargs):
            fd, tmp = real(*args, **kwargs)
            name = Path(tmp).name
            if name.startswith(".gmmlib-probe-") or (only is not None and not name.startswith(f".{only}.")):
                return fd, tmp
            left[0] -= 1
            if left[0] >= 0:
                return fd, tmp
            os.close(fd)
            os.unlink(tmp)
            os.symlink("/dev/full", tmp)  # atomic_write removes the link when the write fails
            return os.open(tmp, os.O_WRONLY), tmp

        monkeypatch.setattr(tempfile, "mkstemp", mkstemp)

    yield arm
    assert os.stat("/dev/full").st_mode == mode  # nothing was done to the device itself


def _files(*roots):
    return {p: p.read_bytes() for root in roots for p in sorted(Path(root).rglob("*")) if p.is_file()}


def _full_line(path: Path) -> str:
    return (
        f"cannot write {path.name} in {path.parent} (No space left on device): {path.name} is unchanged; "
        "free some space there or choose another folder"
    )


@pytest.mark.parametrize("what", ["record", "record-and-weights", "list"])
def test_a_full_disk_fails_a_store_write_in_one_line_and_keeps_what_was_there(tmp_path, disk_full, what):
    store = Store(tmp_path / "results")
    record = fake_record(BASE)
    store.put(record, {"w": torch.zeros(3)})
    store.add("elm", [BASE.key()])
    before = _files(store.root)
    disk_full(after=1 if what == "record-and-weights" else 0)  # the weights land, then the record fails
    with pytest.raises(NotWritten) as caught:
        if what == "list":
            store.add("elm", [ELM.key()])
        else:
            store.put({**record, "best_top1": 99.0}, {"w": torch.ones(3)} if what == "record-and-weights" else None)
    failed = store.index_path("elm") if what == "list" else store.record_path(BASE.key())
    assert str(caught.value) == _full_line(failed) and caught.value.errno == errno.ENOSPC
    assert _files(store.root) == before, "a file changed, or a temporary file was left behind"
    assert store.get(BASE.key())["best_top1"] == record["best_top1"] and store.experiment("elm") == [BASE.key()]


@pytest.mark.parametrize("after", [0, 1, 2, 3])
def test_a_full_disk_halfway_through_a_promote_changes_neither_store(tmp_path, disk_full, capsys, after):
    """The staged ELM replaces a record of the same key and the GMM is new (weights and record each): a full disk
    at any of those writes leaves both stores as they were; the same command completes once there is room."""
    results, staging = Store(tmp_path / "results"), Store(tmp_path / "pending")
    for record in (fake_record(BASE), fake_record(ELM)):
        results.put(record)
    results.add("elm", [BASE.key(), ELM.key()])
    for config in (ELM, GMM):
        staging.put(fake_record(config, top1=51.0), {"w": torch.zeros(1)})
    staging.add("elm", [ELM.key(), GMM.key()])
    before = _files(results.root, staging.root)
    command = ["promote", "elm", "--from", staging.root, "--preset", "quick", "--results", results.root]
    disk_full(after=after)
    rc, _, err = _cli(capsys, *command)
    assert rc == 2 and len(err) == 1, err
    assert re.fullmatch(
        rf"gmmlib: error: cannot write \S+ in {re.escape(str(results.root))}/(records|experiments) \(No space .*",
        err[0],
    )
    assert _files(results.root, staging.root) == before
    disk_full(after=10**6)
    assert _cli(capsys, *command)[0] == 0
    assert results.get(ELM.key())["best_top1"] == 51.0 and sorted(results.experiment("elm")) == sorted(
        c.key() for c in (BASE, ELM, GMM)
    )


@pytest.mark.slow
def test_a_full_disk_at_a_checkpoint_keeps_the_previous_one_and_the_run_resumes(
    tmp_path, monkeypatch, disk_full, capsys
):
    """The first epoch's checkpoint lands, the second's meets a full disk: one line naming the run's folder, the
    first checkpoint intact; ``--resume`` once there is room ends the run from it."""
    monkeypatch.setenv("GMMLIB_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "run"
    train = ["train", "--preset", "quick", "--dataset", "synthetic", "--no-progress", "--out", out]
    disk_full(after=1, only="checkpoint.pt")
    rc, _, err = _cli(capsys, *train)
    assert rc == 2 and err == [f"gmmlib: error: {_full_line(out / 'checkpoint.pt')}"], err
    state = load_checkpoint(out / "checkpoint.pt", RunConfig(dataset="synthetic", preset="quick"))
    assert state["epoch"] == 0 and len(state["history"]) == 1
    disk_full(after=10**6)
    assert _cli(capsys, *train, "--resume")[0] == 0
    assert [h["epoch"] for h in json.loads((out / "result.json").read_text())["history"]] == [1, 2]


def test_a_read_only_folder_fails_a_write_in_one_line_and_is_still_read(tmp_path, monkeypatch, capsys):
    """A read-only file system (EROFS) at a store write is one line naming the folder; a results folder without
    write permission is refused by promote and merge before anything is written, and status and report read it."""
    store = Store(tmp_path / "results")
    store.put(fake_record(BASE))
    store.add("elm", [BASE.key()])
    real = tempfile.mkstemp

    def read_only(*args, dir=None, **kwargs):
        if Path(dir) == store.records_dir:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(Path(dir) / "tmpXXXX"))
        return real(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    with pytest.raises(NotWritten, match=rf"^cannot write {BASE.key()}.json in {re.escape(str(store.records_dir))} "):
        store.put(fake_record(BASE, top1=99.0))
    monkeypatch.undo()
    staging = Store(tmp_path / "pending")
    for config in (ELM, GMM):
        staging.put(fake_record(config))
    staging.add("elm", [ELM.key(), GMM.key()])
    before = _files(store.root, staging.root)
    folders = [store.root, store.records_dir, store.experiments_dir]
    for folder in folders:
        folder.chmod(0o555)
    try:
        for command in (["promote", "elm", "--from", staging.root, "--preset", "quick"], ["merge", staging.root]):
            rc, _, err = _cli(capsys, *command, "--results", store.root)
            assert rc == 2 and len(err) == 1 and "read-only" in err[0] and str(store.root) in err[0], err
        for command in ("status", "report"):
            assert _cli(capsys, command, "--results", store.root)[0] == 0
    finally:
        for folder in folders:
            folder.chmod(0o755)
    assert _files(store.root, staging.root) == before


def test_paths_with_spaces_and_non_ascii_and_a_symlinked_results_folder_work(tmp_path, capsys, disk_full):
    real = tmp_path / "mes résultats d'été ✓"
    link = tmp_path / "results → link"
    link.symlink_to(real, target_is_directory=True)
    staging = Store(tmp_path / "en attente (rerun) ü")
    Store(link).put(fake_record(BASE))
    Store(link).add("elm", [BASE.key()])
    for config in (ELM, GMM):
        staging.put(fake_record(config, top1=51.0), {"w": torch.zeros(1)})
    staging.add("elm", [ELM.key(), GMM.key()])
    assert _cli(capsys, "promote", "elm", "--from", staging.root, "--preset", "quick", "--results", link)[0] == 0
    assert sorted(Store(real).experiment("elm")) == sorted(c.key() for c in (BASE, ELM, GMM))
    assert Store(real).get(GMM.key())["best_top1"] == 51.0 and not (real / "experiments" / ".tmp").exists()
    for command in ("status", "report"):
        rc, _, err = _cli(capsys, command, "--results", link)
        assert rc == 0 and not err, err
    # a staging folder that is the results folder through a link is refused, naming both
    rc, _, err = _cli(capsys, "promote", "elm", "--from", link, "--preset", "quick", "--results", real)
    assert rc == 2 and len(err) == 1 and "is the results store" in err[0], err
    # a full disk there is one line, the odd folder name whole in it
    disk_full()
    with pytest.raises(NotWritten) as caught:
        Store(link).add("notes", [BASE.key()])
    assert str(caught.value) == _full_line(link / "experiments" / "notes.json").replace(
        "notes.json is unchanged", "no notes.json was written"
    )


_ON_TINY_DISK = """
import sys
from pathlib import Path

import torch
from test_store import fake_record

from gmmlib.files import NotWritten, save_torch
from gmmlib.store.records import Store
from gmmlib.training.config import RunConfig

disk = Path(sys.argv[1])
store, record = Store(disk / "results"), fake_record(RunConfig(preset="quick"))
store.put(record)
store.add("elm", [record["key"]])
save_torch(disk / "run" / "checkpoint.pt", {"w": torch.zeros(10)})
before = {p: p.read_bytes() for p in disk.rglob("*") if p.is_file()}
for write in (
    lambda: store.put({**record, "mask_parameters": {"m": [0.5] * 200_000}}),
    lambda: save_torch(disk / "run" / "checkpoint.pt", {"w": torch.zeros(200_000)}),
):
    try:
        write()
    except NotWritten as e:
        print(e)
    assert {p: p.read_bytes() for p in disk.rglob("*") if p.is_file()} == before
"""


@pytest.mark.slow
def test_a_real_tiny_file_system_fails_a_record_and_a_checkpoint_in_one_line_each(tmp_path):
    """The same on a real 256 KiB tmpfs, mounted in a mount namespace of its own (as root, or where user
    namespaces are allowed; skipped elsewhere): nothing of the machine's mounts changes."""
    disk = tmp_path / "tiny disk"
    disk.mkdir()
    script = tmp_path / "on_tiny_disk.py"
    script.write_text(_ON_TINY_DISK)
    mount = 'mount -t tmpfs -o size=256k none "$1" && shift && exec "$@"'
    argv = ["unshare", "--mount", "--map-root-user", "sh", "-c", mount, "sh", disk, sys.executable, script, disk]
    probe = subprocess.run(argv[:6] + ["sh", disk, "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"no mount namespace here: {probe.stderr.strip()[:200]}")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), str(ROOT)])}
    done = subprocess.run(list(map(str, argv)), capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.splitlines() == [
        _full_line(disk / "results" / "records" / f"{RunConfig(preset='quick').key()}.json"),
        _full_line(disk / "run" / "checkpoint.pt"),
    ]


# ---- two processes on one store: no lost update of a list --------------------------------------------------


def _add_keys(root: str, prefix: str, n: int) -> None:
    store = Store(root)
    for i in range(n):
        store.add("notes", [f"{prefix}{i:04d}"])


def _stage_runs_of_another_preset(staging: str, n: int) -> None:
    """A runner training the cpu preset's runs of the elm rerun into staging, one after another."""
    store = Store(staging)
    for seed in range(n):
        record = fake_record(RunConfig(mask="elm", pool="gap", preset="cpu", seed=seed))
        store.put(record)
        store.add("elm", [record["key"]])


@pytest.mark.slow
def test_two_processes_adding_to_one_list_lose_no_key(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    writers = [ctx.Process(target=_add_keys, args=(str(tmp_path), p, 150)) for p in "ab"]
    for w in writers:
        w.start()
    for w in writers:
        w.join(timeout=300)
    assert [w.exitcode for w in writers] == [0, 0]
    assert Store(tmp_path).experiment("notes") == sorted(f"{p}{i:04d}" for p in "ab" for i in range(150))


@pytest.mark.slow
def test_a_promote_beside_a_runner_staging_into_the_same_list_loses_no_key(tmp_path):
    """Promote rewrites the staging list (the promoted runs leave it, the other preset's stay) while a runner adds
    its runs to that list: each of the runner's keys stays listed, with its record."""
    results, staging = Store(tmp_path / "results"), Store(tmp_path / "pending")
    results.put(fake_record(BASE))
    results.add("elm", [BASE.key()])
    runner = multiprocessing.get_context("spawn").Process(
        target=_stage_runs_of_another_preset, args=(str(staging.root), 60)
    )
    runner.start()
    promoted = 0
    while runner.is_alive() or promoted < 3:
        for config in (ELM, GMM):
            staging.put(fake_record(config, top1=50.0 + promoted))
        staging.add("elm", [ELM.key(), GMM.key()])
        promote("elm", staging.root, preset="quick", results=results.root, log=lambda s: None)
        promoted += 1
    runner.join(timeout=300)
    assert runner.exitcode == 0 and promoted >= 3
    expected = {RunConfig(mask="elm", pool="gap", preset="cpu", seed=s).key() for s in range(60)}
    assert set(staging.experiment("elm")) == expected, f"lost: {sorted(expected - set(staging.experiment('elm')))}"
    assert all(staging.get(k) is not None for k in expected)


# ---- `gmmlib run` itself against a full disk and a read-only results folder ------------------------------------
_SYNTHETIC_QUICK = ["--preset", "quick", "--dataset", "synthetic", "--no-progress"]


def _run_elm(capsys, results: Path, work: Path):
    return _cli(capsys, "run", "elm", *_SYNTHETIC_QUICK, "--results", results, "--work-dir", work)


def test_a_full_disk_at_a_runs_record_stops_gmmlib_run_in_one_line_and_the_same_command_completes_it(
    tmp_path, capsys, disk_full, monkeypatch
):
    from gmmlib.experiments import EXPERIMENTS

    store = Store(tmp_path / "results")
    store.put(fake_record(BASE))
    store.add("elm", [BASE.key()])
    before = _files(store.root)
    grid = [c.key() for c in EXPERIMENTS["elm"].configs("quick", "synthetic")]
    disk_full(only=f"{grid[0]}.json")  # the record of the grid's first run cannot be written
    rc, _, err = _run_elm(capsys, store.root, tmp_path / "work")
    assert rc == 2 and len(err) == 1, err
    assert "No space left on device" in err[0] and str(store.records_dir) in err[0], err
    after = _files(store.root)
    assert {k: v for k, v in after.items() if k in before} == before  # what was there is byte-identical
    assert grid[0] not in Store(store.root).keys()
    monkeypatch.undo()  # room again
    rc, _, err = _run_elm(capsys, store.root, tmp_path / "work")
    assert rc == 0, err
    assert set(grid) <= set(Store(store.root).experiment("elm")) and BASE.key() in Store(store.root).experiment("elm")


def test_gmmlib_run_into_a_read_only_results_folder_fails_in_one_line_before_training(tmp_path, capsys):
    store = Store(tmp_path / "results")
    store.put(fake_record(BASE))
    before = _files(store.root)
    folders = [store.root, store.records_dir]
    for folder in folders:
        folder.chmod(0o555)
    try:
        rc, _, err = _run_elm(capsys, store.root, tmp_path / "work")
    finally:
        for folder in folders:
            folder.chmod(0o755)
    assert rc == 2 and len(err) == 1 and "read-only" in err[0] and str(store.root) in err[0], err
    assert not (tmp_path / "work").exists()  # refused before any training
    assert _files(store.root) == before
