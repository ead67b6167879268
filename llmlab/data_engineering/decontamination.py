"""Decontamination: word n-gram overlap between training rows and a test set."""

from __future__ import annotations

from typing import Sequence

from llmlab import validate as V
from llmlab.data_engineering.text import words


def word_ngrams(text: str, n: int) -> set[tuple[str, ...]]:
    """The set of word n-grams of the normalized text: len(words) - n + 1 of them (the whole text if shorter).

    >>> sorted(word_ngrams("a b c d", 3))
    [('a', 'b', 'c'), ('b', 'c', 'd')]
    """
    V.positive_int("n", n)
    w = words(text)
    if len(w) < n:
        return {tuple(w)} if w else set()
    return {tuple(w[i:i + n]) for i in range(len(w) - n + 1)}


def ngram_overlap(text: str, reference: set[tuple[str, ...]], n: int) -> float:
    """Share of the text's word n-grams that occur in `reference` (a set built with word_ngrams)."""
    grams = word_ngrams(text, n)
    return sum(g in reference for g in grams) / len(grams) if grams else 0.0


def contaminated(test_texts: Sequence[str], train_texts: Sequence[str], n: int = 8,
                 threshold: float = 0.5) -> list[int]:
    """Indices of test texts whose share of word n-grams found in the training texts is >= threshold."""
    V.probability("threshold", threshold, open_low=True)
    reference: set[tuple[str, ...]] = set()
    for t in V.non_empty("train_texts", train_texts):
        reference |= word_ngrams(t, n)
    return [i for i, t in enumerate(V.non_empty("test_texts", test_texts))
            if ngram_overlap(t, reference, n) >= threshold]


def train_rows_overlapping(train_texts: Sequence[str], test_texts: Sequence[str], n: int = 8,
                           threshold: float = 0.5) -> list[int]:
    """Indices of training texts that contaminate the test set (the same test, run the other way round)."""
    return contaminated(train_texts, test_texts, n, threshold)
