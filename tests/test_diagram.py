"""plot_network_diagram: the chain-rule network, its labels, the highlighted path,
and clear errors for bad arguments."""

import io

import pytest
from matplotlib.colors import same_color
from matplotlib.figure import Figure

from actfns.diagram import ACCENT, plot_network_diagram


def artists(fig):
    """{gid: artist} for the units and edges (patches) of the diagram."""
    (ax,) = fig.axes
    return {p.get_gid(): p for p in ax.patches if p.get_gid()}


def labels(fig):
    """{gid of the labelled thing: [texts]}."""
    (ax,) = fig.axes
    found = {}
    for t in ax.texts:
        if (t.get_gid() or "").startswith("label:"):
            found.setdefault(t.get_gid().removeprefix("label:"), []).append(t)
    return found


def highlighted(fig):
    return {gid for gid, p in artists(fig).items()
            if same_color(p.get_edgecolor(), ACCENT)}


def test_returns_a_figure_with_every_unit_weight_and_bias_labelled():
    fig = plot_network_diagram(n_inputs=3, n_hidden=2)
    assert isinstance(fig, Figure)
    text = {gid: [t.get_text() for t in ts] for gid, ts in labels(fig).items()}
    assert text["x_3"] == ["$x_3$"]
    assert text["h_2"] == ["$z^{(1)}_2$", "$a^{(1)}_2$"]
    assert text["out"] == ["$z^{(2)}$", "$y$"]
    assert text["loss"] == [r"$\mathcal{L}$"]
    assert text["w1_23"] == ["$w^{(1)}_{23}$"]  # from input 3 to hidden unit 2
    assert text["w2_12"] == ["$w^{(2)}_{12}$"]
    assert text["b1_1"] == ["$b^{(1)}_1$"] and text["b2"] == ["$b^{(2)}$"]
    units = artists(fig)
    assert {f"x_{j}" for j in (1, 2, 3)} | {"h_1", "h_2", "out", "loss"} <= set(units)
    assert {f"w1_{i}{j}" for i in (1, 2) for j in (1, 2, 3)} <= set(units)
    assert {"w2_11", "w2_12", "b1_1", "b1_2", "b2", "out_loss"} <= set(units)
    # the edge w1_23 runs from input 3 to hidden unit 2
    x3, h2, w = units["x_3"], units["h_2"], units["w1_23"]
    (sx, sy), (ex, ey) = w._posA_posB
    assert sy == pytest.approx(x3.center[1])
    assert ey == pytest.approx(h2.get_y() + h2.get_height() / 2)
    assert sx < ex


def test_it_draws_and_its_mathtext_parses():
    fig = plot_network_diagram(highlight="w1_11")
    png = io.BytesIO()
    fig.savefig(png, format="png")  # mathtext errors surface when drawing
    assert png.getvalue().startswith(b"\x89PNG")


@pytest.mark.parametrize("param, path", [
    (None, set()),
    ("w1_11", {"x_1", "w1_11", "h_1", "w2_11", "out", "out_loss", "loss"}),
    ("w1_23", {"x_3", "w1_23", "h_2", "w2_12", "out", "out_loss", "loss"}),
    ("w2_13", {"w2_13", "h_3", "out", "out_loss", "loss"}),
    ("b1_2", {"b1_2", "h_2", "w2_12", "out", "out_loss", "loss"}),
    ("b2", {"b2", "out", "out_loss", "loss"}),
])
def test_highlight_colours_exactly_the_path_to_the_loss(param, path):
    fig = plot_network_diagram(n_inputs=3, n_hidden=3, highlight=param)
    assert highlighted(fig) == path
    if param and param.startswith("w"):
        (label,) = labels(fig)[param]
        assert same_color(label.get_color(), ACCENT)


def test_a_large_first_layer_labels_only_the_highlighted_weight():
    fig = plot_network_diagram(n_inputs=4, n_hidden=4, highlight="w1_23")
    found = labels(fig)
    assert [k for k in found if k.startswith("w1_")] == ["w1_23"]
    assert sum(k.startswith("w2_") for k in found) == 4
    assert len([g for g in artists(fig) if g.startswith("w1_")]) == 16


@pytest.mark.parametrize("kwargs, message", [
    ({"n_inputs": 0}, "n_inputs must be a whole number from 1 to 6, got 0"),
    ({"n_hidden": 7}, "n_hidden must be a whole number from 1 to 6, got 7"),
    ({"n_inputs": 2.5}, "got 2.5"),
    ({"n_inputs": True}, "got True"),
    ({"n_hidden": "3"}, "got '3'"),
    ({"highlight": "w1_41"}, "'w1_41' names hidden unit 4, but the network has 3"),
    ({"highlight": "w1_14"}, "'w1_14' names input 4, but the network has 3"),
    ({"highlight": "w2_10"}, "names hidden unit 0"),
    ({"highlight": "w2_21"}, "highlight must be None or a parameter name"),
    ({"highlight": "W1_11"}, "such as 'w1_11'"),
    ({"highlight": "w3_11"}, "got 'w3_11'"),
    ({"highlight": 11}, "got 11"),
])
def test_bad_arguments_are_refused_clearly(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        plot_network_diagram(**kwargs)
