"""The book's logo and favicon: activation curves, drawn with the package.

Drawn when the book is built (book/_ext/site_assets.py runs this module), so the
repository holds no picture files:

    python -m actfns.logo FOLDER    # writes FOLDER/logo.svg and FOLDER/favicon.png
"""

import sys
from pathlib import Path

import matplotlib
import torch
from matplotlib.figure import Figure

from .activations import get_activation
from .plotting import color_of

__all__ = ["LOGO_ACTIVATIONS", "logo_figure", "write_logo"]

LOGO_ACTIVATIONS = ("sigmoid", "tanh", "relu", "swish")
"""The curves of the logo, back to front."""


def logo_figure(size=2.0, linewidth=4.0):
    """A square figure of the ``LOGO_ACTIVATIONS`` curves on [-2.5, 2.5], without
    axes, on a transparent background."""
    x = torch.linspace(-2.5, 2.5, 401)
    # a Figure outside pyplot: no window and no backend change for the caller (pyplot
    # is the notebook's, whose backend must stay the inline one)
    fig = Figure(figsize=(size, size))
    ax = fig.add_axes((0.04, 0.04, 0.92, 0.92))
    ax.axhline(0, color="0.75", lw=linewidth / 3, zorder=0)
    for name in LOGO_ACTIVATIONS:
        with torch.no_grad():
            y = get_activation(name)(x)
        ax.plot(x, y, color=color_of(name), lw=linewidth, solid_capstyle="round")
    ax.set_xlim(-2.5, 2.5)
    ax.set_ylim(-1.3, 2.5)
    ax.set_axis_off()
    fig.patch.set_alpha(0)
    return fig


def write_logo(folder):
    """Write ``logo.svg`` and ``favicon.png`` (64 x 64 px) into ``folder`` (created
    if missing); the same bytes on every run. Returns ``{"logo": path, "favicon":
    path}``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"logo": folder / "logo.svg", "favicon": folder / "favicon.png"}
    with matplotlib.rc_context({"svg.hashsalt": "actfns-logo",
                                "svg.fonttype": "none"}):
        logo_figure().savefig(paths["logo"], format="svg", metadata={"Date": None})
    logo_figure(size=1.0, linewidth=3.0).savefig(paths["favicon"], format="png", dpi=64)
    return paths


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m actfns.logo FOLDER")
    for path in write_logo(sys.argv[1]).values():
        print(path)
