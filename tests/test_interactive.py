"""The ipywidgets activation explorer (actfns.interactive), without a frontend."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

import actfns as af  # noqa: E402
from actfns import interactive  # noqa: E402


def test_explorer_figure_shows_the_parameter():
    fig = af.explorer_figure("leakyrelu", 0.3)
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible()]
    assert titles == ["LeakyReLU, alpha=0.3"]
    plt.close(fig)


@pytest.mark.parametrize("name, value, match", [
    ("relu", 0.1, "no explorer for 'relu'"),
    ("elu", -1.0, "alpha must be >= 0"),
])
def test_explorer_figure_rejects_bad_input(name, value, match):
    with pytest.raises(ValueError, match=match):
        af.explorer_figure(name, value)


def test_explorer_redraws_once_per_change(monkeypatch):
    calls = []
    monkeypatch.setattr(interactive, "explorer_figure",
                        lambda name, value, x=None: calls.append((name, value)))
    box = af.activation_explorer()
    choice, slider = box.children[0].children
    assert calls == [("leakyrelu", 0.1)]

    slider.value = 0.3
    assert calls[-1] == ("leakyrelu", 0.3) and len(calls) == 2

    choice.value = "swish"  # slider takes Swish's range and default
    assert calls[-1] == ("swish", 1.0) and len(calls) == 3
    assert (slider.description, slider.min, slider.max) == ("beta", 0.0, 5.0)

    choice.value = "elu"
    assert calls[-1] == ("elu", 1.0) and len(calls) == 4
    assert (slider.description, slider.min, slider.max) == ("alpha", 0.0, 3.0)
