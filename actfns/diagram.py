"""The small network of the chain-rule derivation, drawn by code.

Inputs x_1..x_n, one hidden layer (unit i computes z^(1)_i = sum_j w^(1)_ij x_j +
b^(1)_i and a^(1)_i = phi(z^(1)_i)), one output (z^(2) = sum_j w^(2)_1j a^(1)_j +
b^(2), y = phi(z^(2))) and the loss L. As in the book, w^(l)_ij connects unit j of
layer l-1 to unit i of layer l. ``highlight`` colours the path along which a
parameter acts on the loss: the path the chain rule follows, one factor per step.
"""

import re

import matplotlib.pyplot as plt
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

__all__ = ["plot_network_diagram"]

MAX_UNITS = 6  # more units per layer no longer fit legibly in one figure width
MAX_W1_LABELS = 9  # more first-layer weights: only the highlighted one is labelled
ACCENT, MUTED = "C3", "0.55"
_PARAM = re.compile(r"w1_(?P<w1_i>\d)(?P<w1_j>\d)|w2_1(?P<w2_j>\d)|b1_(?P<b1_i>\d)|b2")
_X_IN, _X_HIDDEN, _X_OUT, _X_LOSS = 0.0, 3.4, 6.6, 8.4
_HALF_W, _HALF_H, _R = 0.62, 0.3, 0.3  # half sizes of a unit's box; input radius
_STEP = 1.4  # vertical distance between units


def plot_network_diagram(n_inputs=3, n_hidden=3, highlight=None):
    """Draw the network with labelled units, weights and biases.

    Args:
        n_inputs: number of inputs x_j (1 to 6).
        n_hidden: number of hidden units (1 to 6).
        highlight: ``None``, or the parameter whose path to the loss is coloured:
            ``"w1_ij"`` (weight from input j to hidden unit i), ``"w2_1j"`` (from
            hidden unit j to the output), ``"b1_i"`` or ``"b2"``; e.g. ``"w1_11"``.

    Returns:
        A matplotlib Figure. Every weight is labelled, except in a first layer of
        more than 9 weights: there only the highlighted one is. Every unit, edge and
        label carries a ``gid``: ``x_j``, ``h_i``, ``out``, ``loss``, the parameter
        names (``w1_ij``, ``w2_1j``, ``b1_i``, ``b2``), ``out_loss``, and ``label:``
        + the name for a label.

    Raises:
        ValueError: a size outside 1..6, or a ``highlight`` that names no parameter
            of this network.
    """
    for name, n in (("n_inputs", n_inputs), ("n_hidden", n_hidden)):
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_UNITS:
            raise ValueError(f"plot_network_diagram: {name} must be a whole number "
                             f"from 1 to {MAX_UNITS}, got {n!r}")
    path = _path(highlight, n_inputs, n_hidden)
    top = (max(n_inputs, n_hidden) - 1) / 2 * _STEP  # the highest unit's centre
    fig, ax = plt.subplots(figsize=(9.0, 1.0 + 0.75 * (2 * top + 1.6)),
                           layout="constrained")
    ax.set_xlim(-0.5, _X_LOSS + 0.5)
    ax.set_ylim(-top - 0.8, top + 0.8)
    ax.set_aspect("equal")
    ax.axis("off")

    def ys(n):  # a centred column of n units
        return [((n - 1) / 2 - k) * _STEP for k in range(n)]

    def color(gid):
        return ACCENT if gid in path else MUTED

    def arrow(start, end, gid, label=None, at=0.5, **kw):
        ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=10,
                                     lw=2.2 if gid in path else 0.9, color=color(gid),
                                     gid=gid, zorder=1, **kw))
        if label:
            xy = [s + at * (e - s) for s, e in zip(start, end)]
            ax.text(*xy, label, ha="center", va="center", fontsize=8.5,
                    color=color(gid), gid=f"label:{gid}", zorder=3,
                    bbox=dict(boxstyle="round,pad=0.1", fc="white", ec="none"))

    def unit(x, y, gid, left, right):  # a box split in two: z | a
        ax.add_patch(FancyBboxPatch((x - _HALF_W, y - _HALF_H), 2 * _HALF_W,
                                    2 * _HALF_H, boxstyle="round,pad=0.02",
                                    fc="white", ec=color(gid),
                                    lw=2.2 if gid in path else 1.0, gid=gid, zorder=2))
        ax.plot([x, x], [y - _HALF_H, y + _HALF_H], color=color(gid), lw=0.6, zorder=3)
        for dx, text in ((-_HALF_W / 2, left), (_HALF_W / 2, right)):
            ax.text(x + dx, y, text, ha="center", va="center", fontsize=10, zorder=4,
                    gid=f"label:{gid}")

    in_y, hid_y = ys(n_inputs), ys(n_hidden)
    label_all = n_inputs * n_hidden <= MAX_W1_LABELS
    for j, y in enumerate(in_y, start=1):
        gid = f"x_{j}"
        ax.add_patch(plt.Circle((_X_IN, y), _R, fc="white", ec=color(gid),
                                lw=2.2 if gid in path else 1.0, gid=gid, zorder=2))
        ax.text(_X_IN, y, f"$x_{j}$", ha="center", va="center", fontsize=10,
                gid=f"label:{gid}", zorder=4)
    for i, y in enumerate(hid_y, start=1):
        for j, yj in enumerate(in_y, start=1):
            gid = f"w1_{i}{j}"
            label = f"$w^{{(1)}}_{{{i}{j}}}$" if label_all or gid in path else None
            arrow((_X_IN + _R, yj), (_X_HIDDEN - _HALF_W, y), gid, label,
                  at=n_inputs / (n_inputs + 1))  # labels in one evenly spaced column
        unit(_X_HIDDEN, y, f"h_{i}", f"$z^{{(1)}}_{i}$", f"$a^{{(1)}}_{i}$")
        arrow((_X_HIDDEN, y + 0.7), (_X_HIDDEN, y + _HALF_H), f"b1_{i}")
        ax.text(_X_HIDDEN + 0.08, y + 0.62, f"$b^{{(1)}}_{i}$", fontsize=8.5,
                color=color(f"b1_{i}"), gid=f"label:b1_{i}", va="center")
        arrow((_X_HIDDEN + _HALF_W, y), (_X_OUT - _HALF_W, 0.0), f"w2_1{i}",
              f"$w^{{(2)}}_{{1{i}}}$", at=0.45)
    unit(_X_OUT, 0.0, "out", "$z^{(2)}$", "$y$")
    arrow((_X_OUT, 0.7), (_X_OUT, _HALF_H), "b2")
    ax.text(_X_OUT + 0.08, 0.62, "$b^{(2)}$", fontsize=8.5, color=color("b2"),
            gid="label:b2", va="center")
    arrow((_X_OUT + _HALF_W, 0.0), (_X_LOSS - 0.35, 0.0), "out_loss")
    ax.add_patch(FancyBboxPatch((_X_LOSS - 0.35, -0.3), 0.7, 0.6, gid="loss",
                                boxstyle="round,pad=0.02", fc="white", ec=color("loss"),
                                lw=2.2 if "loss" in path else 1.0, zorder=2))
    ax.text(_X_LOSS, 0.0, r"$\mathcal{L}$", ha="center", va="center", fontsize=12,
            gid="label:loss", zorder=4)
    ax.text(_X_HIDDEN, -top - 0.65, r"$a^{(1)}_i = \phi(z^{(1)}_i)$",
            ha="center", fontsize=9, color="0.3")
    ax.text(_X_OUT, -top - 0.65, r"$y = \phi(z^{(2)})$", ha="center",
            fontsize=9, color="0.3")
    return fig


def _path(highlight, n_inputs, n_hidden):
    """The gids on the path from the parameter ``highlight`` to the loss."""
    if highlight is None:
        return set()
    m = _PARAM.fullmatch(highlight) if isinstance(highlight, str) else None
    if m is None:
        raise ValueError(
            f"plot_network_diagram: highlight must be None or a parameter name such "
            f"as 'w1_11' (input 1 to hidden unit 1), 'w2_12', 'b1_2' or 'b2'; got "
            f"{highlight!r}")
    unit = m["w1_i"] or m["w2_j"] or m["b1_i"]  # the hidden unit on the path, if any
    unit = None if unit is None else int(unit)
    w1_j = None if m["w1_j"] is None else int(m["w1_j"])
    if unit is not None and not 1 <= unit <= n_hidden:
        raise ValueError(f"plot_network_diagram: {highlight!r} names hidden unit "
                         f"{unit}, but the network has {n_hidden} (n_hidden)")
    if w1_j is not None and not 1 <= w1_j <= n_inputs:
        raise ValueError(f"plot_network_diagram: {highlight!r} names input {w1_j}, "
                         f"but the network has {n_inputs} (n_inputs)")
    path = {highlight, "out", "out_loss", "loss"}
    if unit is not None:
        path |= {f"h_{unit}", f"w2_1{unit}"}
    if w1_j is not None:
        path.add(f"x_{w1_j}")
    return path
