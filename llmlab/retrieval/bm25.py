"""BM25 from scratch: tokenizer, idf, the score of one document, and an index over a list of texts."""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import Sequence

from llmlab import validate

_TOKEN = re.compile(r"[a-z0-9]+(?:[-.][a-z0-9]+)*")
STOPWORDS = frozenset(
    "a an and are as at be by can do does for from has have how i in is it its of on or our the this to was what "
    "when where which who why with within you your".split())


def tokenize(text: str, stopwords: frozenset[str] = STOPWORDS) -> list[str]:
    """Lower-cased word tokens (keeping codes like tb-1156 and numbers like 3.90 whole), stopwords removed.

    >>> tokenize("The Tents are waterproof!")
    ['tents', 'waterproof']
    """
    validate.text("text", text, allow_empty=True)
    return [t for t in _TOKEN.findall(text.lower()) if t not in stopwords]


def idf(doc_freq: int, n_docs: int) -> float:
    """Lucene's BM25 idf: log(1 + (N - n + 0.5) / (n + 0.5)); never negative, even for a term in every document.

    >>> round(idf(doc_freq=1, n_docs=10), 4)
    1.9924
    """
    validate.integer("n_docs", n_docs, low=1)
    validate.integer("doc_freq", doc_freq, 0, n_docs)
    return math.log(1 + (n_docs - doc_freq + 0.5) / (doc_freq + 0.5))


def bm25_score(query: Sequence[str], doc: Sequence[str], doc_freqs: dict[str, int], n_docs: int,
               avg_len: float, k1: float = 1.5, b: float = 0.75) -> float:
    """BM25 score of one tokenized document for a tokenized query.

    sum over query terms t in the document of idf(t) * tf * (k1 + 1) / (tf + k1 * (1 - b + b * len(doc) / avg_len)).
    (Robertson's form; Lucene and bm25s leave out the constant factor (k1 + 1), which changes no ranking.)
    """
    return _score_counts(query, Counter(doc), len(doc), doc_freqs, n_docs, avg_len, k1, b)


def _score_counts(query: Sequence[str], tf: Counter, length: int, doc_freqs: dict[str, int], n_docs: int,
                  avg_len: float, k1: float, b: float) -> float:
    """BM25 from precomputed term counts (what an index stores)."""
    norm = k1 * (1 - b + b * length / avg_len)
    score = 0.0
    for term in query:
        f = tf.get(term, 0)
        if f:
            score += idf(doc_freqs.get(term, 0), n_docs) * f * (k1 + 1) / (f + norm)
    return score


class BM25Index:
    """A BM25 index over texts; search(query, k) returns (position, score) pairs, best first."""

    def __init__(self, texts: Sequence[str], k1: float = 1.5, b: float = 0.75):
        validate.non_empty("texts", texts)
        self.k1 = validate.number("k1", k1, 0, None)
        self.b = validate.probability("b", b)
        self.docs = [tokenize(t) for t in texts]
        self.n_docs = len(self.docs)
        self.avg_len = max(sum(len(d) for d in self.docs) / self.n_docs, 1e-9)
        self.doc_freqs: dict[str, int] = Counter(term for d in self.docs for term in set(d))
        self.counts = [Counter(d) for d in self.docs]

    def scores(self, query: str) -> list[float]:
        """BM25 score of every indexed text for the query."""
        terms = tokenize(query)
        return [_score_counts(terms, tf, len(d), self.doc_freqs, self.n_docs, self.avg_len, self.k1, self.b)
                for tf, d in zip(self.counts, self.docs)]

    def search(self, query: str, k: int = 10) -> list[tuple[int, float]]:
        """Top-k (position, score) pairs by BM25 score (ties by position); texts scoring 0 are left out."""
        validate.text("query", query)
        validate.positive_int("k", k)
        scored = [(i, s) for i, s in enumerate(self.scores(query)) if s > 0]
        return sorted(scored, key=lambda x: (-x[1], x[0]))[:k]
