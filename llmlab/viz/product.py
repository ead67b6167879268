"""Plots for chapter 13: the semantic cache's threshold curve and the format guard's success against retries."""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt


def plot_cache_curve(curve: dict[str, list[float]], chosen: float | None = None):
    """Hit rate and wrong-hit rate of a semantic cache against its similarity threshold."""
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.plot(curve["threshold"], curve["hit_rate"], marker="o", label="hit rate")
    ax.plot(curve["threshold"], curve["wrong_hit_rate"], marker="s", label="wrong-hit rate")
    if chosen is not None:
        ax.axvline(chosen, color="grey", linestyle=":", label=f"threshold {chosen:g}")
    ax.set(xlabel="similarity threshold", ylabel="share of queries", ylim=(-0.02, 1.02),
           title="Semantic cache: hits against wrong hits")
    ax.legend()
    fig.tight_layout()
    return fig


def plot_retry_success(rates: Sequence[float], intervals: Sequence[Sequence[float]] | None = None):
    """Share of requests with valid JSON within 1 + r tries, r = 0, 1, ..."""
    fig, ax = plt.subplots(figsize=(5, 3))
    r = list(range(len(rates)))
    if intervals:
        low = [m - lo for m, lo, _ in intervals]
        high = [hi - m for m, _, hi in intervals]
        ax.errorbar(r, rates, yerr=[low, high], marker="o", capsize=4)
    else:
        ax.plot(r, rates, marker="o")
    ax.set(xlabel="retries allowed", ylabel="valid JSON", ylim=(0, 1.02), xticks=r,
           title="Format guard: success against retries")
    fig.tight_layout()
    return fig
