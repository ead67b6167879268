"""Exact and semantic response caches, and the threshold curve of a semantic cache (AI Engineering ch. 10).

A semantic cache answers a new question with the answer of the most similar cached question when their cosine
similarity reaches a threshold. Too low a threshold serves wrong answers; a cache shared across users serves one
user's personal answer to another, so entries are keyed on the user.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from llmlab import validate
from llmlab.evaluation.text import normalize


def _vectors(name: str, value, dims: int) -> np.ndarray:
    """A float64 numpy array with `dims` dimensions (rows may be zero for an empty cache)."""
    if not isinstance(value, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(value).__name__}")
    if value.ndim != dims:
        raise ValueError(f"{name} must have {dims} dimension(s), got shape {value.shape}")
    return value.astype(np.float64)


def semantic_lookup(query: np.ndarray, keys: np.ndarray, owners: Sequence[str], answers: Sequence[str],
                    user: str, threshold: float) -> str | None:
    """The answer of the most similar entry owned by `user` when its similarity (dot product of unit vectors) is
    >= threshold, else None (also for an empty cache)."""
    validate.probability("threshold", threshold)
    q, k = _vectors("query", query, 1), _vectors("keys", keys, 2)
    validate.same_length(("keys", "owners"), k, owners)
    validate.same_length(("keys", "answers"), k, answers)
    mine = [i for i, owner in enumerate(owners) if owner == user]
    if not mine:
        return None
    sims = k[mine] @ q
    best = int(np.argmax(sims))
    return answers[mine[best]] if sims[best] >= threshold else None


class ExactCache:
    """Answers keyed on (user, normalized prompt): only a repeat of the same words hits."""

    def __init__(self, per_user: bool = True):
        self.per_user, self.store, self.hits, self.lookups = per_user, {}, 0, 0

    def _key(self, prompt: str, user: str) -> tuple[str, str]:
        validate.text("prompt", prompt)
        return (user if self.per_user else "", normalize(prompt))

    def get(self, prompt: str, user: str = "") -> str | None:
        """The cached answer or None."""
        self.lookups += 1
        answer = self.store.get(self._key(prompt, user))
        self.hits += answer is not None
        return answer

    def put(self, prompt: str, answer: str, user: str = "") -> None:
        """Store an answer."""
        self.store[self._key(prompt, user)] = validate.text("answer", answer)


class SemanticCache:
    """Answers found by embedding similarity >= threshold; per_user=False shows the cross-user leak."""

    def __init__(self, embed, threshold: float = 0.9, per_user: bool = True):
        self.embed, self.threshold = embed, validate.probability("threshold", threshold)
        self.per_user, self.keys, self.owners, self.answers = per_user, [], [], []

    def _owner(self, user: str) -> str:
        return user if self.per_user else ""

    def get(self, prompt: str, user: str = "") -> str | None:
        """The answer of the closest cached prompt of this user at or above the threshold, or None."""
        query = self.embed([validate.text("prompt", prompt)])[0]
        keys = np.array(self.keys) if self.keys else np.zeros((0, len(query)))
        return semantic_lookup(query, keys, self.owners, self.answers, self._owner(user), self.threshold)

    def put(self, prompt: str, answer: str, user: str = "") -> None:
        """Store a prompt's embedding with its answer."""
        self.keys.append(self.embed([validate.text("prompt", prompt)])[0])
        self.owners.append(self._owner(user))
        self.answers.append(validate.text("answer", answer))


def best_matches(queries: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each query row: (index of its most similar key row, that similarity)."""
    q, k = _vectors("queries", queries, 2), _vectors("keys", keys, 2)
    if len(k) == 0:
        raise ValueError("keys must have at least one row")
    sims = q @ k.T
    best = sims.argmax(axis=1)
    return best, sims[np.arange(len(q)), best]


def threshold_curve(similarities: Sequence[float], correct: Sequence[bool],
                    thresholds: Sequence[float]) -> dict[str, list[float]]:
    """Per threshold: hit rate (best similarity >= t) and wrong-hit rate (a hit whose cached answer is wrong)."""
    validate.non_empty("similarities", similarities)
    validate.same_length(("similarities", "correct"), similarities, correct)
    s, ok = np.asarray(similarities, dtype=np.float64), np.asarray(correct, dtype=bool)
    hit, wrong = [], []
    for i, t in enumerate(thresholds):
        hits = s >= validate.probability(f"thresholds[{i}]", t)
        hit.append(float(hits.mean()))
        wrong.append(float((hits & ~ok).mean()))
    return {"threshold": [float(t) for t in thresholds], "hit_rate": hit, "wrong_hit_rate": wrong}
