"""Several seeds: train each activation with several seeds, summarise, compare.

One seed decides both the initial weights and the batch order; the spread over seeds
is the noise any comparison of activations has to beat. A study is a grid of runs
(activations x seeds x depths x initialisations, :func:`sweep_specs`), trained on any
executor (``sweep.train_runs``) and summarised as the several-seeds chapter shows it
(:func:`sweep_tables`, ``python -m actfns sweep``). Every function returns data
(DataFrames, Histories); the figures are in ``plotting``.
"""

import math
import os

import pandas as pd
from scipy.stats import t as student_t

from .course import COURSE_RECIPE, COURSE_SEED
from .env import atomic_write
from .runs import RunSpec
from .sweep import train_runs

__all__ = ["SWEEP_ACTIVATIONS", "seed_specs", "train_seeds", "runs_frame",
           "summarize_runs", "compare_to_best", "sweep_specs", "sweep_tables",
           "screen_table", "write_sweep", "read_sweep"]

SWEEP_ACTIVATIONS = ("sigmoid", "tanh", "relu", "leakyrelu", "elu", "swish", "gelu",
                     "mish", "selu")
"""The several-seeds chapter's nine activations: the course's six, GELU, Mish, SELU."""


def seed_specs(acts, seeds, **spec):
    """One ``RunSpec`` per activation and seed (``spec``: other RunSpec fields, or
    changes to the course's recipe such as ``max_epochs=3``)."""
    fields = {"hidden_sizes", "init", "input_size", "num_classes"}
    recipe = COURSE_RECIPE.replace(**{k: v for k, v in spec.items() if k not in fields})
    other = {k: v for k, v in spec.items() if k in fields}
    return [RunSpec(act, seed=seed, recipe=recipe, **other)
            for act in acts for seed in seeds]


def train_seeds(acts, data, seeds, *, store=None, device=None, progress=None,
                executor=None, threads=None, **spec):
    """Train (or reuse) one network per activation and seed.

    ``executor`` and ``threads``: where the runs are trained, as for
    :func:`actfns.train_runs` (default: serially, in this process).

    Returns:
        ``{activation name: {seed: History}}``; the networks are not kept.
    """
    specs = seed_specs(acts, seeds, **spec)
    histories = train_runs(specs, data, executor=executor, store=store, device=device,
                           progress=progress, threads=threads)
    result = {}
    for run, history in zip(specs, histories):
        result.setdefault(run.act_name, {})[run.seed] = history
    return result


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


def sweep_specs(acts=SWEEP_ACTIVATIONS, seeds=(COURSE_SEED,), *, depths=None,
                width=256, inits=("default",), **spec):
    """The runs of a grid: every activation, seed, depth and initialisation.

    Args:
        depths: numbers of hidden layers, each ``width`` units wide (None: the
            course's network).
        inits: initialisation schemes (``INIT_SCHEMES``).
        spec: other RunSpec fields or changes to the course's recipe
            (``max_epochs=3``), as ``seed_specs`` takes them.
    Returns:
        list of ``RunSpec``, without duplicates.
    """
    sizes = [None] if depths is None else [(width,) * d for d in depths]
    specs = []
    for hidden in sizes:
        for init in inits:
            more = dict(spec, init=init)
            if hidden is not None:
                more["hidden_sizes"] = hidden
            specs += seed_specs(acts, seeds, **more)
    return list(dict.fromkeys(specs))


def _label(spec, depths, inits):
    label = spec.act_name
    if depths:
        label += f" depth={len(spec.hidden_sizes)}"
    if inits:
        label += f" init={spec.init}"
    return label


def sweep_tables(specs, histories):
    """The runs of a sweep and their summary, as the several-seeds chapter shows them.

    Runs are grouped by activation, and by depth and initialisation where the sweep
    has several (group labels like ``"relu depth=4 init=kaiming"``).

    Returns:
        ``(runs, summary)``: ``runs``, one row per run (``runs_frame``'s columns, the
        group in ``activation``, plus ``act``, ``depth``, ``init`` and ``name``);
        ``summary``, ``summarize_runs`` per group joined with ``compare_to_best``'s
        screen (``gap``, ``se``, ``t``, ``df``, ``t_crit``, ``within_noise``), best
        group first.
    """
    specs = list(specs)
    depths = len({s.hidden_sizes for s in specs}) > 1
    inits = len({s.init for s in specs}) > 1
    groups, rows = {}, {}
    for spec, history in zip(specs, histories, strict=True):
        label = _label(spec, depths, inits)
        groups.setdefault(label, {})[spec.seed] = history
        rows.setdefault(label, {})[spec.seed] = dict(
            act=spec.act_name, depth=len(spec.hidden_sizes), init=spec.init,
            name=spec.name)
    runs = runs_frame(groups)
    extra = pd.DataFrame([row for r in rows.values() for row in r.values()])
    runs = pd.concat([runs, extra], axis=1)
    summary = summarize_runs(groups)
    screen = compare_to_best(summary)
    summary = summary.loc[screen.index].join(
        screen[["gap", "se", "t", "df", "t_crit", "within_noise"]])
    summary.index.name = "activation"
    return runs, summary


def screen_table(summary):
    """``sweep_tables``'s summary as text columns: test accuracy, epochs to the best
    validation accuracy and training time as mean ± std; the gap to the best and its
    standard error in percentage points; t, df, t_crit and within_noise."""

    def mean_std(col, scale=1.0, digits=2):
        fmt = f"{{:.{digits}f}}".format
        return ((scale * summary[f"{col}_mean"]).map(fmt) + " ± "
                + (scale * summary[f"{col}_std"]).map(fmt))

    table = pd.DataFrame({"runs": summary["runs"],
                          "test accuracy (%)": mean_std("test_acc", 100),
                          "epochs to best": mean_std("best_epoch", digits=1),
                          "time (s)": mean_std("wall_time", digits=1),
                          "gap (points)": (100 * summary["gap"]).round(2),
                          "se (points)": (100 * summary["se"]).round(2)})
    return table.join(summary[["t", "df", "t_crit"]].round(2)).join(
        summary["within_noise"])


def write_sweep(folder, specs, histories):
    """Write ``runs.csv`` and ``summary.csv`` (see :func:`sweep_tables`) into
    ``folder``; returns ``(runs, summary)``."""
    runs, summary = sweep_tables(specs, histories)
    folder = os.fspath(folder)
    for name, frame, index in (("runs.csv", runs, False),
                               ("summary.csv", summary, True)):
        text = frame.to_csv(index=index).encode()
        atomic_write(os.path.join(folder, name), lambda f, text=text: f.write(text))
    return runs, summary


def read_sweep(folder):
    """``(runs, summary)`` as :func:`write_sweep` wrote them into ``folder`` (the
    ``--out`` of ``python -m actfns sweep``).

    Raises:
        FileNotFoundError: ``folder`` has no ``runs.csv`` or ``summary.csv``.
    """
    frames = []
    for name, index in (("runs.csv", None), ("summary.csv", "activation")):
        path = os.path.join(os.fspath(folder), name)
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"{path} not found: {folder} is not the folder of a sweep; write one "
                f"with `python -m actfns sweep --out {folder}`")
        frames.append(pd.read_csv(path, index_col=index))
    return tuple(frames)
