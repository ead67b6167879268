"""Checks for chapter 07 (speculative decoding) exercises."""

from __future__ import annotations

import torch

from llmlab.checks import Check
from llmlab.speculative import rejection


def check_acceptance_probability(acceptance_probability) -> None:
    """Exercise 07.1: acceptance_probability(p, q) = min(1, p/q) elementwise."""
    with Check("Exercise 07.1 acceptance_probability") as c:
        cases = [
            (torch.tensor([0.4]), torch.tensor([0.8]), "p < q: accept with probability p/q"),
            (torch.tensor([0.6]), torch.tensor([0.2]), "p > q: always accept (probability 1, not p/q = 3)"),
            (torch.tensor([0.3, 0.1, 0.5, 0.0]), torch.tensor([0.3, 0.4, 0.25, 0.2]),
             "four draft tokens at once (p = q, p < q, p > q, p = 0)"),
            (torch.tensor([[0.2, 0.9], [0.5, 0.05]]), torch.tensor([[0.5, 0.3], [0.1, 0.5]]),
             "a (2, 2) batch: elementwise"),
        ]
        for p, q, case in cases:
            got = c.call(acceptance_probability, p.clone(), q.clone(), case=case)
            c.that(isinstance(got, torch.Tensor), case, f"expected a torch.Tensor, got {type(got).__name__}")
            c.close(got, rejection.acceptance_probability(p, q), case=case, atol=1e-6)


def check_residual_distribution(residual_distribution) -> None:
    """Exercise 07.2: residual_distribution(p, q) = max(0, p − q) normalised to sum 1 over the last axis."""
    with Check("Exercise 07.2 residual_distribution") as c:
        p = torch.tensor([0.5, 0.2, 0.2, 0.1])
        q = torch.tensor([0.1, 0.6, 0.2, 0.1])
        case = "p = [0.5, 0.2, 0.2, 0.1], q = [0.1, 0.6, 0.2, 0.1]"
        got = c.call(residual_distribution, p.clone(), q.clone(), case=case)
        c.that(isinstance(got, torch.Tensor), case, f"expected a torch.Tensor, got {type(got).__name__}")
        c.that(bool((got >= 0).all()), case, "probabilities cannot be negative: keep only max(0, p − q)")
        c.close(got.sum(), 1.0, case=case + " (sum)", atol=1e-5)
        c.close(got, torch.tensor([1.0, 0.0, 0.0, 0.0]), case=case, atol=1e-5)
        gen = torch.Generator().manual_seed(7)
        p = torch.softmax(torch.randn(3, 6, generator=gen) * 2, -1)
        q = torch.softmax(torch.randn(3, 6, generator=gen) * 2, -1)
        case = "a (3, 6) batch of rows"
        got = c.call(residual_distribution, p.clone(), q.clone(), case=case)
        c.that(isinstance(got, torch.Tensor) and tuple(got.shape) == (3, 6), case,
               f"expected shape (3, 6), got {tuple(getattr(got, 'shape', ()))}")
        c.close(got.sum(-1), torch.ones(3), case=case + ": each row must sum to 1 (normalise over the last axis)",
                atol=1e-5)
        c.close(got, rejection.residual_distribution(p, q), case=case, atol=1e-5)


class _Sampler:
    """A deterministic stand-in for torch.multinomial: records the distribution, returns its argmax."""

    def __init__(self):
        self.seen: list[torch.Tensor] = []

    def __call__(self, probs: torch.Tensor) -> int:
        self.seen.append(torch.as_tensor(probs).detach().clone().float())
        return int(torch.as_tensor(probs).argmax())


def _verify_cases() -> list[tuple[str, torch.Tensor, torch.Tensor, list[int], torch.Tensor]]:
    """(case, p, q, draft tokens, coins) with every outcome: all accepted, first/middle rejected, ratios > 1."""
    p = torch.tensor([[0.10, 0.60, 0.20, 0.10],
                      [0.50, 0.10, 0.30, 0.10],
                      [0.05, 0.15, 0.20, 0.60],
                      [0.20, 0.20, 0.50, 0.10]])
    q = torch.tensor([[0.10, 0.30, 0.50, 0.10],
                      [0.25, 0.05, 0.60, 0.10],
                      [0.10, 0.10, 0.20, 0.60]])
    return [
        ("all three accepted (ratios 2, 2, 1): the bonus token comes from p[3]", p, q, [1, 0, 3],
         torch.tensor([0.9, 0.9, 0.9])),
        ("the first draft token rejected (p/q = 0.4, coin 0.7)", p, q, [2, 0, 3], torch.tensor([0.7, 0.1, 0.1])),
        ("the third draft token rejected (p/q = 0.5, coin 0.6)", p, q, [1, 0, 0], torch.tensor([0.2, 0.2, 0.6])),
        ("the second draft token kept: p/q = 0.5 > coin 0.3", p, q, [1, 2, 3], torch.tensor([0.1, 0.3, 0.99])),
        ("a rejection where q/p would have accepted (p/q = 0.4 < coin 0.5 < q/p)", p, q, [2, 2, 3],
         torch.tensor([0.5, 0.1, 0.1])),
        ("a coin exactly at the ratio rejects (keep only when coin < p/q = 0.5)", p, q, [1, 0, 0],
         torch.tensor([0.2, 0.2, 0.5])),
    ]


def _expected_verify(p, q, draft, coins) -> tuple[int, int, torch.Tensor]:
    """The reference (accepted, next token, distribution sampled) for one case."""
    for i, token in enumerate(draft):
        if coins[i] >= min(1.0, float(p[i, token] / q[i, token])):
            dist = rejection.residual_distribution(p[i], q[i])
            return i, int(dist.argmax()), dist
    return len(draft), int(p[len(draft)].argmax()), p[len(draft)]


def check_verify_step(verify_step) -> None:
    """Exercise 07.3: verify_step(p, q, draft_tokens, coins, sample) -> (accepted, next token)."""
    with Check("Exercise 07.3 verify_step") as c:
        for case, p, q, draft, coins in _verify_cases():
            sampler = _Sampler()
            got = c.call(verify_step, p.clone(), q.clone(), list(draft), coins.clone(), sampler, case=case)
            want_n, want_token, want_dist = _expected_verify(p, q, draft, coins)
            c.that(isinstance(got, tuple) and len(got) == 2, case,
                   f"return a tuple (number accepted, next token), got {got!r}")
            n, token = got
            c.equal(int(n) if isinstance(n, (int, torch.Tensor)) else n, want_n, case=case + " (number accepted)")
            c.that(len(sampler.seen) == 1, case, f"call sample(...) exactly once per verify step (for the "
                   f"correction or the bonus token), it was called {len(sampler.seen)} times")
            what = "p[γ] (the bonus token)" if want_n == len(draft) else f"the normalised residual of row {want_n}"
            c.close(sampler.seen[0], want_dist, case=case + f": sample must be given {what}", atol=1e-5)
            c.equal(int(token) if isinstance(token, (int, torch.Tensor)) else token, want_token,
                    case=case + " (next token)")


def check_expected_tokens_per_step(expected_tokens_per_step) -> None:
    """Exercise 07.4: expected tokens per target pass (1 − α^(γ+1)) / (1 − α), and γ + 1 when α = 1."""
    cases = [(0.0, 4, "α = 0: only the target's own token"), (0.5, 1, "α = 0.5, γ = 1"),
             (0.8, 4, "α = 0.8, γ = 4"), (0.6, 7, "α = 0.6, γ = 7"),
             (1.0, 5, "α = 1: every draft token and the bonus (γ + 1)")]
    with Check("Exercise 07.4 expected_tokens_per_step") as c:
        for alpha, gamma, case in cases:
            got = c.call(expected_tokens_per_step, alpha, gamma, case=case)
            c.close(got, rejection.expected_tokens_per_step(alpha, gamma), case=case, atol=1e-9, rtol=1e-9)
