"""actfns.seeds (several seeds: training, summaries, the screen) and its plots."""

import math

import matplotlib.figure
import numpy as np
import pandas as pd
import pytest
from conftest import make_blob_data

import actfns as af


def fake_history(test_acc, best_epoch, wall_time):
    return af.History("run", val_acc=[0.5] * (best_epoch + 3), best_epoch=best_epoch,
                      test_acc=test_acc, wall_time=wall_time)


def test_train_seeds_returns_one_history_per_seed():
    data = make_blob_data(dim=784, sizes=(256, 128, 128), tag="seeds")
    runs = af.train_seeds(["relu", af.Tanh()], data, (0, 1), hidden_sizes=(8,),
                          max_epochs=1, patience=1)
    assert list(runs) == ["relu", "tanh"] and list(runs["relu"]) == [0, 1]
    names = {h.model_name for r in runs.values() for h in r.values()}
    assert len(names) == 4  # no two runs share a checkpoint


# --- summaries over seeds -----------------------------------------------------------

def test_summarize_runs_mean_and_sample_std():
    runs = {"relu": {0: fake_history(0.80, 2, 10.0), 1: fake_history(0.90, 4, 20.0),
                     2: fake_history(1.00, 6, 30.0)},
            "elu": [fake_history(0.5, 1, 5.0)]}
    s = af.summarize_runs(runs)
    assert list(s.index) == ["relu", "elu"]
    assert s.loc["relu", "runs"] == 3
    assert s.loc["relu", "test_acc_mean"] == pytest.approx(0.9)
    assert s.loc["relu", "test_acc_std"] == pytest.approx(0.1)
    assert s.loc["relu", "best_epoch_mean"] == pytest.approx(4)
    assert s.loc["relu", "best_epoch_std"] == pytest.approx(2)
    assert s.loc["relu", "wall_time_std"] == pytest.approx(10)
    assert math.isnan(s.loc["elu", "test_acc_std"])
    frame = af.runs_frame(runs)
    assert frame["seed"].tolist() == [0, 1, 2, 0] and len(frame) == 4
    with pytest.raises(ValueError, match="no runs for 'gelu'"):
        af.summarize_runs({"gelu": {}})


def test_compare_to_best_welch_t_test_against_the_best():
    summary = pd.DataFrame({"runs": [3, 3, 3, 3],
                            "test_acc_mean": [0.895, 0.9, 0.5, 0.87],
                            "test_acc_std": [0.01, 0.01, 0.0, 0.02]},
                           index=["b", "a", "c", "d"])
    cmp = af.compare_to_best(summary)
    assert list(cmp.index) == ["a", "b", "d", "c"]
    assert cmp.loc["b", "gap"] == pytest.approx(0.005)
    assert cmp.loc["b", "se"] == pytest.approx(math.sqrt(2 * 0.01**2 / 3))
    assert cmp.loc["b", "t"] == pytest.approx(0.005 / math.sqrt(2 * 0.01**2 / 3))
    # equal variances and sizes: Welch's df is n_a + n_b - 2
    assert cmp.loc["b", "df"] == pytest.approx(4)
    assert cmp.loc["b", "t_crit"] == pytest.approx(2.776445, abs=1e-6)
    # c has no spread: the df are those of the best alone, n - 1
    assert cmp.loc["c", "df"] == pytest.approx(2)
    assert cmp.loc["c", "t_crit"] == pytest.approx(4.302653, abs=1e-6)
    # d: t = 0.03 / sqrt(0.0005 / 3) = 2.32, above 2 but below the critical value
    va, vd = 0.01**2 / 3, 0.02**2 / 3
    assert cmp.loc["d", "t"] == pytest.approx(0.03 / math.sqrt(va + vd))
    assert cmp.loc["d", "df"] == pytest.approx((va + vd) ** 2 / (va**2 / 2 + vd**2 / 2))
    assert 2 < cmp.loc["d", "t"] < cmp.loc["d", "t_crit"]
    assert cmp["within_noise"].tolist() == [True, True, True, False]
    assert cmp.loc["a", ["se", "t", "df", "t_crit"]].isna().all()
    stricter = af.compare_to_best(summary.drop(index="c"), alpha=0.5)
    assert stricter["within_noise"].tolist() == [True, True, False]


def test_compare_to_best_without_spread_only_a_tie_is_within_noise():
    summary = pd.DataFrame({"runs": [1, 1, 1], "test_acc_mean": [0.9, 0.9, 0.8],
                            "test_acc_std": [math.nan] * 3}, index=["a", "b", "c"])
    cmp = af.compare_to_best(summary)
    assert cmp["within_noise"].tolist() == [True, True, False]


# --- plots ------------------------------------------------------------------------

def test_plot_seed_points_draws_every_run_and_the_mean():
    runs = af.runs_frame({"relu": [fake_history(a, 3, 1.0) for a in (0.8, 0.9)],
                          "tanh": [fake_history(a, 3, 1.0) for a in (0.7, 0.75, 0.8)]})
    fig = af.plot_seed_points(runs)
    assert isinstance(fig, matplotlib.figure.Figure)
    ax = fig.axes[0]
    def ys(marker):
        y = [np.asarray(line.get_ydata(), float) for line in ax.lines
             if line.get_marker() == marker]
        return sorted(np.round(np.concatenate(y), 6).tolist())
    assert ys("o") == [70, 75, 80, 80, 90]
    assert ys("D") == [75, 85]  # the means
    assert [t.get_text() for t in ax.get_xticklabels()] == ["relu", "tanh"]


def test_plot_lines_one_panel_per_value_and_one_line_per_hue():
    df = pd.DataFrame({"activation": ["relu"] * 4 + ["elu"] * 4,
                       "depth": [2, 2, 4, 4] * 2, "layer": [1, 2, 1, 2] * 2,
                       "frac": np.arange(8.0)})
    fig = af.plot_lines(df, "layer", "frac", hue="depth", panel="activation")
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in visible] == ["relu", "elu"]
    assert all(len(ax.lines) == 2 for ax in visible)
    assert visible[1].lines[1].get_ydata().tolist() == [6.0, 7.0]
    ticks = visible[0].get_xticks()
    assert np.allclose(ticks, np.round(ticks))  # integer x values get integer ticks
    fig = af.plot_lines(df, "depth", "frac", hue="activation", logy=True)
    assert len(fig.axes[0].lines) == 2 and fig.axes[0].get_yscale() == "log"
