"""Readers of the on-disk formats: CIFAR pickles, CIFAR-10 JPEG zip and mini npz, SVHN, Tiny-ImageNet, synthetic.

Each data set has a *locator* ``(info, root, split, download) -> Source`` that finds its files in
the data root (or fetches them with torchvision when ``download=True``) and a reader that decodes
one split to uint8 ``(N, H, W, 3)`` images and int64 labels.
"""

from __future__ import annotations

import io
import os
import pickle
import re
import zipfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image

from .info import JPEG_NOTE, Arrays, CorruptDataError, DataNotFoundError, DatasetInfo, Source

__all__ = ["locate_cifar", "locate_mini", "locate_svhn", "locate_tiny", "locate_synthetic", "SYNTHETIC_SEED"]

_MINI_NOTE = (
    "class-balanced 15,000-image subset of the JPEG q75 copy of CIFAR-10 (10,000 train / 5,000 test); "
    "test accuracy is not directly comparable to published CIFAR-10 numbers"
)
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
SYNTHETIC_SEED = 20230911
_TINY_URL = "http://cs231n.stanford.edu/tiny-imagenet-200.zip"


def _decode_images(read: Callable[[str], bytes], names: Sequence[str], size: int, container: Path) -> np.ndarray:
    """Decode image files to a uint8 ``(N, size, size, 3)`` RGB array.

    Args:
        read: Returns the bytes of a member name.
        names: Members to decode, in output order.
        size: Expected height and width.
        container: Zip file or folder the members come from (for error messages).

    Raises:
        CorruptDataError: If a member cannot be read or decoded, or has the wrong size.
    """
    out = np.empty((len(names), size, size, 3), dtype=np.uint8)
    for i, name in enumerate(names):
        try:
            blob = read(name)
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as e:
            raise CorruptDataError(f"{container}: cannot read {name!r} ({e}); the file is damaged") from e
        try:
            with Image.open(io.BytesIO(blob)) as im:
                arr = np.asarray(im.convert("RGB"))
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
            raise CorruptDataError(f"{container}: {name!r} is not a decodable image ({e})") from e
        if arr.shape != (size, size, 3):
            raise CorruptDataError(f"{container}: {name!r} is {arr.shape[1]}x{arr.shape[0]}, expected {size}x{size}")
        out[i] = arr
    return out


@contextmanager
def _open_zip(path: Path) -> Iterator[zipfile.ZipFile]:
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError) as e:
        raise CorruptDataError(f"{path} is not a readable zip archive ({e}); it may be truncated") from e
    with zf:
        yield zf


@contextmanager
def _open_tree(path: Path, marker: str) -> Iterator[tuple[list[str], Callable[[str], bytes]]]:
    """Open a folder or a zip as ``(relative member names, read)``.

    Args:
        path: Folder or zip file.
        marker: A file at the top of the tree (e.g. ``"wnids.txt"``); inside a zip its folder becomes the top.
    """
    if path.is_dir():
        names = []
        for dirpath, _, filenames in os.walk(path):
            rel = os.path.relpath(dirpath, path)
            names += [fn if rel == "." else f"{rel.replace(os.sep, '/')}/{fn}" for fn in filenames]
        yield names, lambda n: (path / n).read_bytes()
        return
    with _open_zip(path) as zf:
        hits = sorted((n for n in zf.namelist() if n == marker or n.endswith("/" + marker)), key=len)
        if not hits:
            raise CorruptDataError(f"{path}: no {marker} inside the zip; is this the right archive?")
        prefix = hits[0][: -len(marker)]
        names = [n[len(prefix) :] for n in zf.namelist() if n.startswith(prefix) and not n.endswith("/")]
        yield names, lambda n: zf.read(prefix + n)


def _missing(info: DatasetInfo, root: Path, wanted: str, extra: str = "") -> DataNotFoundError:
    return DataNotFoundError(
        f"{info.name}: no data found in {root}. Put {wanted} in {root} (set GMMLIB_DATA or pass root=)"
        + (extra if extra else ", or pass download=True on a machine with internet")
        + "."
    )


def _first_existing(root: Path, candidates: Sequence[str]) -> Path | None:
    for c in candidates:
        if (root / c).exists():
            return root / c
    return None


# --------------------------------------------------------------------------------------------------
# CIFAR (torchvision pickles), the offline CIFAR-10 JPEG zip and mini npz
# --------------------------------------------------------------------------------------------------


def _read_cifar_pickles(folder: Path, files: Sequence[str], label_key: str) -> Arrays:
    xs, ys = [], []
    for fn in files:
        p = folder / fn
        if not p.is_file():
            raise DataNotFoundError(f"{p} is missing; the folder {folder} is incomplete (fetch it again)")
        try:
            with open(p, "rb") as f:
                entry = pickle.load(f, encoding="latin1")
            entry = {k.decode() if isinstance(k, bytes) else k: v for k, v in entry.items()}
            data = np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
            labels = np.asarray(entry[label_key], dtype=np.int64).reshape(-1)
        except (pickle.UnpicklingError, EOFError, KeyError, ValueError, TypeError, AttributeError, OSError) as e:
            raise CorruptDataError(f"{p} is not a readable CIFAR pickle ({type(e).__name__}: {e})") from e
        if len(labels) != len(data):
            raise CorruptDataError(f"{p}: {len(data)} images but {len(labels)} labels")
        xs.append(data)
        ys.append(labels)
    x = np.ascontiguousarray(np.concatenate(xs).transpose(0, 2, 3, 1))
    return x, np.concatenate(ys)


def _cifar_batches(info: DatasetInfo, folder: Path, split: str) -> Arrays:
    from torchvision.datasets import CIFAR10, CIFAR100

    cls = CIFAR10 if info.num_classes == 10 else CIFAR100
    files = [fn for fn, _md5 in (cls.train_list if split == "train" else cls.test_list)]
    label_key = "labels" if info.num_classes == 10 else "fine_labels"
    return _read_cifar_pickles(folder, files, label_key)


_JPEG_MEMBER = re.compile(r"^(?:[^/]+/)?(train|test)/([^/]+)/[^/]+\.(?:jpe?g|png)$", re.IGNORECASE)


def _read_jpeg_zip(info: DatasetInfo, path: Path, split: str) -> Arrays:
    """Decode one split of an ImageFolder-in-zip archive (``train|test/<class>/*.jpg``)."""
    with _open_zip(path) as zf:
        members: dict[str, list[tuple[str, str]]] = {"train": [], "test": []}
        for n in zf.namelist():
            m = _JPEG_MEMBER.match(n)
            if m:
                members[m.group(1).lower()].append((n, m.group(2)))
        classes = sorted({c for _, c in members["train"]})  # alphabetical folder order = label (ImageFolder)
        if info.classes is not None and tuple(classes) != info.classes:
            raise CorruptDataError(
                f"{path}: class folders under train/ are {classes}, expected the {len(info.classes)} folders "
                f"{list(info.classes)}"
            )
        index = {c: i for i, c in enumerate(classes)}
        chosen = sorted(members[split])
        unknown = sorted({c for _, c in chosen} - index.keys())
        if unknown:
            raise CorruptDataError(f"{path}: {split}/ has class folders not in train/: {unknown}")
        if not chosen:
            raise CorruptDataError(f"{path}: no images under {split}/<class>/ in the archive")
        names = [n for n, _ in chosen]
        x = _decode_images(zf.read, names, info.image_size, path)
        y = np.fromiter((index[c] for _, c in chosen), dtype=np.int64, count=len(chosen))
    return x, y


def locate_cifar(info: DatasetInfo, root: Path, split: str, download: bool) -> Source:
    from torchvision.datasets import CIFAR10, CIFAR100

    cls = CIFAR10 if info.num_classes == 10 else CIFAR100
    folder = root / cls.base_folder
    if not folder.is_dir() and info.name == "cifar10" and (root / "cifar10-jpeg.zip").is_file():
        zpath = root / "cifar10-jpeg.zip"
        return Source("jpeg-zip", zpath, lambda s: _read_jpeg_zip(info, zpath, s), cache=True, note=JPEG_NOTE)
    if not folder.is_dir() and download:
        cls(str(root), train=True, download=True)  # fetches and extracts both splits
    if not folder.is_dir():
        wanted = f"{cls.base_folder}/ (torchvision's {info.name} folder)"
        if info.name == "cifar10":
            wanted = f"cifar10-jpeg.zip or {wanted}"
        raise _missing(info, root, wanted)
    return Source(cls.base_folder, folder, lambda s: _cifar_batches(info, folder, s))


def _read_mini_npz(info: DatasetInfo, path: Path, split: str) -> Arrays:
    try:
        with np.load(path, allow_pickle=False) as z:
            keys = set(z.files)
            if not {f"x_{split}", f"y_{split}"} <= keys:
                raise CorruptDataError(f"{path}: arrays x_{split}/y_{split} not found (it has {sorted(keys)})")
            x = z[f"x_{split}"]
            y = z[f"y_{split}"].astype(np.int64)
            classes = tuple(str(c) for c in z["classes"]) if "classes" in keys else None
    except CorruptDataError:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as e:
        raise CorruptDataError(f"{path} is not a readable .npz file ({type(e).__name__}: {e}); fetch it again") from e
    if classes is not None and info.classes is not None and classes != info.classes:
        raise CorruptDataError(f"{path}: classes {list(classes)} differ from {list(info.classes)}")
    return x, y


def locate_mini(info: DatasetInfo, root: Path, split: str, download: bool) -> Source:
    path = root / "cifar10-mini.npz"
    if not path.is_file():
        raise _missing(info, root, "cifar10-mini.npz", " (it cannot be downloaded; use 'cifar10' with download=True)")
    return Source("npz", path, lambda s: _read_mini_npz(info, path, s), note=_MINI_NOTE)


# --------------------------------------------------------------------------------------------------
# SVHN (torchvision .mat files)
# --------------------------------------------------------------------------------------------------


def _read_svhn_mat(path: Path) -> Arrays:
    try:
        import scipy.io as sio
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("reading SVHN .mat files needs scipy: pip install scipy") from e
    try:
        mat = sio.loadmat(str(path))
        x = np.ascontiguousarray(np.asarray(mat["X"], dtype=np.uint8).transpose(3, 0, 1, 2))
        y = np.asarray(mat["y"], dtype=np.int64).reshape(-1)
    except Exception as e:  # noqa: BLE001 - scipy raises MatReadError, ValueError, OSError, KeyError, ...
        raise CorruptDataError(f"{path} is not a readable SVHN .mat file ({type(e).__name__}: {e})") from e
    y[y == 10] = 0  # SVHN stores digit 0 as label 10 (same fix as torchvision)
    return x, y


def locate_svhn(info: DatasetInfo, root: Path, split: str, download: bool) -> Source:
    from torchvision.datasets import SVHN

    filename = SVHN.split_list[split][1]
    path = _first_existing(root, [filename, f"svhn/{filename}"])
    if path is None and download:
        SVHN(str(root / "svhn"), split=split, download=True)
        path = root / "svhn" / filename
    if path is None:
        raise _missing(info, root, f"{filename} (torchvision's SVHN file; also looked in svhn/)")
    return Source("svhn-mat", path, lambda s: _read_svhn_mat(path))


# --------------------------------------------------------------------------------------------------
# Tiny-ImageNet (folder or official zip)
# --------------------------------------------------------------------------------------------------


def _read_tiny(info: DatasetInfo, path: Path, split: str) -> Arrays:
    with _open_tree(path, "wnids.txt") as (names, read):
        try:
            wnids = sorted({w.strip() for w in read("wnids.txt").decode().splitlines() if w.strip()})
        except (KeyError, OSError, UnicodeDecodeError) as e:
            raise CorruptDataError(f"{path}: cannot read wnids.txt ({e})") from e
        if len(wnids) != info.num_classes:
            raise CorruptDataError(f"{path}: wnids.txt lists {len(wnids)} classes, expected {info.num_classes}")
        index = {w: i for i, w in enumerate(wnids)}  # sorted wnids = ImageFolder label order
        if split == "train":
            pat = re.compile(r"^train/([^/]+)/images/[^/]+$")
            chosen = sorted(
                (n, m.group(1)) for n in names if (m := pat.match(n)) and n.lower().endswith(_IMAGE_SUFFIXES)
            )
            unknown = sorted({w for _, w in chosen} - index.keys())
            if unknown:
                raise CorruptDataError(f"{path}: train/ has folders not in wnids.txt: {unknown[:5]}")
        else:
            try:
                lines = read("val/val_annotations.txt").decode().splitlines()
            except (KeyError, OSError, UnicodeDecodeError) as e:
                raise CorruptDataError(f"{path}: cannot read val/val_annotations.txt ({e})") from e
            present = set(names)
            chosen = []
            for ln in lines:
                parts = ln.split("\t")
                if len(parts) < 2:
                    continue
                fn, wnid = parts[0].strip(), parts[1].strip()
                member = f"val/images/{fn}"
                if member not in present:
                    raise CorruptDataError(f"{path}: {member} is listed in val/val_annotations.txt but missing")
                if wnid not in index:
                    raise CorruptDataError(f"{path}: val/val_annotations.txt uses {wnid!r}, not in wnids.txt")
                chosen.append((member, wnid))
        if not chosen:
            raise CorruptDataError(f"{path}: no {split} images found")
        x = _decode_images(read, [n for n, _ in chosen], info.image_size, path)
        y = np.fromiter((index[w] for _, w in chosen), dtype=np.int64, count=len(chosen))
    return x, y


def locate_tiny(info: DatasetInfo, root: Path, split: str, download: bool) -> Source:
    path = _first_existing(root, ["tiny-imagenet-200", "tiny-imagenet-200.zip"])
    if path is None and download:
        from torchvision.datasets.utils import download_url

        download_url(_TINY_URL, str(root), "tiny-imagenet-200.zip")
        path = root / "tiny-imagenet-200.zip"
    if path is None:
        raise _missing(info, root, "tiny-imagenet-200.zip or its unpacked folder tiny-imagenet-200/")
    kind = "tiny-imagenet-folder" if path.is_dir() else "tiny-imagenet-zip"
    return Source(kind, path, lambda s: _read_tiny(info, path, s), cache=True)


# --------------------------------------------------------------------------------------------------
# Synthetic
# --------------------------------------------------------------------------------------------------


def _synthetic(info: DatasetInfo, split: str) -> Arrays:
    """Class = base colour + oriented stripe pattern; random phase, brightness and pixel noise."""
    n, c, s = info.expected_count(split), info.num_classes, info.image_size
    proto = np.random.default_rng(SYNTHETIC_SEED)  # class prototypes, shared by all splits
    colours = proto.uniform(0.25, 0.75, size=(c, 3)).astype(np.float32)
    freqs = proto.uniform(1.5, 4.0, size=c).astype(np.float32)
    angles = (np.arange(c) * np.pi / c).astype(np.float32)
    rng = np.random.default_rng([SYNTHETIC_SEED, info.splits.index(split) + 1])
    y = rng.permutation(np.arange(n) % c).astype(np.int64)  # balanced labels
    yy, xx = (np.mgrid[0:s, 0:s].astype(np.float32) / s)[:, None]
    proj = np.cos(angles[y])[:, None, None] * xx + np.sin(angles[y])[:, None, None] * yy
    phase = rng.uniform(0, 2 * np.pi, size=(n, 1, 1)).astype(np.float32)
    stripes = np.sin(2 * np.pi * freqs[y][:, None, None] * proj + phase)
    img = colours[y][:, None, None, :] + 0.15 * stripes[..., None]
    img += rng.normal(0.0, 0.06, size=(n, 1, 1, 1)).astype(np.float32)  # brightness
    img += rng.normal(0.0, 0.12, size=img.shape).astype(np.float32)  # pixel noise
    x = np.clip(np.rint(img * 255.0), 0, 255).astype(np.uint8)
    return x, y


def locate_synthetic(info: DatasetInfo, root: Path, split: str, download: bool) -> Source:
    note = f"deterministic synthetic data (seed {SYNTHETIC_SEED}), not a real data set"
    return Source("synthetic", None, lambda s: _synthetic(info, s), note=note)
