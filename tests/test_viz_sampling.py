"""Chapter 02 plots and the sampling explorer render without error."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402

from llmlab.viz import sampling as viz  # noqa: E402


def test_plots_render():
    assert viz.plot_temperature_curve().axes
    assert viz.plot_kept_distribution(["a", "b"], [0.6, 0.4], [1.0, 0.0], [True, False]).axes
    assert viz.plot_accuracy_vs_n([1, 2], {"vote": [0.5, 0.6]}).axes


def test_plot_arguments_are_checked():
    with pytest.raises(ValueError, match="t_min and t_max must satisfy 0 < t_min < t_max, got 2 and 1"):
        viz.plot_temperature_curve(t_min=2, t_max=1)
    with pytest.raises(ValueError, match="labels, before, after and kept must be non-empty"):
        viz.plot_kept_distribution(["a"], [1.0], [], [True])
    with pytest.raises(ValueError, match="curves must be a non-empty dict"):
        viz.plot_accuracy_vs_n([1, 2], {"vote": [0.5]})


def test_explorer_renders_initial_state_and_updates(tiny):
    model, tokenizer = tiny
    widget = viz.sampling_explorer(model, tokenizer, prompt="hi", show=5)
    widget.kwargs_widgets[2].value = 3  # top_k
    assert widget.result is None
    assert [w.description for w in widget.kwargs_widgets][:2] == ["prompt", "temperature"]
