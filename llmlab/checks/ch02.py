"""Checks for chapter 02 (decoding and sampling) exercises."""

from __future__ import annotations

import torch

from llmlab import sampling, structured
from llmlab.checks import Check

_GEN = 2


def _logits(*shape: int) -> torch.Tensor:
    """Reproducible random logits."""
    return torch.randn(*shape, generator=torch.Generator().manual_seed(_GEN + sum(shape))) * 2


def _kept(c: Check, got, expected: torch.Tensor, case: str) -> None:
    """Compare filtered logits: same kept set (finite) and same values there; removed ones must be -inf."""
    c.that(isinstance(got, torch.Tensor), case, f"expected a torch.Tensor, got {type(got).__name__}")
    c.that(tuple(got.shape) == tuple(expected.shape), case,
           f"shape: expected {tuple(expected.shape)}, got {tuple(got.shape)}")
    removed = torch.isinf(expected)
    c.that(bool((got[removed] == float("-inf")).all()), case,
           f"removed tokens must be set to -inf (so softmax gives them 0); expected {int(removed.sum())} "
           f"-inf values, got {int((got == float('-inf')).sum())}")
    c.that(torch.equal(torch.isfinite(got), ~removed), case,
           f"wrong tokens kept: expected {int((~removed).sum())} kept, got {int(torch.isfinite(got).sum())}")
    c.close(got[~removed], expected[~removed], case=case)


def check_softmax_with_temperature(softmax_with_temperature) -> None:
    """Exercise 02.1: softmax(logits / T) along the last axis, for T > 0."""
    with Check("Exercise 02.1 softmax_with_temperature") as c:
        case = "the book's example [1, 2] at T=1"
        c.close(c.call(softmax_with_temperature, torch.tensor([1.0, 2.0]), 1.0, case=case),
                torch.tensor([0.2689, 0.7311]), case=case, atol=1e-4)
        case = "the book's example [1, 2] at T=0.5"
        c.close(c.call(softmax_with_temperature, torch.tensor([1.0, 2.0]), 0.5, case=case),
                torch.tensor([0.1192, 0.8808]), case=case, atol=1e-4)
        for t in (0.3, 1.0, 2.5):
            logits = _logits(3, 6)
            case = f"batch (3, 6) at T={t}"
            got = c.call(softmax_with_temperature, logits.clone(), t, case=case)
            c.close(got, torch.softmax(logits / t, dim=-1), case=case)


def check_top_k_filter(top_k_filter) -> None:
    """Exercise 02.2: keep the k largest logits per row, set the rest to -inf."""
    with Check("Exercise 02.2 top_k_filter") as c:
        for shape, k in [((8,), 1), ((8,), 3), ((2, 10), 4), ((3, 5), 5)]:
            logits = _logits(*shape)
            case = f"logits {shape}, k={k}"
            _kept(c, c.call(top_k_filter, logits.clone(), k, case=case), sampling.top_k_filter(logits, k), case)


def check_top_p_filter(top_p_filter) -> None:
    """Exercise 02.3: keep the smallest most-likely set whose probability reaches top_p."""
    with Check("Exercise 02.3 top_p_filter") as c:
        probs = torch.tensor([0.5, 0.3, 0.15, 0.05])
        for p in (0.45, 0.79, 0.81, 1.0):
            case = f"probabilities {[round(x, 4) for x in probs.tolist()]}, top_p={p}"
            logits = probs.log()
            _kept(c, c.call(top_p_filter, logits.clone(), p, case=case), sampling.top_p_filter(logits, p), case)
        logits = _logits(3, 12)
        case = "batch (3, 12), top_p=0.7"
        _kept(c, c.call(top_p_filter, logits.clone(), 0.7, case=case), sampling.top_p_filter(logits, 0.7), case)


def check_min_p_filter(min_p_filter) -> None:
    """Exercise 02.4: drop tokens whose probability is below min_p times the top probability."""
    with Check("Exercise 02.4 min_p_filter") as c:
        probs = torch.tensor([0.4, 0.3, 0.15, 0.1, 0.05])
        for m in (0.1, 0.3, 0.5):
            case = f"probabilities {[round(x, 4) for x in probs.tolist()]}, min_p={m}"
            logits = probs.log()
            _kept(c, c.call(min_p_filter, logits.clone(), m, case=case), sampling.min_p_filter(logits, m), case)
        logits = _logits(2, 9)
        case = "batch (2, 9), min_p=0.2"
        _kept(c, c.call(min_p_filter, logits.clone(), 0.2, case=case), sampling.min_p_filter(logits, 0.2), case)


def check_select_best(select_best) -> None:
    """Exercise 02.5: index of the candidate with the highest mean logprob per token."""
    cases = {
        "short but unlikely vs long and likely": [[-2.0], [-0.5, -0.4, -0.6, -0.5]],
        "three candidates": [[-1.0, -1.2], [-0.3, -2.5, -0.1], [-0.9, -0.8, -0.7, -1.0]],
        "one candidate": [[-0.2, -0.3]],
    }
    with Check("Exercise 02.5 select_best") as c:
        for case, logprobs in cases.items():
            got = c.call(select_best, [list(x) for x in logprobs], case=case)
            c.equal(got, sampling.select_best(logprobs), case=case)


def check_choice_mask(choice_mask) -> None:
    """Exercise 02.6: for each token, whether generated + token is still a prefix of some choice."""
    texts = ["p", "pos", "positive", "n", "neg", "it", "ive", "x", " positive"]
    cases = [("", ["positive", "negative"]), ("pos", ["positive", "negative"]), ("neg", ["negative", "neutral"]),
             ("n", ["negative", "neutral"])]
    with Check("Exercise 02.6 choice_mask") as c:
        for generated, choices in cases:
            case = f"generated {generated!r}, choices {choices}"
            got = c.call(choice_mask, list(texts), generated, list(choices), case=case)
            c.that(isinstance(got, list), case, f"expected a list of bool, got {type(got).__name__}")
            expected = structured.choice_mask(texts, generated, choices)
            c.that(len(got) == len(expected), case, f"expected {len(expected)} values, got {len(got)}")
            wrong = [t for t, g, e in zip(texts, got, expected) if bool(g) != e]
            c.that(not wrong, case, f"wrong for tokens {wrong}: expected {dict(zip(texts, expected))}")
