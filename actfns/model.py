"""The course's multi-layer perceptron, ``BaseNetwork``."""

import copy
import os

from torch import nn

from .activations import make_activation
from .course import COURSE_HIDDEN_SIZES, COURSE_INPUT_SIZE, COURSE_NUM_CLASSES

__all__ = ["BaseNetwork"]


def _check_size(what, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{what} must be a positive integer, got {value!r}")
    return value


def _memory_bytes():
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


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

    def __init__(self, act_fn, input_size=COURSE_INPUT_SIZE,
                 num_classes=COURSE_NUM_CLASSES, hidden_sizes=COURSE_HIDDEN_SIZES):
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
        params = sum((a + 1) * b for a, b in zip(sizes, [*hidden_sizes, num_classes]))
        memory = _memory_bytes()
        if memory is not None and 4 * params > memory:
            raise ValueError(
                f"a network with hidden sizes {hidden_sizes} has {params:,} parameters "
                f"({4 * params / 2**30:,.1f} GiB in float32), more than this machine's "
                f"memory ({memory / 2**30:,.1f} GiB)")
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
