"""Shared fixtures: IDX files in the real format, an isolated checkpoint folder, a small
generated classification problem, the real FashionMNIST (``real_data``), the built
book (``built_book``, ``site``) and headless Chromium (``browser``).

Every test gets its own ``$ACTFNS_CHECKPOINTS`` (a temporary folder) and
``$ACTFNS_PROGRESS=0``, so nothing is read from or written to the user's cache.
"""

import gzip
import hashlib
import os
import struct
from pathlib import Path

os.environ["MPLBACKEND"] = "Agg"  # before matplotlib is imported (by actfns.plotting)

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from book_helpers import CHROMIUM_ARGS, chromium_path, site_builds  # noqa: E402
from torch.utils.data import TensorDataset  # noqa: E402

import actfns as af  # noqa: E402
import actfns.data  # noqa: E402

# The tests use small tensors, for which intra-op threads only add synchronisation;
# on a busy shared machine they cost 10-50x (one small training epoch: 0.05 s on one
# thread, 0.6-3.5 s on two, measured under load).
torch.set_num_threads(1)

IDX_NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def idx_bytes(array):
    """The IDX encoding of a uint8 array: 0, 0, type 0x08, ndim, big-endian dims, data.

    This is the format of the published FashionMNIST files (LeCun's MNIST format).
    """
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I",
                                                            *array.shape)
    return header + array.tobytes()


def make_fashion_arrays(num_train=120, num_test=40, seed=0):
    """Random 28x28 uint8 images, labels 0..9 (every class; pixels 0 and 255 occur)."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for prefix, n in (("train", num_train), ("t10k", num_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        images[0, 0, 0], images[0, 0, 1] = 0, 255
        labels = (np.arange(n) % 10).astype(np.uint8)
        rng.shuffle(labels)
        arrays[f"{prefix}-images-idx3-ubyte"] = images
        arrays[f"{prefix}-labels-idx1-ubyte"] = labels
    return arrays


def write_idx_files(folder, arrays, gz=False):
    """Write each array as an IDX file (``.gz`` compressed if ``gz``) into ``folder``.

    Returns:
        ``{file name: uncompressed bytes}``.
    """
    folder.mkdir(parents=True, exist_ok=True)
    contents = {}
    for name, array in arrays.items():
        data = idx_bytes(array)
        contents[name] = data
        if gz:
            (folder / f"{name}.gz").write_bytes(gzip.compress(data))
        else:
            (folder / name).write_bytes(data)
    return contents


def files_table(contents):
    """``actfns.data.FILES``-style table (bytes, SHA-256) of the given contents."""
    return {name: (len(data), hashlib.sha256(data).hexdigest())
            for name, data in contents.items()}


def snapshot(folder):
    """Every entry under ``folder``: bytes of files, targets of links."""
    out = {}
    for path in sorted(Path(folder).rglob("*")):
        if path.is_symlink():
            out[str(path)] = ("link", os.readlink(path))
        elif path.is_file():
            out[str(path)] = ("file", path.read_bytes())
        else:
            out[str(path)] = ("folder",)
    return out


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path, monkeypatch):
    """Checkpoints go to a per-test folder; no progress bars."""
    monkeypatch.setenv("ACTFNS_CHECKPOINTS", str(tmp_path / "checkpoints"))
    monkeypatch.setenv("ACTFNS_PROGRESS", "0")


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


@pytest.fixture
def ckpt_dir(tmp_path):
    """An empty checkpoint folder (also ``$ACTFNS_CHECKPOINTS`` for this test)."""
    folder = tmp_path / "checkpoints"
    folder.mkdir(exist_ok=True)
    return folder


@pytest.fixture
def fashion_arrays():
    """The arrays written by ``small_fashion`` (train 120 images, test 40)."""
    return make_fashion_arrays()


@pytest.fixture
def small_fashion(tmp_path, monkeypatch, fashion_arrays):
    """A dataset root holding small IDX files in torchvision's layout.

    ``actfns.data.FILES`` is patched to these files' sizes and SHA-256, so the loader
    runs its real code path, verification included. Returns ``(root, contents)``.
    """
    root = tmp_path / "data"
    contents = write_idx_files(root / "FashionMNIST" / "raw", fashion_arrays)
    monkeypatch.setattr(actfns.data, "FILES", files_table(contents))
    return root, contents


def blobs(num, centers, generator, noise=1.0):
    """``num`` points around ``centers`` (classes, dim) with their class labels."""
    y = torch.randint(len(centers), (num,), generator=generator)
    x = centers[y] + noise * torch.randn(num, centers.shape[1], generator=generator)
    return x, y


def make_blob_data(dim=16, classes=4, sizes=(1200, 400, 400), seed=0, tag="blobs"):
    """A small generated problem in ``FashionMNISTData`` form (Gaussian blobs)."""
    g = torch.Generator().manual_seed(seed)
    centers = 1.5 * torch.randn(classes, dim, generator=g)
    train, val, test = (TensorDataset(*blobs(n, centers, g)) for n in sizes)
    return af.FashionMNISTData(train, val, test, fingerprint=f"{tag}-{seed}",
                               class_names=tuple(f"c{i}" for i in range(classes)))


@pytest.fixture
def blob_data():
    """16-dimensional, 4 well-separated classes: 1200 train, 400 val, 400 test."""
    return make_blob_data()


@pytest.fixture(scope="session")
def real_data():
    """The real FashionMNIST, found without downloading (CI installs the Debian
    package ``dataset-fashion-mnist``). Fails, with how to install it, if absent."""
    try:
        return af.load_fashion_mnist(download=False)
    except af.DatasetError as err:
        problem = str(err)
    pytest.fail(
        "the real FashionMNIST is needed by the tests marked 'realdata' and was "
        f"not found: {problem}\nInstall it (`apt-get install dataset-fashion-mnist`, "
        "or point $ACTFNS_DATA at a folder holding FashionMNIST/raw), or deselect "
        "these tests explicitly with `pytest -m 'not realdata'`.",
        pytrace=False,
    )


# ---- the built book and one browser for the whole session -------------------------
# (one place: two sync Playwright instances cannot live in one thread)

@pytest.fixture(scope="session")
def built_book():
    """``(CompletedProcess, html folder)``; no process if ACTFNS_BOOK_HTML is set."""
    html, _, folder = site_builds()
    return html, folder


@pytest.fixture(scope="session")
def site(built_book):
    """The HTML folder, failing (not skipping) when the build left no site."""
    html = built_book[1]
    if not (html / "index.html").is_file():
        pytest.fail(f"no built site in {html}: the book build failed (see "
                    "test_book_builds_with_warnings_as_errors)", pytrace=False)
    return html


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=chromium_path(),
                                     args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()
