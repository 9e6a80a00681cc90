"""Plots: every function returns a Figure without showing it; one colour per
activation across figures."""

import matplotlib
import matplotlib.pyplot as plt
import pandas as pd
import pytest
import torch
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure

import actfns as af


@pytest.fixture(autouse=True)
def no_show(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("plotting functions must not call show()")

    monkeypatch.setattr(plt, "show", refuse)
    monkeypatch.setattr(Figure, "show", refuse)


def history(name, val_acc):
    best = max(range(len(val_acc)), key=val_acc.__getitem__)
    return af.History(name, train_loss=[1.0] * len(val_acc), train_acc=val_acc,
                      val_acc=val_acc, epoch_time=[0.1] * len(val_acc),
                      best_epoch=best + 1, best_val_acc=val_acc[best])


def dead(counts, sizes):
    return af.DeadNeurons(names=[f"layers.{2 * i + 1}" for i in range(len(counts))],
                          counts=counts, sizes=sizes, num_samples=100)


def small_net(act):
    torch.manual_seed(0)
    return af.BaseNetwork(act, input_size=12, num_classes=3, hidden_sizes=[8, 6])


def lines_by_label(fig):
    return {line.get_label(): to_rgba(line.get_color())
            for ax in fig.axes for line in ax.get_lines()}


def test_backend_is_agg():
    assert matplotlib.get_backend().lower() == "agg"


def test_every_plot_returns_a_figure():
    X, y = torch.randn(32, 12), torch.randint(3, (32,))
    nets = {name: small_net(name) for name in ("relu", "tanh")}
    grads = {name: af.weight_grads(net, X, y) for name, net in nets.items()}
    figures = [
        af.plot_activation_functions([af.ReLU(), af.ELU(alpha=0.5), af.Swish()]),
        af.plot_activation_functions([af.Tanh()], x=torch.linspace(-2, 2, 11)),
        af.plot_weight_grads(grads["relu"], title="ReLU", color=af.color_of("relu")),
        af.plot_grad_norms({n: af.grad_stats(g) for n, g in grads.items()}),
        af.plot_activation_hists(af.layer_activations(nets["tanh"], X), title="tanh",
                                 color=af.color_of("tanh")),
        af.plot_val_curves({"relu": history("relu", [0.5, 0.7, 0.6]),
                            "tanh": history("tanh", [0.4, 0.6, 0.65])}),
        af.plot_dead_neurons({"relu untrained": dead([0, 1], [8, 6]),
                              "relu trained": dead([0, 0], [8, 6])}),
        af.plot_dead_neurons({"relu": dead([2, 3], [8, 6])}),
        af.plot_image_grid(torch.rand(10, 1, 28, 28) * 2 - 1, torch.arange(10),
                           af.CLASS_NAMES),
    ]
    for fig in figures:
        assert isinstance(fig, Figure)
        assert fig.axes and any(ax.get_visible() for ax in fig.axes)
        fig.canvas.draw()  # renders without error


def test_activation_colours_are_distinct_and_complete():
    assert set(af.ACT_COLORS) == set(af.ACTIVATIONS)
    colours = [to_rgba(c) for c in af.ACT_COLORS.values()]
    assert len(set(colours)) == len(colours)


@pytest.mark.parametrize("spelling", ["leakyrelu", "LeakyReLU", "leaky_relu",
                                      af.LeakyReLU(0.2), {"name": "LeakyReLU"}])
def test_color_of_any_spelling(spelling):
    assert to_rgba(af.color_of(spelling)) == to_rgba(af.ACT_COLORS["leakyrelu"])


def test_aliases_share_a_colour_and_unknown_names_get_none_of_them():
    assert to_rgba(af.color_of("SiLU")) == to_rgba(af.ACT_COLORS["swish"])
    other = to_rgba(af.color_of("untrained"))
    assert other not in [to_rgba(c) for c in af.ACT_COLORS.values()]


def test_a_user_registered_activation_is_plotted_in_grey(monkeypatch):
    class Cube(af.ActivationFunction):
        def value(self, x):
            return x * x * x

    monkeypatch.setitem(af.ACTIVATIONS, "cube", Cube)
    assert to_rgba(af.color_of(Cube())) == to_rgba("0.25")
    af.plot_activation_functions([Cube(), af.Sigmoid()])


def test_same_colour_for_an_activation_in_different_figures():
    relu, tanh = to_rgba(af.color_of("relu")), to_rgba(af.color_of("tanh"))
    assert relu != tanh

    curves = lines_by_label(af.plot_val_curves({
        "relu": history("relu", [0.5, 0.7]), "tanh": history("tanh", [0.4, 0.6])}))
    assert curves["relu"] == relu and curves["tanh"] == tanh

    X, y = torch.randn(16, 12), torch.randint(3, (16,))
    stats = {n: af.grad_stats(af.weight_grads(small_net(n), X, y))
             for n in ("tanh", "relu")}
    norms = lines_by_label(af.plot_grad_norms(stats))
    assert norms["relu"] == relu and norms["tanh"] == tanh

    fig = af.plot_activation_functions([af.Tanh(), af.ReLU()])
    first_line = [ax.get_lines()[0] for ax in fig.axes if ax.get_lines()]
    assert [to_rgba(line.get_color()) for line in first_line] == [tanh, relu]

    fig = af.plot_dead_neurons({"relu": dead([1, 2], [8, 6]),
                                "tanh": dead([0, 0], [8, 6])})
    bars = fig.axes[0].patches
    assert to_rgba(bars[0].get_facecolor())[:3] == relu[:3]
    assert to_rgba(bars[-1].get_facecolor())[:3] == tanh[:3]


def test_plots_do_not_change_global_style():
    before = dict(matplotlib.rcParams)
    af.plot_val_curves({"relu": history("relu", [0.5, 0.7])})
    af.plot_activation_functions([af.Mish()])
    assert dict(matplotlib.rcParams) == before


def integer_ticks(axis):
    """Tick locations inside the axis' view limits (those that are drawn)."""
    lo, hi = sorted(axis.get_view_interval())
    ticks = [t for t in axis.get_majorticklocs() if lo <= t <= hi]
    assert ticks, "no ticks drawn"
    return all(float(t).is_integer() for t in ticks)


def test_layer_and_epoch_axes_have_integer_ticks():
    fig = af.plot_dead_neurons({"relu untrained": dead([0, 1], [8, 6]),
                                "relu trained": dead([0, 0], [8, 6])})
    fig.canvas.draw()
    assert integer_ticks(fig.axes[0].xaxis)
    assert list(fig.axes[0].get_xticks()) == [1, 2]  # one tick per hidden layer

    fig = af.plot_val_curves({"relu": history("relu", [0.5, 0.7, 0.6]),
                              "tanh": history("tanh", [0.4, 0.6])})
    fig.canvas.draw()
    assert integer_ticks(fig.axes[0].xaxis)

    X, y = torch.randn(16, 12), torch.randint(3, (16,))
    fig = af.plot_grad_norms({"relu": af.grad_stats(af.weight_grads(
        small_net("relu"), X, y))})
    fig.canvas.draw()
    assert integer_ticks(fig.axes[0].xaxis)


def test_integer_columns_get_integer_ticks_in_study_plots():
    df = pd.DataFrame({"activation": ["relu"] * 3 + ["elu"] * 3,
                       "layer": [1, 2, 3] * 2, "dead": [0, 1, 3, 0, 0, 2]})
    fig = af.plot_lines(df, "layer", "dead", hue="activation")
    fig.canvas.draw()
    assert integer_ticks(fig.axes[0].xaxis) and integer_ticks(fig.axes[0].yaxis)
    fig = af.plot_lines(df.assign(dead=df.dead / 2), "layer", "dead", hue="activation")
    fig.canvas.draw()  # fractional values keep fractional ticks
    assert not integer_ticks(fig.axes[0].yaxis)

    runs = pd.DataFrame({"activation": ["relu", "relu", "tanh", "tanh"],
                         "best_epoch": [3, 4, 4, 5]})
    fig = af.plot_seed_points(runs, "best_epoch", scale=1, ylabel="best epoch")
    fig.canvas.draw()
    assert integer_ticks(fig.axes[0].yaxis)


def test_importing_actfns_keeps_the_notebooks_backend():
    """A module that switched matplotlib to Agg at import made every chapter lose
    its figures (the kernel's inline backend was replaced)."""
    import subprocess
    import sys

    code = ("import matplotlib; import actfns; import actfns.logo; "
            "print(matplotlib.get_backend())")
    env = {k: v for k, v in __import__("os").environ.items() if k != "MPLBACKEND"}
    env["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True).stdout.strip()
    assert out == "module://matplotlib_inline.backend_inline"


def test_logo_is_drawn_without_pyplot(tmp_path):
    import matplotlib.pyplot as plt

    import actfns.logo

    before = plt.get_fignums()
    paths = actfns.logo.write_logo(tmp_path)
    assert paths["logo"].read_text().startswith("<?xml")
    assert paths["favicon"].stat().st_size > 0
    assert plt.get_fignums() == before  # no pyplot figure left open
