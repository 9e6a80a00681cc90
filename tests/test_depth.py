"""actfns.depth: dead and inactive units per layer, and the sweep over depth."""

import pytest
import torch

import actfns as af


def hand_made(act):
    """Units: 0 fires for every input, 1 is always negative, 2 is always exactly 0."""
    net = af.BaseNetwork(act, input_size=2, num_classes=2, hidden_sizes=(3,))
    with torch.no_grad():
        net.layers[0].weight.copy_(torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 0.0]]))
        net.layers[0].bias.zero_()
    X = torch.stack([torch.rand(50) + 0.1, torch.randn(50)], dim=1)  # x0 > 0
    return net, X


@pytest.mark.parametrize("act, dead, inactive", [
    ("relu", 2, 2), (af.LeakyReLU(0.1), 1, 2), ("elu", 1, 2)])
def test_neuron_census_on_a_hand_made_layer(act, dead, inactive):
    net, X = hand_made(act)
    census = af.neuron_census(net, X, batch_size=16)
    counts = census[["units", "dead", "inactive"]].values.tolist()
    assert counts == [[3, dead, inactive]]
    assert census["dead"].tolist() == af.count_dead_neurons(net, X).counts
    assert census["inactive_frac"].iloc[0] == pytest.approx(inactive / 3)


def test_depth_sweep_matches_count_dead_neurons():
    X = torch.randn(300, 20, generator=torch.Generator().manual_seed(0))
    df = af.depth_sweep(["relu", "leakyrelu"], (4, 1, 2), X, width=8, seed=5)
    assert len(df) == 2 * (1 + 2 + 4)
    assert list(df.columns[:3]) == ["activation", "depth", "layer"]
    for (act, depth), rows in df.groupby(["activation", "depth"]):
        af.set_seed(5)  # each network built on its own, as the docstring promises
        net = af.BaseNetwork(act, 20, hidden_sizes=(8,) * depth)
        assert rows["layer"].tolist() == list(range(1, depth + 1))
        assert rows["dead"].tolist() == af.count_dead_neurons(net, X).counts
        census = af.neuron_census(net, X)
        assert rows["inactive"].tolist() == census["inactive"].tolist()
    relu = df[df.activation == "relu"]
    assert (relu["dead"] == relu["inactive"]).all()
    assert (df[df.activation == "leakyrelu"]["dead"] == 0).all()
    assert relu["dead"].sum() > 0  # the hand-checked case is not trivially empty
    with pytest.raises(ValueError, match="positive integers"):
        af.depth_sweep(["relu"], (0, 2), X, width=8)


def test_exported_from_the_package():
    import actfns.depth

    for name in actfns.depth.__all__:
        assert getattr(af, name) is getattr(actfns.depth, name) and name in af.__all__
