"""Chapter 12 plots."""

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402

from llmlab.viz import posttraining as vp  # noqa: E402

HISTORY = [{"step": 1, "loss": 0.69, "rewards/margins": 0.0}, {"step": 2, "loss": 0.6, "rewards/margins": 0.2},
           {"step": 2, "kl": 0.01}]


def test_dpo_curves_split_metrics_by_step():
    curves = vp.dpo_curves(HISTORY)
    assert curves["loss"] == ([1, 2], [0.69, 0.6]) and curves["kl"] == ([2], [0.01])


def test_plot_dpo_curves_draws_three_panels():
    fig = vp.plot_dpo_curves(HISTORY)
    assert len(fig.axes) == 3 and [len(ax.get_lines()) for ax in fig.axes] == [1, 1, 1]
    assert list(fig.axes[1].get_lines()[0].get_ydata()) == [0.0, 0.2]


def test_plot_cleaning_steps():
    fig = vp.plot_cleaning_steps(["raw", "dedup"], [10, 8], [20.0, 19.0])
    assert [p.get_height() for p in fig.axes[0].patches] == [10, 8]
    with pytest.raises(ValueError):
        vp.plot_cleaning_steps(["raw"], [1, 2], [1.0])
