"""FashionMNIST held in memory as normalised tensors, served in batches by index.

Files are found in this order, without a download when they are already there:
1. ``<root>/FashionMNIST/raw/`` (torchvision's layout);
2. Debian's ``dataset-fashion-mnist`` package (``/usr/share/datasets/fashion-mnist``),
   unpacked into ``<root>``;
3. torchvision's download (if ``download=True``).
The uncompressed files are then checked against their published SHA-256 and read
directly (IDX is a 16-byte header and raw bytes). torchvision is imported only to
download: importing ``torchvision.datasets`` costs more than a second, and every
chapter of the book loads the data in a fresh kernel.
"""

import gzip
import hashlib
import math
import shutil
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import (
    BatchSampler,
    RandomSampler,
    SequentialSampler,
    TensorDataset,
)

from .env import atomic_write, data_dir, folder_exists

__all__ = [
    "CLASS_NAMES",
    "DEBIAN_DIR",
    "FashionMNISTData",
    "DatasetError",
    "prepare_fashion_mnist",
    "load_fashion_mnist",
    "batches",
    "batch_views",
    "IndexBatches",
    "normalize",
    "read_idx",
]

CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
               "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")

# uncompressed IDX file -> (bytes, SHA-256), from Xiao et al. (2017)
FILES = {
    "train-images-idx3-ubyte": (47040016, "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"),  # noqa: E501
    "train-labels-idx1-ubyte": (60008, "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"),  # noqa: E501
    "t10k-images-idx3-ubyte": (7840016, "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"),  # noqa: E501
    "t10k-labels-idx1-ubyte": (10008, "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"),  # noqa: E501
}

HOW_TO_GET = (
    "Get FashionMNIST in one of three ways: (1) online, call with download=True "
    "(torchvision fetches it); (2) offline on Debian/Ubuntu, `apt-get install "
    "dataset-fashion-mnist` (files in /usr/share/datasets/fashion-mnist); (3) copy the "
    "four uncompressed IDX files into {raw}."
)


class DatasetError(RuntimeError):
    """A dataset file is missing or is not the published one."""


def _sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _unpack_debian(raw, source):
    """Decompress Debian's .gz files into ``raw`` (each written atomically)."""
    for name in FILES:
        gz = source / f"{name}.gz"
        if not (raw / name).is_file() and gz.is_file():
            try:
                with gzip.open(gz, "rb") as src:
                    atomic_write(raw / name,
                                 lambda f, src=src: shutil.copyfileobj(src, f))
            except (OSError, EOFError, zlib.error) as err:  # truncated/garbled .gz
                raise DatasetError(
                    f"cannot unpack {gz} into {raw / name} ({err}); if the .gz file "
                    "is damaged: apt-get install --reinstall dataset-fashion-mnist"
                ) from None


def _verify(raw):
    for name, (size, digest) in FILES.items():
        path = raw / name
        if not path.is_file():
            raise DatasetError(f"missing {path}. " + HOW_TO_GET.format(raw=raw))
        if path.stat().st_size != size or _sha256(path) != digest:
            raise DatasetError(
                f"{path} is not the published file (expected {size} bytes, SHA-256 "
                f"{digest[:12]}...): it is truncated or modified. Delete it, then "
                + HOW_TO_GET.format(raw=raw)
            )


def prepare_fashion_mnist(root=None, download=True, verify=True, debian_dir=DEBIAN_DIR):
    """Make sure the four raw IDX files are in ``<root>/FashionMNIST/raw``.

    Returns:
        the dataset root (``torchvision.datasets.FashionMNIST`` reads it too).
    Raises:
        DatasetError: a file is missing (and cannot be unpacked or downloaded) or, with
            ``verify``, differs from the published file; the message names the file.
    """
    root = data_dir(root)
    raw = root / "FashionMNIST" / "raw"
    folder_exists(raw, "ACTFNS_DATA")  # an unsearchable parent: said clearly
    if not all((raw / name).is_file() for name in FILES):
        if debian_dir is not None and Path(debian_dir).is_dir():
            _unpack_debian(raw, Path(debian_dir))
        if not all((raw / name).is_file() for name in FILES) and download:
            from torchvision.datasets import FashionMNIST

            try:
                FashionMNIST(root, train=True, download=True)
            except Exception as err:  # network errors come in many types
                raise DatasetError(
                    f"download of FashionMNIST into {raw} failed ({err}). "
                    + HOW_TO_GET.format(raw=raw)
                ) from None
    if verify:
        _verify(raw)
    elif not all((raw / name).is_file() for name in FILES):
        missing = [name for name in FILES if not (raw / name).is_file()]
        raise DatasetError(f"missing {', '.join(missing)} in {raw}. "
                           + HOW_TO_GET.format(raw=raw))
    return root


def normalize(images):
    """uint8 images in [0, 255] -> float32 in [-1, 1] (ToTensor + Normalize(0.5, 0.5)).

    ``(N, 28, 28)`` uint8 -> ``(N, 1, 28, 28)`` float32.
    """
    return images.unsqueeze(1).float().div(255).sub(0.5).div(0.5)


def read_idx(path):
    """An IDX file of unsigned bytes (FashionMNIST's format) as a uint8 tensor.

    Images: ``(N, 28, 28)``; labels: ``(N,)``.

    Raises:
        DatasetError: the header is not that of a uint8 IDX file, or the size does not
            match it.
    """
    data = bytearray(Path(path).read_bytes())
    ndim = data[3] if len(data) >= 4 and data[:3] == b"\0\0\x08" else 0
    shape = (struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
             if 1 <= ndim <= 3 and len(data) >= 4 + 4 * ndim else None)
    if shape is None or len(data) != 4 + 4 * ndim + math.prod(shape):
        raise DatasetError(
            f"{path} is not an IDX file of unsigned bytes (bad header or size, "
            f"{len(data)} bytes): it is truncated or modified. Delete it, then "
            + HOW_TO_GET.format(raw=Path(path).parent))
    return torch.frombuffer(data, dtype=torch.uint8, offset=4 + 4 * ndim).view(shape)


def _check_split(raw, prefix, images, labels):
    """Shapes and label range of one split (also when SHA-256 checks are off)."""
    where = f"{raw}/{prefix}-*"
    if images.dim() != 3 or tuple(images.shape[1:]) != (28, 28):
        raise DatasetError(f"{raw / f'{prefix}-images-idx3-ubyte'} holds an array of "
                           f"shape {tuple(images.shape)}, not 28x28 images (a label "
                           "file in its place?). " + HOW_TO_GET.format(raw=raw))
    if labels.dim() != 1:
        raise DatasetError(f"{raw / f'{prefix}-labels-idx1-ubyte'} holds an array of "
                           f"shape {tuple(labels.shape)}, not a list of labels (an "
                           "image file in its place?). " + HOW_TO_GET.format(raw=raw))
    if len(images) != len(labels) or len(labels) == 0:
        raise DatasetError(f"{where}: {len(images)} images but {len(labels)} labels. "
                           + HOW_TO_GET.format(raw=raw))
    if int(labels.max()) >= len(CLASS_NAMES):
        raise DatasetError(f"{raw / f'{prefix}-labels-idx1-ubyte'} holds the label "
                           f"{int(labels.max())}; FashionMNIST's labels are 0 to "
                           f"{len(CLASS_NAMES) - 1}. " + HOW_TO_GET.format(raw=raw))


@dataclass
class FashionMNISTData:
    """Train/validation/test splits as ``TensorDataset``s of (images, labels).

    Images are ``(N, 1, 28, 28)`` float32 in [-1, 1]; labels ``(N,)`` int64.
    ``fingerprint`` identifies the files and the split (for checkpoint reuse).
    """

    train: TensorDataset
    val: TensorDataset
    test: TensorDataset
    fingerprint: str
    class_names: tuple = CLASS_NAMES


def load_fashion_mnist(root=None, seed=42, num_val=10000, download=True, verify=True):
    """Load FashionMNIST and split the 60,000 training images into train/validation.

    Args:
        root: dataset root (``None``: ``$ACTFNS_DATA`` or ``~/.cache/actfns/data``).
        seed: seed of the train/validation split; it uses its own generator, so the
            split never depends on the global random state.
        num_val: images held out for validation (10,000 as in the course).
        download: allow torchvision to download missing files.
        verify: check each file's SHA-256 against the published one.
    """
    root = prepare_fashion_mnist(root, download=download, verify=verify)
    raw = root / "FashionMNIST" / "raw"
    train_x, train_y, test_x, test_y = (read_idx(raw / name) for name in FILES)
    _check_split(raw, "train", train_x, train_y)
    _check_split(raw, "t10k", test_x, test_y)
    n = len(train_y)
    if not 0 < num_val < n:
        raise ValueError(f"num_val must be between 1 and {n - 1}, got {num_val}")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    train_y, test_y = train_y.long(), test_y.long()
    x = normalize(train_x)
    val_idx, train_idx = perm[:num_val], perm[num_val:]
    h = hashlib.sha256(f"seed={seed};num_val={num_val};".encode())
    for part in (train_x, train_y, test_x, test_y):
        h.update(part.numpy().tobytes())
    return FashionMNISTData(
        train=TensorDataset(x[train_idx], train_y[train_idx]),
        val=TensorDataset(x[val_idx], train_y[val_idx]),
        test=TensorDataset(normalize(test_x), test_y),
        fingerprint=h.hexdigest()[:16],
    )


def _tensors(dataset):
    if not isinstance(dataset, TensorDataset):
        raise TypeError("expected a TensorDataset (or use TensorDataset(X, y)), got "
                        f"{type(dataset).__name__}")
    return dataset.tensors


class IndexBatches:
    """Batches of a ``TensorDataset``, each gathered by one ``index_select`` per tensor.

    The order is PyTorch's: a ``BatchSampler`` over a ``RandomSampler`` (a new
    permutation drawn from ``generator`` every epoch) or a ``SequentialSampler``. No
    per-image Python work, no collation; every batch is a copy. Iterate once per epoch;
    ``len()`` is the number of batches.
    """

    def __init__(self, dataset, batch_size=256, shuffle=False, drop_last=False,
                 generator=None):
        self.tensors = _tensors(dataset)
        sampler = (RandomSampler(dataset, generator=generator) if shuffle
                   else SequentialSampler(dataset))
        self.sampler = BatchSampler(sampler, batch_size, drop_last=drop_last)

    def __len__(self):
        return len(self.sampler)

    def __iter__(self):
        for idx in self.sampler:
            idx = torch.tensor(idx, device=self.tensors[0].device)  # (batch,) int64
            yield tuple(t.index_select(0, idx) for t in self.tensors)


def batches(dataset, batch_size=256, shuffle=False, drop_last=False, generator=None):
    """``IndexBatches`` of ``(X, y)`` from a ``TensorDataset``, re-iterable per epoch.

    Args:
        generator: ``torch.Generator`` for the shuffle order (reproducible batches).
    """
    return IndexBatches(dataset, batch_size, shuffle, drop_last, generator)


def batch_views(dataset, batch_size):
    """In-order batches as views into ``dataset`` (no copy): only for passes that read
    them (evaluation, diagnostics), never modify them in place."""
    if type(batch_size) is not int or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    tensors = _tensors(dataset)
    for start in range(0, len(dataset), batch_size):
        yield tuple(t[start:start + batch_size] for t in tensors)
