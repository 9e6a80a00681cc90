"""RunStore: a run's config, weights and history published together, reused only when
every file is intact and the fingerprint matches; checkpoints actfns did not write are
never reused or replaced. (kill -9, concurrent processes, every single-byte change
and permissions: ``test_faults.py``.)"""

import json
import os
import threading
import time
from pathlib import Path

import pytest
import torch
from conftest import snapshot

import actfns as af
import actfns.checkpoints
import actfns.env
from actfns.store import FILES, HISTORY


def small_net(seed=0, alpha=0.1):
    torch.manual_seed(seed)
    return af.BaseNetwork(af.LeakyReLU(alpha), input_size=12, num_classes=3,
                          hidden_sizes=(8, 6))


def make_history(fingerprint="fp", test_acc=0.5, name="run"):
    return af.History(name, train_loss=[1.0], train_acc=[0.4], val_acc=[0.45],
                      epoch_time=[0.1], best_epoch=1, best_val_acc=0.45,
                      test_acc=test_acc, fingerprint=fingerprint)


def same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return list(sa) == list(sb) and all(torch.equal(sa[k], sb[k]) for k in sa)


def listing(folder):
    return sorted(p.name for p in Path(folder).iterdir())


def course_pair(folder, name, net):
    """NAME.config and NAME.tar as the course's code writes them."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.config").write_text(json.dumps(net.config))
    torch.save(net.state_dict(), folder / f"{name}.tar")


@pytest.fixture
def store(ckpt_dir):
    return af.RunStore(ckpt_dir)


@pytest.fixture
def stored(store):
    net = small_net()
    store.put("run", net, make_history())
    return store, net


def version_of(store, name):
    return store.folder / os.readlink(store.path(name))


# ---------------------------------------------------------------------------------
# A run, whole


def test_put_then_get_returns_the_same_run(stored):
    store, net = stored
    got, history = store.get("run", "fp")
    assert same_weights(got, net) and got.config == net.config
    assert history.trained is False and history.source == "store"
    assert history.test_acc == 0.5 and history.fingerprint == "fp"
    version = version_of(store, "run")
    assert listing(store.folder) == [".run.lock", version.name, "run"]
    assert listing(version) == ["run.config", "run.history.json", "run.tar"]
    recorded = json.loads((version / "run.history.json").read_text())["sha256"]
    assert set(recorded) == {".config", ".tar"}
    import hashlib

    for suffix, digest in recorded.items():
        assert hashlib.sha256((version / f"run{suffix}").read_bytes()).hexdigest() \
            == digest


def test_get_loads_into_a_given_network(stored):
    store, net = stored
    target = small_net(seed=7)
    got, _ = store.get("run", "fp", net=target)
    assert got is target and same_weights(target, net)


def test_a_failed_get_leaves_the_given_network_as_it_was(stored):
    store, _ = stored
    tar = version_of(store, "run") / "run.tar"
    tar.chmod(0o644)
    tar.write_bytes(tar.read_bytes()[:-3])
    target, initial = small_net(seed=7), small_net(seed=7)
    with pytest.raises(af.CheckpointError):
        store.get("run", "fp", net=target)
    assert same_weights(target, initial)


def test_another_fingerprint_is_stale(stored):
    store, _ = stored
    with pytest.raises(af.CheckpointError, match="another run") as info:
        store.get("run", "other")
    assert info.value.kind == "stale"
    assert store.get("run")[1].fingerprint == "fp"  # any fingerprint


def test_a_missing_run_is_missing(store):
    with pytest.raises(af.CheckpointError, match="no checkpoint run") as info:
        store.get("run")
    assert info.value.kind == "missing"


def test_put_replaces_our_run_and_keeps_one_version(stored):
    store, _ = stored
    first = version_of(store, "run")
    newer = small_net(seed=1)
    store.put("run", newer, make_history("fp2", 0.75))
    got, history = store.get("run", "fp2")
    assert same_weights(got, newer) and history.test_acc == 0.75
    assert not first.exists()
    assert listing(store.folder) == [".run.lock", version_of(store, "run").name, "run"]


@pytest.mark.parametrize(("file", "change", "named"), [
    ("run.tar", lambda b: b[:200] + bytes([b[200] ^ 4]) + b[201:], "run.tar"),
    ("run.config", lambda b: b.replace(b"0.1", b"0.2"), "run.config"),
    ("run.history.json", lambda b: b.replace(b"0.5", b"0.6"), "run.history.json"),
    ("run.history.json", lambda b: b.replace(b'"fp"', b'"fq"'), "run.history.json"),
    ("run.history.json", lambda b: b[:-1], "run.history.json"),
])
def test_a_changed_byte_is_damage_naming_the_file(stored, file, change, named):
    """A history whose test accuracy or fingerprint changed, or a config whose alpha
    changed, would otherwise be read as valid: the version's SHA-256 catches it."""
    store, _ = stored
    path = version_of(store, "run") / file
    path.chmod(0o644)
    path.write_bytes(change(path.read_bytes()))
    with pytest.raises(af.CheckpointError, match="damaged") as info:
        store.get("run", "fp")
    assert info.value.kind == "damaged"
    assert str(version_of(store, "run") / named) in str(info.value)


def test_put_files_refuses_a_history_that_does_not_describe_the_files(store):
    good = small_net()
    files = actfns.checkpoints.checkpoint_bytes(good)
    history = make_history()
    history.sha256 = {".config": "0" * 64, ".tar": "0" * 64}
    files[HISTORY] = json.dumps(history.to_dict()).encode()
    with pytest.raises(ValueError, match="does not record the SHA-256"):
        store.put_files("run", files)
    with pytest.raises(ValueError, match="not a readable training history"):
        store.put_files("run", {**files, HISTORY: b"{"})
    with pytest.raises(ValueError, match="a run is the files"):
        store.put_files("run", {".tar": files[".tar"]})
    assert not store.path("run").exists()


# ---------------------------------------------------------------------------------
# What actfns did not write is kept


def _foreign(store, what, net):
    folder = store.folder
    if what == "course pair":
        course_pair(folder, "run", net)
    elif what == "save_model":
        af.save_model(net, folder, "run")
    elif what == "folder":
        course_pair(folder / "run", "run", net)
    elif what == "link":
        course_pair(folder.parent / "mine", "run", net)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "run").symlink_to(folder.parent / "mine")


@pytest.mark.parametrize("what", ["course pair", "save_model", "folder", "link"])
def test_a_checkpoint_without_our_history_is_never_reused_or_replaced(store, what):
    theirs = small_net(seed=3)
    _foreign(store, what, theirs)
    before = snapshot(store.folder.parent)
    with pytest.raises(af.CheckpointError, match="does not reuse or replace") as info:
        store.get("run")
    assert info.value.kind == "foreign"
    with pytest.raises(af.CheckpointError) as info:
        store.put("run", small_net(seed=4), make_history())
    assert info.value.kind == "foreign"
    after = snapshot(store.folder.parent)
    for files in (before, after):  # the lock may be made: it is not the user's
        files.pop(str(store.folder / ".run.lock"), None)
    assert after == before
    assert same_weights(af.load_model(store.folder, "run"), theirs)
    assert store.list() == []
    assert store.prune(time.time() + 3600) == []
    assert same_weights(af.load_model(store.folder, "run"), theirs)


@pytest.mark.parametrize("what", ["course pair", "save_model", "folder", "link"])
def test_check_put_refuses_what_put_would_refuse_and_writes_nothing(store, what):
    """For trainers: refuse before training, not after."""
    _foreign(store, what, small_net(seed=3))
    before = snapshot(store.folder.parent)
    with pytest.raises(af.CheckpointError) as info:
        store.check_put("run")
    assert info.value.kind == "foreign" and snapshot(store.folder.parent) == before


def test_check_put_accepts_our_run_or_nothing(stored):
    store, _ = stored
    store.check_put("run")
    store.check_put("other")


def test_an_older_actfns_run_is_stale_and_replaced(store):
    """Runs of an older actfns (flat files with a history beside them) are ours: not
    reused (no SHA-256s), and replaced by the new run."""
    old = small_net(seed=3)
    course_pair(store.folder, "run", old)
    (store.folder / "run.history.json").write_text(json.dumps(
        make_history().to_dict()))
    with pytest.raises(af.CheckpointError, match="older actfns") as info:
        store.get("run")
    assert info.value.kind == "stale"
    new = small_net(seed=4)
    store.put("run", new, make_history("fp2"))
    assert not any((store.folder / f"run{s}").exists() for s in FILES)
    assert same_weights(store.get("run", "fp2")[0], new)


# ---------------------------------------------------------------------------------
# Listing, pruning, leftovers


def test_names_and_list(store):
    store.put("a", small_net(0), make_history("fa", name="a"))
    store.put("b", small_net(1), make_history("fb", name="b"))
    af.save_model(small_net(2), store.folder, "c")  # no history: not a run
    course_pair(store.folder, "d", small_net(3))  # the course's: not a link
    assert store.names() == ["a", "b", "c"]
    runs = store.list()
    assert [r.name for r in runs] == ["a", "b"]
    assert [r.fingerprint for r in runs] == ["fa", "fb"]
    assert runs[0].files[".tar"] == version_of(store, "a") / "a.tar"


def test_prune_removes_only_our_unused_runs(store):
    store.put("old", small_net(0), make_history(name="old"))
    store.put("busy", small_net(1), make_history(name="busy"))
    store.put("new", small_net(2), make_history(name="new"))
    af.save_model(small_net(3), store.folder, "mine")
    for name in ("old", "busy", "mine"):
        os.utime(store.path(name), (1000, 1000), follow_symlinks=False)
    held, release = threading.Event(), threading.Event()

    def trainer():  # "busy" is being trained (lock held, per thread)
        with actfns.checkpoints.run_lock(store.folder, "busy"):
            held.set()
            release.wait(30)

    thread = threading.Thread(target=trainer)
    thread.start()
    try:
        assert held.wait(30)
        assert store.prune(unused_since=2000) == ["old"]
    finally:
        release.set()
        thread.join()
    assert store.names() == ["busy", "mine", "new"]
    assert not list(store.folder.glob(".old.v-*"))


def test_prune_removes_an_older_actfns_runs_and_orphan_locks(store):
    """An older actfns stored NAME.config, NAME.tar and NAME.history.json side by
    side; this version never reuses them, so prune removes them, and the lock files
    of names that hold nothing. The course's pair (no history) stays."""
    net = small_net(0)
    course_pair(store.folder, "legacy", net)
    (store.folder / "legacy.history.json").write_text(
        json.dumps(make_history(name="legacy").to_dict()))
    course_pair(store.folder, "FashionMNIST_relu", net)  # the course's own
    for path in store.folder.iterdir():
        os.utime(path, (1000, 1000))
    (store.folder / ".gone.lock").touch()
    store.put("kept", small_net(1), make_history(name="kept"))
    assert store.prune(unused_since=2000) == ["legacy"]
    assert not list(store.folder.glob("legacy*"))
    assert (store.folder / "FashionMNIST_relu.tar").is_file()
    assert not (store.folder / ".gone.lock").exists()
    assert (store.folder / ".kept.lock").exists() and store.names() == ["kept"]


def test_reading_a_run_marks_it_used(stored):
    store, _ = stored
    os.utime(store.path("run"), (1000, 1000), follow_symlinks=False)
    store.get("run")
    assert store.last_used("run") > time.time() - 60


def test_get_removes_the_leftovers_of_a_killed_writer(stored):
    store, net = stored
    current = version_of(store, "run").name
    stage = actfns.env.temp_name(store.path("run"), "new")
    stage.mkdir()
    (stage / "run.tar").write_bytes(b"half")
    (store.folder / ".run.v-00000000abcd").mkdir()
    assert same_weights(store.get("run")[0], net)
    assert listing(store.folder) == [".run.lock", current, "run"]


@pytest.mark.parametrize("name", ["", "a/b", "..", ".run", "run.tar", 7])
def test_odd_names_are_clear_errors(store, name):
    error = TypeError if not isinstance(name, str) else ValueError
    for call in (lambda: store.get(name), lambda: store.path(name),
                 lambda: store.put(name, small_net(), make_history())):
        with pytest.raises(error, match="checkpoint name"):
            call()
    assert not store.folder.exists() or listing(store.folder) == []


def test_an_older_actfns_flat_run_beside_a_run_is_dropped_not_ambiguous(store):
    """A process of an older actfns wrote NAME.config/.tar/.history.json while this
    version stored NAME: the flat files are ours and outdated, so reading NAME
    removes them instead of calling NAME ambiguous. The course's pair (no history)
    beside a run stays an error that names both."""
    net = small_net(0)
    store.put("run", net, make_history(name="run"))
    course_pair(store.folder, "run", small_net(1))
    (store.folder / "run.history.json").write_text(
        json.dumps(make_history(name="run").to_dict()))
    got, _ = store.get("run")
    assert same_weights(got, net)
    assert not list(store.folder.glob("run.*"))
    course_pair(store.folder, "run", small_net(1))  # no history: someone's own
    with pytest.raises(af.CheckpointError, match="holds both run and") as err:
        store.get("run")
    assert err.value.kind == "ambiguous"
