"""actfns.initialisation: schemes, gains, initial networks, init_study; training with
an initialisation."""

import math

import pytest
import torch
from conftest import make_blob_data
from torch import nn

import actfns as af

FAN_IN, FAN_OUT = 2000, 1000


def wide_net(act="relu"):
    """A network whose first layer has 2,000,000 weights: std estimates to < 0.5 %."""
    torch.manual_seed(0)
    return af.BaseNetwork(act, input_size=FAN_IN, hidden_sizes=(FAN_OUT,))


def first_layer(net):
    return net.layers[0]


# --- initialisation -------------------------------------------------------------

def test_default_init_is_uniform_with_bound_one_over_sqrt_fan_in():
    net = wide_net()
    before = first_layer(net).weight.clone()
    af.init_network(net, "default")
    w, b = first_layer(net).weight, first_layer(net).bias
    bound = 1 / math.sqrt(FAN_IN)
    assert not torch.equal(w, before)  # re-drawn
    assert w.abs().max() <= bound and b.abs().max() <= bound
    assert w.abs().max() > 0.99 * bound  # uniform fills the interval
    assert w.std().item() == pytest.approx(1 / math.sqrt(3 * FAN_IN), rel=0.01)
    assert b.std().item() == pytest.approx(1 / math.sqrt(3 * FAN_IN), rel=0.1)


@pytest.mark.parametrize("act, gain", [
    ("relu", math.sqrt(2)), ("tanh", 5 / 3), ("sigmoid", 1.0),
    (af.LeakyReLU(0.1), math.sqrt(2 / 1.01)),
])
def test_kaiming_std_is_gain_over_sqrt_fan_in(act, gain):
    net = af.init_network(wide_net(act), "kaiming")
    w, b = first_layer(net).weight, first_layer(net).bias
    assert w.std().item() == pytest.approx(gain / math.sqrt(FAN_IN), rel=0.01)
    assert abs(w.mean().item()) < 0.01 * w.std().item()
    assert torch.count_nonzero(b) == 0
    # the output layer gets the same rule with its own fan-in
    out = net.layers[-1].weight
    assert out.std().item() == pytest.approx(gain / math.sqrt(FAN_OUT), rel=0.1)


@pytest.mark.parametrize("act, gain", [("sigmoid", 1.0), ("relu", math.sqrt(2)),
                                       ("tanh", 5 / 3)])
def test_xavier_std_and_bound(act, gain):
    net = af.init_network(wide_net(act), "xavier")
    w, b = first_layer(net).weight, first_layer(net).bias
    std = gain * math.sqrt(2 / (FAN_IN + FAN_OUT))
    assert w.std().item() == pytest.approx(std, rel=0.01)
    assert w.abs().max() <= math.sqrt(3) * std * (1 + 1e-6)
    assert torch.count_nonzero(b) == 0


def test_init_gain_values_and_unknown_activation():
    assert af.init_gain("relu") == pytest.approx(math.sqrt(2))
    assert af.init_gain(af.LeakyReLU(0.5)) == pytest.approx(math.sqrt(2 / 1.25))
    assert af.init_gain("tanh") == pytest.approx(5 / 3)
    assert af.init_gain("selu") == pytest.approx(0.75)
    with pytest.raises(ValueError, match="no gain for GELU"):
        af.init_gain("gelu")


def test_init_network_rejects_bad_input():
    with pytest.raises(ValueError, match="unknown init scheme 'he'"):
        af.init_network(af.BaseNetwork("relu"), "he")
    with pytest.raises(ValueError, match="no gain for ELU"):
        af.init_network(af.BaseNetwork("elu"), "kaiming")
    with pytest.raises(ValueError, match="no nn.Linear"):
        af.init_network(nn.Sequential(af.ReLU()), "default")
    mixed = nn.Sequential(nn.Linear(3, 3), af.ReLU(), nn.Linear(3, 3), af.Tanh())
    with pytest.raises(ValueError, match="needs act_fn for a Sequential"):
        af.init_network(mixed, "xavier")
    # an explicit activation settles it; ELU with the default scheme needs no gain
    af.init_network(mixed, "xavier", act_fn="tanh")
    af.init_network(af.BaseNetwork("elu", hidden_sizes=(4,)), "default")


def test_activation_stats_on_a_hand_made_network():
    net = af.BaseNetwork("relu", input_size=2, num_classes=2, hidden_sizes=(2, 2))
    with torch.no_grad():
        for layer in net.layers[0::2]:
            layer.weight.copy_(torch.eye(2))
            layer.bias.zero_()
    X = torch.tensor([[1.0, -2.0], [3.0, 4.0], [-1.0, 2.0]])
    df = af.activation_stats(net, X)
    relu_x = X.clamp(min=0)
    assert list(df["layer"]) == [1, 2]
    assert list(df["module"]) == ["layers.1", "layers.3"]
    assert df["mean"].tolist() == pytest.approx([relu_x.mean().item()] * 2)
    assert df["std"].tolist() == pytest.approx([relu_x.std().item()] * 2)
    per_unit = relu_x.std(dim=0).mean().item()  # (1.1547 + 0) / 2
    assert df["image_std"].tolist() == pytest.approx([per_unit] * 2)
    assert per_unit != pytest.approx(relu_x.std().item())


def test_init_study_matches_direct_measurements():
    g = torch.Generator().manual_seed(1)
    X, y = torch.randn(512, 64, generator=g), torch.randint(10, (512,), generator=g)
    sizes = (64,) * 6
    df = af.init_study(["relu"], ["default", "kaiming"], X, y, hidden_sizes=sizes)
    assert len(df) == 2 * 7 and df["act_std"].isna().sum() == 2  # output layers
    hidden = df.dropna()
    assert (hidden["act_image_std"] <= 1.01 * hidden["act_std"]).all()
    af.set_seed(42)
    net = af.init_network(af.BaseNetwork("relu", 64, hidden_sizes=sizes), "kaiming")
    norms = af.grad_stats(af.weight_grads(net, X, y))["norm"].to_numpy()
    kaiming = df[df.scheme == "kaiming"]
    assert kaiming["grad_norm"].to_numpy() == pytest.approx(norms)
    # Kaiming keeps the activation scale; the default shrinks it layer after layer
    std = {s: d["act_std"].dropna().to_numpy() for s, d in df.groupby("scheme")}
    assert 0.6 < std["kaiming"][-1] / std["kaiming"][0] < 1.6
    assert std["default"][-1] / std["default"][0] < 0.3


# --- training with an initialisation -----------------------------------------------

def test_train_with_init_names_and_reuse():
    data = make_blob_data(dim=784, sizes=(256, 128, 128), tag="init")
    kw = dict(seed=3, hidden_sizes=(16,), max_epochs=2, patience=2)
    _, h_default = af.train_with_init("tanh", data, "default", **kw)
    _, h_plain = af.train_or_load("tanh", data, **kw)
    assert h_plain.model_name == h_default.model_name and not h_plain.trained
    net, h_xavier = af.train_with_init("tanh", data, "xavier", **kw)
    assert "_xavier_" in h_xavier.model_name and h_xavier.trained
    assert h_xavier.model_name != h_default.model_name
    _, again = af.train_with_init("tanh", data, "xavier", **kw)
    assert not again.trained and again.test_acc == h_xavier.test_acc
    assert torch.count_nonzero(net.layers[0].bias) > 0  # trained away from zero


def test_initial_network_is_seeded_and_the_same_for_every_activation():
    a, b = af.initial_network("relu", seed=3), af.initial_network("tanh", seed=3)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(),
                                                   b.state_dict().values()))
    c = af.initial_network("relu", seed=4)
    assert not torch.equal(a.layers[0].weight, c.layers[0].weight)
    k = af.initial_network("relu", seed=3, init="kaiming")
    assert torch.count_nonzero(k.layers[0].bias) == 0
    with pytest.raises(ValueError, match="unknown init scheme 'he'"):
        af.initial_network("relu", init="he")


def test_init_network_takes_the_activation_of_a_base_network():
    net = af.BaseNetwork(af.LeakyReLU(alpha=0.5), input_size=FAN_IN,
                         hidden_sizes=(FAN_OUT,))
    torch.manual_seed(0)
    af.init_network(net, "kaiming")
    gain = math.sqrt(2 / (1 + 0.5**2))
    std = first_layer(net).weight.std().item()
    assert std == pytest.approx(gain / math.sqrt(FAN_IN), rel=0.01)
    other = nn.Sequential(nn.Linear(4, 4), nn.ReLU())
    with pytest.raises(ValueError, match="needs act_fn"):
        af.init_network(other, "kaiming")
