"""Elo vs Bradley-Terry view, its widget, and the sample-size plot."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

from llmlab.evaluation import ranking  # noqa: E402
from llmlab.viz import evaluation as VE  # noqa: E402


def test_elo_vs_bradley_terry_is_deterministic_and_order_free_for_bt():
    a = VE.elo_vs_bradley_terry(seed=0, spread_orders=3)
    b = VE.elo_vs_bradley_terry(seed=7, spread_orders=3)
    assert a["players"] == [1, 2, 3, 4, 5]
    assert a["bt"] == b["bt"] and a["elo"] != b["elo"]
    assert a == VE.elo_vs_bradley_terry(seed=0, spread_orders=3)
    assert all(lo <= hi for lo, hi in zip(a["elo_min"], a["elo_max"]))
    assert a["bt_ranking"][0] == 5
    small_k = VE.elo_vs_bradley_terry(seed=0, k_factor=4, spread_orders=3)
    spread = [hi - lo for lo, hi in zip(small_k["elo_min"], small_k["elo_max"])]
    assert max(spread) < max(hi - lo for lo, hi in zip(a["elo_min"], a["elo_max"]))


def test_plots_and_widget_render():
    fig = VE.plot_elo_vs_bradley_terry(VE.elo_vs_bradley_terry(spread_orders=2))
    assert len(fig.axes) == 1
    fig = VE.plot_sample_size([0.3, 0.1], [30, 300], [10, 100], formula=[35.0, 385.0])
    assert fig.axes[0].get_xscale() == "log"
    widget = VE.elo_widget({(1, 2): 0.7, (2, 3): 0.6, (1, 3): 0.8}, matches_per_pair=50)
    assert len(widget.children) == 3 and widget.kwargs == {"seed": 0, "k_factor": 32.0}
    assert ranking.BOOK_MATCHES_PER_PAIR == 1000
