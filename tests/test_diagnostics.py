"""Diagnostics: weight gradients, gradient statistics, per-layer activations, and dead
neurons on a hand-built network whose answer is known."""

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import TensorDataset

import actfns as af


def small_net(act="tanh", seed=0):
    torch.manual_seed(seed)
    return af.BaseNetwork(act, input_size=10, num_classes=3, hidden_sizes=[8, 6])


def batch(n=16, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 10, generator=g), torch.randint(3, (n,), generator=g)


# ---------------------------------------------------------------------------------
# weight_grads and grad_stats


def test_weight_grads_match_manual_autograd():
    net = small_net()
    X, y = batch()
    reference = copy.deepcopy(net)
    F.cross_entropy(reference(X), y).backward()

    grads = af.weight_grads(net, X, y)
    assert list(grads) == ["layers.0.weight", "layers.2.weight", "layers.4.weight"]
    for name, g in grads.items():
        expected = reference.get_parameter(name).grad
        assert g.shape == expected.shape and not g.requires_grad
        torch.testing.assert_close(g, expected, rtol=0, atol=0)


def test_weight_grads_leave_grad_fields_untouched():
    net = small_net()
    X, y = batch()
    net.layers[0].weight.grad = torch.full_like(net.layers[0].weight, 7.0)
    af.weight_grads(net, X, y)
    assert torch.equal(net.layers[0].weight.grad,
                       torch.full_like(net.layers[0].weight, 7.0))
    assert all(p.grad is None for n, p in net.named_parameters()
               if n != "layers.0.weight")


def test_weight_grads_custom_loss():
    net = small_net("relu")
    X, y = batch()
    grads = af.weight_grads(net, X, y, loss_fn=lambda out, y: 0 * out.sum())
    assert all(torch.count_nonzero(g) == 0 for g in grads.values())


def test_grad_stats_columns_and_values():
    g1 = torch.tensor([[3.0, -4.0]])
    g2 = torch.tensor([[1.0, 1.0], [-1.0, -1.0]])
    df = af.grad_stats({"layers.0.weight": g1, "layers.2.weight": g2})
    assert list(df.columns) == ["layer", "param", "shape", "norm", "rms", "mean_abs",
                                "std", "max_abs"]
    assert df["layer"].tolist() == [1, 2]
    assert df["param"].tolist() == ["layers.0.weight", "layers.2.weight"]
    assert df["shape"].tolist() == [(1, 2), (2, 2)]
    assert df["norm"].tolist() == pytest.approx([5.0, 2.0])
    assert df["rms"].tolist() == pytest.approx([5.0 / 2**0.5, 1.0])
    assert df["mean_abs"].tolist() == pytest.approx([3.5, 1.0])
    assert df["max_abs"].tolist() == pytest.approx([4.0, 1.0])
    assert df["std"].tolist() == pytest.approx([g1.std().item(), g2.std().item()])


def test_grad_stats_of_a_real_network():
    net = small_net()
    X, y = batch()
    grads = af.weight_grads(net, X, y)
    df = af.grad_stats(grads)
    assert len(df) == 3
    for (_, row), g in zip(df.iterrows(), grads.values()):
        assert row["norm"] == pytest.approx(g.double().norm().item())


# ---------------------------------------------------------------------------------
# layer_activations


def test_layer_activations_are_the_per_layer_outputs():
    net = small_net("elu")
    X, _ = batch()
    acts = af.layer_activations(net, X)
    assert list(acts) == ["layers.1", "layers.3"]
    assert acts["layers.1"].shape == (16, 8) and acts["layers.3"].shape == (16, 6)
    with torch.no_grad():
        torch.testing.assert_close(acts["layers.1"], net.layers[:2](X))
        torch.testing.assert_close(acts["layers.3"], net.layers[:4](X))
    assert all(not m._forward_hooks for m in net.modules())  # hooks removed


def test_layer_activations_of_a_torch_relu_sequential():
    torch.manual_seed(0)
    seq = nn.Sequential(nn.Flatten(), nn.Linear(12, 7), nn.ReLU(), nn.Linear(7, 5),
                        nn.ReLU(), nn.Linear(5, 2))
    X = torch.randn(4, 3, 4)
    assert af.layer_activations(seq, X) == {}  # no actfns activations in it
    acts = af.layer_activations(seq, X, kind=nn.ReLU)
    assert list(acts) == ["2", "4"]
    with torch.no_grad():
        torch.testing.assert_close(acts["2"], seq[:3](X))
        torch.testing.assert_close(acts["4"], seq[:5](X))


def test_hooks_removed_when_forward_fails():
    net = small_net()
    with pytest.raises(RuntimeError):
        af.layer_activations(net, torch.randn(2, 11))
    assert all(not m._forward_hooks for m in net.modules())


def test_one_activation_object_in_several_layers_is_refused():
    """The course's network reuses one act_fn object: hooks on it cannot tell the
    layers apart (it used to return one entry holding the last layer's output)."""
    act = af.ReLU()
    shared = nn.Sequential(nn.Linear(4, 3), act, nn.Linear(3, 3), act, nn.Linear(3, 2))
    with pytest.raises(ValueError, match="own copy"):
        af.layer_activations(shared, torch.randn(2, 4))
    with pytest.raises(ValueError, match="layers 1, 3"):
        af.count_dead_neurons(shared, torch.randn(5, 4))


# ---------------------------------------------------------------------------------
# count_dead_neurons on a hand-built network


def hand_built():
    """ReLU net 4 -> 6 -> 5 -> 3 -> 2 whose dead units are known by construction.

    Inputs have x0 <= 0.9 except sample 3 (x0 = 1), which alone wakes unit 5 of
    layer 1. Dead (|out| = 0 on every input):
    - layer 1: units 1, 4 (bias -100)                                  -> 2
    - layer 2: unit 0 (reads only dead units), unit 1 (bias -100)      -> 2
      unit 4 outputs 1e-6 everywhere: alive, but dead with atol=1e-3   -> 3
    - layer 3: unit 1 (-1 x a non-negative input)                      -> 1
    Unit 5 of layer 1 and unit 3 of layer 2 fire on sample 3 only (in the first
    batch), so a census that forgot earlier batches would count them dead.
    """
    net = af.BaseNetwork("relu", input_size=4, num_classes=2, hidden_sizes=[6, 5, 3])
    l1, l2, l3 = net.layers[0], net.layers[2], net.layers[4]
    with torch.no_grad():
        for layer in (l1, l2, l3, net.layers[6]):
            layer.weight.zero_()
            layer.bias.zero_()
        l1.weight[0, 0], l1.bias[0] = 1.0, 1.0  # x0 + 1 > 0: always on
        l1.weight[1] = torch.tensor([1.0, -2.0, 0.5, 1.0])
        l1.bias[1] = -100.0  # dead
        l1.weight[2, 1] = 1.0  # on when x1 > 0
        l1.weight[3, 2], l1.bias[3] = -1.0, 0.5
        l1.weight[4] = torch.tensor([-1.0, 1.0, 1.0, -1.0])
        l1.bias[4] = -100.0  # dead
        l1.weight[5, 0], l1.bias[5] = 1.0, -0.99  # on only when x0 > 0.99
        l2.weight[0, 1], l2.weight[0, 4] = 1.0, 1.0  # reads only dead units
        l2.weight[1, 0], l2.bias[1] = 1.0, -100.0  # dead
        l2.weight[2, 0] = 1.0  # on
        l2.weight[3, 5] = 1.0  # on for sample 3 only
        l2.bias[4] = 1e-6  # tiny but positive
        l3.weight[0, 3] = 1.0  # on for sample 3 only
        l3.weight[1, 2] = -1.0  # dead: -relu(...) <= 0
        l3.weight[2, 2] = 1.0  # on
    return net


def hand_data(n=50):
    g = torch.Generator().manual_seed(0)
    X = torch.rand(n, 4, generator=g) * 1.8 - 0.9  # in [-0.9, 0.9]
    X[3, 0] = 1.0
    return X


@pytest.mark.parametrize("batch_size", [7, 1, 50, 4096])
def test_dead_neurons_of_the_hand_built_network(batch_size):
    X = hand_data()
    dataset = TensorDataset(X, torch.zeros(len(X), dtype=torch.long))
    dead = af.count_dead_neurons(hand_built(), dataset, batch_size=batch_size)
    assert dead.names == ["layers.1", "layers.3", "layers.5"]
    assert dead.counts == [2, 2, 1]
    assert dead.sizes == [6, 5, 3]
    assert dead.num_samples == 50
    assert dead.fractions == pytest.approx([2 / 6, 2 / 5, 1 / 3])
    assert dead.total_fraction == pytest.approx(5 / 14)
    # which units: the ones the docstring of hand_built names
    assert {n: m.nonzero().flatten().tolist() for n, m in dead.masks.items()} == {
        "layers.1": [1, 4], "layers.3": [0, 1], "layers.5": [1]}


def test_dead_neurons_with_atol():
    X = hand_data()
    loose = af.count_dead_neurons(hand_built(), X, batch_size=7, atol=1e-3)
    assert loose.counts == [2, 3, 1]
    assert loose.masks["layers.3"].nonzero().flatten().tolist() == [0, 1, 4]
    assert af.count_dead_neurons(hand_built(), X, batch_size=7,
                                 atol=0.0).counts == [2, 2, 1]


def test_the_rare_sample_is_what_keeps_units_alive():
    X = hand_data()
    X[3, 0] = 0.5  # without it, unit 5 (layer 1), unit 3 (layer 2), unit 0 (layer 3)
    assert af.count_dead_neurons(hand_built(), X, batch_size=7).counts == [3, 3, 2]


def test_dead_neurons_frame():
    frame = af.count_dead_neurons(hand_built(), hand_data(), batch_size=7).to_frame()
    assert list(frame.columns) == ["layer", "module", "dead", "units", "fraction"]
    assert frame["dead"].tolist() == [2, 2, 1]
    assert frame["layer"].tolist() == [1, 2, 3]


def test_dead_neurons_of_a_torch_relu_network():
    net = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]))
        net[0].bias.copy_(torch.tensor([0.0, -50.0, 0.0]))
    X = torch.rand(20, 2)
    dead = af.count_dead_neurons(net, X, kind=nn.ReLU)
    assert dead.counts == [1] and dead.names == ["1"]
    with pytest.raises(ValueError, match="no ActivationFunction"):
        af.count_dead_neurons(net, X)


def test_dead_neuron_census_leaves_no_hooks():
    net = hand_built()
    af.count_dead_neurons(net, hand_data(), batch_size=7)
    assert all(not m._forward_hooks for m in net.modules())


@pytest.mark.parametrize("training", [True, False])
def test_diagnostics_leave_the_network_in_its_mode(training):
    net = af.BaseNetwork("relu", input_size=6, num_classes=3, hidden_sizes=(5, 4))
    net.train(training)
    X, y = torch.randn(8, 6), torch.randint(0, 3, (8,))
    af.weight_grads(net, X, y)
    af.layer_activations(net, X)
    af.count_dead_neurons(net, X, batch_size=3)
    assert net.training is training
    assert all(m.training is training for m in net.modules())


@pytest.mark.parametrize("batch_size", [7, 50, 4096])
def test_units_ever_streams_each_test_over_the_batches(batch_size):
    torch.manual_seed(0)
    net = af.BaseNetwork("elu", input_size=4, num_classes=2, hidden_sizes=(8, 6))
    X = torch.randn(50, 4)
    tests = {"positive": lambda out: (out > 0).any(dim=0),
             "below -0.5": lambda out: (out < -0.5).any(dim=0)}
    ever = af.units_ever(net, X, tests, batch_size=batch_size)
    whole = af.layer_activations(net, X)  # every input in one batch
    assert list(ever) == list(whole)
    for name, out in whole.items():
        assert set(ever[name]) == set(tests)
        for test, fn in tests.items():
            assert torch.equal(ever[name][test], fn(out)), (name, test)


def test_units_ever_needs_activation_layers():
    with pytest.raises(ValueError, match="has no ActivationFunction modules"):
        af.units_ever(nn.Linear(4, 2), torch.randn(3, 4), {"any": lambda o: o.any(0)})


def test_plateau_of_a_run_that_answers_one_class_first():
    labels = torch.tensor([0, 0, 0, 1, 2])  # the largest class is 60 %
    val = TensorDataset(torch.zeros(5, 2), labels)
    h = af.History("run", val_acc=[0.2, 0.6, 0.4, 0.8, 0.6, 0.9])
    p = af.plateau(h, val)
    assert p.level == 0.6 and p.on == [True, True, True, False, True, False]
    assert (p.first_escape, p.last_on, p.epochs_on) == (4, 5, 4)
    learned = af.plateau(af.History("r", val_acc=[0.7, 0.9]), val)
    assert (learned.first_escape, learned.last_on) == (1, None)
