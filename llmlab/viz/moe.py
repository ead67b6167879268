"""Chapter 14 plots for mixture of experts: loss curves of dense vs MoE, and expert usage (router collapse)."""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np


def smooth(values: Sequence[float], span: int = 20) -> np.ndarray:
    """Moving average over `span` steps (shorter at the start), so noisy per-step losses read as curves."""
    if isinstance(span, bool) or not isinstance(span, int) or span < 1:
        raise ValueError(f"span must be an int >= 1, got {span!r}")
    x = np.asarray(values, dtype=float)
    c = np.cumsum(np.insert(x, 0, 0.0))
    lo = np.maximum(np.arange(1, len(x) + 1) - span, 0)
    return (c[1:] - c[lo]) / (np.arange(1, len(x) + 1) - lo)


def plot_loss_curves(curves: dict[str, Sequence[float]], span: int = 20):
    """Smoothed training loss per step for each named run; returns the Figure."""
    fig, ax = plt.subplots(figsize=(6.5, 3.4))
    for name, values in curves.items():
        ax.plot(smooth(values, span), label=name)
    ax.set_xlabel("step")
    ax.set_ylabel("training loss (nats/byte)")
    ax.set_title("Tiny dense vs MoE at equal active MLP FLOPs")
    ax.legend()
    fig.tight_layout()
    return fig


def plot_expert_usage(usages: dict[str, Sequence[Sequence[float]]]):
    """One panel per run: each layer's share of assignments per expert (a flat line at 1/N is balanced)."""
    fig, axes = plt.subplots(1, len(usages), figsize=(3.4 * len(usages), 3.0), sharey=True, squeeze=False)
    for ax, (name, layers) in zip(axes[0], usages.items()):
        layers = np.asarray(layers)
        n = layers.shape[1]
        width = 0.8 / len(layers)
        for i, share in enumerate(layers):
            ax.bar(np.arange(n) + i * width, share, width, label=f"layer {i + 1}")
        ax.axhline(1 / n, color="black", linestyle="--", linewidth=1)
        ax.set_xticks(np.arange(n) + width * (len(layers) - 1) / 2, [f"E{e}" for e in range(n)])
        ax.set_title(name)
    axes[0][0].set_ylabel("share of assignments")
    axes[0][-1].legend(fontsize=8)
    fig.tight_layout()
    return fig
