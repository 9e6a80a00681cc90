"""The activation explorer: pick an activation, move its parameter, see f and f'.

``activation_explorer()`` returns one object that shows itself in three ways (its
mimebundle), so that the same cell works wherever the chapter is read:

- in a live kernel (JupyterLab, Binder): an ipywidgets widget (``explorer_widget``)
  that recomputes and redraws the figure with the package for every slider position;
- on the static site, where there is no kernel: HTML with a slider over values
  precomputed on a grid of each parameter (``explorer_grid``), drawn in the page by a
  few lines of JavaScript (``explorer_html``);
- in the PDF and in viewers without HTML: the figure at the default values (PNG).

Which one is shown is the frontend's choice: JupyterLab prefers the widget view, the
book's HTML builder prefers ``text/html`` (``nb_mime_priority_overrides`` in
_config.yml) and its LaTeX builder the PNG. ``ipywidgets`` is imported only for the
widget, so the rest of the package does not depend on it.
"""

import base64
import hashlib
import io
import itertools
import json

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.colors import to_hex

from .activations import get_activation, get_grads
from .plotting import color_of, plot_activation_functions

__all__ = ["EXPLORER_PARAMS", "ActivationExplorer", "activation_explorer",
           "explorer_figure", "explorer_grid", "explorer_html", "explorer_widget"]

EXPLORER_PARAMS = {
    "leakyrelu": ("alpha", 0.0, 1.0, 0.1),
    "elu": ("alpha", 0.0, 3.0, 1.0),
    "swish": ("beta", 0.0, 5.0, 1.0),
}
"""Registry name -> (parameter, slider minimum, slider maximum, default)."""

GRID_STEP = 0.1
"""Spacing of the precomputed parameter values of the static explorer."""

Y_RANGE = (-1.5, 5.0)
"""Vertical range of the static explorer (``plot_activation_functions``'s on -5..5)."""

_ids = itertools.count(1)  # distinct element ids for several explorers on one page


def _check_name(name):
    if name not in EXPLORER_PARAMS:
        raise ValueError(f"no explorer for {name!r}; choose one of "
                         f"{', '.join(EXPLORER_PARAMS)}")


def explorer_figure(name, value, x=None):
    """Figure of activation ``name`` with its parameter set to ``value``, and f'.

    Raises:
        ValueError: ``name`` is not one of ``EXPLORER_PARAMS`` or ``value`` is invalid.
    """
    _check_name(name)
    param = EXPLORER_PARAMS[name][0]
    return plot_activation_functions([get_activation(name, **{param: value})], x,
                                     ncols=2)


def explorer_grid(name, step=GRID_STEP, x=None):
    """f and f' of activation ``name`` for every parameter value on a grid.

    Args:
        name: a key of ``EXPLORER_PARAMS``.
        step: spacing of the parameter values, from the slider's minimum to its
            maximum (both included; the default value must lie on the grid).
        x: the inputs (default 101 points from -5 to 5).

    Returns:
        A dict (JSON-ready): ``name``, ``label`` (class name), ``param``,
        ``values`` (the grid), ``default``, ``color`` (hex), ``x``, and ``f``,
        ``df``: one list of values per parameter value, rounded to 4 decimals.

    Raises:
        ValueError: unknown ``name``, a ``step`` that is not positive or that misses
            the default value.
    """
    _check_name(name)
    param, low, high, default = EXPLORER_PARAMS[name]
    if not step > 0:
        raise ValueError(f"step must be positive, got {step!r}")
    count = round((high - low) / step)
    values = [round(low + k * step, 6) for k in range(count + 1)]
    if not np.isclose(values[-1], high) or not np.isclose(values, default).any():
        raise ValueError(f"step {step} does not divide {param}'s range [{low}, "
                         f"{high}] into a grid holding its default {default}")
    x = torch.linspace(-5, 5, 101) if x is None else torch.as_tensor(x)
    f, df = [], []
    for value in values:
        act = get_activation(name, **{param: value})
        with torch.no_grad():
            f.append(np.round(act(x).numpy().astype(float), 4).tolist())
        df.append(np.round(get_grads(act, x).numpy().astype(float), 4).tolist())
    return {"name": name, "label": get_activation(name).config["name"],
            "param": param, "values": values, "default": default,
            "color": to_hex(color_of(name)),
            "x": np.round(x.numpy().astype(float), 4).tolist(), "f": f, "df": df}


# The page's part: an SVG redrawn from the precomputed grids. Plain DOM, no library.
_SCRIPT = """(function () {
  var root = document.getElementById("%(id)s");
  var data = JSON.parse(
    root.querySelector("script[type='application/json']").textContent);
  var W = %(w)d, H = %(h)d, L = 44, R = 12, T = 28, B = 30, Y0 = %(y0)s, Y1 = %(y1)s;
  var X0 = data[0].x[0], X1 = data[0].x[data[0].x.length - 1];
  var px = function (x) { return L + (x - X0) / (X1 - X0) * (W - L - R); };
  var py = function (y) { return T + (Y1 - y) / (Y1 - Y0) * (H - T - B); };
  var pick = root.querySelector("select"), slider = root.querySelector("input");
  var shown = root.querySelector("output"), name = root.querySelector(".param");
  var path = function (xs, ys) {
    return xs.map(function (x, i) {
      return (i ? "L" : "M") + px(x).toFixed(1) + " " + py(ys[i]).toFixed(1);
    }).join("");
  };
  var fmt = function (v) { return String(Math.round(v * 1000) / 1000); };
  function draw() {
    var g = data[pick.selectedIndex], k = Math.round(
      (parseFloat(slider.value) - g.values[0]) / (g.values[1] - g.values[0]));
    k = Math.max(0, Math.min(g.values.length - 1, k));
    var v = g.values[k];
    ["f", "df"].forEach(function (key) {
      var p = root.querySelector("path." + key);
      p.setAttribute("d", path(g.x, g[key][k]));
      p.setAttribute("stroke", g.color);
    });
    root.querySelector("text.title").textContent =
      g.label + ", " + g.param + "=" + fmt(v);
    shown.textContent = fmt(v);
    root.dataset.value = v;
  }
  function choose() {
    var g = data[pick.selectedIndex];
    slider.min = g.values[0];
    slider.max = g.values[g.values.length - 1];
    slider.step = g.values[1] - g.values[0];
    slider.value = g.default;
    name.textContent = g.param;
    draw();
  }
  pick.addEventListener("change", choose);
  slider.addEventListener("input", draw);
  choose();
})();"""


def explorer_html(grids, width=640, height=300):
    """A self-contained HTML explorer over precomputed ``grids`` (``explorer_grid``
    results): a drop-down for the activation, a slider for its parameter, and an SVG
    of f (solid) and f' (dashed) redrawn by inline JavaScript; no kernel, no network.

    Raises:
        ValueError: no grids.
    """
    if not grids:
        raise ValueError("explorer_html needs at least one grid (explorer_grid)")
    payload = json.dumps(grids, separators=(",", ":"))
    digest = hashlib.sha256(payload.encode()).hexdigest()[:10]
    element_id = f"actfns-explorer-{digest}-{next(_ids)}"
    y0, y1 = Y_RANGE
    x0, x1 = grids[0]["x"][0], grids[0]["x"][-1]
    left, right, top, bottom = 44, 12, 28, 30  # margins, as in _SCRIPT

    def sx(x):
        return left + (x - x0) / (x1 - x0) * (width - left - right)

    def sy(y):
        return top + (y1 - y) / (y1 - y0) * (height - top - bottom)

    grid_lines = "".join(
        f'<line x1="{sx(x):.1f}" x2="{sx(x):.1f}" y1="{top}" y2="{height - bottom}" '
        f'stroke="{"#bbb" if x == 0 else "#eee"}"/>'
        f'<text x="{sx(x):.1f}" y="{height - bottom + 16}" text-anchor="middle">'
        f'{x}</text>' for x in range(int(np.ceil(x0)), int(np.floor(x1)) + 1)
        if x % 2 == 0)
    grid_lines += "".join(
        f'<line x1="{left}" x2="{width - right}" y1="{sy(y):.1f}" y2="{sy(y):.1f}" '
        f'stroke="{"#bbb" if y == 0 else "#eee"}"/>'
        f'<text x="{left - 6}" y="{sy(y) + 4:.1f}" text-anchor="end">{y}</text>'
        for y in range(-1, int(y1) + 1))
    options = "".join(f'<option value="{g["name"]}">{g["label"]}</option>'
                      for g in grids)
    clip = f"{element_id}-clip"
    svg = (
        f'<svg viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'aria-label="The chosen activation function f (solid) and its derivative '
        f'f\' (dashed) for x from -5 to 5" style="font: 12px sans-serif; '
        f'max-width: {width}px; background: #fff">'
        f'<clipPath id="{clip}"><rect x="{left}" y="{top}" '
        f'width="{width - left - right}" height="{height - top - bottom}"/></clipPath>'
        f'{grid_lines}'
        f'<g clip-path="url(#{clip})" fill="none">'
        f'<path class="f" stroke-width="2.5"/>'
        f'<path class="df" stroke-width="1.8" stroke-dasharray="6 4"/></g>'
        f'<text class="title" x="{(left + width - right) / 2:.0f}" y="18" '
        f'text-anchor="middle" style="font-size: 14px"></text>'
        f'<text x="{left + 6}" y="{top + 14}">'
        f"solid: f(x), dashed: f'(x)</text></svg>")
    script = _SCRIPT % {"id": element_id, "w": width, "h": height, "y0": y0, "y1": y1}
    payload = payload.replace("</", "<\\/")  # no "</script>" inside the JSON
    return (
        f'<div class="actfns-explorer" id="{element_id}">'
        f'<div style="display: flex; gap: 1.5em; align-items: center; '
        f'flex-wrap: wrap; margin-bottom: 0.3em">'
        f'<label>function <select>{options}</select></label>'
        f'<label><span class="param"></span> <input type="range"> '
        f'<output></output></label></div>{svg}'
        f'<script type="application/json">{payload}</script>'
        f"<script>{script}</script></div>")


def explorer_widget(x=None):
    """A widget: a drop-down for the activation, a slider for its parameter.

    Each change redraws :func:`explorer_figure` in the widget's output area (needs a
    live kernel and ``ipywidgets``). Returns the ``ipywidgets.VBox``.
    """
    import ipywidgets as widgets
    from IPython.core.interactiveshell import InteractiveShell

    names = list(EXPLORER_PARAMS)
    param, low, high, default = EXPLORER_PARAMS[names[0]]
    choice = widgets.Dropdown(options=names, value=names[0], description="function")
    slider = widgets.FloatSlider(value=default, min=low, max=high, step=0.05,
                                 description=param, continuous_update=False)
    out = widgets.Output()

    def redraw(_change=None):
        fig = explorer_figure(choice.value, slider.value, x)
        plt.close(fig)  # shown once, below; not again by the inline backend
        # The figure goes into the output area's state in one update, not through
        # captured display messages (``with out: display(fig)``): a headless run
        # (nbclient, the book build) then has no output hooks to track, which stalled
        # it for the cell timeout now and then.
        data, metadata = InteractiveShell.instance().display_formatter.format(fig)
        out.outputs = ({"output_type": "display_data", "data": data,
                        "metadata": metadata},)

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


class ActivationExplorer:
    """The explorer for every frontend; display it (last line of a cell) to use it.

    Its mimebundle holds the live widget's view (built on first display; left out
    where ``ipywidgets`` is not installed), the static HTML explorer and a PNG of the
    three functions at their default parameters.
    """

    def __init__(self, x=None, step=GRID_STEP):
        self.x = x
        self.grids = [explorer_grid(name, step, x) for name in EXPLORER_PARAMS]
        self.widget = None

    def html(self):
        """The static explorer (``explorer_html`` of the grids)."""
        return explorer_html(self.grids)

    def figure(self):
        """The three functions at their default parameters (for PDF and print)."""
        return plot_activation_functions(
            [get_activation(name, **{param: default})
             for name, (param, _, _, default) in EXPLORER_PARAMS.items()], self.x)

    def _png(self):
        fig = self.figure()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=2 * fig.dpi)  # retina: shown at half
        width = int(round(fig.get_figwidth() * fig.dpi))
        plt.close(fig)
        return base64.b64encode(buffer.getvalue()).decode("ascii"), width

    def _repr_mimebundle_(self, include=None, exclude=None):
        png, width = self._png()
        data = {"text/plain": f"<activation explorer: {', '.join(EXPLORER_PARAMS)}>",
                "text/html": self.html(), "image/png": png}
        try:
            if self.widget is None:
                self.widget = explorer_widget(self.x)
            view = self.widget._repr_mimebundle_()
            data["application/vnd.jupyter.widget-view+json"] = view[
                "application/vnd.jupyter.widget-view+json"]
        except ImportError:  # no ipywidgets: the HTML explorer still works
            pass
        return data, {"image/png": {"width": width}}


def activation_explorer(x=None):
    """The activation explorer (:class:`ActivationExplorer`): display it to use it."""
    return ActivationExplorer(x)
