"""The course's multi-layer perceptron, ``BaseNetwork``."""

import copy

from torch import nn

from .activations import ActivationFunction, activation_from_config, get_activation

__all__ = ["BaseNetwork", "make_activation"]


def make_activation(act_fn):
    """An ActivationFunction from an instance, a registry name or a config dict."""
    if isinstance(act_fn, ActivationFunction):
        return act_fn
    if isinstance(act_fn, str):
        return get_activation(act_fn)
    if isinstance(act_fn, dict):
        return activation_from_config(act_fn)
    raise TypeError(
        "act_fn must be an ActivationFunction, a name such as 'relu', or a config "
        f"dict such as {{'name': 'ReLU'}}; got {act_fn!r}"
    )


def _check_size(what, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{what} must be a positive integer, got {value!r}")
    return value


class BaseNetwork(nn.Module):
    """MLP: flatten, then ``[Linear, activation] * len(hidden_sizes)``, then Linear.

    Args:
        act_fn: activation (instance, name or config); each hidden layer gets its own
            copy, so forward hooks and ``named_modules()`` can tell layers apart.
        input_size: pixels per image (784 for 28x28).
        num_classes: number of outputs (logits).
        hidden_sizes: width of each hidden layer.

    Input ``(batch, *)`` with ``input_size`` elements per sample, output
    ``(batch, num_classes)`` logits. ``self.layers`` is an ``nn.Sequential`` whose
    state-dict keys (``layers.0.weight``, ``layers.2.weight``, ...) match the course's
    checkpoints; ``self.config`` is the course's JSON config.
    """

    def __init__(self, act_fn, input_size=784, num_classes=10,
                 hidden_sizes=(512, 256, 256, 128)):
        super().__init__()
        act_fn = make_activation(act_fn)
        _check_size("input_size", input_size)
        _check_size("num_classes", num_classes)
        if isinstance(hidden_sizes, (str, bytes)) or not hasattr(
                hidden_sizes, "__iter__"):
            raise ValueError(
                f"hidden_sizes must be a list of ints, got {hidden_sizes!r}")
        hidden_sizes = [_check_size("each hidden size", h) for h in hidden_sizes]
        sizes = [input_size, *hidden_sizes]
        layers = []
        for n_in, n_out in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(n_in, n_out), copy.deepcopy(act_fn)]
        layers.append(nn.Linear(sizes[-1], num_classes))
        self.layers = nn.Sequential(*layers)
        self.input_size = input_size
        self.config = {
            "act_fn": dict(act_fn.config),
            "input_size": input_size,
            "num_classes": num_classes,
            "hidden_sizes": hidden_sizes,
        }

    def forward(self, x):
        return self.layers(x.reshape(x.shape[0], -1))  # (batch, input_size)
