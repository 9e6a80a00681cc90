"""Several seeds: train each activation with several seeds, summarise, compare.

One seed decides both the initial weights and the batch order; the spread over seeds
is the noise any comparison of activations has to beat. Every function returns data
(DataFrames, Histories); the figures are in ``plotting``.
"""

import math

import pandas as pd
from scipy.stats import t as student_t

from .course import COURSE_RECIPE
from .runs import RunSpec, train_runs

__all__ = ["seed_specs", "train_seeds", "runs_frame", "summarize_runs",
           "compare_to_best"]


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
