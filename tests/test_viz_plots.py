"""Shared plots."""

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402

from llmlab.viz.plots import bar_top_tokens, bar_values  # noqa: E402


def test_bar_top_tokens_orders_most_likely_on_top():
    fig = bar_top_tokens([(" Paris", 0.7), (" the", 0.2)], title="t")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["' the'", "' Paris'"]
    assert ax.get_title() == "t"
    assert [round(p.get_width(), 3) for p in ax.patches] == [0.2, 0.7]


def test_bar_top_tokens_rejects_empty_input():
    with pytest.raises(ValueError, match="pairs must contain at least one"):
        bar_top_tokens([])


def test_bar_values_keeps_order_and_draws_the_reference():
    fig = bar_values({"English": 14, "Hindi": 61}, xlabel="tokens", reference=14)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["Hindi", "English"]
    assert [p.get_width() for p in ax.patches] == [61, 14]
    assert [line.get_xdata()[0] for line in ax.get_lines()] == [14]


def test_bar_values_rejects_empty_input():
    with pytest.raises(ValueError, match="values must contain at least one"):
        bar_values({}, xlabel="x")
