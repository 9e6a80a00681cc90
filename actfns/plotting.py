"""Figures built from the diagnostics. Each function returns a matplotlib Figure.

Nothing here calls ``plt.show()``, saves files or changes global style. Colours are
fixed per activation (``color_of``) so a function looks the same in every figure.
"""

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch
from matplotlib.ticker import MaxNLocator

from .activations import ACTIVATIONS, get_grads, registry_name

__all__ = ["ACT_COLORS", "color_of", "plot_activation_functions", "plot_weight_grads",
           "plot_grad_norms", "plot_activation_hists", "plot_val_curves",
           "plot_dead_neurons", "plot_image_grid", "plot_seed_points", "plot_lines"]

_PALETTE = sns.color_palette("tab10", 10) + [(0.4, 0.4, 0.4)]
ACT_COLORS = {name: _PALETTE[i] for i, name in enumerate(ACTIVATIONS)}
"""Registry name -> RGB colour."""

WIDTH = 9.0  # inches: one figure width for the whole book


def color_of(act):
    """Colour of an activation (instance, class name, registry name or config).

    Anything else (a label, a class the registry does not know) is dark grey, never
    an activation's colour.
    """
    return ACT_COLORS.get(registry_name(act), "0.25")


def _label(act):
    """Title of an activation given as a name, instance or config, e.g. "leakyrelu"
    or "LeakyReLU, alpha=0.3" for non-default parameters."""
    if isinstance(act, str):
        return act
    config = act if isinstance(act, dict) else act.config
    return str(config["name"]) + "".join(
        f", {k}={v:g}" for k, v in config.items() if k != "name")


def _grid(n, ncols, height):
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(WIDTH, height * nrows),
                             squeeze=False, layout="constrained")
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat)  # a list: indexing a flatiter moves its iterator


def _integer_ticks(axis, values):
    """Whole-number ticks on ``axis`` when ``values`` (a Series) are integers."""
    if pd.api.types.is_integer_dtype(values):
        axis.set_major_locator(MaxNLocator(integer=True))


def plot_activation_functions(acts, x=None, ncols=3):
    """Each activation (solid) and its derivative (dashed) on ``x`` (default -5..5)."""
    x = torch.linspace(-5, 5, 1001) if x is None else x
    fig, axes = _grid(len(acts), ncols, 2.6)
    for ax, act in zip(axes, acts):
        with torch.no_grad():
            y = act(x)
        dy = get_grads(act, x)
        ax.plot(x, y, color=color_of(act), lw=2, label="f(x)")
        ax.plot(x, dy, color=color_of(act), lw=1.5, ls="--", label="f'(x)")
        ax.axhline(0, color="0.8", lw=0.8, zorder=0)
        ax.axvline(0, color="0.8", lw=0.8, zorder=0)
        ax.set_title(_label(act))
        ax.set_ylim(-1.5, max(float(x.max()), 1.5))
        ax.set_xlabel("x")
    axes[0].legend(loc="upper left")
    return fig


def plot_weight_grads(grads, act=None, title=None, color=None, bins=30):
    """Histograms of weight gradients, one panel per layer (``weight_grads`` output).

    ``act`` (name, instance or config) gives the title and the colour.
    """
    title = title if title is not None or act is None else _label(act)
    color = color or (color_of(act) if act is not None else "C0")
    fig, axes = _grid(len(grads), len(grads), 2.3)
    for ax, (name, g) in zip(axes, grads.items()):
        sns.histplot(g.flatten().cpu().numpy(), bins=bins, ax=ax, color=color,
                     stat="density", element="step")
        ax.set_title(name, fontsize=9)
        ax.ticklabel_format(axis="x", style="sci", scilimits=(-2, 2))
        ax.xaxis.get_offset_text().set_fontsize(7)  # the "1e-5" above the axis end
        ax.set_xlabel("dL/dw", labelpad=1)
        ax.xaxis.set_label_coords(0.4, -0.16)  # left of the offset text, not under it
        ax.set_ylabel("density" if ax is axes[0] else "")
    if title:
        fig.suptitle(title)
    return fig


_COLUMN_LABELS = {"norm": "norm", "rms": "RMS (per weight)", "mean_abs": "mean |dL/dw|",
                  "max_abs": "largest |dL/dw|", "std": "std"}


def plot_grad_norms(stats, column="norm"):
    """Gradient norm per layer (log scale), one line per activation.

    Args:
        stats: ``{activation name: grad_stats DataFrame}``.
    """
    fig, ax = plt.subplots(figsize=(WIDTH * 0.6, 3.2), layout="constrained")
    for name, df in stats.items():
        ax.plot(df["layer"], df[column], "o-", color=color_of(name), label=name)
    ax.set_yscale("log")
    ax.set_xlabel("layer (1 = input side)")
    ax.set_ylabel("weight-gradient " + _COLUMN_LABELS.get(column, column))
    ax.set_xticks(list(next(iter(stats.values()))["layer"]))
    ax.legend(fontsize=8, ncols=2)
    return fig


def plot_activation_hists(outputs, act=None, title=None, color=None, bins=50, ncols=4,
                          xlabel="activation"):
    """Histograms of each layer's outputs (``layer_activations`` or
    ``hidden_preactivations`` output), one panel per layer.

    ``act`` (name, instance or config) gives the title and the colour.
    """
    title = title if title is not None or act is None else _label(act)
    color = color or (color_of(act) if act is not None else "C0")
    fig, axes = _grid(len(outputs), ncols, 2.2)
    for i, (ax, (name, out)) in enumerate(zip(axes, outputs.items()), start=1):
        sns.histplot(out.flatten().cpu().numpy(), bins=bins, ax=ax, color=color,
                     stat="density", element="step")
        ax.set_title(f"layer {i} ({name})", fontsize=9)
        ax.set_xlabel(xlabel)
    if title:
        fig.suptitle(title)
    return fig


def plot_val_curves(histories):
    """Validation accuracy (%) per epoch, one line per run; dots mark the best epoch.

    Args:
        histories: ``{activation name: History}``.
    """
    fig, ax = plt.subplots(figsize=(WIDTH * 0.7, 3.6), layout="constrained")
    for name, h in histories.items():
        epochs = np.arange(1, h.epochs + 1)
        ax.plot(epochs, 100 * np.asarray(h.val_acc), color=color_of(name), label=name)
        ax.plot(h.best_epoch, 100 * h.best_val_acc, "o", color=color_of(name))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation accuracy (%)")
    ax.legend(fontsize=8, ncols=2)
    return fig


def plot_dead_neurons(reports):
    """Dead fraction (%) per layer as grouped bars, one colour per network.

    Args:
        reports: ``{label: DeadNeurons}``; a label starting with an activation name
            takes its colour.
    """
    fig, ax = plt.subplots(figsize=(WIDTH * 0.7, 3.4), layout="constrained")
    width = 0.8 / len(reports)
    for i, (label, rep) in enumerate(reports.items()):
        layers = np.arange(1, len(rep.counts) + 1)
        ax.bar(layers + (i - (len(reports) - 1) / 2) * width,
               100 * np.asarray(rep.fractions), width,
               color=color_of(label.split()[0]) if len(reports) > 1 else "C0",
               alpha=1 - 0.25 * (i % 2), label=label)
    ax.set_xticks(range(1, max(len(r.counts) for r in reports.values()) + 1))
    ax.set_xlabel("hidden layer (1 = input side)")
    ax.set_ylabel("dead neurons (%)")
    ax.legend(fontsize=8)
    return fig


def plot_image_grid(images, labels, class_names, ncols=8):
    """Images in [-1, 1], ``(N, 1, H, W)``, with their class names as titles."""
    n = len(images)
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(WIDTH, 1.35 * nrows),
                             squeeze=False, layout="constrained")
    for ax in axes.flat:
        ax.axis("off")
    for ax, img, y in zip(axes.flat, images, labels):
        ax.imshow(img.squeeze(0).cpu().numpy(), cmap="gray_r", vmin=-1, vmax=1)
        ax.set_title(class_names[int(y)], fontsize=8)
    return fig


def plot_seed_points(runs, column="test_acc", scale=100.0, ylabel="test accuracy (%)",
                     ax=None):
    """One dot per seed and the mean +- standard deviation (bar) per activation.

    Args:
        runs: ``runs_frame`` output (columns ``activation`` and ``column``).
        scale: multiplies the values (100 turns fractions into %).
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(WIDTH * 0.75, 3.4), layout="constrained")
    acts = list(dict.fromkeys(runs["activation"]))
    for i, act in enumerate(acts):
        v = scale * runs.loc[runs["activation"] == act, column].to_numpy(float)
        ax.plot(i - 0.1 + np.linspace(-0.08, 0.08, len(v)), v, "o", ms=5, alpha=0.7,
                color=color_of(act))
        ax.errorbar(i + 0.15, v.mean(), yerr=v.std(ddof=1) if len(v) > 1 else 0,
                    fmt="D", ms=5, capsize=4, color=color_of(act))
    ax.set_xticks(range(len(acts)), acts)
    ax.set_xlim(-0.6, len(acts) - 0.4)
    if float(scale).is_integer():
        _integer_ticks(ax.yaxis, runs[column])  # e.g. best_epoch
    ax.set_ylabel(ylabel)
    return ax.figure


def _hue_colors(values):
    """Activation names keep their colour; numbers get viridis; anything else tab10."""
    if all(isinstance(v, str) and v.lower() in ACT_COLORS for v in values):
        return {v: color_of(v) for v in values}
    if all(isinstance(v, (int, float, np.number)) for v in values):
        cmap, lo, hi = plt.get_cmap("viridis"), min(values), max(values)
        return {v: cmap(0.9 * (v - lo) / ((hi - lo) or 1)) for v in values}
    return {v: f"C{i}" for i, v in enumerate(values)}


def plot_lines(df, x, y, hue, panel=None, logy=False, xlabel=None, ylabel=None,
               ncols=3):
    """Lines of ``y`` against ``x`` from a long DataFrame: one per ``hue`` value, one
    panel per ``panel`` value (e.g. ``depth_sweep`` or ``init_study`` output)."""
    panels = [None] if panel is None else list(dict.fromkeys(df[panel]))
    fig, axes = _grid(len(panels), min(ncols, len(panels)), 3.0)
    hues = list(dict.fromkeys(df[hue]))
    colors = _hue_colors(hues)
    for ax, p in zip(axes, panels):
        sub = df if p is None else df[df[panel] == p]
        for h in hues:
            d = sub[sub[hue] == h].sort_values(x)
            if len(d):
                ax.plot(d[x], d[y], "o-", ms=3, color=colors[h], label=str(h))
        if p is not None:
            ax.set_title(f"{panel} = {p}" if not isinstance(p, str) else p)
        if logy:
            ax.set_yscale("log")
        _integer_ticks(ax.xaxis, df[x])
        if not logy:
            _integer_ticks(ax.yaxis, df[y])
        ax.set_xlabel(xlabel or x)
        ax.set_ylabel(ylabel or y if ax is axes[0] else "")
    axes[0].legend(title=hue, fontsize=8, title_fontsize=8)
    return fig
