"""How well a score separates two classes: AUROC (the probability that a random positive outranks a random
negative, ties counting half), the ROC curve, and AUROC with a bootstrap interval.

Used to grade detectors (a hallucination detector's score against whether the answer was right, a judge's score
against whether code passed its tests): a detector is useful when AUROC is well above 0.5.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from llmlab import validate as V
from llmlab.evaluation.stats import Interval, bootstrap_ci


def _scores_labels(scores: Sequence[float], labels: Sequence[bool | int]) -> tuple[np.ndarray, np.ndarray]:
    """Scores as float64 and labels as bool, validated (same length, finite scores, labels 0/1)."""
    V.non_empty("scores", scores)
    V.same_length(("scores", "labels"), scores, labels)
    s = np.asarray([float(x) for x in scores], dtype=np.float64)
    if not np.isfinite(s).all():
        bad = int(np.argmin(np.isfinite(s)))
        raise ValueError(f"scores must be finite numbers, got {s[bad]} at index {bad}")
    raw = list(labels)
    for i, y in enumerate(raw):
        if isinstance(y, str) or y not in (0, 1):
            raise ValueError(f"labels[{i}] must be 0/1 or False/True, got {y!r}")
    y = np.asarray([bool(v) for v in raw])
    if y.all() or not y.any():
        raise ValueError(f"labels must hold both classes (at least one 1 and one 0) for AUROC, got {int(y.sum())} "
                         f"positive of {len(y)}")
    return s, y


def auroc(scores: Sequence[float], labels: Sequence[bool | int]) -> float:
    """Area under the ROC curve: P(score of a random positive > score of a random negative), ties counting half.

    >>> auroc([0.9, 0.4, 0.4, 0.1], [1, 1, 0, 0])
    0.875
    """
    s, y = _scores_labels(scores, labels)
    pos, neg = s[y], s[~y]
    wins = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(wins / (len(pos) * len(neg)))


def roc_curve(scores: Sequence[float], labels: Sequence[bool | int]) -> tuple[np.ndarray, np.ndarray]:
    """False- and true-positive rates (fpr, tpr) as the threshold falls through each distinct score, from (0, 0)
    to (1, 1); tied scores move both rates at once, so the trapezoid area under it equals `auroc`."""
    s, y = _scores_labels(scores, labels)
    order = np.argsort(-s, kind="stable")
    s, y = s[order], y[order]
    last_of_tie = np.r_[np.diff(s) != 0, True]
    tp, fp = np.cumsum(y)[last_of_tie], np.cumsum(~y)[last_of_tie]
    return np.r_[0.0, fp / fp[-1]], np.r_[0.0, tp / tp[-1]]


def auroc_ci(scores: Sequence[float], labels: Sequence[bool | int], n_resamples: int = 1000, seed: int = 0,
             confidence: float = 0.95) -> Interval:
    """AUROC with a percentile bootstrap interval over examples (the kit's `bootstrap_ci`); a resample that
    happens to hold one class only counts as 0.5, which widens the interval rather than hiding it."""
    s, y = _scores_labels(scores, labels)

    def area(rows: np.ndarray) -> float:
        idx = rows.astype(int)
        return 0.5 if y[idx].all() or not y[idx].any() else auroc(s[idx], y[idx])

    full = auroc(s, y)
    iv = bootstrap_ci(np.arange(len(s)), n_resamples=n_resamples, confidence=confidence, seed=seed, statistic=area)
    return Interval(full, iv.low, iv.high)
