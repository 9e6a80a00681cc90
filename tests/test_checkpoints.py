"""save_model / load_model: the course's file format, round trips, every bad-file case,
and atomic writes."""

import io
import json
import os
import stat
import struct
import zipfile
from collections import OrderedDict

import pytest
import torch
from torch import nn

import actfns as af
import actfns.checkpoints

# ---------------------------------------------------------------------------------
# The course's own code (tutorial 3), verbatim in substance: a plain nn.Module
# activation with a ``config`` dict, one activation object shared by every layer, and
# save_model = json.dump(config) + torch.save(state_dict()).


class course:  # namespace, so that the class names are the course's
    class ActivationFunction(nn.Module):
        def __init__(self):
            super().__init__()
            self.name = self.__class__.__name__
            self.config = {"name": self.name}

    class Sigmoid(ActivationFunction):
        def forward(self, x):
            return 1 / (1 + torch.exp(-x))

    class Tanh(ActivationFunction):
        def forward(self, x):
            x_exp, neg_x_exp = torch.exp(x), torch.exp(-x)
            return (x_exp - neg_x_exp) / (x_exp + neg_x_exp)

    class ReLU(ActivationFunction):
        def forward(self, x):
            return x * (x > 0).float()

    class LeakyReLU(ActivationFunction):
        def __init__(self, alpha=0.1):
            super().__init__()
            self.config["alpha"] = alpha

        def forward(self, x):
            return torch.where(x > 0, x, self.config["alpha"] * x)

    class ELU(ActivationFunction):
        def forward(self, x):
            return torch.where(x > 0, x, torch.exp(x) - 1)

    class Swish(ActivationFunction):
        def forward(self, x):
            return x * torch.sigmoid(x)

    class BaseNetwork(nn.Module):
        def __init__(self, act_fn, input_size=784, num_classes=10,
                     hidden_sizes=(512, 256, 256, 128)):
            super().__init__()
            hidden_sizes = list(hidden_sizes)
            layers = []
            layer_sizes = [input_size] + hidden_sizes
            for layer_index in range(1, len(layer_sizes)):
                layers += [nn.Linear(layer_sizes[layer_index - 1],
                                     layer_sizes[layer_index]), act_fn]
            layers += [nn.Linear(layer_sizes[-1], num_classes)]
            self.layers = nn.Sequential(*layers)
            self.config = {"act_fn": act_fn.config, "input_size": input_size,
                           "num_classes": num_classes, "hidden_sizes": hidden_sizes}

        def forward(self, x):
            x = x.view(x.size(0), -1)
            return self.layers(x)

    @staticmethod
    def save_model(model, model_path, model_name):
        os.makedirs(model_path, exist_ok=True)
        with open(os.path.join(model_path, model_name + ".config"), "w") as f:
            json.dump(model.config, f)
        torch.save(model.state_dict(), os.path.join(model_path, model_name + ".tar"))


COURSE_ACTS = {"sigmoid": course.Sigmoid, "tanh": course.Tanh, "relu": course.ReLU,
               "leakyrelu": course.LeakyReLU, "elu": course.ELU, "swish": course.Swish}


def small_net(act="relu", hidden=(8, 6), seed=0):
    torch.manual_seed(seed)
    return af.BaseNetwork(act, input_size=12, num_classes=3, hidden_sizes=hidden)


def assert_same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key


# ---------------------------------------------------------------------------------
# The course's published format


@pytest.mark.parametrize("name", list(COURSE_ACTS))
def test_loads_a_file_written_by_the_course_code(ckpt_dir, name):
    torch.manual_seed(1)
    theirs = course.BaseNetwork(COURSE_ACTS[name]())
    course.save_model(theirs, ckpt_dir, f"FashionMNIST_{name}")
    state = torch.load(ckpt_dir / f"FashionMNIST_{name}.tar", weights_only=True)
    assert isinstance(state, OrderedDict)  # what the course publishes
    assert list(state)[:2] == ["layers.0.weight", "layers.0.bias"]

    net = af.load_model(ckpt_dir, f"FashionMNIST_{name}")
    assert type(net.layers[1]).__name__ == type(theirs.layers[1]).__name__
    saved_config = json.loads((ckpt_dir / f"FashionMNIST_{name}.config").read_text())
    assert net.config["act_fn"]["name"] == saved_config["act_fn"]["name"]
    for key in ("input_size", "num_classes", "hidden_sizes"):
        assert net.config[key] == saved_config[key]
    assert_same_weights(net, theirs)
    x = torch.randn(16, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(net(x), theirs(x), rtol=1e-5, atol=1e-5)


def test_loads_the_published_leakyrelu_config_text(ckpt_dir):
    """The config exactly as the course publishes it, with a state dict saved the way
    the course code does (nn.Sequential of Linear and one plain module)."""
    text = ('{"act_fn": {"name": "LeakyReLU", "alpha": 0.1}, "input_size": 784, '
            '"num_classes": 10, "hidden_sizes": [512, 256, 256, 128]}')
    (ckpt_dir / "FashionMNIST_leakyrelu.config").write_text(text)
    torch.manual_seed(2)
    theirs = course.BaseNetwork(course.LeakyReLU(0.1))
    torch.save(theirs.state_dict(), ckpt_dir / "FashionMNIST_leakyrelu.tar")

    net = af.load_model(ckpt_dir, "FashionMNIST_leakyrelu")
    assert net.config == json.loads(text)
    assert isinstance(net.layers[1], af.LeakyReLU)
    assert_same_weights(net, theirs)


@pytest.mark.parametrize("name", ["sigmoid", "tanh", "relu", "leakyrelu"])
def test_course_loader_reads_our_files(ckpt_dir, name):
    """The course's load_model (config -> act_fn_by_name -> BaseNetwork, then
    load_state_dict) reads what we write."""
    ours = af.BaseNetwork(name)
    af.save_model(ours, ckpt_dir, "ours")
    with open(ckpt_dir / "ours.config") as f:
        config_dict = json.load(f)
    act_fn_name = config_dict["act_fn"].pop("name").lower()
    act_fn = COURSE_ACTS[act_fn_name](**config_dict.pop("act_fn"))
    theirs = course.BaseNetwork(act_fn=act_fn, **config_dict)
    theirs.load_state_dict(torch.load(ckpt_dir / "ours.tar", weights_only=True))
    assert_same_weights(theirs, ours)


# ---------------------------------------------------------------------------------
# Round trips


@pytest.mark.parametrize("act", [af.ELU(alpha=0.5), af.Swish(beta=2.0), af.GELU(),
                                 af.Softplus(beta=3.0), af.Identity()])
def test_round_trip_rebuilds_the_network(ckpt_dir, act):
    net = small_net(act)
    config_file, model_file = af.save_model(net, ckpt_dir, "net")
    assert config_file == ckpt_dir / "net.config" and model_file == ckpt_dir / "net.tar"
    assert json.loads(config_file.read_text()) == net.config
    loaded = af.load_model(ckpt_dir, "net")
    assert loaded.config == net.config
    assert type(loaded.layers[1]) is type(act)
    assert_same_weights(loaded, net)
    x = torch.randn(4, 12)
    torch.testing.assert_close(loaded(x), net(x), rtol=0, atol=0)


def test_load_into_a_given_network(ckpt_dir):
    net = small_net(seed=0)
    af.save_model(net, ckpt_dir, "net")
    target = small_net(seed=1)
    assert af.load_model(ckpt_dir, "net", net=target) is target
    assert_same_weights(target, net)


def test_default_folder_is_the_environment_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("ACTFNS_CHECKPOINTS", str(tmp_path / "from_env"))
    net = small_net()
    af.save_model(net, None, "net")
    assert (tmp_path / "from_env" / "net.tar").is_file()
    assert_same_weights(af.load_model(None, "net"), net)


def test_save_creates_the_folder_and_overwrites(tmp_path):
    folder = tmp_path / "a" / "b"
    af.save_model(small_net(seed=0), folder, "net")
    newer = small_net(seed=1)
    af.save_model(newer, folder, "net")
    assert_same_weights(af.load_model(folder, "net"), newer)
    assert sorted(p.name for p in folder.iterdir()) == ["net.config", "net.tar"]


def test_saved_files_have_the_usual_permissions(ckpt_dir):
    mask = os.umask(0o022)
    try:
        af.save_model(small_net(), ckpt_dir, "net")
    finally:
        os.umask(mask)
    for name in ("net.config", "net.tar"):
        assert stat.S_IMODE((ckpt_dir / name).stat().st_mode) == 0o644, name


def test_saved_tensors_are_detached_cpu(ckpt_dir):
    af.save_model(small_net(), ckpt_dir, "net")
    state = torch.load(ckpt_dir / "net.tar", weights_only=True)
    assert all(t.device.type == "cpu" and not t.requires_grad for t in state.values())


# ---------------------------------------------------------------------------------
# Bad files: a CheckpointError that names the file


@pytest.fixture
def saved(ckpt_dir):
    net = small_net()
    af.save_model(net, ckpt_dir, "net")
    return ckpt_dir, net


def test_missing_config(saved):
    folder, _ = saved
    (folder / "net.config").unlink()
    with pytest.raises(af.CheckpointError, match="not found.*net.config"):
        af.load_model(folder, "net")


def test_missing_weights(saved):
    folder, _ = saved
    (folder / "net.tar").unlink()
    with pytest.raises(af.CheckpointError, match="not found.*net.tar"):
        af.load_model(folder, "net")


def test_missing_folder(tmp_path):
    with pytest.raises(af.CheckpointError, match="not found"):
        af.load_model(tmp_path / "nowhere", "net")


@pytest.mark.parametrize("keep", [0.0, 0.01, 0.5, 0.9, 0.999])
def test_truncated_weights(saved, keep):
    folder, _ = saved
    data = (folder / "net.tar").read_bytes()
    (folder / "net.tar").write_bytes(data[:int(len(data) * keep)])
    with pytest.raises(af.CheckpointError, match=r"net\.tar.*(truncated|corrupt)"):
        af.load_model(folder, "net")


def test_garbage_weights(saved):
    folder, _ = saved
    (folder / "net.tar").write_bytes(os.urandom(3000))
    with pytest.raises(af.CheckpointError, match=r"net\.tar"):
        af.load_model(folder, "net")


@pytest.mark.parametrize(("data", "cause"), [
    (b"not a checkpoint", "UnpicklingError: Unsupported operand 110"),
    (b"", "EOFError)"),
    (b"PK\x03\x04garbage", "RuntimeError: PytorchStreamReader failed reading zip "
                           "archive: not a ZIP archive)"),
])
def test_damaged_file_error_gives_the_cause_without_torchs_advice(saved, data, cause):
    """torch.load's message for these files advises weights_only=False, which would
    run whatever the file holds: the error keeps the cause and drops the advice."""
    folder, _ = saved
    (folder / "net.tar").write_bytes(data)
    with pytest.raises(af.CheckpointError) as info:
        af.load_model(folder, "net")
    message = str(info.value)
    assert cause in message
    assert "weights_only" not in message and "False" not in message
    assert message.endswith("delete it and retrain, or download it again")


def _tensor_data_offset(path, member_suffix):
    """Byte offset of a member's data inside the zip file written by torch.save."""
    data = path.read_bytes()
    info = next(i for i in zipfile.ZipFile(io.BytesIO(data)).infolist()
                if i.filename.endswith(member_suffix))
    h = info.header_offset
    name_len, extra_len = struct.unpack("<HH", data[h + 26:h + 30])
    return h + 30 + name_len + extra_len


def test_flipped_bit_inside_a_tensor_is_detected(saved):
    """torch.load itself does not check CRCs: without the check, this loads silently
    as a slightly different weight."""
    folder, _ = saved
    path = folder / "net.tar"
    offset = _tensor_data_offset(path, "data/0")
    data = bytearray(path.read_bytes())
    data[offset + 1] ^= 0x10
    path.write_bytes(bytes(data))
    with pytest.raises(af.CheckpointError, match=r"net\.tar is corrupt.*CRC"):
        af.load_model(folder, "net")


@pytest.mark.parametrize(("text", "words"), [
    ("{not json", "not valid JSON"),
    ("", "not valid JSON"),
    ("[1, 2]", "not a network config"),
    ("null", "not a network config"),
    ('{"input_size": 12, "num_classes": 3, "hidden_sizes": [8, 6]}', "act_fn"),
    ('{"act_fn": {"name": "ReLU"}, "input_size": 12, "num_classes": 3, '
     '"hidden_sizes": [8, 6], "dropout": 0.5}', "dropout"),
    ('{"act_fn": {"name": "ReLU"}, "input_size": 12, "num_classes": 3, '
     '"hidden_sizes": "8"}', "hidden_sizes"),
])
def test_bad_config(saved, text, words):
    folder, _ = saved
    (folder / "net.config").write_text(text)
    with pytest.raises(af.CheckpointError, match=words) as info:
        af.load_model(folder, "net")
    assert str(folder / "net.config") in str(info.value)


def test_unknown_activation_in_config(saved):
    folder, net = saved
    config = dict(net.config, act_fn={"name": "Swoosh"})
    (folder / "net.config").write_text(json.dumps(config))
    with pytest.raises(af.CheckpointError, match="Swoosh") as info:
        af.load_model(folder, "net")
    message = str(info.value)
    assert str(folder / "net.config") in message
    assert all(name in message for name in af.ACTIVATIONS)  # the valid names


def test_bad_activation_parameter_in_config(saved):
    folder, net = saved
    config = dict(net.config, act_fn={"name": "LeakyReLU", "alpha": "high"})
    (folder / "net.config").write_text(json.dumps(config))
    with pytest.raises(af.CheckpointError, match="alpha"):
        af.load_model(folder, "net")


def test_weights_of_the_wrong_shape(saved):
    folder, _ = saved
    torch.save(small_net(hidden=(8, 7)).state_dict(), folder / "net.tar")
    with pytest.raises(af.CheckpointError, match="do not fit") as info:
        af.load_model(folder, "net")
    assert "net.tar" in str(info.value) and "size mismatch" in str(info.value)


def test_weights_with_missing_keys(saved):
    folder, net = saved
    state = net.state_dict()
    del state["layers.4.bias"]
    torch.save(state, folder / "net.tar")
    with pytest.raises(af.CheckpointError, match="layers.4.bias"):
        af.load_model(folder, "net")


def test_given_network_that_does_not_fit(saved):
    folder, _ = saved
    with pytest.raises(af.CheckpointError, match="do not fit"):
        af.load_model(folder, "net", net=small_net(hidden=(5,)))


def test_not_a_state_dict(saved):
    folder, net = saved
    torch.save(list(net.state_dict().values()), folder / "net.tar")
    with pytest.raises(af.CheckpointError, match="holds a list"):
        af.load_model(folder, "net")


class _Exploit:
    """A pickle that would run code on load: weights_only must refuse it."""

    def __reduce__(self):
        return (os.system, ("touch exploited-by-pickle",))


def test_weights_only_refuses_arbitrary_objects(saved, monkeypatch, tmp_path):
    folder, _ = saved
    monkeypatch.chdir(tmp_path)
    torch.save({"layers.0.weight": _Exploit()}, folder / "net.tar")
    with pytest.raises(af.CheckpointError, match=r"net\.tar is not a state dict"):
        af.load_model(folder, "net")
    assert not (tmp_path / "exploited-by-pickle").exists()


def test_a_whole_pickled_model_is_refused_with_a_short_hint(saved):
    folder, net = saved
    torch.save(net, folder / "net.tar")  # the model object, not its state dict
    with pytest.raises(af.CheckpointError) as info:
        af.load_model(folder, "net")
    message = str(info.value)
    assert "stores actfns.model.BaseNetwork" in message
    assert "state_dict()" in message and len(message) < 400


# ---------------------------------------------------------------------------------
# Atomic writes


def test_interrupted_save_keeps_the_previous_checkpoint(saved, monkeypatch):
    folder, good = saved
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    real_save = torch.save

    def crashing_save(obj, f, *args, **kwargs):
        buffer = io.BytesIO()
        real_save(obj, buffer)
        f.write(buffer.getvalue()[:1000])  # part of the file is written ...
        raise KeyboardInterrupt("interrupted")  # ... then the process is interrupted

    monkeypatch.setattr(torch, "save", crashing_save)
    with pytest.raises(KeyboardInterrupt):
        af.save_model(small_net(seed=5), folder, "net")
    monkeypatch.undo()

    after = {p.name: p.read_bytes() for p in folder.iterdir()}
    assert after == before  # same files (no temporary left), same bytes
    assert_same_weights(af.load_model(folder, "net"), good)


def test_atomic_write_failure_leaves_no_file(tmp_path):
    target = tmp_path / "x.bin"

    def fail(f):
        f.write(b"partial")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        actfns.checkpoints.atomic_write(target, fail)
    assert list(tmp_path.iterdir()) == []
    actfns.checkpoints.atomic_write(target, lambda f: f.write(b"whole"))
    assert target.read_bytes() == b"whole"
    assert list(tmp_path.iterdir()) == [target]
