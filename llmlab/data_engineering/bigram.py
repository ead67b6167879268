"""A downstream score fit in milliseconds: a word-bigram language model and its perplexity."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Sequence

from llmlab import validate as V
from llmlab.data_engineering.text import words
from llmlab.evaluation.lm import perplexity_from_logprobs


@dataclass
class BigramLM:
    """Word bigram counts with interpolated add-one unigram smoothing: a language model fit in milliseconds."""

    unigrams: Counter
    bigrams: Counter
    lam: float = 0.7

    @classmethod
    def fit(cls, texts: Sequence[str], lam: float = 0.7) -> "BigramLM":
        """Count the words (with <s> and </s>) of the texts."""
        V.probability("lam", lam)
        uni, bi = Counter(), Counter()
        for t in V.non_empty("texts", texts):
            w = ["<s>"] + words(t) + ["</s>"]
            uni.update(w)
            bi.update(zip(w, w[1:]))
        return cls(uni, bi, lam)

    def logprob(self, prev: str, word: str) -> float:
        """log P(word | prev) = log(lam * c(prev, word) / c(prev) + (1 - lam) * (c(word) + 1) / (N + V + 1))."""
        total, vocab = sum(self.unigrams.values()), len(self.unigrams)
        p_uni = (self.unigrams[word] + 1) / (total + vocab + 1)
        p_bi = self.bigrams[(prev, word)] / self.unigrams[prev] if self.unigrams[prev] else 0.0
        return math.log(self.lam * p_bi + (1 - self.lam) * p_uni)

    def perplexity(self, texts: Sequence[str]) -> float:
        """exp of the mean negative logprob per predicted word over the texts."""
        lps = []
        for t in V.non_empty("texts", texts):
            w = ["<s>"] + words(t) + ["</s>"]
            lps += [self.logprob(a, b) for a, b in zip(w, w[1:])]
        return perplexity_from_logprobs(lps)
