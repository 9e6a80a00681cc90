"""Dead and inactive units against depth: a census per layer, and a sweep over depth.

Both return DataFrames (one row per activation layer); ``plotting.plot_lines`` draws
them. The depth chapter of the book is built on these two functions.
"""

import functools

import pandas as pd
import torch

from .activations import make_activation, registry_name
from .course import COURSE_SEED
from .diagnostics import units_ever
from .env import as_executor, get_device
from .initialisation import initial_network

__all__ = ["neuron_census", "depth_sweep"]


def neuron_census(net, dataset, batch_size=4096, device=None):
    """Per activation layer: units that are dead and units that are never positive.

    ``dead``: output exactly 0 for every input (the course's definition, as
    ``count_dead_neurons``). ``inactive``: output <= 0 for every input, i.e. the unit
    sits in the negative part of its activation; for ReLU the two are the same, but a
    LeakyReLU or ELU unit that is inactive still passes a gradient.

    Args:
        device: where the batches go (default: the device of ``net``'s parameters).
    Returns:
        DataFrame with ``layer``, ``module``, ``units``, ``dead``, ``inactive``,
        ``dead_frac`` and ``inactive_frac`` (fractions in [0, 1]).
    """
    tests = {"nonzero": lambda out: (out != 0).any(dim=0),
             "positive": lambda out: (out > 0).any(dim=0)}
    ever = units_ever(net, dataset, tests, batch_size, device)
    df = pd.DataFrame([dict(layer=i, module=n, units=t["nonzero"].numel(),
                            dead=int((~t["nonzero"]).sum()),
                            inactive=int((~t["positive"]).sum()))
                       for i, (n, t) in enumerate(ever.items(), start=1)])
    return df.assign(dead_frac=df.dead / df.units, inactive_frac=df.inactive / df.units)


def depth_sweep(acts, depths, dataset, width=256, seed=COURSE_SEED, device=None,
                executor=None):
    """:func:`neuron_census` of untrained networks of ``depth`` hidden layers.

    The network of each activation and depth is a ``BaseNetwork`` with hidden sizes
    ``(width,) * depth`` built by ``initial_network`` with ``seed`` (PyTorch's default
    initialisation). Such networks share their first layers: ``BaseNetwork`` draws
    the layers in order, and at initialisation a layer's outputs do not depend on the
    layers after it. So one census of the deepest network gives every depth's rows
    exactly (the tests check this against networks built one by one).

    ``executor`` (a ``concurrent.futures.Executor`` of processes, or a Dask
    ``Client`` whose workers have one thread each) takes one activation per task;
    ``dataset`` travels with each task, so on a cluster pass a split of
    ``af.DataSource().load()``, which the workers load themselves.

    Returns:
        the census rows with ``activation`` and ``depth`` columns in front.
    """
    if isinstance(dataset, torch.Tensor):
        dataset = torch.utils.data.TensorDataset(dataset)
    depths = sorted(set(depths))
    if not depths or depths[0] < 1:
        raise ValueError(f"depths must be positive integers, got {depths!r}")
    if executor is not None:
        executor = as_executor(executor, threads_allowed=False, what="depth_sweep")
        task = functools.partial(depth_sweep, depths=depths, dataset=dataset,
                                 width=width, seed=seed, device=device)
        frames = list(executor.map(task, [[act] for act in acts]))
        return pd.concat(frames, ignore_index=True)
    frames = []
    for act in acts:
        net = initial_network(act, seed, (width,) * depths[-1],
                              input_size=dataset[0][0].numel())
        census = neuron_census(net.to(get_device(device)), dataset, device=device)
        name = registry_name(make_activation(act))
        frames += [census[census.layer <= d].assign(activation=name, depth=d)
                   for d in depths]
    df = pd.concat(frames, ignore_index=True)
    return df[["activation", "depth", *census.columns]]
