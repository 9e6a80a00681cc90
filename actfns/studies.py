"""Studies beyond the course: several seeds and other initialisations.

Every function returns data (DataFrames, Histories); the figures are in ``plotting``.
Deeper networks (dead and inactive units against depth) are in ``depth``.
"""

import math

import pandas as pd
import torch
from scipy.stats import t as student_t
from torch import nn

from .activations import ActivationFunction
from .diagnostics import activation_layers, grad_stats, layer_activations, weight_grads
from .model import BaseNetwork, make_activation
from .train import run_fingerprint, set_seed, train_model, train_or_load

__all__ = ["INIT_SCHEMES", "init_gain", "init_network", "activation_stats",
           "init_study", "train_with_init", "train_seeds", "runs_frame",
           "summarize_runs", "compare_to_best"]

INIT_SCHEMES = ("default", "kaiming", "xavier")
"""Weight initialisations known to :func:`init_network`."""

# activation class name -> torch.nn.init.calculate_gain nonlinearity
_GAIN_NAMES = {"Sigmoid": "sigmoid", "Tanh": "tanh", "ReLU": "relu",
               "LeakyReLU": "leaky_relu", "SELU": "selu", "Identity": "linear"}


def init_gain(act_fn):
    """``torch.nn.init.calculate_gain`` for an activation (instance, name or config).

    sqrt(2) for ReLU, sqrt(2 / (1 + alpha^2)) for LeakyReLU, 5/3 for tanh, 1 for
    sigmoid and identity, 3/4 for SELU. Raises ValueError for activations torch has no
    gain for (ELU, Swish, GELU, Mish, Softplus).
    """
    act = make_activation(act_fn)
    if act.name not in _GAIN_NAMES:
        raise ValueError(f"torch.nn.init.calculate_gain has no gain for {act.name}; "
                         f"known: {', '.join(_GAIN_NAMES)}")
    return nn.init.calculate_gain(_GAIN_NAMES[act.name], act.config.get("alpha"))


def _network_activation(net):
    acts = list(activation_layers(net).values())
    if not acts:
        raise ValueError(f"{type(net).__name__} has no ActivationFunction modules; "
                         "pass act_fn")
    if len({(a.name, tuple(sorted(a.config.items()))) for a in acts}) > 1:
        raise ValueError("the network mixes activations; pass act_fn")
    return acts[0]


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

    ``gain`` is :func:`init_gain` of ``act_fn`` (default: the network's activation).
    Returns ``net``.
    """
    if scheme not in INIT_SCHEMES:
        raise ValueError(f"unknown init scheme {scheme!r}; valid: {INIT_SCHEMES}")
    linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError(f"{type(net).__name__} has no nn.Linear layers")
    if scheme != "default":
        gain = init_gain(act_fn if act_fn is not None else _network_activation(net))
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


def init_study(acts, schemes, X, y, hidden_sizes=(512, 256, 256, 128), seed=42,
               num_classes=10):
    """Activation std and weight-gradient norm per layer at initialisation.

    One network per (activation, scheme), built after ``set_seed(seed)``.

    Returns:
        DataFrame with ``activation``, ``scheme``, ``layer``, ``act_std`` and
        ``act_image_std`` (see :func:`activation_stats`; NaN for the output layer) and
        ``grad_norm`` (Frobenius norm of dL/dW on the batch X, y).
    """
    frames = []
    for act in acts:
        for scheme in schemes:
            set_seed(seed)
            net = init_network(BaseNetwork(act, X[0].numel(), num_classes,
                                           hidden_sizes), scheme)
            stats = activation_stats(net, X)[["layer", "std", "image_std"]]
            grads = grad_stats(weight_grads(net, X, y))[["layer", "norm"]]
            df = grads.merge(stats, on="layer", how="left")
            frames.append(df.rename(columns={"std": "act_std", "norm": "grad_norm",
                                             "image_std": "act_image_std"})
                          .assign(activation=make_activation(act).name.lower(),
                                  scheme=scheme))
    cols = ["activation", "scheme", "layer", "act_std", "act_image_std", "grad_norm"]
    return pd.concat(frames, ignore_index=True)[cols]


def train_with_init(act_fn, data, init="default", *, seed=42,
                    hidden_sizes=(512, 256, 256, 128), **train_kwargs):
    """``train_or_load`` for a network initialised with ``init`` (see init_network).

    ``"default"`` is exactly :func:`train_or_load` (its checkpoints are shared). Other
    schemes are saved as ``FashionMNIST_<act>_<init>_<fingerprint>``.

    Returns:
        ``(net, history)``.
    """
    if init == "default":
        return train_or_load(act_fn, data, seed=seed, hidden_sizes=hidden_sizes,
                             **train_kwargs)
    act = make_activation(act_fn)
    set_seed(seed)
    net = init_network(BaseNetwork(act, hidden_sizes=hidden_sizes), init)
    recipe = {k: v for k, v in train_kwargs.items()
              if k not in ("device", "model_path", "progress", "overwrite")}
    fp = run_fingerprint(net, data.fingerprint, dict(seed=seed, init=init, **recipe))
    name = f"FashionMNIST_{act.name.lower()}_{init}_{fp[:10]}"
    return net, train_model(net, name, data, seed=seed, **train_kwargs)


def train_seeds(acts, data, seeds, **train_kwargs):
    """Train (or load) one network per activation and seed with ``train_or_load``.

    Returns:
        ``{activation name: {seed: History}}``; the networks are not kept.
    """
    return {make_activation(a).name.lower():
            {s: train_or_load(a, data, seed=s, **train_kwargs)[1] for s in seeds}
            for a in acts}


def runs_frame(histories):
    """One row per run: ``activation``, ``seed``, ``test_acc``, ``best_val_acc``
    (fractions), ``best_epoch``, ``epochs`` and ``wall_time`` (s).

    Args:
        histories: ``{activation: {seed: History}}`` (or ``{activation: [History]}``,
            then ``seed`` is the run's position).
    """
    rows = []
    for act, runs in histories.items():
        if not isinstance(runs, dict):
            runs = dict(enumerate(runs))
        if not runs:
            raise ValueError(f"no runs for {act!r}")
        rows += [dict(activation=act, seed=s, test_acc=h.test_acc,
                      best_val_acc=h.best_val_acc, best_epoch=h.best_epoch,
                      epochs=h.epochs, wall_time=h.wall_time) for s, h in runs.items()]
    return pd.DataFrame(rows)


def summarize_runs(histories, columns=("test_acc", "best_epoch", "wall_time")):
    """Mean and sample standard deviation (ddof 1) over seeds, per activation.

    Returns:
        DataFrame indexed by activation (in input order) with ``runs`` and, for each
        column, ``<column>_mean`` and ``<column>_std`` (NaN std for a single run).
    """
    df = runs_frame(histories)
    agg = df.groupby("activation", sort=False)[list(columns)].agg(["mean", "std"])
    agg.columns = [f"{c}_{stat}" for c, stat in agg.columns]
    agg.insert(0, "runs", df.groupby("activation", sort=False).size())
    return agg


def compare_to_best(summary, column="test_acc", alpha=0.05):
    """Each activation's gap to the best mean, screened with Welch's t-test.

    For every activation ``a`` and the activation with the best mean, ``b``:
    ``gap`` = mean_b - mean_a; ``se`` = sqrt(s_a^2 / n_a + s_b^2 / n_b), the standard
    error of the difference of the two means; ``t`` = gap / se; ``df``, Welch's
    (Welch-Satterthwaite) degrees of freedom; ``t_crit``, the two-sided critical value
    of Student's t with ``df`` degrees of freedom at level ``alpha``. ``within_noise``
    is ``t < t_crit``: the gap is smaller than what equally good activations would
    show in a fraction ``alpha`` of draws of seeds. An activation with one run has no
    standard deviation; its variance counts as zero.

    This is a screen, not a test with error rate ``alpha``: the best activation is
    picked after looking at the means, and several activations are compared with it.

    Returns:
        ``summary``'s ``<column>_mean`` and ``_std`` plus ``gap``, ``se``, ``t``,
        ``df``, ``t_crit`` and ``within_noise``, sorted from best to worst. ``se``,
        ``t``, ``df`` and ``t_crit`` are NaN for the best activation itself (which is
        within noise).
    """
    mean, std, n = summary[f"{column}_mean"], summary[f"{column}_std"], summary["runs"]
    best = mean.idxmax()
    var = std.fillna(0.0) ** 2 / n  # squared standard error of each mean
    out = pd.DataFrame({f"{column}_mean": mean, f"{column}_std": std,
                        "gap": mean[best] - mean,
                        "se": (var + var[best]).pow(0.5)})
    term = (var**2 / (n - 1)).where(var > 0, 0.0)
    out["t"] = out["gap"] / out["se"]
    out["df"] = (var + var[best]) ** 2 / (term + term[best])
    out["t_crit"] = student_t.ppf(1 - alpha / 2, out["df"].where(out["df"] > 0))
    # se == 0 (no spread in either): only an exact tie is within noise
    out["within_noise"] = [bool(t < c) if se > 0 else gap == 0 for t, c, se, gap
                           in zip(out["t"], out["t_crit"], out["se"], out["gap"])]
    out.loc[best, ["se", "t", "df", "t_crit"]] = math.nan
    out.loc[best, "within_noise"] = True
    return out.sort_values("gap")
