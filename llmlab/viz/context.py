"""Chapter 14 plots for long context: window masks, loss by position, RoPE frequencies, needle grid, prefill fit."""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch


def mask_text(mask: torch.Tensor) -> str:
    """A bool (q, k) mask drawn as rows of '■' (may attend) and '·' (masked), one query per line."""
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool or mask.dim() != 2:
        raise ValueError(f"mask must be a 2-d bool tensor, got {getattr(mask, 'dtype', type(mask).__name__)}")
    return "\n".join("".join("■" if v else "·" for v in row) for row in mask.tolist())


def plot_loss_by_position(curves: dict[str, Sequence[float]], bucket: int, marks: dict[str, int] | None = None):
    """Mean loss per bucket of positions for each named attention pattern; returns the Figure."""
    fig, ax = plt.subplots(figsize=(6.5, 3.4))
    for name, values in curves.items():
        ax.plot(np.arange(len(values)) * bucket + bucket / 2, values, marker="o", markersize=3, label=name)
    for name, x in (marks or {}).items():
        ax.axvline(x, color="gray", linestyle=":", linewidth=1)
        ax.text(x, ax.get_ylim()[1], name, fontsize=8, va="top")
    ax.set_xlabel("position")
    ax.set_ylabel("loss (nats/token)")
    ax.legend()
    fig.tight_layout()
    return fig


def plot_inv_freq(tables: dict[str, torch.Tensor]):
    """Each RoPE variant's inverse frequency per dimension pair (log scale); returns the Figure."""
    fig, ax = plt.subplots(figsize=(6.0, 3.2))
    for name, inv in tables.items():
        ax.semilogy(inv.numpy(), marker=".", label=name)
    ax.set_xlabel("dimension pair i (fastest first)")
    ax.set_ylabel("radians per position")
    ax.legend()
    fig.tight_layout()
    return fig


def plot_needle(found: Sequence[Sequence[float]], lengths: Sequence[int], depths: Sequence[float]):
    """Heatmap of needle retrieval by context length (rows) and needle depth (columns); returns the Figure."""
    grid = np.asarray(found, dtype=float)
    fig, ax = plt.subplots(figsize=(5.0, 3.0))
    ax.imshow(grid, cmap="RdYlGn", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(len(depths)), [f"{d:.0%}" for d in depths])
    ax.set_yticks(range(len(lengths)), [str(n) for n in lengths])
    for (i, j), v in np.ndenumerate(grid):
        ax.text(j, i, "found" if v else "missed", ha="center", va="center", fontsize=8)
    ax.set_xlabel("needle depth in the context")
    ax.set_ylabel("context length (tokens)")
    fig.tight_layout()
    return fig


def plot_prefill(lengths: Sequence[int], seconds: Sequence[float], a: float, b: float, c: float):
    """Measured prefill seconds against length with the fitted a + b·n + c·n² curve; returns the Figure."""
    n = np.linspace(0, max(lengths), 100)
    fig, ax = plt.subplots(figsize=(5.5, 3.2))
    ax.plot(lengths, seconds, "o", label="measured")
    ax.plot(n, a + b * n + c * n ** 2, label="a + b·n + c·n²")
    ax.plot(n, a + b * n, linestyle="--", label="without the n² term")
    ax.set_xlabel("prompt tokens n")
    ax.set_ylabel("prefill seconds")
    ax.legend()
    fig.tight_layout()
    return fig
