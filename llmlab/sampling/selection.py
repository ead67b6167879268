"""Choosing among samples: best-of-N by mean logprob, majority vote, self-consistency, diversity and accuracy."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Callable, Hashable, Sequence

import torch

from llmlab import validate as V
from llmlab.sampling.loops import Generation, decode
from llmlab.sampling.settings import SamplingSettings


def select_best(logprobs: Sequence[Sequence[float]]) -> int:
    """Index of the candidate with the highest mean logprob per token (first one on ties)."""
    if not logprobs:
        raise ValueError("logprobs must hold at least one candidate's per-token logprobs, got []")
    means = []
    for i, lps in enumerate(logprobs):
        values = [float(v) for v in lps]
        if not values:
            raise ValueError(f"logprobs[{i}] must hold at least one token's logprob, got []")
        means.append(sum(values) / len(values))
    return max(range(len(means)), key=lambda i: (means[i], -i))


def best_of_n(model, input_ids: torch.Tensor, n: int, max_new_tokens: int,
              settings: SamplingSettings = SamplingSettings(), seed: int = 0,
              eos_token_id: int | Sequence[int] | None = None) -> list[Generation]:
    """Sample n candidates and return them ranked by mean logprob, best first."""
    V.positive_int("n", n)
    candidates = decode(model, input_ids, max_new_tokens, settings, n, seed, eos_token_id)
    return sorted(candidates, key=lambda g: -g.mean_logprob)


def majority_vote(answers: Sequence[Hashable | None]) -> tuple[Hashable | None, int]:
    """The most frequent non-None answer and its count (the earliest on ties); (None, 0) if none."""
    if isinstance(answers, (str, bytes)):
        raise TypeError(f"answers must be a sequence of answers, got {type(answers).__name__}")
    counts = Counter(a for a in answers if a is not None)
    if not counts:
        return None, 0
    best = max(counts.values())
    winner = next(a for a in answers if a is not None and counts[a] == best)
    return winner, best


@dataclass(frozen=True)
class Vote:
    """Self-consistency result: the voted answer, its votes and every sampled answer."""

    answer: Hashable | None
    votes: int
    answers: list


def self_consistency(model, tokenizer, input_ids: torch.Tensor, n: int, extract: Callable[[str], Hashable | None],
                     max_new_tokens: int = 16, settings: SamplingSettings = SamplingSettings(temperature=0.7),
                     seed: int = 0) -> Vote:
    """Sample n answers, extract each one's final answer and return the majority vote."""
    V.positive_int("n", n)
    if not callable(extract):
        raise TypeError(f"extract must be a function str -> answer, got {type(extract).__name__}")
    gens = decode(model, input_ids, max_new_tokens, settings, n, seed)
    answers = [extract(tokenizer.decode(g.token_ids, skip_special_tokens=True)) for g in gens]
    answer, votes = majority_vote(answers)
    return Vote(answer, votes, answers)


def distinct_n(token_ids: Sequence[int], n: int = 2) -> float:
    """Share of distinct n-grams among all n-grams of a sequence (1.0 = no repetition)."""
    V.positive_int("n", n)
    ids = list(token_ids)
    grams = [tuple(ids[i:i + n]) for i in range(len(ids) - n + 1)]
    if not grams:
        raise ValueError(f"token_ids must hold at least n={n} tokens, got {len(ids)}")
    return len(set(grams)) / len(grams)


def first_word(text: str) -> str | None:
    """The first word or number of a reply, lower-cased (None if there is none): a simple answer extractor."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    match = re.search(r"[A-Za-z]+|\d+", text)
    return match.group(0).lower() if match else None


def accuracy_vs_n(answers: Sequence[Sequence], gold: Sequence, ns: Sequence[int],
                  mean_logprobs: Sequence[Sequence[float]] | None = None) -> list[float]:
    """Accuracy over questions using the first n samples of each: majority vote, or best-of-n by mean logprob."""
    if len(answers) != len(gold) or not answers:
        raise ValueError(f"answers and gold must be non-empty and the same length, got {len(answers)} and {len(gold)}")
    out = []
    for n in ns:
        V.positive_int("n", n)
        correct = 0
        for q, (samples, want) in enumerate(zip(answers, gold)):
            if len(samples) < n:
                raise ValueError(f"n must be at most the {len(samples)} samples of question {q}, got {n}")
            if mean_logprobs is None:
                pick = majority_vote(samples[:n])[0]
            else:
                pick = samples[select_best([[v] for v in mean_logprobs[q][:n]])]
            correct += pick == want
        out.append(correct / len(gold))
    return out
