"""Chapter 09 views: Elo vs Bradley-Terry on pairwise matches (a widget over `elo_vs_bradley_terry`) and the
sample-size curve."""

from __future__ import annotations

from typing import Hashable, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np

from llmlab import validate as V
from llmlab.evaluation import ranking


def elo_vs_bradley_terry(win_rates: Mapping[tuple[Hashable, Hashable], float] = ranking.BOOK_WIN_RATES,
                         matches_per_pair: int = ranking.BOOK_MATCHES_PER_PAIR, seed: int = 0,
                         k_factor: float = 32.0, spread_orders: int = 20) -> dict:
    """Ratings of the same matches by Elo (played in the order `seed` shuffles them) and by Bradley-Terry (order
    free, on the Elo scale), plus each player's Elo range over `spread_orders` other shuffles.

    Returns {'players', 'elo', 'bt', 'elo_min', 'elo_max', 'elo_ranking', 'bt_ranking'} (lists in player order).
    """
    V.integer("spread_orders", spread_orders, low=1, high=500)
    matches = ranking.matches_from_win_rates(win_rates, matches_per_pair, seed)
    players = ranking.players_of(matches)
    elo = ranking.elo(matches, k_factor)
    bt = ranking.bt_to_elo(ranking.bradley_terry(ranking.win_matrix(matches, players)))
    spread = ranking.elo_over_orders(matches, [1000 + s for s in range(spread_orders)], k_factor)
    return {
        "players": players,
        "elo": [elo[p] for p in players],
        "bt": [float(x) for x in bt],
        "elo_min": [min(spread[p]) for p in players],
        "elo_max": [max(spread[p]) for p in players],
        "elo_ranking": ranking.ranking(elo),
        "bt_ranking": ranking.ranking(dict(zip(players, bt))),
    }


def plot_elo_vs_bradley_terry(result: dict, title: str = ""):
    """Bars of Elo (this order) and Bradley-Terry per player, with Elo's range over other orders; returns the Figure."""
    players = [str(p) for p in result["players"]]
    x = np.arange(len(players))
    fig, ax = plt.subplots(figsize=(7, 3.4))
    elo = np.array(result["elo"])
    err = np.vstack([elo - np.array(result["elo_min"]), np.array(result["elo_max"]) - elo]).clip(min=0)
    ax.bar(x - 0.2, elo, 0.4, yerr=err, capsize=4, label="Elo, this match order (bars: range over other orders)")
    ax.bar(x + 0.2, result["bt"], 0.4, label="Bradley-Terry MLE (order-free)")
    ax.set_xticks(x, [f"model {p}" for p in players])
    low = min(min(result["elo_min"]), min(result["bt"])) - 50
    high = max(max(result["elo_max"]), max(result["bt"])) + 50
    ax.set_ylim(low, high)
    ax.set_ylabel("rating (Elo scale)")
    ax.set_title(title or f"Elo ranking {result['elo_ranking']}  vs  BT ranking {result['bt_ranking']}", fontsize=9)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    return fig


def elo_widget(win_rates: Mapping[tuple[Hashable, Hashable], float] = ranking.BOOK_WIN_RATES,
               matches_per_pair: int = ranking.BOOK_MATCHES_PER_PAIR):
    """Sliders for the match-order seed and the K-factor; redraws Elo vs Bradley-Terry."""
    import ipywidgets as widgets

    def show(seed, k_factor):
        plot_elo_vs_bradley_terry(elo_vs_bradley_terry(win_rates, matches_per_pair, seed, k_factor, spread_orders=10))
        plt.show()

    return widgets.interactive(
        show, seed=widgets.IntSlider(value=0, min=0, max=50, description="order seed"),
        k_factor=widgets.FloatLogSlider(value=32, base=2, min=1, max=7, step=0.5, description="K-factor"))


def plot_sample_size(differences: Sequence[float], simulated: Sequence[int], book: Sequence[int],
                     formula: Sequence[float] | None = None, power: float = 0.8):
    """Samples needed vs difference to detect (log-log): the kit's simulation, the book's table, a formula."""
    fig, ax = plt.subplots(figsize=(6, 3.6))
    ax.loglog(differences, simulated, "o-", label=f"simulated: {power:.0%} of runs detect it (p < 0.05)")
    ax.loglog(differences, book, "s--", label="AI Engineering's table (~1/d²)")
    if formula is not None:
        ax.loglog(differences, formula, ":", color="gray", label="normal-approximation formula")
    for d, n in zip(differences, simulated):
        ax.annotate(f"{n:,}", (d, n), textcoords="offset points", xytext=(6, 4), fontsize=8)
    ax.set_xlabel("accuracy difference to detect (around 50%)")
    ax.set_ylabel("questions per model")
    ax.invert_xaxis()
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
