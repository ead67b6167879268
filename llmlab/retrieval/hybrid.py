"""Hybrid retrieval by reciprocal rank fusion, and doc-level rankings from chunk hits."""

from __future__ import annotations

from typing import Hashable, Sequence

from llmlab import validate
from llmlab.retrieval.chunking import Chunk


def reciprocal_rank_fusion(rankings: Sequence[Sequence[Hashable]], k: int = 60) -> list[tuple[Hashable, float]]:
    """Fuse ranked lists: score(d) = sum over lists of 1 / (k + rank), rank from 1; best first (ties: first seen).

    >>> [(d, round(s, 4)) for d, s in reciprocal_rank_fusion([["a", "b"], ["b", "c"]], k=60)]
    [('b', 0.0325), ('a', 0.0164), ('c', 0.0161)]
    """
    validate.non_empty("rankings", rankings)
    validate.integer("k", k, low=0)
    scores: dict[Hashable, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
    order = {item: i for i, item in enumerate(scores)}
    return sorted(scores.items(), key=lambda x: (-x[1], order[x[0]]))


class HybridIndex:
    """Reciprocal rank fusion of several retrievers, each asked for `depth` results."""

    def __init__(self, retrievers: Sequence, k: int = 60, depth: int = 50):
        self.retrievers = list(validate.non_empty("retrievers", retrievers))
        self.k = validate.integer("k", k, low=0)
        self.depth = validate.positive_int("depth", depth)

    def search(self, query: str, k: int = 10) -> list[tuple[int, float]]:
        """Top-k (position, fused score) pairs."""
        validate.positive_int("k", k)
        rankings = [[i for i, _ in r.search(query, self.depth)] for r in self.retrievers]
        return reciprocal_rank_fusion(rankings, self.k)[:k]


def doc_ranking(hits: Sequence[tuple[int, float]], chunks: Sequence[Chunk]) -> list[str]:
    """Document ids in the order their first chunk appears in hits (duplicates dropped)."""
    out: list[str] = []
    for i, _ in hits:
        doc = chunks[i].doc_id
        if doc not in out:
            out.append(doc)
    return out
