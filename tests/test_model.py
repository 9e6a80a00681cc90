"""BaseNetwork: the course's layer layout, config and state-dict keys."""

import json

import pytest
import torch
from torch import nn

import actfns as af


def test_default_layout_matches_the_course():
    net = af.BaseNetwork(af.ReLU())
    layers = list(net.layers)
    assert isinstance(net.layers, nn.Sequential) and len(layers) == 9
    linears, acts = layers[0::2], layers[1::2]
    assert all(isinstance(m, nn.Linear) for m in linears)
    assert all(isinstance(m, af.ReLU) for m in acts)
    sizes = [784, 512, 256, 256, 128, 10]
    assert [(m.in_features, m.out_features) for m in linears] == list(
        zip(sizes[:-1], sizes[1:]))
    assert len({id(m) for m in acts}) == 4  # each layer its own copy


def test_config_is_the_course_json():
    net = af.BaseNetwork(af.LeakyReLU(0.1))
    assert net.config == {"act_fn": {"name": "LeakyReLU", "alpha": 0.1},
                          "input_size": 784, "num_classes": 10,
                          "hidden_sizes": [512, 256, 256, 128]}
    assert json.loads(json.dumps(net.config)) == net.config


def test_state_dict_keys():
    net = af.BaseNetwork("tanh", hidden_sizes=[32, 16])
    assert list(net.state_dict()) == [
        "layers.0.weight", "layers.0.bias", "layers.2.weight", "layers.2.bias",
        "layers.4.weight", "layers.4.bias"]
    assert net.state_dict()["layers.2.weight"].shape == (16, 32)


@pytest.mark.parametrize("act_fn", [af.ELU(alpha=0.5), "elu", "ELU",
                                     {"name": "ELU", "alpha": 0.5}])
def test_act_fn_from_instance_name_or_config(act_fn):
    net = af.BaseNetwork(act_fn, input_size=6, num_classes=2, hidden_sizes=[4])
    assert isinstance(net.layers[1], af.ELU)
    expected = 0.5 if not isinstance(act_fn, str) else 1.0
    assert net.config["act_fn"] == {"name": "ELU", "alpha": expected}


def test_passed_instance_is_copied_not_shared():
    act = af.Swish()
    net = af.BaseNetwork(act, input_size=3, num_classes=2, hidden_sizes=[4, 4])
    assert net.layers[1] is not act and net.layers[3] is not act
    act.config["beta"] = 5.0  # changing the caller's object leaves the network alone
    assert net.layers[1].config["beta"] == 1.0 == net.config["act_fn"]["beta"]


def test_forward_flattens_images():
    torch.manual_seed(0)
    net = af.BaseNetwork("relu")
    x = torch.randn(5, 1, 28, 28)
    out = net(x)
    assert out.shape == (5, 10)
    torch.testing.assert_close(out, net.layers(x.reshape(5, 784)))


def test_forward_is_the_composition_of_layers():
    torch.manual_seed(0)
    net = af.BaseNetwork("sigmoid", input_size=3, num_classes=2, hidden_sizes=[4])
    x = torch.randn(7, 3)
    w0, b0 = net.layers[0].weight, net.layers[0].bias
    w1, b1 = net.layers[2].weight, net.layers[2].bias
    expected = torch.sigmoid(x @ w0.T + b0) @ w1.T + b1
    torch.testing.assert_close(net(x), expected)


def test_no_hidden_layers_is_linear():
    net = af.BaseNetwork("relu", input_size=5, num_classes=3, hidden_sizes=[])
    assert len(net.layers) == 1 and isinstance(net.layers[0], nn.Linear)


@pytest.mark.parametrize(("kwargs", "error", "words"), [
    ({"act_fn": 3}, TypeError, "act_fn must be"),
    ({"act_fn": "swoosh"}, ValueError, "valid names"),
    ({"act_fn": "relu", "input_size": 0}, ValueError, "input_size"),
    ({"act_fn": "relu", "num_classes": 2.5}, ValueError, "num_classes"),
    ({"act_fn": "relu", "hidden_sizes": [64, -1]}, ValueError, "hidden size"),
    ({"act_fn": "relu", "hidden_sizes": "512"}, ValueError, "hidden_sizes"),
    ({"act_fn": "relu", "hidden_sizes": 512}, ValueError, "hidden_sizes"),
    ({"act_fn": "relu", "input_size": True}, ValueError, "input_size"),
])
def test_bad_arguments(kwargs, error, words):
    with pytest.raises(error, match=words):
        af.BaseNetwork(**kwargs)


def test_a_network_larger_than_the_machine_is_refused_before_allocating():
    with pytest.raises(ValueError, match=r"has [\d,]+ parameters .* more than this "
                                         "machine's memory"):
        af.BaseNetwork("relu", hidden_sizes=[10**12])
