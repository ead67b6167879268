"""Matplotlib plots shared by the notebooks."""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt


def bar_top_tokens(pairs: Sequence[tuple[str, float]], title: str = "Next-token probabilities"):
    """Horizontal bar chart of (token, probability) pairs, most likely on top; returns the Figure."""
    if not pairs:
        raise ValueError("pairs must contain at least one (token, probability) pair, got []")
    labels = [repr(tok) for tok, _ in pairs][::-1]
    values = [p for _, p in pairs][::-1]
    fig, ax = plt.subplots(figsize=(6, 0.35 * len(pairs) + 1))
    bars = ax.barh(labels, values, color="tab:blue")
    ax.bar_label(bars, labels=[f"{v:.3f}" for v in values], padding=3, fontsize=8)
    ax.set_xlabel("probability")
    ax.set_xlim(0, min(1.0, max(values) * 1.25 + 0.02))
    ax.set_title(title)
    fig.tight_layout()
    return fig


def bar_values(values: dict[str, float], xlabel: str, title: str = "", reference: float | None = None):
    """Horizontal bar chart of named values in the given order (first on top), optionally a dashed reference line."""
    if not values:
        raise ValueError("values must contain at least one name: value pair, got {}")
    labels, numbers = list(values)[::-1], list(values.values())[::-1]
    fig, ax = plt.subplots(figsize=(6, 0.35 * len(values) + 1))
    bars = ax.barh(labels, numbers, color="tab:blue")
    ax.bar_label(bars, labels=[f"{v:g}" for v in numbers], padding=3, fontsize=8)
    if reference is not None:
        ax.axvline(reference, color="gray", ls="--", lw=1)
    ax.set_xlim(0, max(numbers) * 1.15)
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    fig.tight_layout()
    return fig
