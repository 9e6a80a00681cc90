"""Trained networks published with the site (manifest, fetch by fingerprint, checksum
checks) and the course's own published files, served from a loopback HTTP server."""

import hashlib
import json

import pytest
import torch
from book_helpers import serve
from conftest import make_blob_data

import actfns as af
import actfns.course
import actfns.pretrained
import actfns.runs

TINY = dict(hidden_sizes=(16,), input_size=16, num_classes=4,
            recipe=af.Recipe(max_epochs=2, batch_size=64))


@pytest.fixture(autouse=True)
def _fresh_manifests():
    actfns.pretrained._manifests.clear()
    yield
    actfns.pretrained._manifests.clear()


@pytest.fixture
def published(tmp_path, blob_data):
    """A site's store with one trained run, published into ``site/networks``."""
    site_store = af.RunStore(tmp_path / "site-store")
    spec = af.RunSpec("relu", **TINY)
    net, history = af.train_run(spec, blob_data, store=site_store, progress=False)
    manifest = af.publish_runs(site_store, tmp_path / "site" / "networks")
    return spec, net, history, manifest, tmp_path / "site" / "networks"


def same_weights(a, b):
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(),
                                                 b.state_dict().values()))


def test_publish_writes_plain_files_and_a_manifest(published):
    spec, _, history, manifest, folder = published
    entry = manifest["runs"][spec.name]
    assert entry["fingerprint"] == history.fingerprint
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [af.pretrained.MANIFEST] + [f"{spec.name}{s}" for s in
                                    (".config", ".tar", ".history.json")])
    for info in entry["files"].values():
        data = (folder / info["path"]).read_bytes()
        assert info["sha256"] == hashlib.sha256(data).hexdigest()
        assert info["size"] == len(data)
    assert json.loads((folder / "manifest.json").read_text()) == manifest
    # the course's format: the published pair loads with load_model
    assert same_weights(af.load_model(folder, spec.name), published[1])


def test_a_matching_published_run_is_fetched_not_trained(published, blob_data,
                                                          monkeypatch, capsys):
    spec, net, history, _, folder = published
    monkeypatch.setattr(actfns.runs, "fit",
                        lambda *a, **k: pytest.fail("trained instead of fetching"))
    with serve(folder) as url:
        monkeypatch.setenv("ACTFNS_PRETRAINED_URL", url)
        got, h = af.train_run(spec, blob_data, progress=True)
    assert not h.trained and h.source == url
    assert h.test_acc == history.test_acc and same_weights(got, net)
    assert capsys.readouterr().out == ""  # nothing to say: it was there
    # now in the reader's own store: reused without the server
    monkeypatch.delenv("ACTFNS_PRETRAINED_URL")
    again, h2 = af.train_run(spec, blob_data)
    assert not h2.trained and same_weights(again, net)


def test_another_fingerprint_is_not_fetched(published, monkeypatch, capsys):
    spec, _, _, _, folder = published
    other_data = make_blob_data(seed=1)  # other data: other fingerprint
    with serve(folder) as url:
        monkeypatch.setenv("ACTFNS_PRETRAINED_URL", url)
        _, h = af.train_run(spec, other_data, progress=True)
    assert h.trained
    out = capsys.readouterr().out
    assert f"{spec.name}: training it (no published network matches it" in out
    assert "min here" in out and out.count("\n") == 1


def test_a_damaged_download_is_refused(published, blob_data, monkeypatch, capsys):
    spec, _, _, _, folder = published
    tar = folder / f"{spec.name}.tar"
    data = bytearray(tar.read_bytes())
    data[len(data) // 2] ^= 0xFF
    tar.write_bytes(bytes(data))
    with serve(folder) as url:
        monkeypatch.setenv("ACTFNS_PRETRAINED_URL", url)
        _, h = af.train_run(spec, blob_data, progress=True)
    assert h.trained
    assert "checksum mismatch" in capsys.readouterr().out
    assert af.RunStore().get(spec.name)[1].source == "store"  # ours, not the download


def test_an_unreachable_source_falls_back_to_training(blob_data, monkeypatch, capsys,
                                                       tmp_path):
    with serve(tmp_path) as url:
        pass  # the port is closed again: nothing listens there
    monkeypatch.setenv("ACTFNS_PRETRAINED_URL", url)
    spec = af.RunSpec("tanh", **TINY)
    _, h = af.train_run(spec, blob_data, progress=True)
    assert h.trained
    out = capsys.readouterr().out
    assert f"cannot reach {url}" in out and "offline?" in out


def test_fetch_runs_fills_a_store(published, tmp_path):
    spec, net, _, _, folder = published
    store = af.RunStore(tmp_path / "reader")
    with serve(folder) as url:
        assert af.fetch_runs(store, url) == {spec.name: "fetched"}
        assert af.fetch_runs(store, url) == {spec.name: "present"}
    got, h = store.get(spec.name)
    assert same_weights(got, net) and h.source == url


def test_fetch_course_checkpoints_checks_the_pinned_hashes(tmp_path, monkeypatch):
    """The course's files are pinned by SHA-256; this server serves our own files
    under their names, so the pins must refuse them, and accept them once the pins
    are these files' hashes."""
    served = tmp_path / "saved_models" / "tutorial3"
    served.mkdir(parents=True)
    torch.manual_seed(0)
    for name in af.COURSE_ACTIVATIONS:
        af.save_model(af.BaseNetwork(name, hidden_sizes=(8,)), tmp_path / "ours",
                      f"FashionMNIST_{name}")
        for suffix in (".config", ".tar"):
            stem = f"FashionMNIST_{name}"
            src = tmp_path / "ours" / stem / f"{stem}{suffix}"
            (served / src.name).write_bytes(src.read_bytes())
    dest = tmp_path / "course"
    with serve(tmp_path / "saved_models") as url:
        with pytest.raises(ValueError, match="not the course's published file"):
            af.fetch_course_checkpoints(dest, url + "tutorial3/")
        assert not list(dest.glob("*.tar"))  # nothing written for a wrong file
        pins = {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
                for p in served.iterdir()}
        monkeypatch.setattr(actfns.pretrained, "COURSE_CHECKPOINT_SHA256", pins)
        assert af.fetch_course_checkpoints(dest, url + "tutorial3/") == dest
    net = af.load_model(dest, "FashionMNIST_swish")  # the course's flat format
    assert isinstance(net.layers[1], af.Swish)


def test_the_course_pins_are_the_published_sha256():
    pins = actfns.course.COURSE_CHECKPOINT_SHA256
    assert sorted(pins) == sorted(f"FashionMNIST_{a}{s}" for a in af.COURSE_ACTIVATIONS
                                  for s in (".config", ".tar"))
    assert pins["FashionMNIST_relu.tar"] == (
        "0d7184a8ebc940c61580fd2df1c864b1817e1a16a1e3783e47d47d5efc3a6555")
    assert all(len(v) == 64 and int(v, 16) >= 0 for v in pins.values())
    assert actfns.course.COURSE_CHECKPOINT_URL.startswith(
        "https://raw.githubusercontent.com/phlippe/saved_models/")


def test_command_line_publish_list_prune(published, tmp_path, capsys):
    from actfns.__main__ import main

    spec = published[0]
    store = tmp_path / "site-store"
    main(["runs", "list", "--store", str(store)])
    assert spec.name in capsys.readouterr().out
    stamp = tmp_path / "stamp"
    stamp.touch()
    main(["runs", "prune", "--unused-since", str(stamp), "--store", str(store)])
    assert "removed 1 unused run(s)" in capsys.readouterr().out
    assert af.RunStore(store).names() == []
