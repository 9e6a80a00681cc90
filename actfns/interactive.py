"""An ipywidgets explorer: change an activation's parameter, see f and f' redrawn.

Needs a live kernel (Jupyter, Binder). ``ipywidgets`` is imported only when the
explorer is built, so the rest of the package does not depend on it.
"""

import matplotlib.pyplot as plt

from .activations import get_activation
from .plotting import plot_activation_functions

__all__ = ["EXPLORER_PARAMS", "explorer_figure", "activation_explorer"]

EXPLORER_PARAMS = {
    "leakyrelu": ("alpha", 0.0, 1.0, 0.1),
    "elu": ("alpha", 0.0, 3.0, 1.0),
    "swish": ("beta", 0.0, 5.0, 1.0),
}
"""Registry name -> (parameter, slider minimum, slider maximum, default)."""


def explorer_figure(name, value, x=None):
    """Figure of activation ``name`` with its parameter set to ``value``, and f'.

    Raises:
        ValueError: ``name`` is not one of ``EXPLORER_PARAMS`` or ``value`` is invalid.
    """
    if name not in EXPLORER_PARAMS:
        raise ValueError(f"no explorer for {name!r}; choose one of "
                         f"{', '.join(EXPLORER_PARAMS)}")
    param = EXPLORER_PARAMS[name][0]
    return plot_activation_functions([get_activation(name, **{param: value})], x,
                                     ncols=2)


def activation_explorer(x=None):
    """A widget: a drop-down for the activation, a slider for its parameter.

    Each change redraws :func:`explorer_figure` in the widget's output area.
    Returns the ``ipywidgets.VBox``; display it (last line of a cell) to use it.
    """
    import ipywidgets as widgets
    from IPython.display import display

    names = list(EXPLORER_PARAMS)
    param, low, high, default = EXPLORER_PARAMS[names[0]]
    choice = widgets.Dropdown(options=names, value=names[0], description="function")
    slider = widgets.FloatSlider(value=default, min=low, max=high, step=0.05,
                                 description=param, continuous_update=False)
    out = widgets.Output()

    def redraw(_change=None):
        fig = explorer_figure(choice.value, slider.value, x)
        plt.close(fig)  # shown once, below; not again by the inline backend
        with out:
            out.clear_output(wait=True)
            display(fig)

    def on_choice(_change):
        param, low, high, default = EXPLORER_PARAMS[choice.value]
        slider.unobserve(redraw, names="value")  # one redraw per change, not two
        slider.min, slider.max = min(low, slider.min), max(high, slider.max)
        slider.value = default  # inside the widened range, then narrow it
        slider.min, slider.max = low, high
        slider.description = param
        slider.observe(redraw, names="value")
        redraw()

    choice.observe(on_choice, names="value")
    slider.observe(redraw, names="value")
    redraw()
    return widgets.VBox([widgets.HBox([choice, slider]), out])
