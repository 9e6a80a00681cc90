"""Weight initialisation: the schemes, their gains, the initial network of a run, and
what each scheme does to activations and gradients at the start of training.

Every function returns data (networks, DataFrames); the figures are in ``plotting``.
"""

import functools
import math

import pandas as pd
import torch
from torch import nn

from .activations import make_activation, registry_name
from .course import (
    COURSE_HIDDEN_SIZES,
    COURSE_INPUT_SIZE,
    COURSE_NUM_CLASSES,
    COURSE_SEED,
)
from .diagnostics import activation_stats, grad_stats, weight_grads
from .env import as_executor, set_seed
from .model import BaseNetwork

__all__ = ["INIT_SCHEMES", "init_gain", "init_network", "initial_network",
           "init_study"]

INIT_SCHEMES = ("default", "kaiming", "xavier")
"""Weight initialisations known to :func:`init_network`."""

# registry name -> torch.nn.init.calculate_gain nonlinearity
_GAIN_NAMES = {"sigmoid": "sigmoid", "tanh": "tanh", "relu": "relu",
               "leakyrelu": "leaky_relu", "selu": "selu", "identity": "linear"}


def init_gain(act_fn):
    """``torch.nn.init.calculate_gain`` for an activation (instance, name or config).

    sqrt(2) for ReLU, sqrt(2 / (1 + alpha^2)) for LeakyReLU, 5/3 for tanh, 1 for
    sigmoid and identity, 3/4 for SELU. Raises ValueError for activations torch has no
    gain for (ELU, Swish, GELU, Mish, Softplus).
    """
    act = make_activation(act_fn)
    key = registry_name(act)
    if key not in _GAIN_NAMES:
        raise ValueError(f"torch.nn.init.calculate_gain has no gain for {act.name}; "
                         f"known: {', '.join(_GAIN_NAMES)}")
    return nn.init.calculate_gain(_GAIN_NAMES[key], act.config.get("alpha"))


@torch.no_grad()
def init_network(net, scheme, act_fn=None):
    """Re-initialise every ``nn.Linear`` of ``net`` in place (uses torch's RNG).

    - ``"default"``: PyTorch's own ``nn.Linear.reset_parameters``, i.e.
      ``kaiming_uniform_(w, a=sqrt(5))``, which is U(-1/sqrt(fan_in), 1/sqrt(fan_in))
      (std 1/sqrt(3 fan_in)), and bias U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
    - ``"kaiming"`` (He et al. 2015): w ~ N(0, gain^2 / fan_in), bias 0.
    - ``"xavier"`` (Glorot & Bengio 2010): w ~ U(-a, a) with
      a = gain sqrt(6 / (fan_in + fan_out)), i.e. std gain sqrt(2 / (fan_in + fan_out)),
      bias 0.

    ``gain`` is :func:`init_gain` of ``act_fn``, the network's activation: needed for
    ``"kaiming"`` and ``"xavier"`` (a ``BaseNetwork``'s own is used if not given).
    Returns ``net``.
    """
    if scheme not in INIT_SCHEMES:
        raise ValueError(f"unknown init scheme {scheme!r}; valid: {INIT_SCHEMES}")
    linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError(f"{type(net).__name__} has no nn.Linear layers")
    if scheme != "default":
        if act_fn is None:
            if not isinstance(net, BaseNetwork):
                raise ValueError(f"init_network({scheme!r}) needs act_fn for a "
                                 f"{type(net).__name__}")
            act_fn = net.config["act_fn"]
        gain = init_gain(act_fn)
    for layer in linears:
        if scheme == "default":
            layer.reset_parameters()
            continue
        if scheme == "kaiming":
            nn.init.normal_(layer.weight, 0.0, gain / math.sqrt(layer.in_features))
        else:
            nn.init.xavier_uniform_(layer.weight, gain=gain)
        if layer.bias is not None:
            nn.init.zeros_(layer.bias)
    return net


def initial_network(act_fn, seed=COURSE_SEED, hidden_sizes=COURSE_HIDDEN_SIZES,
                    init="default", input_size=COURSE_INPUT_SIZE,
                    num_classes=COURSE_NUM_CLASSES):
    """A ``BaseNetwork`` at its initial weights, built after ``set_seed(seed)``.

    With the same seed every activation starts from the same weights (the course's
    way of comparing them). ``init`` other than ``"default"`` re-initialises the
    weights with :func:`init_network` (drawing from the same seeded generator).
    """
    act = make_activation(act_fn)
    if init not in INIT_SCHEMES:
        raise ValueError(f"unknown init scheme {init!r}; valid: {INIT_SCHEMES}")
    set_seed(seed)
    net = BaseNetwork(act, input_size, num_classes, hidden_sizes)
    return net if init == "default" else init_network(net, init, act)


def init_study(acts, schemes, X, y, hidden_sizes=COURSE_HIDDEN_SIZES,
               seed=COURSE_SEED, num_classes=COURSE_NUM_CLASSES, executor=None):
    """Activation std and weight-gradient size per layer at initialisation.

    One network per (activation, scheme): :func:`initial_network` with ``seed``.
    ``executor`` (a ``concurrent.futures.Executor`` of processes, or a Dask
    ``Client`` whose workers have one thread each) computes one (activation, scheme)
    per task; the batch ``X``, ``y`` travels with each task.

    Returns:
        DataFrame with ``activation``, ``scheme``, ``layer``, ``act_std`` and
        ``act_image_std`` (see :func:`activation_stats`; NaN for the output layer),
        ``grad_norm`` (Frobenius norm of dL/dW on the batch X, y) and ``grad_rms``
        (its root mean square entry, comparable between layers of different sizes).
    """
    if executor is not None:
        executor = as_executor(executor, threads_allowed=False, what="init_study")
        task = functools.partial(init_study, X=X, y=y, hidden_sizes=hidden_sizes,
                                 seed=seed, num_classes=num_classes)
        pairs = [(act, scheme) for act in acts for scheme in schemes]
        frames = executor.map(task, [[a] for a, _ in pairs], [[s] for _, s in pairs])
        return pd.concat(list(frames), ignore_index=True)
    frames = []
    for act in acts:
        for scheme in schemes:
            net = initial_network(act, seed, hidden_sizes, scheme, X[0].numel(),
                                  num_classes)
            stats = activation_stats(net, X)[["layer", "std", "image_std"]]
            grads = grad_stats(weight_grads(net, X, y))[["layer", "norm", "rms"]]
            df = grads.merge(stats, on="layer", how="left")
            frames.append(df.rename(columns={"std": "act_std", "norm": "grad_norm",
                                             "rms": "grad_rms",
                                             "image_std": "act_image_std"})
                          .assign(activation=registry_name(net.config["act_fn"]),
                                  scheme=scheme))
    cols = ["activation", "scheme", "layer", "act_std", "act_image_std", "grad_norm",
            "grad_rms"]
    return pd.concat(frames, ignore_index=True)[cols]
