"""Matplotlib plots shared by the notebooks."""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt


def _barh(labels: Sequence[str], values: Sequence[float], value_format: str, xlabel: str, title: str, xmax: float):
    """Horizontal bars, first item on top, each labelled with its value; returns (Figure, Axes)."""
    labels, values = list(labels)[::-1], list(values)[::-1]
    fig, ax = plt.subplots(figsize=(6, 0.35 * len(values) + 1))
    bars = ax.barh(labels, values, color="tab:blue")
    ax.bar_label(bars, labels=[format(v, value_format) for v in values], padding=3, fontsize=8)
    ax.set_xlim(0, xmax)
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    return fig, ax


def bar_top_tokens(pairs: Sequence[tuple[str, float]], title: str = "Next-token probabilities"):
    """Horizontal bar chart of (token, probability) pairs, most likely on top; returns the Figure."""
    if not pairs:
        raise ValueError("pairs must contain at least one (token, probability) pair, got []")
    values = [p for _, p in pairs]
    fig, _ = _barh([repr(tok) for tok, _ in pairs], values, ".3f", "probability", title,
                   min(1.0, max(values) * 1.25 + 0.02))
    fig.tight_layout()
    return fig


def bar_values(values: dict[str, float], xlabel: str, title: str = "", reference: float | None = None):
    """Horizontal bar chart of named values in the given order (first on top), optionally a dashed reference line."""
    if not values:
        raise ValueError("values must contain at least one name: value pair, got {}")
    fig, ax = _barh(list(values), list(values.values()), "g", xlabel, title, max(values.values()) * 1.15)
    if reference is not None:
        ax.axvline(reference, color="gray", ls="--", lw=1)
    fig.tight_layout()
    return fig
