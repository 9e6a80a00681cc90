"""FashionMNIST loading: small IDX files in the real format through the real code path
(file finding, Debian unpacking, download fallback, SHA-256 checks, normalisation,
split), batches by index, the data/checkpoint folders, and the real dataset."""

import gzip
import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.datasets
from conftest import files_table, idx_bytes, make_fashion_arrays, write_idx_files
from torch.utils.data import TensorDataset

import actfns as af
import actfns.data

# ---------------------------------------------------------------------------------
# Guards: prove that no download is attempted


@pytest.fixture
def no_download(monkeypatch):
    """torchvision's FashionMNIST, but a download attempt fails the test."""
    real = torchvision.datasets.FashionMNIST
    calls = []

    def guarded(root, train=True, download=False, **kwargs):
        calls.append(download)
        if download:
            raise AssertionError("a download was attempted")
        return real(root, train=train, download=False, **kwargs)

    monkeypatch.setattr(torchvision.datasets, "FashionMNIST", guarded)
    return calls


# ---------------------------------------------------------------------------------
# Small IDX files


def test_loads_small_idx_files(small_fashion, fashion_arrays, no_download):
    root, _ = small_fashion
    data = af.load_fashion_mnist(root, seed=0, num_val=20, download=True)
    assert no_download == []  # read directly: torchvision is not even asked
    assert (len(data.train), len(data.val), len(data.test)) == (100, 20, 40)
    assert data.class_names == af.CLASS_NAMES and len(af.CLASS_NAMES) == 10
    for split in (data.train, data.val, data.test):
        x, y = split.tensors
        assert x.dtype == torch.float32 and x.shape[1:] == (1, 28, 28)
        assert y.dtype == torch.int64 and y.shape == (len(x),)
        assert x.min() >= -1 and x.max() <= 1

    # the test split is the test file, in order, normalised to [-1, 1]
    raw = torch.from_numpy(fashion_arrays["t10k-images-idx3-ubyte"])
    expected = raw.float().unsqueeze(1) / 127.5 - 1
    torch.testing.assert_close(data.test.tensors[0], expected, rtol=0, atol=1e-6)
    assert data.test.tensors[1].tolist() == fashion_arrays[
        "t10k-labels-idx1-ubyte"].tolist()
    assert data.test.tensors[0][0, 0, 0, :2].tolist() == [-1.0, 1.0]  # 0 and 255

    # train + val = the training file, each image exactly once, with its own label
    images = fashion_arrays["train-images-idx3-ubyte"]
    labels = fashion_arrays["train-labels-idx1-ubyte"]
    label_of = {img.tobytes(): int(lab) for img, lab in zip(images, labels)}
    seen = []
    for split in (data.train, data.val):
        x, y = split.tensors
        pixels = ((x.squeeze(1) + 1) * 127.5).round().to(torch.uint8).numpy()
        for img, lab in zip(pixels, y.tolist()):
            assert label_of[img.tobytes()] == lab
            seen.append(img.tobytes())
    assert sorted(seen) == sorted(label_of)


def test_loading_does_not_import_torchvision(small_fashion):
    """importing torchvision.datasets costs over a second in every chapter's kernel."""
    import subprocess
    import sys

    root, _ = small_fashion
    code = ("import sys, actfns as af; af.load_fashion_mnist(sys.argv[1], num_val=20, "
            "verify=False, download=False); "
            "print('torchvision' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(root)], check=True,
                         capture_output=True, text=True).stdout
    assert out.strip() == "False"


@pytest.mark.parametrize("damage", ["magic", "ndim", "short", "long", "empty"])
def test_read_idx_rejects_a_bad_file_by_name(tmp_path, damage):
    good = idx_bytes(np.arange(24, dtype=np.uint8).reshape(2, 3, 4))
    bad = {"magic": b"\0\0\x09" + good[3:], "ndim": good[:3] + b"\x05" + good[4:],
           "short": good[:-1], "long": good + b"\0", "empty": b""}[damage]
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(good)
    expected = np.arange(24).reshape(2, 3, 4).tolist()
    assert actfns.data.read_idx(path).tolist() == expected
    path.write_bytes(bad)
    with pytest.raises(af.DatasetError, match="train-images-idx3-ubyte is not an IDX"):
        actfns.data.read_idx(path)


def test_unverified_load_of_a_damaged_file_is_an_error(small_fashion):
    root, _ = small_fashion
    path = root / "FashionMNIST" / "raw" / "t10k-labels-idx1-ubyte"
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(af.DatasetError, match="t10k-labels-idx1-ubyte is not an IDX"):
        af.load_fashion_mnist(root, num_val=20, verify=False)


def test_normalize():
    images = torch.tensor([[[0, 51, 255]]], dtype=torch.uint8)  # (1, 1, 3)
    out = actfns.data.normalize(images)
    assert out.shape == (1, 1, 1, 3) and out.dtype == torch.float32
    torch.testing.assert_close(out.flatten(), torch.tensor([-1.0, -0.6, 1.0]))


def test_split_is_deterministic_and_independent_of_global_rng(small_fashion):
    root, _ = small_fashion
    torch.manual_seed(1)
    a = af.load_fashion_mnist(root, seed=7, num_val=20, download=False)
    torch.manual_seed(2)
    torch.rand(100)
    b = af.load_fashion_mnist(root, seed=7, num_val=20, download=False)
    c = af.load_fashion_mnist(root, seed=8, num_val=20, download=False)
    for split in ("train", "val", "test"):
        for ta, tb in zip(getattr(a, split).tensors, getattr(b, split).tensors):
            assert torch.equal(ta, tb)
    assert a.fingerprint == b.fingerprint
    assert not torch.equal(a.val.tensors[0], c.val.tensors[0])
    assert a.fingerprint != c.fingerprint
    d = af.load_fashion_mnist(root, seed=7, num_val=30, download=False)
    assert len(d.val) == 30 and d.fingerprint != a.fingerprint


def test_fingerprint_depends_on_the_data(tmp_path, monkeypatch):
    prints = []
    for seed in (0, 1):
        root = tmp_path / f"root{seed}"
        contents = write_idx_files(root / "FashionMNIST" / "raw",
                                   make_fashion_arrays(seed=seed))
        monkeypatch.setattr(actfns.data, "FILES", files_table(contents))
        prints.append(af.load_fashion_mnist(root, num_val=20, download=False)
                      .fingerprint)
    assert prints[0] != prints[1]


@pytest.mark.parametrize("num_val", [0, 120, -5])
def test_num_val_out_of_range(small_fashion, num_val):
    root, _ = small_fashion
    with pytest.raises(ValueError, match="num_val"):
        af.load_fashion_mnist(root, num_val=num_val, download=False)


def test_data_folder_from_environment(small_fashion, monkeypatch, no_download):
    root, _ = small_fashion
    monkeypatch.setenv("ACTFNS_DATA", str(root))
    data = af.load_fashion_mnist(num_val=20)
    assert len(data.test) == 40


# ---------------------------------------------------------------------------------
# SHA-256 verification


def test_modified_file_is_named(small_fashion):
    root, contents = small_fashion
    path = root / "FashionMNIST" / "raw" / "train-labels-idx1-ubyte"
    data = bytearray(contents["train-labels-idx1-ubyte"])
    data[-1] = (data[-1] + 1) % 10  # same size, one label changed
    path.write_bytes(bytes(data))
    with pytest.raises(af.DatasetError, match="train-labels-idx1-ubyte is not the "
                                              "published file"):
        af.load_fashion_mnist(root, download=False)
    af.load_fashion_mnist(root, num_val=20, download=False, verify=False)  # opt out


def test_truncated_file_is_named(small_fashion):
    root, contents = small_fashion
    path = root / "FashionMNIST" / "raw" / "t10k-images-idx3-ubyte"
    path.write_bytes(contents["t10k-images-idx3-ubyte"][:-100])
    with pytest.raises(af.DatasetError, match="t10k-images-idx3-ubyte.*truncated"):
        af.prepare_fashion_mnist(root, download=False, debian_dir=None)


@pytest.mark.parametrize("verify", [True, False])
def test_missing_file_is_named_with_how_to_get_it(small_fashion, verify):
    root, _ = small_fashion
    (root / "FashionMNIST" / "raw" / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(af.DatasetError, match="t10k-labels-idx1-ubyte") as info:
        af.prepare_fashion_mnist(root, download=False, verify=verify, debian_dir=None)
    assert "apt-get install dataset-fashion-mnist" in str(info.value)
    assert "download=True" in str(info.value)


def test_real_files_table_is_the_published_one():
    """actfns.data.FILES against the published sizes and SHA-256 (reference.md)."""
    assert actfns.data.FILES == {
        "train-images-idx3-ubyte": (47040016, "c59f468a2f672dc815687fe0f83887768d799fd8"
                                              "a3f3276145d20f83aa44d888"),
        "train-labels-idx1-ubyte": (60008, "bad3541b69d912435c50bb6ba87bec294ff4f6a2e"
                                           "1246121d8633921760443d9"),
        "t10k-images-idx3-ubyte": (7840016, "5b4141f0afbad91edebe8549f8fcffe087ea10ca"
                                            "49f1dbef5c9a5cd8815ce37b"),
        "t10k-labels-idx1-ubyte": (10008, "0402a96d92fd2663957122ceb108a494c5af83dab"
                                          "82d92729df917d7dec38c34"),
    }


def test_unpatched_table_rejects_small_files(tmp_path):
    """Without patching FILES, small files fail verification (the check is real)."""
    root = tmp_path / "data"
    write_idx_files(root / "FashionMNIST" / "raw", make_fashion_arrays())
    with pytest.raises(af.DatasetError, match="not the published file"):
        af.prepare_fashion_mnist(root, download=False, debian_dir=None)
    assert af.load_fashion_mnist(root, num_val=20, download=False, verify=False)


# ---------------------------------------------------------------------------------
# Where the files come from: root, Debian package, download


@pytest.fixture
def debian_dir(tmp_path, fashion_arrays, monkeypatch):
    """A Debian-style folder of .gz files; FILES patched to their contents."""
    folder = tmp_path / "debian"
    contents = write_idx_files(folder, fashion_arrays, gz=True)
    monkeypatch.setattr(actfns.data, "FILES", files_table(contents))
    return folder, contents


def test_unpacks_the_debian_package_without_download(tmp_path, debian_dir,
                                                     no_download):
    folder, contents = debian_dir
    root = tmp_path / "empty-root"
    assert af.prepare_fashion_mnist(root, download=True, debian_dir=folder) == root
    raw = root / "FashionMNIST" / "raw"
    assert sorted(p.name for p in raw.iterdir()) == sorted(contents)  # no temp files
    for name, data in contents.items():
        assert (raw / name).read_bytes() == data
    assert no_download == []
    # a second call finds the unpacked files in root, even without the package
    assert af.prepare_fashion_mnist(root, download=False, debian_dir=None) == root


def test_files_in_root_win_over_debian_and_download(small_fashion, tmp_path,
                                                    no_download):
    root, contents = small_fashion
    other = tmp_path / "other-debian"
    write_idx_files(other, make_fashion_arrays(seed=5), gz=True)
    af.prepare_fashion_mnist(root, download=True, debian_dir=other)
    raw = root / "FashionMNIST" / "raw"
    assert all((raw / n).read_bytes() == d for n, d in contents.items())
    assert no_download == []


def test_damaged_gz_is_named(tmp_path, debian_dir):
    folder, _ = debian_dir
    gz = folder / "train-images-idx3-ubyte.gz"
    gz.write_bytes(gz.read_bytes()[:200])  # truncated download of the package
    root = tmp_path / "root"
    with pytest.raises(af.DatasetError, match="train-images-idx3-ubyte.gz"):
        af.prepare_fashion_mnist(root, download=False, debian_dir=folder)
    raw = root / "FashionMNIST" / "raw"
    assert not (raw / "train-images-idx3-ubyte").exists()
    assert not list(raw.glob(".*.tmp"))


def test_incomplete_debian_dir_and_no_download(tmp_path, debian_dir):
    folder, _ = debian_dir
    (folder / "t10k-images-idx3-ubyte.gz").unlink()
    with pytest.raises(af.DatasetError, match="t10k-images-idx3-ubyte"):
        af.prepare_fashion_mnist(tmp_path / "root", download=False, debian_dir=folder)


def test_downloads_only_when_files_are_nowhere(tmp_path, monkeypatch, fashion_arrays):
    contents = {}

    def fake_download(root, train=True, download=False, **kwargs):
        assert download, "prepare_fashion_mnist must ask for a download"
        calls.append(Path(root))
        contents.update(write_idx_files(Path(root) / "FashionMNIST" / "raw",
                                        fashion_arrays))

    calls = []
    monkeypatch.setattr(torchvision.datasets, "FashionMNIST", fake_download)
    monkeypatch.setattr(actfns.data, "FILES", files_table(
        {n: idx_bytes(a) for n, a in fashion_arrays.items()}))
    root = tmp_path / "root"
    af.prepare_fashion_mnist(root, download=True, debian_dir=tmp_path / "no-debian")
    assert calls == [root]
    af.prepare_fashion_mnist(root, download=True, debian_dir=None)
    assert calls == [root]  # present now: not downloaded again


def test_failed_download_says_how_to_get_the_data(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise OSError("Name or service not known")

    monkeypatch.setattr(torchvision.datasets, "FashionMNIST", offline)
    with pytest.raises(af.DatasetError, match="download.*failed") as info:
        af.prepare_fashion_mnist(tmp_path, download=True, debian_dir=None)
    assert "Name or service not known" in str(info.value)
    assert "apt-get install dataset-fashion-mnist" in str(info.value)


def test_no_download_when_not_allowed(tmp_path, monkeypatch):
    monkeypatch.setattr(torchvision.datasets, "FashionMNIST",
                        lambda *a, **k: pytest.fail("download attempted"))
    with pytest.raises(af.DatasetError, match="missing"):
        af.prepare_fashion_mnist(tmp_path, download=False, debian_dir=None)


# ---------------------------------------------------------------------------------
# Folders: argument, else environment variable, else default


@pytest.mark.parametrize(("fn", "env", "default"), [
    (af.data_dir, "ACTFNS_DATA", "data"),
    (af.checkpoint_dir, "ACTFNS_CHECKPOINTS", "checkpoints"),
])
def test_folders(fn, env, default, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv(env, raising=False)
    assert fn() == tmp_path / "home" / ".cache" / "actfns" / default
    monkeypatch.setenv(env, "")  # empty: as if unset
    assert fn() == tmp_path / "home" / ".cache" / "actfns" / default
    monkeypatch.setenv(env, str(tmp_path / "from-env"))
    assert fn() == tmp_path / "from-env"
    assert fn(tmp_path / "arg") == tmp_path / "arg"  # the argument wins
    assert fn("~/x") == tmp_path / "home" / "x"
    monkeypatch.chdir(tmp_path)
    assert fn("rel") == tmp_path / "rel" and fn("rel").is_absolute()


# ---------------------------------------------------------------------------------
# Batches by index


def index_dataset(n):
    """X[i] = (i, i), y[i] = i: every batch shows which indices it holds."""
    idx = torch.arange(n)
    return TensorDataset(torch.stack([idx, idx], 1).float(), idx)


def collect(loader):
    out = []
    for X, y in loader:
        assert isinstance(X, torch.Tensor) and isinstance(y, torch.Tensor)
        assert X.shape == (len(y), 2)
        assert torch.equal(X[:, 0].long(), y)  # rows stay with their labels
        out.append(y.tolist())
    return out


def test_batches_in_order():
    got = collect(af.batches(index_dataset(10), batch_size=4))
    assert got == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_batches_drop_last():
    got = collect(af.batches(index_dataset(10), batch_size=4, drop_last=True))
    assert got == [[0, 1, 2, 3], [4, 5, 6, 7]]


def test_batches_shuffle_is_a_reproducible_permutation():
    ds = index_dataset(1000)

    def order(seed):
        torch.manual_seed(seed + 123)  # the global state must not matter
        g = torch.Generator().manual_seed(seed)
        return collect(af.batches(ds, 64, shuffle=True, generator=g))

    a, b, c = order(0), order(0), order(1)
    assert a == b and a != c
    flat = [i for batch in a for i in batch]
    assert sorted(flat) == list(range(1000)) and flat != list(range(1000))
    assert [len(batch) for batch in a] == [64] * 15 + [40]


def test_batches_new_order_each_epoch_with_drop_last():
    g = torch.Generator().manual_seed(0)
    loader = af.batches(index_dataset(100), 32, shuffle=True, drop_last=True,
                        generator=g)
    epoch1, epoch2 = collect(loader), collect(loader)
    assert [len(b) for b in epoch1] == [32, 32, 32] == [len(b) for b in epoch2]
    assert epoch1 != epoch2
    for epoch in (epoch1, epoch2):
        flat = [i for b in epoch for i in b]
        assert len(set(flat)) == 96


# ---------------------------------------------------------------------------------
# The real dataset (CI installs Debian's dataset-fashion-mnist)


@pytest.mark.realdata
def test_real_dataset(real_data):
    data = real_data
    assert (len(data.train), len(data.val), len(data.test)) == (50000, 10000, 10000)
    x, y = data.train.tensors
    assert x.shape == (50000, 1, 28, 28) and x.dtype == torch.float32
    assert x.min().item() == -1.0 and x.max().item() == 1.0
    assert y.dtype == torch.int64
    test_counts = torch.bincount(data.test.tensors[1], minlength=10)
    assert test_counts.tolist() == [1000] * 10
    all_train = torch.cat([data.train.tensors[1], data.val.tensors[1]])
    assert torch.bincount(all_train, minlength=10).tolist() == [6000] * 10
    assert len(data.fingerprint) == 16


@pytest.mark.realdata
def test_real_split_is_reproducible(real_data):
    again = af.load_fashion_mnist(download=False)
    assert again.fingerprint == real_data.fingerprint
    assert torch.equal(again.val.tensors[1], real_data.val.tensors[1])
    assert torch.equal(again.train.tensors[0][:100], real_data.train.tensors[0][:100])


@pytest.mark.realdata
def test_real_debian_package_unpacks_to_the_published_files(tmp_path, no_download):
    if not actfns.data.DEBIAN_DIR.is_dir():
        pytest.fail(f"{actfns.data.DEBIAN_DIR} not found: install the Debian package "
                    "(apt-get install dataset-fashion-mnist), as CI does",
                    pytrace=False)
    root = af.prepare_fashion_mnist(tmp_path, download=True)  # verifies SHA-256
    raw = root / "FashionMNIST" / "raw"
    for name, (size, digest) in actfns.data.FILES.items():
        data = (raw / name).read_bytes()
        assert len(data) == size and hashlib.sha256(data).hexdigest() == digest
    with gzip.open(actfns.data.DEBIAN_DIR / "t10k-labels-idx1-ubyte.gz") as f:
        labels = np.frombuffer(f.read()[8:], dtype=np.uint8)
    assert np.bincount(labels).tolist() == [1000] * 10
    assert no_download == []


def _write(root, arrays):
    write_idx_files(root / "FashionMNIST" / "raw", arrays)


def test_unverified_load_still_checks_label_range(tmp_path, fashion_arrays):
    arrays = dict(fashion_arrays)
    labels = arrays["train-labels-idx1-ubyte"].copy()
    labels[5] = 12
    arrays["train-labels-idx1-ubyte"] = labels
    _write(tmp_path, arrays)
    with pytest.raises(af.DatasetError, match="holds the label 12; FashionMNIST's "
                                              "labels are 0 to 9"):
        af.load_fashion_mnist(tmp_path, num_val=20, download=False, verify=False)


def test_unverified_load_still_checks_swapped_files(tmp_path, fashion_arrays):
    arrays = dict(fashion_arrays)
    arrays["t10k-images-idx3-ubyte"], arrays["t10k-labels-idx1-ubyte"] = (
        arrays["t10k-labels-idx1-ubyte"], arrays["t10k-images-idx3-ubyte"])
    _write(tmp_path, arrays)
    with pytest.raises(af.DatasetError, match=r"t10k-images-idx3-ubyte holds an array "
                                              r"of shape \(40,\), not 28x28 images"):
        af.load_fashion_mnist(tmp_path, num_val=20, download=False, verify=False)


def test_unverified_load_still_checks_the_counts(tmp_path, fashion_arrays):
    arrays = dict(fashion_arrays)
    arrays["train-labels-idx1-ubyte"] = arrays["train-labels-idx1-ubyte"][:-3]
    _write(tmp_path, arrays)
    with pytest.raises(af.DatasetError, match="120 images but 117 labels"):
        af.load_fashion_mnist(tmp_path, num_val=20, download=False, verify=False)
