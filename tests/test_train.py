"""Training: recipe, History, early stopping, best checkpoint, reuse and refusal of
checkpoints by fingerprint, seeding, devices."""

import inspect
import json
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import make_blob_data
from torch.utils.data import TensorDataset

import actfns as af
import actfns.checkpoints
import actfns.runs
import actfns.train

FAST = dict(max_epochs=3, batch_size=64, device="cpu")


def blob_net(seed=0, hidden=(32, 32), act="relu"):
    torch.manual_seed(seed)
    return af.BaseNetwork(act, input_size=16, num_classes=4, hidden_sizes=hidden)


def same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return list(sa) == list(sb) and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.fixture
def snapshots(monkeypatch):
    """Record the network's weights after every training epoch."""
    states = []
    real = actfns.train.train_epoch

    def recording(net, *args, **kwargs):
        result = real(net, *args, **kwargs)
        states.append({k: v.detach().clone() for k, v in net.state_dict().items()})
        return result

    monkeypatch.setattr(actfns.train, "train_epoch", recording)
    return states


# ---------------------------------------------------------------------------------
# Recipe and History


def test_recipe_defaults_are_the_course():
    assert af.Recipe(lr=1e-2, momentum=0.9, batch_size=256,
                                         max_epochs=50, patience=7) == af.COURSE_RECIPE
    assert af.COURSE_SEED == 42
    spec = af.RunSpec("relu")
    assert spec.recipe == af.COURSE_RECIPE and spec.seed == 42
    assert spec.hidden_sizes == (512, 256, 256, 128) and spec.init == "default"
    params = inspect.signature(af.train_or_load).parameters
    assert params["seed"].default == af.COURSE_SEED


@pytest.mark.parametrize(("changes", "words"), [
    (dict(max_epochs=0), "max_epochs must be a whole number >= 1"),
    (dict(batch_size=2.5), "batch_size must be a whole number"),
    (dict(patience=True), "patience must be a whole number"),
    (dict(lr=float("nan")), "lr must be a finite number"),
    (dict(momentum=-0.1), "momentum must be a finite number >= 0"),
])
def test_bad_recipes_are_refused_clearly(changes, words):
    with pytest.raises(ValueError, match=words):
        af.COURSE_RECIPE.replace(**changes)


def test_unknown_recipe_fields_are_named():
    with pytest.raises(TypeError, match="not part of a Recipe: epochs"):
        af.COURSE_RECIPE.replace(epochs=3)


@pytest.mark.parametrize(("sizes", "words"), [
    ((1200, 0, 400), "the val set is empty"),
    ((1200, 400, 0), "the test set is empty"),
    ((0, 400, 400), "the train set is empty"),
    ((100, 400, 400), "fewer than one batch of 256"),
])
def test_too_little_data_is_refused_clearly(sizes, words):
    data = make_blob_data(sizes=sizes)
    with pytest.raises(ValueError, match=words):
        af.train_model(blob_net(), "small", data, device="cpu")


def test_evaluate_on_an_empty_dataset_says_so():
    empty = TensorDataset(torch.zeros(0, 16), torch.zeros(0, dtype=torch.long))
    with pytest.raises(ValueError, match="empty dataset"):
        af.evaluate(blob_net(), empty)


def test_recipe_is_used(blob_data, monkeypatch):
    """SGD(lr, momentum) and full batches only (drop_last), read off the run."""
    optimizers = []

    class RecordingSGD(torch.optim.SGD):
        def __init__(self, params, **kwargs):
            optimizers.append(kwargs)
            super().__init__(params, **kwargs)

    monkeypatch.setattr(torch.optim, "SGD", RecordingSGD)
    net = blob_net()
    sizes = []
    net.register_forward_hook(
        lambda m, inputs, out: sizes.append(len(inputs[0])) if m.training else None)
    af.train_model(net, "recipe", blob_data, max_epochs=2, device="cpu")
    assert len(optimizers) == 1
    assert optimizers[0]["lr"] == 1e-2 and optimizers[0]["momentum"] == 0.9
    assert sizes == [256] * (2 * (1200 // 256))  # the last 176 images are dropped


def test_learns_a_generated_problem(blob_data, ckpt_dir):
    net = blob_net()
    h = af.train_model(net, "blobs", blob_data, max_epochs=8, batch_size=64,
                       device="cpu")
    assert h.test_acc > 0.9  # chance is 0.25
    assert h.best_val_acc > 0.9
    assert h.train_loss[-1] < h.train_loss[0] / 2
    assert h.trained is True and h.model_name == "blobs"
    n = h.epochs
    assert 1 <= n <= 8
    assert len(h.train_loss) == len(h.train_acc) == len(h.val_acc) == len(
        h.epoch_time) == n
    assert all(0 <= a <= 1 for a in h.train_acc + h.val_acc)
    assert all(t > 0 for t in h.epoch_time) and h.wall_time >= sum(h.epoch_time)
    assert h.val_acc[h.best_epoch - 1] == h.best_val_acc == max(h.val_acc)
    assert h.best_val_acc > max(h.val_acc[:h.best_epoch - 1], default=-1)  # first max
    assert len(h.fingerprint) == 64 and int(h.fingerprint, 16) >= 0
    # saved in $ACTFNS_CHECKPOINTS: the run's folder (a link to its one version:
    # network in the course's format and history) and the lock it held
    names = sorted(p.name for p in ckpt_dir.iterdir())
    assert names[0] == ".blobs.lock" and names[1].startswith(".blobs.v-")
    assert names[2:] == ["blobs"] and (ckpt_dir / "blobs").is_symlink()
    assert sorted(p.name for p in (ckpt_dir / "blobs").iterdir()) == [
        "blobs.config", "blobs.history.json", "blobs.tar"]
    stored = af.History.from_dict(json.loads((ckpt_dir / "blobs" /
                                              "blobs.history.json").read_text()))
    assert stored == h
    assert set(stored.sha256) == {".config", ".tar"}
    assert same_weights(af.load_model(ckpt_dir, "blobs"), net)


def test_history_round_trip():
    h = af.History("x", train_loss=[1.0, 0.5], train_acc=[0.5, 0.6], val_acc=[0.4, 0.7],
                   epoch_time=[0.1, 0.1], best_epoch=2, best_val_acc=0.7, test_acc=0.69,
                   wall_time=0.3, fingerprint="ab", trained=True)
    assert af.History.from_dict(json.loads(json.dumps(h.to_dict()))) == h
    assert h.epochs == 2


# ---------------------------------------------------------------------------------
# Early stopping and the best checkpoint


def test_stops_after_patience_epochs_without_improvement(blob_data):
    """lr = 0: the network never changes, so validation accuracy never improves after
    epoch 1 and training must stop after 1 + patience epochs."""
    h = af.train_model(blob_net(), "frozen", blob_data, lr=0.0, patience=3,
                       max_epochs=50, batch_size=256, device="cpu")
    assert h.epochs == 4 and h.best_epoch == 1
    assert len(set(h.val_acc)) == 1


def test_runs_max_epochs_when_patience_is_not_reached(blob_data):
    h = af.train_model(blob_net(), "short", blob_data, lr=0.0, patience=10,
                       max_epochs=3, device="cpu")
    assert h.epochs == 3


def test_keeps_the_best_epoch_weights(blob_data, snapshots, ckpt_dir):
    net = blob_net()
    h = af.train_model(net, "best", blob_data, lr=0.05, patience=2, max_epochs=30,
                       batch_size=32, device="cpu")
    assert h.epochs < 30, "this case must stop early"
    assert len(snapshots) == h.epochs
    best = snapshots[h.best_epoch - 1]
    assert all(torch.equal(net.state_dict()[k], best[k]) for k in best)
    assert not all(torch.equal(net.state_dict()[k], snapshots[-1][k]) for k in best)
    assert af.evaluate(net, blob_data.val) == h.best_val_acc
    assert af.evaluate(net, blob_data.test) == h.test_acc  # the best epoch's test score
    assert same_weights(af.load_model(ckpt_dir, "best"), net)


# ---------------------------------------------------------------------------------
# Reuse and refusal by fingerprint


def test_reuses_a_checkpoint_with_the_same_fingerprint(blob_data, monkeypatch):
    first = blob_net()
    h1 = af.train_model(first, "run", blob_data, **FAST)
    monkeypatch.setattr(actfns.train, "train_epoch",
                        lambda *a, **k: pytest.fail("trained instead of reusing"))
    monkeypatch.setattr(actfns.runs, "fit",
                        lambda *a, **k: pytest.fail("trained instead of reusing"))
    second = blob_net()
    assert not same_weights(first, second)  # freshly initialised ...
    h2 = af.train_model(second, "run", blob_data, **FAST)
    assert h1.trained and not h2.trained
    assert same_weights(first, second)  # ... and now the trained weights
    assert (h2.val_acc, h2.test_acc, h2.best_epoch, h2.fingerprint) == (
        h1.val_acc, h1.test_acc, h1.best_epoch, h1.fingerprint)


def test_overwrite_forces_training(blob_data):
    af.train_model(blob_net(), "run", blob_data, **FAST)
    assert af.train_model(blob_net(), "run", blob_data, overwrite=True, **FAST).trained


CHANGES = {
    "lr": lambda: dict(kwargs=dict(lr=0.02)),
    "momentum": lambda: dict(kwargs=dict(momentum=0.5)),
    "batch_size": lambda: dict(kwargs=dict(batch_size=32)),
    "max_epochs": lambda: dict(kwargs=dict(max_epochs=2)),
    "patience": lambda: dict(kwargs=dict(patience=2)),
    "shuffle seed": lambda: dict(kwargs=dict(seed=1)),
    "initial weights": lambda: dict(net=blob_net(seed=1)),
    "architecture": lambda: dict(net=blob_net(hidden=(32, 33))),
    "activation": lambda: dict(net=blob_net(act="tanh")),
    "data": lambda: dict(data=make_blob_data(seed=1)),
    "same data, new split": lambda: dict(data=make_blob_data(tag="other-split")),
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_refuses_a_checkpoint_of_another_run(blob_data, change):
    assert af.train_model(blob_net(), "run", blob_data, **FAST).trained
    changed = CHANGES[change]()
    kwargs = {**FAST, **changed.get("kwargs", {})}
    net = changed.get("net") or blob_net()
    data = changed.get("data") or blob_data
    h = af.train_model(net, "run", data, **kwargs)
    assert h.trained, f"a changed {change} must retrain"
    # the new run replaced the old checkpoint, so the same call now reuses it
    again = CHANGES[change]()
    net2 = again.get("net") or blob_net()
    assert not af.train_model(net2, "run", again.get("data") or blob_data,
                              **kwargs).trained
    assert same_weights(net, net2)


WAITER = """
import json, sys, torch
sys.path.insert(0, sys.argv[1])
from conftest import make_blob_data
import actfns as af
torch.manual_seed(0)
net = af.BaseNetwork("relu", input_size=16, num_classes=4, hidden_sizes=(32, 32))
h = af.train_model(net, "run", make_blob_data(), progress=True, max_epochs=3,
                   batch_size=64, device="cpu")
print(json.dumps({"trained": h.trained, "test_acc": h.test_acc,
                  "weights": [v.sum().item() for v in net.state_dict().values()]}))
"""


def test_a_run_being_trained_elsewhere_is_waited_for_and_loaded(blob_data, ckpt_dir,
                                                                monkeypatch):
    """Two processes asking for the same run train it once (the book executes two
    chapters side by side): the second waits on the run's lock, then loads."""
    lock = actfns.checkpoints.run_lock(ckpt_dir, "run")
    lock.acquire()  # as a process that is training "run" holds it
    waiter = subprocess.Popen(
        [sys.executable, "-c", WAITER, str(Path(__file__).parent)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = waiter.stdout.readline()
        assert "another process is training it; waiting" in line, line
        # ... the first process trains and saves (the lock is re-entrant)
        net = blob_net()
        h = af.train_model(net, "run", blob_data, **FAST)
        assert h.trained
    finally:
        lock.release()
    out, err = waiter.communicate(timeout=120)
    assert waiter.returncode == 0, err
    result = json.loads(out)
    assert result["trained"] is False  # loaded, not trained a second time
    assert result["test_acc"] == h.test_acc
    assert result["weights"] == [v.sum().item() for v in net.state_dict().values()]


def test_training_leaves_no_lock_held(blob_data, ckpt_dir):
    from filelock import FileLock

    af.train_model(blob_net(), "run", blob_data, **FAST)
    FileLock(ckpt_dir / ".run.lock").acquire(timeout=0)  # free again


def test_refuses_a_checkpoint_from_other_code(blob_data, monkeypatch):
    assert af.train_model(blob_net(), "run", blob_data, **FAST).trained
    monkeypatch.setattr(actfns.runs, "code_hash", lambda: "edited train.py")
    assert af.train_model(blob_net(), "run", blob_data, **FAST).trained


def test_refuses_a_checkpoint_from_another_torch_release(blob_data, monkeypatch):
    assert af.train_model(blob_net(), "run", blob_data, **FAST).trained
    monkeypatch.setattr(torch, "__version__", "99.0.0+cpu")
    assert af.train_model(blob_net(), "run", blob_data, **FAST).trained


def test_torch_release_ignores_the_build_tag(monkeypatch):
    """The CPU wheel (2.14.1+cpu, Binder, Actions) and PyPI's (2.14.1) are one
    release: their runs are interchangeable."""
    monkeypatch.setattr(torch, "__version__", "2.14.1+cpu")
    assert actfns.runs.torch_release() == "2.14.1"


def test_code_hash_covers_the_training_path(monkeypatch, tmp_path):
    before = actfns.runs.code_hash()
    assert before == actfns.runs.code_hash()
    real_read = type(tmp_path).read_bytes

    def edited(path):
        data = real_read(path)
        return data + b"EDITED = 1\n" if path.name == "activations.py" else data

    monkeypatch.setattr(type(tmp_path), "read_bytes", edited)
    assert actfns.runs.code_hash() != before


CODE = '''"""Module docstring."""
import torch


class Net:
    """Class docstring."""

    def step(self, x):
        """Method docstring."""
        return torch.relu(x)  # a comment
'''

SAME_CODE = {
    "a comment": CODE.replace("# a comment", "# another comment"),
    "a docstring": CODE.replace("Method docstring.", "Says more now."),
    "a removed docstring": CODE.replace('        """Method docstring."""\n', ""),
    "the layout": CODE.replace("return torch.relu(x)", "return torch.relu( x )"),
}
OTHER_CODE = {
    "another function": CODE.replace("torch.relu", "torch.tanh"),
    "another argument": CODE.replace("relu(x)", "relu(-x)"),
    "a new statement": CODE + "SCALE = 2\n",
    "a string that is no docstring": CODE.replace(
        "return torch.relu(x)", "return torch.relu(x), 'Method docstring.'"),
}


@pytest.mark.parametrize("edit", list(SAME_CODE))
def test_code_digest_ignores_comments_docstrings_and_layout(edit):
    """An edit to a docstring of the training code does not retrain every network."""
    digest = actfns.runs._code_digest
    assert digest(SAME_CODE[edit]) == digest(CODE)


@pytest.mark.parametrize("edit", list(OTHER_CODE))
def test_code_digest_sees_every_change_to_the_code(edit):
    digest = actfns.runs._code_digest
    assert digest(OTHER_CODE[edit]) != digest(CODE)


def test_unreadable_history_retrains(blob_data, ckpt_dir):
    af.train_model(blob_net(), "run", blob_data, **FAST)
    history = ckpt_dir / "run" / "run.history.json"
    history.chmod(0o644)
    history.write_text("{broken")
    with pytest.warns(UserWarning, match="run.history.json"):
        assert af.train_model(blob_net(), "run", blob_data, **FAST).trained


def test_damaged_checkpoint_with_matching_fingerprint_retrains(blob_data, ckpt_dir):
    af.train_model(blob_net(), "run", blob_data, **FAST)
    tar = ckpt_dir / "run" / "run.tar"
    tar.write_bytes(tar.read_bytes()[:100])  # truncated weights, history still valid
    net = blob_net()
    with pytest.warns(UserWarning, match="run.tar"):
        history = af.train_model(net, "run", blob_data, **FAST)
    assert history.trained
    assert af.train_model(blob_net(), "run", blob_data, **FAST).trained is False


def test_run_fingerprint_covers_spec_weights_and_data(blob_data):
    def spec(**kw):
        return af.RunSpec("relu", hidden_sizes=(32, 32), input_size=16, num_classes=4,
                          **kw)

    fp = spec().fingerprint(blob_data)
    assert fp == spec().fingerprint(blob_data)
    assert fp == spec().fingerprint(blob_data, spec().initial_network())
    assert fp != spec(seed=1).fingerprint(blob_data)
    assert fp != spec().fingerprint(make_blob_data(seed=1))
    assert fp != spec(recipe=af.Recipe(lr=0.02)).fingerprint(blob_data)
    assert fp != spec(init="kaiming").fingerprint(blob_data)
    other_weights = spec().initial_network()
    with torch.no_grad():
        other_weights.layers[0].bias[0] += 1
    assert fp != spec().fingerprint(blob_data, other_weights)


# ---------------------------------------------------------------------------------
# Seeding and devices


def test_set_seed_makes_training_bit_reproducible(blob_data):
    results = []
    for name in ("a", "b"):
        af.set_seed(3)
        net = af.BaseNetwork("relu", input_size=16, num_classes=4, hidden_sizes=[32])
        h = af.train_model(net, name, blob_data, **FAST)
        results.append((net, h))
    (net_a, h_a), (net_b, h_b) = results
    assert h_a.trained and h_b.trained
    assert same_weights(net_a, net_b)
    assert h_a.train_loss == h_b.train_loss and h_a.val_acc == h_b.val_acc


def test_set_seed_seeds_python_numpy_and_torch():
    draws = []
    for _ in range(2):
        af.set_seed(11)
        draws.append((random.random(), np.random.rand(), torch.rand(1).item()))
    assert draws[0] == draws[1]
    af.set_seed(12)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) != draws[0]


def test_get_device(monkeypatch):
    monkeypatch.delenv("ACTFNS_DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert af.get_device() == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert af.get_device() == torch.device("cuda")
    monkeypatch.setenv("ACTFNS_DEVICE", "meta")
    assert af.get_device() == torch.device("meta")
    monkeypatch.setenv("ACTFNS_DEVICE", "gpu")
    with pytest.raises(ValueError, match="ACTFNS_DEVICE='gpu' is not a device"):
        af.get_device()
    monkeypatch.setenv("ACTFNS_DEVICE", "meta")
    assert af.get_device("cpu") == torch.device("cpu")  # the argument wins
    assert af.get_device(torch.device("cpu")) == torch.device("cpu")
    monkeypatch.setenv("ACTFNS_DEVICE", "")  # empty: as if unset
    assert af.get_device() == torch.device("cuda")


def test_evaluate_counts_correct_predictions(monkeypatch):
    """A linear 'network' predicting argmax of its input: the accuracy is known."""
    net = af.BaseNetwork("identity", input_size=3, num_classes=3, hidden_sizes=[])
    with torch.no_grad():
        net.layers[0].weight.copy_(torch.eye(3))
        net.layers[0].bias.zero_()
    x = torch.eye(3)[torch.tensor([0, 1, 2, 0, 1, 2, 0])]
    y = torch.tensor([0, 1, 2, 1, 1, 0, 0])  # 5 of 7 right
    # the network is on the CPU: evaluate must not send batches elsewhere
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert af.evaluate(net, TensorDataset(x, y)) == 5 / 7
    assert af.evaluate(net, TensorDataset(x, y), batch_size=2) == 5 / 7


# ---------------------------------------------------------------------------------
# train_or_load names


def test_train_or_load_names_and_reuses():
    data = make_blob_data(dim=784, classes=3, sizes=(300, 100, 100), tag="784")
    net, h = af.train_or_load("relu", data, max_epochs=2, device="cpu")
    assert h.trained and h.model_name.startswith("FashionMNIST_relu_")
    net2, h2 = af.train_or_load("relu", data, max_epochs=2, device="cpu")
    assert not h2.trained and h2.model_name == h.model_name
    assert same_weights(net, net2)
    _, h3 = af.train_or_load("relu", data, seed=1, max_epochs=2, device="cpu")
    _, h4 = af.train_or_load(af.LeakyReLU(0.2), data, max_epochs=2, device="cpu")
    names = {h.model_name, h3.model_name, h4.model_name}
    assert len(names) == 3 and h4.model_name.startswith("FashionMNIST_leakyrelu_")


def test_train_or_load_course_run_uses_the_course_name():
    data = make_blob_data(dim=784, classes=3, sizes=(256, 64, 64), tag="784-small")
    _, h = af.train_or_load("tanh", data, device="cpu", progress=False)
    assert h.model_name == "FashionMNIST_tanh"


# ---------------------------------------------------------------------------------
# The real data


@pytest.mark.realdata
def test_learns_real_fashion_mnist(real_data):
    g = torch.Generator().manual_seed(0)
    idx = torch.randperm(len(real_data.train), generator=g)[:6000]
    subset = af.FashionMNISTData(
        train=TensorDataset(*(t[idx] for t in real_data.train.tensors)),
        val=TensorDataset(*(t[:2000] for t in real_data.val.tensors)),
        test=real_data.test, fingerprint=real_data.fingerprint + "-6000")
    af.set_seed(0)
    net = af.BaseNetwork("relu", hidden_sizes=[128])
    h = af.train_model(net, "real", subset, max_epochs=3, batch_size=64, device="cpu")
    assert h.test_acc > 0.75  # chance is 0.10
