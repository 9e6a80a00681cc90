"""actfns.studies (initialisation, seeds) and the plots drawn from them."""

import math

import matplotlib.figure
import numpy as np
import pandas as pd
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


def fake_history(test_acc, best_epoch, wall_time):
    return af.History("run", val_acc=[0.5] * (best_epoch + 3), best_epoch=best_epoch,
                      test_acc=test_acc, wall_time=wall_time)


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
    with pytest.raises(ValueError, match="mixes activations"):
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


def test_train_seeds_returns_one_history_per_seed():
    data = make_blob_data(dim=784, sizes=(256, 128, 128), tag="seeds")
    runs = af.train_seeds(["relu", af.Tanh()], data, (0, 1), hidden_sizes=(8,),
                          max_epochs=1, patience=1)
    assert list(runs) == ["relu", "tanh"] and list(runs["relu"]) == [0, 1]
    names = {h.model_name for r in runs.values() for h in r.values()}
    assert len(names) == 4  # no two runs share a checkpoint


# --- summaries over seeds -----------------------------------------------------------

def test_summarize_runs_mean_and_sample_std():
    runs = {"relu": {0: fake_history(0.80, 2, 10.0), 1: fake_history(0.90, 4, 20.0),
                     2: fake_history(1.00, 6, 30.0)},
            "elu": [fake_history(0.5, 1, 5.0)]}
    s = af.summarize_runs(runs)
    assert list(s.index) == ["relu", "elu"]
    assert s.loc["relu", "runs"] == 3
    assert s.loc["relu", "test_acc_mean"] == pytest.approx(0.9)
    assert s.loc["relu", "test_acc_std"] == pytest.approx(0.1)
    assert s.loc["relu", "best_epoch_mean"] == pytest.approx(4)
    assert s.loc["relu", "best_epoch_std"] == pytest.approx(2)
    assert s.loc["relu", "wall_time_std"] == pytest.approx(10)
    assert math.isnan(s.loc["elu", "test_acc_std"])
    frame = af.runs_frame(runs)
    assert frame["seed"].tolist() == [0, 1, 2, 0] and len(frame) == 4
    with pytest.raises(ValueError, match="no runs for 'gelu'"):
        af.summarize_runs({"gelu": {}})


def test_compare_to_best_welch_t_test_against_the_best():
    summary = pd.DataFrame({"runs": [3, 3, 3, 3],
                            "test_acc_mean": [0.895, 0.9, 0.5, 0.87],
                            "test_acc_std": [0.01, 0.01, 0.0, 0.02]},
                           index=["b", "a", "c", "d"])
    cmp = af.compare_to_best(summary)
    assert list(cmp.index) == ["a", "b", "d", "c"]
    assert cmp.loc["b", "gap"] == pytest.approx(0.005)
    assert cmp.loc["b", "se"] == pytest.approx(math.sqrt(2 * 0.01**2 / 3))
    assert cmp.loc["b", "t"] == pytest.approx(0.005 / math.sqrt(2 * 0.01**2 / 3))
    # equal variances and sizes: Welch's df is n_a + n_b - 2
    assert cmp.loc["b", "df"] == pytest.approx(4)
    assert cmp.loc["b", "t_crit"] == pytest.approx(2.776445, abs=1e-6)
    # c has no spread: the df are those of the best alone, n - 1
    assert cmp.loc["c", "df"] == pytest.approx(2)
    assert cmp.loc["c", "t_crit"] == pytest.approx(4.302653, abs=1e-6)
    # d: t = 0.03 / sqrt(0.0005 / 3) = 2.32, above 2 but below the critical value
    va, vd = 0.01**2 / 3, 0.02**2 / 3
    assert cmp.loc["d", "t"] == pytest.approx(0.03 / math.sqrt(va + vd))
    assert cmp.loc["d", "df"] == pytest.approx((va + vd) ** 2 / (va**2 / 2 + vd**2 / 2))
    assert 2 < cmp.loc["d", "t"] < cmp.loc["d", "t_crit"]
    assert cmp["within_noise"].tolist() == [True, True, True, False]
    assert cmp.loc["a", ["se", "t", "df", "t_crit"]].isna().all()
    stricter = af.compare_to_best(summary.drop(index="c"), alpha=0.5)
    assert stricter["within_noise"].tolist() == [True, True, False]


def test_compare_to_best_without_spread_only_a_tie_is_within_noise():
    summary = pd.DataFrame({"runs": [1, 1, 1], "test_acc_mean": [0.9, 0.9, 0.8],
                            "test_acc_std": [math.nan] * 3}, index=["a", "b", "c"])
    cmp = af.compare_to_best(summary)
    assert cmp["within_noise"].tolist() == [True, True, False]


# --- plots ------------------------------------------------------------------------

def test_plot_seed_points_draws_every_run_and_the_mean():
    runs = af.runs_frame({"relu": [fake_history(a, 3, 1.0) for a in (0.8, 0.9)],
                          "tanh": [fake_history(a, 3, 1.0) for a in (0.7, 0.75, 0.8)]})
    fig = af.plot_seed_points(runs)
    assert isinstance(fig, matplotlib.figure.Figure)
    ax = fig.axes[0]
    def ys(marker):
        y = [np.asarray(line.get_ydata(), float) for line in ax.lines
             if line.get_marker() == marker]
        return sorted(np.round(np.concatenate(y), 6).tolist())
    assert ys("o") == [70, 75, 80, 80, 90]
    assert ys("D") == [75, 85]  # the means
    assert [t.get_text() for t in ax.get_xticklabels()] == ["relu", "tanh"]


def test_plot_lines_one_panel_per_value_and_one_line_per_hue():
    df = pd.DataFrame({"activation": ["relu"] * 4 + ["elu"] * 4,
                       "depth": [2, 2, 4, 4] * 2, "layer": [1, 2, 1, 2] * 2,
                       "frac": np.arange(8.0)})
    fig = af.plot_lines(df, "layer", "frac", hue="depth", panel="activation")
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in visible] == ["relu", "elu"]
    assert all(len(ax.lines) == 2 for ax in visible)
    assert visible[1].lines[1].get_ydata().tolist() == [6.0, 7.0]
    ticks = visible[0].get_xticks()
    assert np.allclose(ticks, np.round(ticks))  # integer x values get integer ticks
    fig = af.plot_lines(df, "depth", "frac", hue="activation", logy=True)
    assert len(fig.axes[0].lines) == 2 and fig.axes[0].get_yscale() == "log"
