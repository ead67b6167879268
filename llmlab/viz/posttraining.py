"""Plots for chapter 12: DPO training curves (reward margins, KL to the reference) and corpus cleaning steps."""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt

from llmlab import validate as V


def dpo_curves(history: Sequence[dict]) -> dict[str, tuple[list[int], list[float]]]:
    """(steps, values) per metric from a training history of dicts with 'step' and metric keys (loss, kl, ...)."""
    V.non_empty("history", history)
    curves: dict[str, tuple[list[int], list[float]]] = {}
    for h in history:
        for key, value in h.items():
            if key != "step":
                steps, values = curves.setdefault(key, ([], []))
                steps.append(int(h["step"]))
                values.append(float(value))
    return curves


def plot_dpo_curves(history: Sequence[dict], title: str = "DPO training"):
    """Three panels over training steps: loss, reward margin (chosen - rejected), KL(policy || reference)."""
    curves = dpo_curves(history)
    panels = [("loss", "DPO loss"), ("rewards/margins", "reward margin β·Δlog-ratio"), ("kl", "KL to reference")]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.2))
    for ax, (key, label) in zip(axes, panels):
        if key in curves:
            steps, values = curves[key]
            ax.plot(steps, values, marker="o" if key == "kl" else None, markersize=3)
        ax.set_xlabel("step")
        ax.set_title(label)
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_cleaning_steps(names: Sequence[str], counts: Sequence[int], scores: Sequence[float],
                        score_label: str = "test perplexity (bigram LM)"):
    """Rows left after each cleaning step (bars) and the downstream score after it (line, right axis)."""
    V.same_length(("names", "counts"), V.non_empty("names", names), counts)
    V.same_length(("names", "scores"), names, scores)
    fig, ax = plt.subplots(figsize=(8, 3.2))
    ax.bar(range(len(names)), counts, color="tab:blue", alpha=0.6)
    ax.set_xticks(range(len(names)), names)
    ax.set_ylabel("rows kept")
    right = ax.twinx()
    right.plot(range(len(names)), scores, color="tab:red", marker="o")
    right.set_ylabel(score_label, color="tab:red")
    ax.set_title("Corpus cleaning: rows kept and downstream score")
    fig.tight_layout()
    return fig
