"""Diagnostics that return data (tensors, DataFrames), never plots or prints."""

from contextlib import contextmanager
from dataclasses import dataclass, field

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from .activations import ActivationFunction
from .data import batch_views
from .env import device_of

__all__ = ["weight_grads", "grad_stats", "activation_stats", "layer_activations",
           "hidden_preactivations", "DeadNeurons", "count_dead_neurons", "units_ever",
           "activation_layers", "Plateau", "plateau"]


@contextmanager
def _eval_mode(net):
    """Run in eval mode, then put ``net`` back in the mode it was in."""
    was_training = net.training
    net.eval()
    try:
        yield
    finally:
        net.train(was_training)


def weight_grads(net, X, y, loss_fn=F.cross_entropy):
    """Gradient of the loss on one batch w.r.t. every weight matrix (biases left out).

    Uses ``torch.autograd.grad``, so ``net``'s ``.grad`` fields are left untouched.

    Args:
        X: ``(batch, ...)`` inputs on ``net``'s device; y: ``(batch,)`` labels.
    Returns:
        ``{parameter name: gradient tensor}`` in layer order, e.g. ``layers.0.weight``.
    """
    params = {n: p for n, p in net.named_parameters() if n.endswith("weight")}
    with _eval_mode(net), torch.enable_grad():
        loss = loss_fn(net(X), y)
        grads = torch.autograd.grad(loss, list(params.values()))
    return {n: g.detach() for n, g in zip(params, grads)}


def grad_stats(grads):
    """Per-layer summary of :func:`weight_grads`: one row per weight matrix.

    Columns: ``layer`` (1 = input side), ``param``, ``shape``, ``norm`` (Frobenius),
    ``rms`` (root mean square of the entries, norm / sqrt(entries): the size of one
    weight's gradient, comparable between layers of different sizes), ``mean_abs``,
    ``std``, ``max_abs``.
    """
    rows = []
    for i, (name, g) in enumerate(grads.items(), start=1):
        g = g.double()
        rows.append(dict(layer=i, param=name, shape=tuple(g.shape),
                         norm=g.norm().item(), rms=g.pow(2).mean().sqrt().item(),
                         mean_abs=g.abs().mean().item(),
                         std=g.std().item(), max_abs=g.abs().max().item()))
    return pd.DataFrame(rows)


def activation_stats(net, X, kind=ActivationFunction):
    """Mean and spread of each activation layer's output for a batch.

    Returns:
        DataFrame with ``layer`` (1 = input side), ``module``, ``mean``, ``std`` (over
        the batch and the units of the layer) and ``image_std`` (each unit's std over
        the batch, averaged over units: how much the output depends on the input).
    """
    rows = []
    for i, (name, out) in enumerate(layer_activations(net, X, kind).items(), start=1):
        out = out.double().reshape(len(out), -1)  # (batch, units)
        rows.append(dict(layer=i, module=name, mean=out.mean().item(),
                         std=out.std().item(), image_std=out.std(dim=0).mean().item()))
    return pd.DataFrame(rows)


def activation_layers(net, kind=ActivationFunction):
    """``{name: module}`` of the modules of type ``kind`` (default: activations).

    Raises:
        ValueError: one module object sits at several places (the course's network
            reuses one ``act_fn`` object): hooks on it could not tell layers apart.
    """
    found = [(n, m) for n, m in net.named_modules(remove_duplicate=False)
             if isinstance(m, kind)]
    places = {}
    for n, m in found:
        places.setdefault(id(m), []).append(n)
    shared = [names for names in places.values() if len(names) > 1]
    if shared:
        raise ValueError(
            f"one {kind.__name__} object is used as layers {', '.join(shared[0])}; "
            "give each layer its own copy (as actfns.BaseNetwork does) so that the "
            "layers can be told apart"
        )
    return dict(found)


def layer_activations(net, X, kind=ActivationFunction):
    """Outputs of every activation layer for a batch, captured with forward hooks.

    Works for any network whose activations are ``kind`` modules (``nn.ReLU`` etc.
    too, by passing ``kind=nn.ReLU``).

    Returns:
        ``{module name: (batch, width) output tensor}`` in forward order.
    """
    outputs, handles = {}, []
    for name, module in activation_layers(net, kind).items():
        def hook(_module, _inputs, out, name=name):
            outputs[name] = out.detach()
        handles.append(module.register_forward_hook(hook))
    try:
        with _eval_mode(net), torch.no_grad():
            net(X)
    finally:
        for handle in handles:
            handle.remove()
    return outputs


def hidden_preactivations(net, X):
    """The outputs of every linear layer but the last (the pre-activations ``z`` of
    the hidden layers) for a batch: ``{module name: (batch, width)}``."""
    return dict(list(layer_activations(net, X, kind=nn.Linear).items())[:-1])


@dataclass
class DeadNeurons:
    """Dead-neuron census: per activation layer, how many units never fired.

    ``counts[i]`` of ``sizes[i]`` units in layer ``names[i]`` were dead over
    ``num_samples`` inputs; ``fractions`` are in [0, 1]. ``masks[name]`` is a
    ``(units,)`` bool tensor, True for the dead units of that layer (which units, for
    following them through training).
    """

    names: list
    counts: list
    sizes: list
    num_samples: int
    masks: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def fractions(self):
        return [c / s for c, s in zip(self.counts, self.sizes)]

    @property
    def total_fraction(self):
        return sum(self.counts) / sum(self.sizes)

    def to_frame(self):
        return pd.DataFrame({"layer": range(1, len(self.names) + 1),
                             "module": self.names, "dead": self.counts,
                             "units": self.sizes, "fraction": self.fractions})


def count_dead_neurons(net, dataset, batch_size=4096, atol=0.0, device=None,
                       kind=ActivationFunction):
    """Count units whose output is 0 (``|out| <= atol``) for every input in ``dataset``.

    Streams the dataset in batches and keeps one boolean per unit, so memory does not
    grow with the dataset.

    Args:
        dataset: a ``TensorDataset`` of (images, labels), or a tensor of inputs.
        atol: tolerance; 0 (default) means exactly zero, the course's definition.
        device: where the batches go (default: the device of ``net``'s parameters).
    """
    def fired(out):  # NaN counts as firing: it is not 0
        return ~(out.abs().amax(dim=0) <= atol)

    ever = units_ever(net, dataset, {"fired": fired}, batch_size, device, kind)
    masks = {name: ~tests["fired"] for name, tests in ever.items()}
    return DeadNeurons(names=list(masks), counts=[int(m.sum()) for m in masks.values()],
                       sizes=[m.numel() for m in masks.values()],
                       num_samples=len(dataset), masks=masks)


def units_ever(net, dataset, tests, batch_size=4096, device=None,
               kind=ActivationFunction):
    """For each activation layer and unit: did ``test`` hold for some input?

    Streams ``dataset`` through ``net`` once, in batches, keeping one boolean per unit
    and test, so memory does not grow with the dataset.

    Args:
        dataset: a ``TensorDataset`` of (images, labels), or a tensor of inputs.
        tests: ``{test name: function}``; each function maps a layer's
            ``(batch, units)`` output to a ``(units,)`` bool tensor.
        device: where the batches go (default: the device of ``net``'s parameters).
    Returns:
        ``{layer name: {test name: (units,) bool tensor}}`` in forward order.
    """
    device = device_of(net) if device is None else device
    if isinstance(dataset, torch.Tensor):
        dataset = torch.utils.data.TensorDataset(dataset)
    if len(dataset) == 0:
        raise ValueError("the dataset is empty: a unit is dead if it never fires on "
                         "any input, so at least one input is needed")
    layers = activation_layers(net, kind)
    if not layers:
        raise ValueError(f"{type(net).__name__} has no {kind.__name__} modules")
    ever = {}

    def make_hook(name):
        def hook(_module, _inputs, out):
            out = out.reshape(out.shape[0], -1)  # (batch, units)
            now = {test: fn(out) for test, fn in tests.items()}
            ever[name] = now if name not in ever else {
                test: ever[name][test] | held for test, held in now.items()}
        return hook

    handles = [m.register_forward_hook(make_hook(n)) for n, m in layers.items()]
    try:
        with _eval_mode(net), torch.no_grad():
            for batch in batch_views(dataset, batch_size):
                net(batch[0].to(device))
    finally:
        for handle in handles:
            handle.remove()
    return {name: ever[name] for name in layers}


@dataclass
class Plateau:
    """Where a run's validation accuracy was no better than answering one class.

    ``level`` is the largest class's share of the validation set (what a network
    that always answers that class scores); ``on`` is one bool per epoch (validation
    accuracy <= level); ``first_escape`` the first epoch above the level and
    ``last_on`` the last epoch at or below it (1-based; None if there is none).
    """

    level: float
    on: list

    @property
    def epochs_on(self):
        return sum(self.on)

    @property
    def first_escape(self):
        return next((e for e, on in enumerate(self.on, start=1) if not on), None)

    @property
    def last_on(self):
        return max((e for e, on in enumerate(self.on, start=1) if on), default=None)


def plateau(history, val_set):
    """The one-class plateau of a run (see ``Plateau``), from its History and the
    validation set it was scored on (a ``TensorDataset`` of images and labels)."""
    labels = val_set.tensors[1]
    if len(labels) == 0:
        raise ValueError("the validation set is empty")
    level = labels.bincount().max().item() / len(labels)
    return Plateau(level, [acc <= level for acc in history.val_acc])
