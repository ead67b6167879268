"""Chapter 13 views: ROC curves of hallucination detectors."""

from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt

from llmlab.evaluation.roc import auroc, roc_curve


def plot_roc(detectors: Mapping[str, tuple[Sequence[float], Sequence[bool]]], title: str = "", ax=None):
    """One ROC curve per detector {name: (scores, labels)}, with its AUROC in the legend and the chance diagonal."""
    if not isinstance(detectors, Mapping) or not detectors:
        raise ValueError(f"detectors must be a non-empty {{name: (scores, labels)}} mapping, got {detectors!r:.60}")
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(4.6, 4.2))
    ax.plot([0, 1], [0, 1], ls=":", color="grey", lw=1, label="chance (0.5)")
    for name, (scores, labels) in detectors.items():
        fpr, tpr = roc_curve(scores, labels)
        ax.plot(fpr, tpr, drawstyle="default", lw=1.6, label=f"{name} ({auroc(scores, labels):.2f})")
    ax.set_xlabel("false positive rate (wrong answers trusted)")
    ax.set_ylabel("true positive rate (right answers trusted)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig
