"""save_model / load_model: the course's file format, the run layout (a link to a
version named by its SHA-256), round trips, every bad-file case, and atomic writes.

The fault injection (kill -9, concurrent processes, every single-byte change,
permissions, umask) is in ``test_faults.py``."""

import hashlib
import io
import json
import os
import stat
import struct
import threading
import zipfile
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
from conftest import snapshot
from torch import nn

import actfns as af
import actfns.checkpoints
import actfns.env

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
    folder = ckpt_dir / "ours"  # the link to the current version: the course's layout
    with open(folder / "ours.config") as f:
        config_dict = json.load(f)
    act_fn_name = config_dict["act_fn"].pop("name").lower()
    act_fn = COURSE_ACTS[act_fn_name](**config_dict.pop("act_fn"))
    theirs = course.BaseNetwork(act_fn=act_fn, **config_dict)
    theirs.load_state_dict(torch.load(folder / "ours.tar", weights_only=True))
    assert_same_weights(theirs, ours)


# ---------------------------------------------------------------------------------
# Round trips


@pytest.mark.parametrize("act", [af.ELU(alpha=0.5), af.Swish(beta=2.0), af.GELU(),
                                 af.Softplus(beta=3.0), af.Identity()])
def test_round_trip_rebuilds_the_network(ckpt_dir, act):
    net = small_net(act)
    config_file, model_file = af.save_model(net, ckpt_dir, "net")
    assert config_file == ckpt_dir / "net" / "net.config"
    assert model_file == ckpt_dir / "net" / "net.tar"
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
    assert (tmp_path / "from_env" / "net" / "net.tar").is_file()
    assert_same_weights(af.load_model(None, "net"), net)


def listing(folder):
    return sorted(p.name for p in Path(folder).iterdir())


def version_of(folder, name):
    """The version folder the link ``folder/name`` points to."""
    return Path(folder) / os.readlink(Path(folder) / name)


def test_save_creates_the_folder_and_overwrites(tmp_path):
    folder = tmp_path / "a" / "b"
    af.save_model(small_net(seed=0), folder, "net")
    first = version_of(folder, "net")
    newer = small_net(seed=1)
    af.save_model(newer, folder, "net")
    assert_same_weights(af.load_model(folder, "net"), newer)
    current = version_of(folder, "net")
    assert current != first and not first.exists()  # the old version is removed
    assert listing(folder) == [".net.lock", current.name, "net"]
    assert (folder / "net").is_symlink() and listing(current) == ["net.config",
                                                                   "net.tar"]


def test_a_version_is_named_after_the_sha256_of_its_files(ckpt_dir):
    af.save_model(small_net(), ckpt_dir, "net")
    version = version_of(ckpt_dir, "net")
    files = {p.name: p.read_bytes() for p in version.iterdir()}
    digest = actfns.checkpoints.version_digest(files)
    assert version.name == f".net.v-{digest[:12]}"
    files["net.config"] += b" "
    assert actfns.checkpoints.version_digest(files) != digest


def test_saving_the_same_bytes_again_publishes_a_fresh_version(ckpt_dir):
    """A version, once published, is never written again (a reader may be reading
    it): the same files are published under the next slice of their SHA-256."""
    net = small_net()
    files = actfns.checkpoints.checkpoint_bytes(net)
    first = actfns.checkpoints.publish_files(ckpt_dir, "net", files)
    second = actfns.checkpoints.publish_files(ckpt_dir, "net", files)
    assert first != second and second == version_of(ckpt_dir, "net")
    assert not first.exists()
    assert_same_weights(af.load_model(ckpt_dir, "net"), net)


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_saved_files_are_read_only_and_get_the_umask(tmp_path, mask):
    """Modes come from the umask, as for any new file (nothing process-wide is
    changed); a version's files are read-only: they never change once published."""
    old = os.umask(mask)
    try:
        af.save_model(small_net(), tmp_path, "net")
    finally:
        os.umask(old)
    version = version_of(tmp_path, "net")
    for name in ("net.config", "net.tar"):
        assert stat.S_IMODE((version / name).stat().st_mode) == 0o444 & ~mask, name
    assert stat.S_IMODE(version.stat().st_mode) == 0o777 & ~mask
    assert stat.S_IMODE((tmp_path / ".net.lock").stat().st_mode) == 0o666 & ~mask


def test_saved_tensors_are_detached_cpu(ckpt_dir):
    af.save_model(small_net(), ckpt_dir, "net")
    state = torch.load(ckpt_dir / "net" / "net.tar", weights_only=True)
    assert all(t.device.type == "cpu" and not t.requires_grad for t in state.values())


def test_a_network_without_a_config_is_a_clear_error(ckpt_dir):
    with pytest.raises(TypeError, match="config dict and a state_dict"):
        af.save_model(nn.Linear(2, 2), ckpt_dir, "net")
    net = small_net()
    net.config = dict(net.config, act_fn=object())
    with pytest.raises(TypeError, match="cannot be saved as JSON"):
        af.save_model(net, ckpt_dir, "net")
    assert not (ckpt_dir / "net").exists()


# ---------------------------------------------------------------------------------
# Names


@pytest.mark.parametrize(("name", "words"), [
    ("", "is empty"),
    (".", "is not a name"),
    ("..", "is not a name"),
    ("a/b", "path separator"),
    ("../escaped", "path separator"),
    ("/tmp/net", "path separator"),
    ("a\\b", "path separator"),
    ("a\0b", "NUL"),
    (".hidden", "starts with '.'"),
    ("net.tar", "without it"),
    ("net.config", "without it"),
    ("x" * 151, "at most 150"),
    ("\udcff", "cannot be encoded"),
])
def test_odd_names_are_clear_errors(tmp_path, name, words):
    folder = tmp_path / "ckpt"
    with pytest.raises(ValueError, match=words):
        af.save_model(small_net(), folder, name)
    with pytest.raises(ValueError, match=words):
        af.load_model(folder, name)
    assert not folder.exists() or listing(folder) == []
    assert listing(tmp_path) in ([], ["ckpt"])  # nothing written beside it either


@pytest.mark.parametrize("name", [None, 3, Path("net"), b"net"])
def test_a_name_must_be_a_string(ckpt_dir, name):
    with pytest.raises(TypeError, match="must be a string"):
        af.save_model(small_net(), ckpt_dir, name)


def test_a_long_name_that_fits_works(ckpt_dir):
    name = "n" * 150
    net = small_net()
    af.save_model(net, ckpt_dir, name)
    assert_same_weights(af.load_model(ckpt_dir, name), net)


# ---------------------------------------------------------------------------------
# Files actfns did not write are never replaced


def test_the_courses_pair_is_never_replaced(ckpt_dir):
    theirs = small_net(seed=3)
    course.save_model(theirs, ckpt_dir, "net")
    before = snapshot(ckpt_dir)
    with pytest.raises(af.CheckpointError, match="does not replace them") as info:
        af.save_model(small_net(seed=4), ckpt_dir, "net")
    assert info.value.kind == "foreign"
    assert snapshot(ckpt_dir) == before
    assert_same_weights(af.load_model(ckpt_dir, "net"), theirs)


@pytest.mark.parametrize("what", ["folder", "link", "file"])
def test_a_folder_link_or_file_named_like_the_checkpoint_is_kept(tmp_path, what):
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    theirs = small_net(seed=3)
    if what == "folder":  # e.g. the course's files in a folder of their own
        course.save_model(theirs, ckpt / "net", "net")
    elif what == "link":
        course.save_model(theirs, tmp_path / "elsewhere", "net")
        (ckpt / "net").symlink_to(tmp_path / "elsewhere")
    else:
        (ckpt / "net").write_text("a note")
    before = snapshot(tmp_path)
    with pytest.raises(af.CheckpointError, match="did not make") as info:
        af.save_model(small_net(seed=4), ckpt, "net")
    assert info.value.kind == "foreign"
    assert snapshot(tmp_path) == before
    if what == "file":
        with pytest.raises(af.CheckpointError, match="is a file, not a checkpoint"):
            af.load_model(ckpt, "net")
    else:  # loads as it is
        assert_same_weights(af.load_model(ckpt, "net"), theirs)


def test_a_run_and_a_pair_of_the_same_name_is_ambiguous(ckpt_dir):
    af.save_model(small_net(seed=0), ckpt_dir, "net")
    course.save_model(small_net(seed=1), ckpt_dir, "net")
    with pytest.raises(af.CheckpointError, match="both") as info:
        af.load_model(ckpt_dir, "net")
    assert info.value.kind == "ambiguous"
    assert_same_weights(af.load_model(ckpt_dir / "net", "net"), small_net(seed=0))


# ---------------------------------------------------------------------------------
# Bad files: a CheckpointError that names the file. These use the course's pair
# (no SHA-256 to check against), so that every check of the contents is reached.


@pytest.fixture
def saved(ckpt_dir):
    net = small_net()
    course.save_model(net, ckpt_dir, "net")
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
    with pytest.raises(af.CheckpointError, match="no checkpoint net") as info:
        af.load_model(tmp_path / "nowhere", "net")
    assert info.value.kind == "missing"


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
    (b"PK\x03\x04garbage", "BadZipFile: File is not a zip file)"),
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


def _member(data, suffix):
    return next(i for i in zipfile.ZipFile(io.BytesIO(data)).infolist()
                if i.filename.endswith(suffix))


def _tensor_data_offset(path, member_suffix):
    """Byte offset of a member's data inside the zip file written by torch.save."""
    data = path.read_bytes()
    h = _member(data, member_suffix).header_offset
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


def _central_entry(data, suffix):
    """Offset of a member's central-directory entry."""
    info = _member(bytes(data), suffix)
    return _find_central(data, zipfile.ZipFile(io.BytesIO(bytes(data))).start_dir,
                         info.filename)


def _find_central(data, start, filename):
    offset = start
    while data[offset:offset + 4] == b"PK\x01\x02":
        name_len, extra_len, comment_len = struct.unpack(
            "<HHH", data[offset + 28:offset + 34])
        if data[offset + 46:offset + 46 + name_len].decode() == filename:
            return offset
        offset += 46 + name_len + extra_len + comment_len
    raise AssertionError(filename)


def _set_directory_bit(data):
    entry = _central_entry(data, "data/0")
    data[entry + 38] |= 0x10  # external attributes: MS-DOS "directory"


def _set_patch_flag(data):
    data[_central_entry(data, "data/0") + 8] |= 0x20  # "compressed patch data"


def _set_compression(data):
    data[_central_entry(data, "data/0") + 10] = 99  # an unknown method


def _cut_directory(data):
    del data[-10:]


@pytest.mark.parametrize(("damage", "words"), [
    (_set_directory_bit, "marked as a folder"),
    (_set_patch_flag, "NotImplementedError"),
    (_set_compression, "not stored as torch.save stores it"),
    (_cut_directory, "BadZipFile"),
])
def test_damage_to_the_zip_directory_is_an_error_naming_the_file(saved, damage,
                                                                  words):
    """Issue 17: the directory bit made torch return uninitialised memory; other
    bytes of the zip directory escaped as NotImplementedError / BadZipFile."""
    folder, _ = saved
    path = folder / "net.tar"
    data = bytearray(path.read_bytes())
    damage(data)
    path.write_bytes(bytes(data))
    with pytest.raises(af.CheckpointError, match=words) as info:
        af.load_model(folder, "net")
    assert str(path) in str(info.value) and info.value.kind == "damaged"


@pytest.mark.parametrize(("text", "words"), [
    ("{not json", "not valid JSON"),
    ("", "not valid JSON"),
    ("[1, 2]", "not a network config"),
    ("null", "not a network config"),
    ("[" * 100000, "not valid JSON"),
    ('{"input_size": 12, "num_classes": 3, "hidden_sizes": [8, 6]}', "act_fn"),
    ('{"act_fn": {"name": "ReLU"}, "input_size": 12, "num_classes": 3, '
     '"hidden_sizes": [8, 6], "dropout": 0.5}', "dropout"),
    ('{"act_fn": {"name": "ReLU"}, "input_size": 12, "num_classes": 3, '
     '"hidden_sizes": "8"}', "hidden_sizes"),
    ('{"act_fn": {"name": "ReLU"}, "input_size": 12, "num_classes": 3, '
     '"hidden_sizes": [1000000000000]}', "hidden sizes"),
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


def test_the_courses_published_pair_must_keep_its_config(saved, monkeypatch):
    """The course's files have published SHA-256s: its .tar with another .config (an
    edited LeakyReLU alpha loads without any other error) is refused."""
    folder, _ = saved
    (folder / "net.config").unlink()
    (folder / "net.tar").unlink()
    net = small_net("leakyrelu")
    course.save_model(net, folder, "FashionMNIST_leakyrelu")
    pins = {f"FashionMNIST_leakyrelu{s}": hashlib.sha256(
        (folder / f"FashionMNIST_leakyrelu{s}").read_bytes()).hexdigest()
        for s in (".config", ".tar")}
    monkeypatch.setattr(actfns.checkpoints, "COURSE_CHECKPOINT_SHA256", pins)
    assert_same_weights(af.load_model(folder, "FashionMNIST_leakyrelu"), net)
    config = folder / "FashionMNIST_leakyrelu.config"
    config.write_text(config.read_text().replace("0.1", "0.7"))
    with pytest.raises(af.CheckpointError, match="not the config the course "
                                                 "published") as info:
        af.load_model(folder, "FashionMNIST_leakyrelu")
    assert str(config) in str(info.value)


# ---------------------------------------------------------------------------------
# actfns's runs: every file is checked against the SHA-256 in its version's name


@pytest.fixture
def ours(ckpt_dir):
    net = small_net("leakyrelu")
    af.save_model(net, ckpt_dir, "net")
    return ckpt_dir, net


def _edit(path, change):
    path.chmod(0o644)  # a version's files are read-only
    path.write_bytes(change(path.read_bytes()))


@pytest.mark.parametrize(("file", "change"), [
    ("net.tar", lambda b: b[:100] + bytes([b[100] ^ 1]) + b[101:]),
    ("net.tar", lambda b: b[:-1]),
    ("net.config", lambda b: b.replace(b"0.1", b"0.7")),  # loads, but is not ours
    ("net.config", lambda b: b + b"\n"),
])
def test_a_changed_byte_in_a_version_is_an_error_naming_the_file(ours, file, change):
    folder, _ = ours
    version = version_of(folder, "net")
    _edit(version / file, change)
    with pytest.raises(af.CheckpointError, match="damaged") as info:
        af.load_model(folder, "net")
    assert str(version / file) in str(info.value) and info.value.kind == "damaged"


def test_a_missing_or_extra_file_in_a_version_is_an_error(ours):
    folder, _ = ours
    version = version_of(folder, "net")
    (version / "notes.txt").write_text("mine")
    with pytest.raises(af.CheckpointError, match="notes.txt is not a file actfns"):
        af.load_model(folder, "net")
    (version / "notes.txt").unlink()
    (version / "net.config").unlink()
    with pytest.raises(af.CheckpointError, match=r"net\.config is missing"):
        af.load_model(folder, "net")


def test_leftovers_of_a_killed_writer_are_removed_by_the_next_load(ours):
    """A writer killed before its rename leaves a staging folder, a version that was
    never made current, or a temporary link; the next load removes them (the kill
    itself is in test_faults.py)."""
    folder, net = ours
    current = version_of(folder, "net").name
    stage = actfns.env.temp_name(folder / "net", "new")
    stage.mkdir()
    (stage / "net.tar").write_bytes(b"half")
    unpublished = folder / ".net.v-0123456789ab"
    unpublished.mkdir()
    link = actfns.env.temp_name(folder / "net", "link")
    link.symlink_to(unpublished.name)
    older = folder / ".net.tar.k3j_x9a2.tmp"  # an older actfns's temp file, an hour old
    older.write_bytes(b"half")
    os.utime(older, (0, 0))
    other = folder / ".net2.v-0123456789ab"  # another name's: not ours to remove
    other.mkdir()
    assert_same_weights(af.load_model(folder, "net"), net)
    assert listing(folder) == [".net.lock", current, ".net2.v-0123456789ab", "net"]


def test_leftovers_stay_while_a_writer_holds_the_lock(ours):
    folder, net = ours
    unpublished = folder / ".net.v-0123456789ab"
    unpublished.mkdir()
    held, release = threading.Event(), threading.Event()

    def writer():  # another thread is another holder (the lock is per thread)
        with actfns.checkpoints.run_lock(folder, "net"):
            held.set()
            release.wait(30)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert held.wait(30)
        assert_same_weights(af.load_model(folder, "net"), net)
        assert unpublished.exists()  # maybe being written: left alone
    finally:
        release.set()
        thread.join()
    af.load_model(folder, "net")
    assert not unpublished.exists()


def test_an_interrupted_save_keeps_the_previous_checkpoint(ours, monkeypatch):
    folder, good = ours
    before = snapshot(folder)
    real_fsync = os.fsync
    calls = []

    def interrupted_fsync(fd):
        calls.append(fd)
        if len(calls) == 2:  # the first file is written, the second one half
            raise KeyboardInterrupt("interrupted")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", interrupted_fsync)
    with pytest.raises(KeyboardInterrupt):
        af.save_model(small_net(seed=5), folder, "net")
    monkeypatch.undo()
    assert snapshot(folder) == before  # same files (no staging left), same bytes
    assert_same_weights(af.load_model(folder, "net"), good)


# ---------------------------------------------------------------------------------
# Devices


def _absent_cuda():
    """A CUDA device this machine does not have."""
    return f"cuda:{torch.cuda.device_count()}" if torch.cuda.is_available() else "cuda"


def test_a_device_this_machine_lacks_is_not_called_corrupt(ours):
    folder, net = ours
    device = _absent_cuda()
    for where in (device, torch.device(device), {"cpu": device}):
        with pytest.raises(ValueError, match="cuda") as info:
            af.load_model(folder, "net", map_location=where)
        message = str(info.value)
        assert "corrupt" not in message and "damaged" not in message
    assert_same_weights(af.load_model(folder, "net"), net)
