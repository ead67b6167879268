"""Checks for chapter 01 (tokens, logits, next-token prediction) exercises."""

from __future__ import annotations

import math

import torch

from llmlab.checks import Check


def check_log_softmax(log_softmax) -> None:
    """Exercise 01.1: log_softmax(logits) along the last axis, stable for large logits."""
    gen = torch.Generator().manual_seed(1)
    cases = {
        "small logits (5,)": torch.randn(5, generator=gen),
        "batch (3, 7)": torch.randn(3, 7, generator=gen) * 4,
        "large logits [1000, 999, 990]": torch.tensor([1000.0, 999.0, 990.0]),
        "very negative logits [-1000, -1001]": torch.tensor([-1000.0, -1001.0]),
    }
    with Check("Exercise 01.1 log_softmax") as c:
        for case, logits in cases.items():
            got = c.call(log_softmax, logits.clone(), case=case)
            c.close(got, torch.log_softmax(logits, dim=-1), case=case, atol=1e-5)
            c.that(bool((got <= 1e-6).all()), case, "a log-probability can never be above 0")


def check_perplexity(perplexity) -> None:
    """Exercise 01.2: perplexity(logprobs) = exp(-mean logprob per token)."""
    cases = {
        "every token had probability 1/2": (torch.full((4,), math.log(0.5)), 2.0),
        "one certain token": (torch.tensor([0.0]), 1.0),
        "mixed [-0.1, -2.0, -0.7]": (torch.tensor([-0.1, -2.0, -0.7]), math.exp(2.8 / 3)),
        "ten tokens of probability 1/4": (torch.full((10,), math.log(0.25)), 4.0),
    }
    with Check("Exercise 01.2 perplexity") as c:
        for case, (logprobs, expected) in cases.items():
            got = c.call(perplexity, logprobs.clone(), case=case)
            c.close(got, expected, case=case, rtol=1e-4)
