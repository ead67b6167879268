"""Shared plots."""

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402

from llmlab.viz.plots import bar_top_tokens  # noqa: E402


def test_bar_top_tokens_orders_most_likely_on_top():
    fig = bar_top_tokens([(" Paris", 0.7), (" the", 0.2)], title="t")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["' the'", "' Paris'"]
    assert ax.get_title() == "t"
    assert [round(p.get_width(), 3) for p in ax.patches] == [0.2, 0.7]


def test_bar_top_tokens_rejects_empty_input():
    with pytest.raises(ValueError, match="pairs must contain at least one"):
        bar_top_tokens([])
