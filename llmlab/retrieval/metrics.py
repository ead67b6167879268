"""Retrieval metrics (recall@k, MRR, nDCG@k) and lexical faithfulness; answer matching is `evaluation.text`."""

from __future__ import annotations

import math
from typing import Sequence

from llmlab import validate
from llmlab.retrieval.bm25 import tokenize


def _ids(name: str, value) -> list:
    """A ranked list or gold set of ids as a list."""
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise TypeError(f"{name} must be a list of ids, got {type(value).__name__}")
    return list(value)


def recall_at_k(ranked: Sequence, gold: Sequence, k: int) -> float:
    """Share of the gold ids found in the first k ranked ids: |gold ∩ top-k| / |gold| (not divided by k).

    >>> recall_at_k(["d3", "d1", "d7"], gold=["d1", "d2"], k=2)
    0.5
    """
    ranked, gold = _ids("ranked", ranked), _ids("gold", gold)
    validate.positive_int("k", k)
    if not gold:
        raise ValueError("gold must hold at least one relevant id, got []")
    return len(set(ranked[:k]) & set(gold)) / len(set(gold))


def reciprocal_rank(ranked: Sequence, gold: Sequence) -> float:
    """1 / rank of the first relevant id (rank starts at 1); 0 when none is retrieved.

    >>> reciprocal_rank(["d3", "d1", "d7"], gold=["d1"])
    0.5
    """
    gold_set = set(_ids("gold", gold))
    for rank, item in enumerate(_ids("ranked", ranked), start=1):
        if item in gold_set:
            return 1.0 / rank
    return 0.0


def mean_reciprocal_rank(rankings: Sequence[Sequence], golds: Sequence[Sequence]) -> float:
    """MRR over all queries (a query with no relevant id retrieved counts as 0)."""
    validate.non_empty("rankings", rankings)
    validate.same_length(("rankings", "golds"), rankings, golds)
    return sum(reciprocal_rank(r, g) for r, g in zip(rankings, golds)) / len(rankings)


def ndcg_at_k(ranked: Sequence, gold: Sequence, k: int) -> float:
    """Binary-relevance nDCG@k: sum 1/log2(rank + 1) over relevant ids in the top k, over the ideal sum."""
    ranked, gold_set = _ids("ranked", ranked), set(_ids("gold", gold))
    validate.positive_int("k", k)
    if not gold_set:
        raise ValueError("gold must hold at least one relevant id, got []")
    dcg = sum(1 / math.log2(r + 1) for r, item in enumerate(ranked[:k], start=1) if item in gold_set)
    ideal = sum(1 / math.log2(r + 1) for r in range(1, min(len(gold_set), k) + 1))
    return dcg / ideal


def is_supported(prediction: str, context: str) -> bool:
    """Faithfulness, lexically: every content word of the prediction occurs in the context (empty = no claim)."""
    validate.text("context", context, allow_empty=True)
    have = set(tokenize(context))
    return all(t in have for t in tokenize(prediction))
