"""Plots for chapter 14's scaling laws: loss against N per D with the fit, IsoFLOP curves, and emergence."""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np

from llmlab.scaling import laws


def _rows(grid: Sequence[dict]) -> list[dict]:
    """The grid as a non-empty list of dicts with N, D and val_loss."""
    if not grid or not all(isinstance(p, dict) and {"N", "D", "val_loss"} <= set(p) for p in grid):
        raise ValueError("grid must be a non-empty list of dicts with keys N, D and val_loss")
    return list(grid)


def loss_vs_size(grid: Sequence[dict], fit: laws.LawFit | None = None):
    """Validation loss against N (log axis), one line per token count D, with the fitted curves dashed."""
    rows = _rows(grid)
    fig, ax = plt.subplots(figsize=(6, 4))
    for i, d in enumerate(sorted({p["D"] for p in rows})):
        pts = sorted((p["N"], p["val_loss"]) for p in rows if p["D"] == d)
        color = plt.cm.viridis(i / max(1, len({p["D"] for p in rows}) - 1))
        ax.plot(*zip(*pts), "o", color=color, label=f"D = {d:,.0f}")
        if fit is not None:
            n = np.geomspace(pts[0][0], pts[-1][0], 50)
            ax.plot(n, laws.predict(fit, n, d), "--", color=color, lw=1)
    ax.set_xscale("log")
    ax.set(xlabel="N (non-embedding parameters)", ylabel="validation loss (nats per byte)",
           title="Loss against model size" + (": points measured, dashes fitted" if fit else ""))
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def isoflop(fit: laws.LawFit, budgets: Sequence[float], grid: Sequence[dict] | None = None):
    """The fitted loss along each compute budget as N varies (D = C / 6N), its minimum marked."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for i, c in enumerate(budgets):
        n = np.geomspace(1e3, 1e7, 200)
        n = n[c / (6 * n) > 1e3]
        color = plt.cm.plasma(i / max(1, len(budgets) - 1))
        ax.plot(n, laws.isoflop_curve(fit, c, n), color=color, label=f"C = {c:.1e}")
        n_opt, _ = laws.compute_optimal(fit, c)
        ax.plot([n_opt], laws.isoflop_curve(fit, c, [n_opt]), "*", color=color, ms=12)
    if grid is not None:
        rows = _rows(grid)
        ax.scatter([p["N"] for p in rows], [p["val_loss"] for p in rows], s=10, color="gray", label="grid points")
    ax.set_xscale("log")
    ax.set(xlabel="N (non-embedding parameters)", ylabel="loss (nats per byte)",
           title="IsoFLOP: fitted loss at fixed compute (star = optimum)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def emergence(rows: Sequence[dict]):
    """Exact match of the next k bytes (one line per k, with accuracy^k dotted) and log-prob per byte against N."""
    keys = {"N", "exact_match", "byte_accuracy", "byte_logprob"}
    if not rows or not all(isinstance(r, dict) and keys <= set(r) for r in rows):
        raise ValueError(f"rows must be a non-empty list of dicts with keys {sorted(keys)}")
    rows = sorted(rows, key=lambda r: r["N"])
    n = [r["N"] for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    for i, k in enumerate(rows[0]["exact_match"]):
        color = plt.cm.viridis(i / max(1, len(rows[0]["exact_match"]) - 1))
        left.plot(n, [r["exact_match"][k] for r in rows], "o-", color=color, label=f"k = {k}")
        left.plot(n, [r["byte_accuracy"] ** int(k) for r in rows], ":", color=color)
    left.set(xscale="log", xlabel="N (non-embedding parameters)", ylabel="exact match of the next k bytes",
             ylim=(-0.02, 1.02), title="All k bytes right (dotted: accuracy^k)")
    left.legend(fontsize=8)
    right.plot(n, [r["byte_logprob"] for r in rows], "o-", color="tab:orange")
    right.set(xscale="log", xlabel="N (non-embedding parameters)", ylabel="mean log-prob per byte (nats)",
              title="The same models, per byte")
    fig.tight_layout()
    return fig
