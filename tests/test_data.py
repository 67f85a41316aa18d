"""Tests for gmmlib.data on small files written in the real on-disk formats (and the real mini npz if present)."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import pickle
import random
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms as T
from torchvision.transforms import AutoAugmentPolicy

from gmmlib import data
from gmmlib.data import (
    CIFAR10_CLASSES,
    DATASETS,
    JPEG_NOTE,
    ArrayDataset,
    CorruptDataError,
    DataNotFoundError,
    build_transforms,
    describe_source,
    get_info,
    load_arrays,
    subset,
)

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Caches go to tmp_path, and no data root leaks in from the environment."""
    monkeypatch.setenv("GMMLIB_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("GMMLIB_DATA", raising=False)


# ---------------------------------------------------------------------------------------------- writers


def _jpeg(rgb: tuple[int, int, int], size: int = 32, mode: str = "RGB") -> bytes:
    buf = io.BytesIO()
    img = Image.new("RGB", (size, size), rgb)
    if mode == "L":
        img = img.convert("L")
    img.save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def _code(label: int) -> tuple[int, int, int]:
    """A solid colour that encodes a label robustly through JPEG (0..199)."""
    return ((label % 20) * 12 + 10, (label // 20) * 24 + 10, 128)


def _decode_code(img: np.ndarray) -> int:
    r, g = img[..., 0].mean(), img[..., 1].mean()
    return int(round((g - 10) / 24)) * 20 + int(round((r - 10) / 12))


def write_cifar_jpeg_zip(path: Path, n_train: int = 3, n_test: int = 2) -> Path:
    """The offline layout: ZIP_STORED, train|test/<class>/NNNN.jpg, members in sorted order."""
    members = []
    for split, n in (("train", n_train), ("test", n_test)):
        for label, cls in enumerate(CIFAR10_CLASSES):
            members += [(f"{split}/{cls}/{i:04d}.jpg", _jpeg(_code(label))) for i in range(n)]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for name, blob in sorted(members):
            zf.writestr(name, blob)
    return path


def write_cifar_batches(root: Path, n: int = 4, hundred: bool = False) -> dict[str, tuple[np.ndarray, list[int]]]:
    """torchvision's cifar-10-batches-py / cifar-100-python pickle layout (str keys, as unpickled from py2)."""
    rng = np.random.default_rng(1)
    folder = root / ("cifar-100-python" if hundred else "cifar-10-batches-py")
    folder.mkdir(parents=True)
    files = ["train", "test"] if hundred else [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    written = {}
    for fn in files:
        arr = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 100 if hundred else 10, size=n)]
        entry = {"batch_label": fn, "data": arr, "filenames": [f"{fn}_{i}.png" for i in range(n)]}
        if hundred:
            entry |= {"fine_labels": labels, "coarse_labels": [v // 5 for v in labels]}
        else:
            entry["labels"] = labels
        (folder / fn).write_bytes(pickle.dumps(entry, protocol=2))
        written[fn] = (arr, labels)
    meta = {"fine_label_names": [f"c{i}" for i in range(100)]} if hundred else {"label_names": list(CIFAR10_CLASSES)}
    (folder / ("meta" if hundred else "batches.meta")).write_bytes(pickle.dumps(meta, protocol=2))
    return written


def write_tiny_tree(base: Path, n_train: int = 2) -> list[str]:
    """tiny-imagenet-200/: wnids.txt (unsorted), train/<wnid>/images/*.JPEG (+ boxes), val/images + annotations."""
    rnd = random.Random(0)
    wnids = [f"n{rnd.randrange(10**8):08d}" for _ in range(200)]
    assert len(set(wnids)) == 200
    sorted_wnids = sorted(wnids)
    (base / "val" / "images").mkdir(parents=True)
    (base / "test" / "images").mkdir(parents=True)
    (base / "wnids.txt").write_text("\n".join(wnids) + "\n")
    (base / "words.txt").write_text("".join(f"{w}\tthing {w}\n" for w in wnids))
    for w in wnids:
        label = sorted_wnids.index(w)
        d = base / "train" / w / "images"
        d.mkdir(parents=True)
        (base / "train" / w / f"{w}_boxes.txt").write_text(f"{w}_0.JPEG\t0\t0\t63\t63\n")
        for i in range(n_train):
            mode = "L" if (label == 0 and i == 0) else "RGB"  # Tiny-ImageNet has some greyscale JPEGs
            (d / f"{w}_{i}.JPEG").write_bytes(_jpeg(_code(label), 64, mode))
    lines = []
    for k, w in enumerate(reversed(wnids)):
        (base / "val" / "images" / f"val_{k}.JPEG").write_bytes(_jpeg(_code(sorted_wnids.index(w)), 64))
        lines.append(f"val_{k}.JPEG\t{w}\t0\t0\t63\t63")
    (base / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")
    (base / "test" / "images" / "test_0.JPEG").write_bytes(_jpeg((0, 0, 0), 64))
    return sorted_wnids


def zip_tree(folder: Path, path: Path) -> Path:
    """Zip a folder with the folder name as top-level directory, like the official tiny-imagenet-200.zip."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(folder.rglob("*")):
            zf.write(p, f"{folder.name}/{p.relative_to(folder).as_posix()}")
    return path


def write_mini_npz(path: Path, per_class: tuple[int, int] = (3, 2)) -> None:
    rng = np.random.default_rng(2)
    arrays = {}
    for split, n in zip(("train", "test"), per_class):
        y = np.repeat(np.arange(10, dtype=np.int64), n)  # grouped by class, like the real file
        arrays[f"x_{split}"] = rng.integers(0, 256, size=(len(y), 32, 32, 3), dtype=np.uint8)
        arrays[f"y_{split}"] = y
    np.savez(path, classes=np.array(CIFAR10_CLASSES, dtype="<U10"), **arrays)


# ---------------------------------------------------------------------------------------------- registry


def test_registry_facts() -> None:
    assert set(DATASETS) == {"cifar10", "cifar10-mini", "cifar100", "svhn", "tiny-imagenet", "synthetic"}
    assert get_info("cifar10").mean == (0.4914, 0.4822, 0.4465)
    assert get_info("cifar10").std == (0.2470, 0.2435, 0.2616)
    assert get_info("cifar100").num_classes == 100 and get_info("cifar100").std == (0.2673, 0.2564, 0.2762)
    assert get_info("svhn").mean == (0.4377, 0.4438, 0.4728)
    tiny = get_info("tiny-imagenet")
    assert (tiny.num_classes, tiny.image_size, tiny.mean) == (200, 64, (0.4802, 0.4481, 0.3975))
    policies = {n: i.autoaugment_policy for n, i in DATASETS.items()}
    assert policies["cifar10"] == policies["cifar100"] == AutoAugmentPolicy.CIFAR10
    assert policies["svhn"] == AutoAugmentPolicy.SVHN and policies["tiny-imagenet"] == AutoAugmentPolicy.IMAGENET
    mini = get_info("cifar10-mini")
    assert (mini.mean, mini.std, mini.num_classes) == (get_info("cifar10").mean, get_info("cifar10").std, 10)
    assert all(i.image_size == 32 for n, i in DATASETS.items() if n != "tiny-imagenet")
    assert get_info("CIFAR10") is get_info("cifar10") and get_info("T-IMNET") is tiny
    with pytest.raises(dataclasses.FrozenInstanceError):
        get_info("cifar10").num_classes = 3  # type: ignore[misc]


def test_unknown_name_lists_choices() -> None:
    with pytest.raises(ValueError) as e:
        load_arrays("imagenet-1k")
    for name in DATASETS:
        assert name in str(e.value)


def test_unknown_split() -> None:
    with pytest.raises(ValueError, match="unknown split 'validation'.*train, test"):
        load_arrays("synthetic", "validation")
    with pytest.raises(ValueError):
        load_arrays("cifar10", "val", root="/nonexistent")  # 'val' is only an alias for Tiny-ImageNet
    assert get_info("tiny-imagenet").canonical_split("val") == "test"


def test_data_root_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GMMLIB_DATA", str(tmp_path / "env"))
    assert data.data_root() == tmp_path / "env"
    assert data.data_root(tmp_path / "arg") == tmp_path / "arg"
    assert data.cache_dir() == tmp_path / "cache"


# ---------------------------------------------------------------------------------------------- missing / corrupt


@pytest.mark.parametrize(
    ("name", "files"),
    [
        ("cifar10", ["cifar10-jpeg.zip", "cifar-10-batches-py"]),
        ("cifar10-mini", ["cifar10-mini.npz"]),
        ("cifar100", ["cifar-100-python"]),
        ("svhn", ["train_32x32.mat"]),
        ("tiny-imagenet", ["tiny-imagenet-200.zip"]),
    ],
)
def test_missing_data_names_file_and_root(tmp_path: Path, name: str, files: list[str]) -> None:
    root = tmp_path / "empty"
    with pytest.raises(DataNotFoundError) as e:
        load_arrays(name, "train", root=root)
    assert isinstance(e.value, FileNotFoundError)
    msg = str(e.value)
    for f in files + [str(root), "GMMLIB_DATA", "root="]:
        assert f in msg
    assert "download=True" in msg


def test_missing_data_uses_env_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GMMLIB_DATA", str(tmp_path / "from-env"))
    with pytest.raises(DataNotFoundError, match="from-env"):
        describe_source("cifar10")


def test_truncated_zip_names_file(tmp_path: Path) -> None:
    path = write_cifar_jpeg_zip(tmp_path / "cifar10-jpeg.zip")
    blob = path.read_bytes()
    path.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(CorruptDataError, match="cifar10-jpeg.zip"):
        load_arrays("cifar10", root=tmp_path, check_counts=False)


def test_damaged_member_is_named(tmp_path: Path) -> None:
    path = tmp_path / "cifar10-jpeg.zip"
    write_cifar_jpeg_zip(path)
    with zipfile.ZipFile(path) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    bad = "train/cat/0001.jpg"
    members[bad] = members[bad][:-100]  # a truncated JPEG inside an intact archive
    with zipfile.ZipFile(path, "w") as zf:
        for n, b in sorted(members.items()):
            zf.writestr(n, b)
    with pytest.raises(CorruptDataError, match=f"cifar10-jpeg.zip.*{bad}"):
        load_arrays("cifar10", root=tmp_path, check_counts=False)
    load_arrays("cifar10", "test", root=tmp_path, check_counts=False)  # the other split is fine


def test_corrupt_npz_names_file(tmp_path: Path) -> None:
    write_mini_npz(tmp_path / "cifar10-mini.npz")
    blob = (tmp_path / "cifar10-mini.npz").read_bytes()
    (tmp_path / "cifar10-mini.npz").write_bytes(blob[: len(blob) // 3])
    with pytest.raises(CorruptDataError, match="cifar10-mini.npz"):
        load_arrays("cifar10-mini", root=tmp_path, check_counts=False)


# ---------------------------------------------------------------------------------------------- CIFAR-10 JPEG zip


def test_cifar10_jpeg_zip(tmp_path: Path) -> None:
    path = write_cifar_jpeg_zip(tmp_path / "cifar10-jpeg.zip", n_train=3, n_test=2)
    x, y = load_arrays("cifar10", "train", root=tmp_path, check_counts=False)
    assert x.shape == (30, 32, 32, 3) and x.dtype == np.uint8 and y.dtype == np.int64
    assert np.bincount(y).tolist() == [3] * 10
    assert [_decode_code(img) for img in x] == y.tolist()  # folder order = label; cat = 3
    assert y[np.flatnonzero(y == CIFAR10_CLASSES.index("cat"))].size == 3
    xt, yt = load_arrays("cifar10", "test", root=tmp_path, check_counts=False)
    assert xt.shape == (20, 32, 32, 3) and [_decode_code(i) for i in xt] == yt.tolist()
    # The official count guards against partial files.
    with pytest.raises(CorruptDataError, match="expected 50,000"):
        load_arrays("cifar10", root=tmp_path)
    info = describe_source("cifar10", root=tmp_path)
    assert info["kind"] == "jpeg-zip" and info["path"] == str(path) and info["note"] == JPEG_NOTE
    assert info["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert info["size_bytes"] == path.stat().st_size


def test_cache_is_written_and_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_cifar_jpeg_zip(tmp_path / "cifar10-jpeg.zip")
    x1, y1 = load_arrays("cifar10", root=tmp_path, check_counts=False)
    cached = sorted((tmp_path / "cache").glob("*.npz"))
    assert len(cached) == 1 and "cifar10-jpeg.zip" in cached[0].name
    assert not list((tmp_path / "cache").glob("*.tmp"))  # atomic write leaves no temp file

    def no_decode(*args: object, **kwargs: object) -> None:
        raise AssertionError("decoded again although a cache exists")

    monkeypatch.setattr(data.formats, "_decode_images", no_decode)
    x2, y2 = load_arrays("cifar10", root=tmp_path, check_counts=False)
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(y1, y2)
    # A changed source (new mtime) misses the cache and is decoded again.
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    with pytest.raises(AssertionError, match="decoded again"):
        load_arrays("cifar10", root=tmp_path, check_counts=False)
    monkeypatch.undo()
    monkeypatch.setenv("GMMLIB_CACHE", str(tmp_path / "cache"))
    # An unreadable cache file is rebuilt with a warning, never trusted.
    load_arrays("cifar10", root=tmp_path, check_counts=False)
    newest = max((tmp_path / "cache").glob("*.npz"), key=lambda p: p.stat().st_mtime_ns)
    newest.write_bytes(b"garbage")
    with pytest.warns(UserWarning, match="unreadable cache"):
        x3, _ = load_arrays("cifar10", root=tmp_path, check_counts=False)
    np.testing.assert_array_equal(x1, x3)


# ---------------------------------------------------------------------------------------------- torchvision formats


def test_cifar10_batches_preferred_over_zip(tmp_path: Path) -> None:
    written = write_cifar_batches(tmp_path, n=4)
    write_cifar_jpeg_zip(tmp_path / "cifar10-jpeg.zip")
    x, y = load_arrays("cifar10", "train", root=tmp_path, check_counts=False)
    assert x.shape == (20, 32, 32, 3) and y.dtype == np.int64
    arr, labels = written["data_batch_2"]
    np.testing.assert_array_equal(x[4:8], arr.reshape(4, 3, 32, 32).transpose(0, 2, 3, 1))
    assert y[4:8].tolist() == labels
    xt, yt = load_arrays("cifar10", "test", root=tmp_path, check_counts=False)
    assert yt.tolist() == written["test_batch"][1]
    assert describe_source("cifar10", root=tmp_path)["kind"] == "cifar-10-batches-py"
    assert not (tmp_path / "cache").exists()  # arrays need no decoding, so no cache
    (tmp_path / "cifar-10-batches-py" / "test_batch").unlink()
    with pytest.raises(DataNotFoundError, match="test_batch"):
        load_arrays("cifar10", "test", root=tmp_path, check_counts=False)


def test_download_only_when_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torchvision.datasets

    calls = []

    class FakeCIFAR10(torchvision.datasets.CIFAR10):  # no network: "downloads" the small pickle layout
        def __init__(self, root: str, train: bool = True, download: bool = False) -> None:
            calls.append((root, download))
            write_cifar_batches(Path(root), n=2)

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", FakeCIFAR10)
    with pytest.raises(DataNotFoundError):
        load_arrays("cifar10", root=tmp_path)
    assert calls == []
    x, _ = load_arrays("cifar10", root=tmp_path, download=True, check_counts=False)
    assert calls == [(str(tmp_path), True)] and x.shape == (10, 32, 32, 3)
    load_arrays("cifar10", "test", root=tmp_path, download=True, check_counts=False)
    assert len(calls) == 1  # already there: no second download


def test_cifar100_fine_labels(tmp_path: Path) -> None:
    written = write_cifar_batches(tmp_path, n=5, hundred=True)
    x, y = load_arrays("cifar100", "test", root=tmp_path, check_counts=False)
    assert x.shape == (5, 32, 32, 3) and y.tolist() == written["test"][1]
    (tmp_path / "cifar-100-python" / "train").write_bytes(b"\x80\x02not a pickle")
    with pytest.raises(CorruptDataError, match="cifar-100-python/train"):
        load_arrays("cifar100", "train", root=tmp_path, check_counts=False)


def test_svhn_mat(tmp_path: Path) -> None:
    import scipy.io as sio  # a dependency: torchvision reads SVHN with it

    rng = np.random.default_rng(3)
    x = rng.integers(0, 256, size=(6, 32, 32, 3), dtype=np.uint8)
    labels = np.array([10, 1, 2, 10, 9, 5])  # SVHN stores digit 0 as 10
    (tmp_path / "svhn").mkdir()
    sio.savemat(tmp_path / "svhn" / "test_32x32.mat", {"X": x.transpose(1, 2, 3, 0), "y": labels[:, None]})
    xs, ys = load_arrays("svhn", "test", root=tmp_path, check_counts=False)
    np.testing.assert_array_equal(xs, x)
    assert ys.tolist() == [0, 1, 2, 0, 9, 5] and ys.dtype == np.int64
    with pytest.raises(DataNotFoundError, match="train_32x32.mat"):
        load_arrays("svhn", "train", root=tmp_path)


# ---------------------------------------------------------------------------------------------- Tiny-ImageNet


def test_tiny_imagenet_folder_and_zip(tmp_path: Path) -> None:
    folder_root, zip_root = tmp_path / "folder", tmp_path / "zip"
    write_tiny_tree(folder_root / "tiny-imagenet-200", n_train=2)
    zip_root.mkdir()
    zip_tree(folder_root / "tiny-imagenet-200", zip_root / "tiny-imagenet-200.zip")

    x, y = load_arrays("tiny-imagenet", "train", root=folder_root, check_counts=False)
    assert x.shape == (400, 64, 64, 3) and x.dtype == np.uint8 and np.bincount(y).tolist() == [2] * 200
    grey = x[np.flatnonzero(y == 0)[0]]
    assert np.array_equal(grey[..., 0], grey[..., 1])  # greyscale JPEG converted to RGB
    colour = np.flatnonzero(y != 0)
    assert [_decode_code(x[i]) for i in colour] == y[colour].tolist()  # label = index of sorted wnid
    xv, yv = load_arrays("tiny-imagenet", "val", root=folder_root, check_counts=False)
    assert xv.shape == (200, 64, 64, 3) and sorted(yv.tolist()) == list(range(200))
    assert [_decode_code(i) for i in xv] == yv.tolist()

    zx, zy = load_arrays("tiny-imagenet", "train", root=zip_root, check_counts=False)
    np.testing.assert_array_equal(zx, x)
    np.testing.assert_array_equal(zy, y)
    zxv, zyv = load_arrays("tiny-imagenet", "test", root=zip_root, check_counts=False)
    np.testing.assert_array_equal(zxv, xv)
    np.testing.assert_array_equal(zyv, yv)
    assert describe_source("tiny-imagenet", root=zip_root)["kind"] == "tiny-imagenet-zip"
    with pytest.raises(CorruptDataError, match="expected 100,000"):
        load_arrays("tiny-imagenet", "train", root=zip_root)

    (folder_root / "tiny-imagenet-200" / "val" / "images" / "val_7.JPEG").unlink()
    with pytest.raises(CorruptDataError, match="val/images/val_7.JPEG"):
        load_arrays("tiny-imagenet", "val", root=folder_root, check_counts=False)


# ---------------------------------------------------------------------------------------------- mini npz


def test_mini_npz_fixture(tmp_path: Path) -> None:
    write_mini_npz(tmp_path / "cifar10-mini.npz", per_class=(3, 2))
    x, y = load_arrays("cifar10-mini", "train", root=tmp_path, check_counts=False)
    assert x.shape == (30, 32, 32, 3) and y.dtype == np.int64 and np.bincount(y).tolist() == [3] * 10
    with pytest.raises(CorruptDataError, match="expected 10,000"):
        load_arrays("cifar10-mini", "train", root=tmp_path)
    assert "not directly comparable" in describe_source("cifar10-mini", root=tmp_path)["note"]


def test_real_mini_npz() -> None:
    path = SHARED_DATA / "cifar10-mini.npz"
    if not path.is_file():
        pytest.skip(f"the workplace's real CIFAR-10 mini file is not present at {path}")
    x, y = load_arrays("cifar10-mini", "train", root=SHARED_DATA)
    assert x.shape == (10000, 32, 32, 3) and x.dtype == np.uint8 and y.dtype == np.int64
    assert np.bincount(y).tolist() == [1000] * 10
    xt, yt = load_arrays("cifar10-mini", "test", root=SHARED_DATA)
    assert xt.shape == (5000, 32, 32, 3) and np.bincount(yt).tolist() == [500] * 10
    mean = x.reshape(-1, 3).mean(0) / 255
    np.testing.assert_allclose(mean, get_info("cifar10").mean, atol=0.02)
    xs, ys = subset(x, y, 100, seed=0)
    assert np.bincount(ys, minlength=10).tolist() == [10] * 10
    assert describe_source("cifar10-mini", root=SHARED_DATA, sha256=False)["size_bytes"] == path.stat().st_size


# ---------------------------------------------------------------------------------------------- synthetic, subset


def test_synthetic_is_deterministic_and_learnable() -> None:
    x1, y1 = load_arrays("synthetic", "train")
    x2, y2 = load_arrays("synthetic", "train")
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(y1, y2)
    xt, yt = load_arrays("synthetic", "test")
    info = get_info("synthetic")
    assert x1.shape == (info.expected_count("train"), 32, 32, 3) and x1.dtype == np.uint8 and y1.dtype == np.int64
    assert np.bincount(y1).tolist() == [len(y1) // 10] * 10
    assert not np.array_equal(x1[: len(xt)], xt)
    np.testing.assert_allclose(x1.reshape(-1, 3).mean(0) / 255, info.mean, atol=0.01)
    np.testing.assert_allclose(x1.reshape(-1, 3).std(0) / 255, info.std, atol=0.01)
    # A nearest-centroid classifier on mean colour already beats chance (10 %) by far.
    feats = lambda a: a.reshape(len(a), -1, 3).mean(1)  # noqa: E731
    centroids = np.stack([feats(x1[y1 == c]).mean(0) for c in range(10)])
    pred = ((feats(xt)[:, None] - centroids[None]) ** 2).sum(-1).argmin(1)
    assert (pred == yt).mean() > 0.4
    xl, yl = load_arrays("synthetic", "train", limit=50, seed=1)
    assert xl.shape[0] == 50 and np.bincount(yl).tolist() == [5] * 10


def test_subset_balanced_deterministic_shuffled() -> None:
    y = np.repeat(np.arange(10), 50)  # grouped by class, like the mini npz
    x = np.arange(len(y))
    xs, ys = subset(x, y, 95, seed=7)
    assert len(xs) == 95 and sorted(np.bincount(ys).tolist()) == [9] * 5 + [10] * 5
    np.testing.assert_array_equal(y[xs], ys)
    assert len(set(xs.tolist())) == 95
    assert not np.array_equal(xs, np.sort(xs))  # shuffled, not a prefix
    np.testing.assert_array_equal(subset(x, y, 95, seed=7)[0], xs)
    assert not np.array_equal(subset(x, y, 95, seed=8)[0], xs)
    xa, _ = subset(x, y, 10_000, seed=0)
    assert sorted(xa.tolist()) == x.tolist()
    # A small class gives what it has; the others fill up.
    y2 = np.array([0] * 2 + [1] * 20)
    _, ys2 = subset(np.zeros(22), y2, 10, seed=0)
    assert np.bincount(ys2).tolist() == [2, 8]
    with pytest.raises(ValueError):
        subset(x, y, 0)


# ---------------------------------------------------------------------------------------------- transforms, dataset


def test_eval_transform_normalises() -> None:
    info = get_info("cifar10")
    tf = build_transforms("cifar10", train=False)
    img = np.empty((32, 32, 3), np.uint8)
    img[:] = np.round(np.array(info.mean) * 255).astype(np.uint8)
    out = tf(Image.fromarray(img))
    assert out.shape == (3, 32, 32) and out.dtype == torch.float32
    assert out.abs().max() < 0.01  # mean pixel -> ~0
    white = tf(Image.fromarray(np.full((32, 32, 3), 255, np.uint8)))
    torch.testing.assert_close(white[:, 0, 0], (1 - torch.tensor(info.mean)) / torch.tensor(info.std))


def test_train_transform_pipeline() -> None:
    tf = build_transforms("tiny-imagenet", train=True)
    kinds = [type(t) for t in tf.transforms]
    assert kinds == [T.RandomCrop, T.RandomHorizontalFlip, T.AutoAugment, T.ToTensor, T.Normalize, T.RandomErasing]
    crop, _, aa, _, _, erase = tf.transforms
    assert crop.size == (64, 64) and crop.padding == 4 and aa.policy == AutoAugmentPolicy.IMAGENET
    assert erase.p == 0.25 and erase.scale == (0.02, 0.4) and erase.ratio == (0.3, 3.3)
    assert tuple(erase.value) == get_info("tiny-imagenet").mean
    torch.manual_seed(0)
    img = Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    assert tf(img).shape == (3, 64, 64)
    plain = build_transforms("svhn", train=True, autoaugment=False, random_erasing=0)
    assert [type(t) for t in plain.transforms] == [T.RandomCrop, T.RandomHorizontalFlip, T.ToTensor, T.Normalize]
    assert build_transforms("svhn", train=True).transforms[2].policy == AutoAugmentPolicy.SVHN
    with pytest.raises(ValueError):
        build_transforms("cifar10", train=True, random_erasing=1.5)


def test_array_dataset_with_loader() -> None:
    x, y = load_arrays("synthetic", "test", limit=16)
    ds = ArrayDataset(x, y, build_transforms("synthetic", train=True))
    assert len(ds) == 16
    xb, yb = next(iter(torch.utils.data.DataLoader(ds, batch_size=8)))
    assert xb.shape == (8, 3, 32, 32) and xb.dtype == torch.float32 and yb.dtype == torch.int64
    assert yb.tolist() == y[:8].tolist()
    img, label = ArrayDataset(x, y)[3]
    assert img.shape == (3, 32, 32) and 0 <= img.min() and img.max() <= 1 and label == int(y[3])
    raw, _ = ArrayDataset(x, y, to_pil=False)[3]
    assert raw.dtype == torch.uint8 and torch.equal(raw.permute(1, 2, 0), torch.from_numpy(x[3]))
    with pytest.raises(ValueError):
        ArrayDataset(x.astype(np.float32), y)
