"""Dead and inactive units against depth: a census per layer, and a sweep over depth.

Both return DataFrames (one row per activation layer); ``plotting.plot_lines`` draws
them. The depth chapter of the book is built on these two functions.
"""

import pandas as pd
import torch

from .data import batches
from .diagnostics import layer_activations
from .model import BaseNetwork, make_activation
from .train import get_device, set_seed

__all__ = ["neuron_census", "depth_sweep"]


@torch.no_grad()
def neuron_census(net, dataset, batch_size=4096, device=None):
    """Per activation layer: units that are dead and units that are never positive.

    ``dead``: output exactly 0 for every input (the course's definition, as
    ``count_dead_neurons``). ``inactive``: output <= 0 for every input, i.e. the unit
    sits in the negative part of its activation; for ReLU the two are the same, but a
    LeakyReLU or ELU unit that is inactive still passes a gradient.

    Returns:
        DataFrame with ``layer``, ``module``, ``units``, ``dead``, ``inactive``,
        ``dead_frac`` and ``inactive_frac`` (fractions in [0, 1]).
    """
    device = get_device(device)
    if isinstance(dataset, torch.Tensor):
        dataset = torch.utils.data.TensorDataset(dataset)
    nonzero, positive = {}, {}
    for X, *_ in batches(dataset, batch_size):
        for name, out in layer_activations(net, X.to(device)).items():
            out = out.reshape(len(out), -1)  # (batch, units)
            nz, pos = (out != 0).any(dim=0), (out > 0).any(dim=0)
            nonzero[name] = nz | nonzero[name] if name in nonzero else nz
            positive[name] = pos | positive[name] if name in positive else pos
    df = pd.DataFrame([dict(layer=i, module=n, units=nonzero[n].numel(),
                            dead=int((~nonzero[n]).sum()),
                            inactive=int((~positive[n]).sum()))
                       for i, n in enumerate(nonzero, start=1)])
    return df.assign(dead_frac=df.dead / df.units, inactive_frac=df.inactive / df.units)


def depth_sweep(acts, depths, dataset, width=256, seed=42, device=None):
    """:func:`neuron_census` of untrained networks of ``depth`` hidden layers.

    The network of each activation and depth is a ``BaseNetwork`` with hidden sizes
    ``(width,) * depth`` built after ``set_seed(seed)`` (PyTorch's default
    initialisation). Such networks share their first layers: ``BaseNetwork`` draws
    the layers in order, and at initialisation a layer's outputs do not depend on the
    layers after it. So one census of the deepest network gives every depth's rows
    exactly (the tests check this against networks built one by one).

    Returns:
        the census rows with ``activation`` and ``depth`` columns in front.
    """
    if isinstance(dataset, torch.Tensor):
        dataset = torch.utils.data.TensorDataset(dataset)
    depths = sorted(set(depths))
    if not depths or depths[0] < 1:
        raise ValueError(f"depths must be positive integers, got {depths!r}")
    frames = []
    for act in acts:
        set_seed(seed)
        net = BaseNetwork(act, dataset[0][0].numel(),
                          hidden_sizes=(width,) * depths[-1])
        census = neuron_census(net.to(get_device(device)), dataset, device=device)
        name = make_activation(act).name.lower()
        frames += [census[census.layer <= d].assign(activation=name, depth=d)
                   for d in depths]
    df = pd.concat(frames, ignore_index=True)
    return df[["activation", "depth", *census.columns]]
