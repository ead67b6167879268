"""The maths of speculative decoding: acceptance, the residual distribution, one verify step, the speedup model.

Leviathan et al. 2023 ("Fast Inference from Transformers via Speculative Decoding") and Chen et al. 2023
("Accelerating LLM Decoding with Speculative Sampling"): a draft proposes γ tokens from q; the target scores them
all in one pass (p); token i is kept with probability min(1, p/q); the first rejected one is replaced by a sample
from the normalised residual max(0, p − q); if all γ are kept, one bonus token comes from p. The output then has
exactly the target's distribution.
"""

from __future__ import annotations

import torch

from llmlab import validate


def acceptance_probability(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """min(1, p/q) elementwise for target probabilities p and draft probabilities q (same shape; 1 where q = 0).

    >>> acceptance_probability(torch.tensor([0.5, 0.5]), torch.tensor([0.8, 0.2]))
    tensor([0.6250, 1.0000])
    """
    validate.float_tensor("p", p)
    validate.float_tensor("q", q)
    if p.shape != q.shape:
        raise ValueError(f"p and q must have the same shape, got {tuple(p.shape)} and {tuple(q.shape)}")
    ratio = torch.where(q > 0, p / q.clamp_min(torch.finfo(q.dtype).tiny), torch.ones_like(p))
    return ratio.clamp(max=1.0)


def residual_distribution(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Normalised max(0, p − q) over the last axis (..., vocab); where p = q exactly it falls back to p.

    >>> residual_distribution(torch.tensor([0.5, 0.5]), torch.tensor([0.8, 0.2]))
    tensor([0., 1.])
    """
    validate.float_tensor("p", p)
    validate.float_tensor("q", q)
    if p.shape != q.shape:
        raise ValueError(f"p and q must have the same shape, got {tuple(p.shape)} and {tuple(q.shape)}")
    diff = (p - q).clamp_min(0)
    total = diff.sum(-1, keepdim=True)
    return torch.where(total > 0, diff / total.clamp_min(torch.finfo(p.dtype).tiny), p)


def verify(p: torch.Tensor, q: torch.Tensor, draft_tokens: torch.Tensor,
           generator: torch.Generator | None = None) -> tuple[int, int]:
    """One verify step for one sequence: (number of draft tokens accepted, the token that follows them).

    p: (γ+1, vocab) target probabilities at each draft position and one past the last; q: (γ, vocab) the draft
    probabilities the draft tokens (γ,) were sampled from. The next token is a residual sample after a rejection,
    or a bonus token from p[γ] when all γ are accepted.
    """
    gamma = draft_tokens.shape[0]
    if p.dim() != 2 or q.dim() != 2 or p.shape[0] != gamma + 1 or q.shape != (gamma, p.shape[1]):
        raise ValueError(f"p must be (γ+1, vocab) and q (γ, vocab) for γ = {gamma} draft tokens, got "
                         f"{tuple(p.shape)} and {tuple(q.shape)}")
    if gamma == 0:
        return 0, int(torch.multinomial(p[0], 1, generator=generator))
    rows = torch.arange(gamma)
    p_draft, q_draft = p[rows, draft_tokens], q[rows, draft_tokens]
    accept = acceptance_probability(p_draft, q_draft)
    coins = torch.rand(gamma, generator=generator, dtype=accept.dtype)
    for i in range(gamma):
        if coins[i] >= accept[i]:
            residual = residual_distribution(p[i], q[i])
            return i, int(torch.multinomial(residual, 1, generator=generator))
    return gamma, int(torch.multinomial(p[gamma], 1, generator=generator))


def verify_greedy(target_tokens: torch.Tensor | list[int], draft_tokens: torch.Tensor | list[int]) -> tuple[int, int]:
    """Greedy verify: accept draft tokens while they equal the target's argmax; (accepted, next token).

    target_tokens (γ+1,) are the target's argmax at each draft position and one past the last.

    >>> verify_greedy([5, 7, 9, 4], [5, 7, 2])  # two accepted, then the target's own token
    (2, 9)
    """
    target = target_tokens.tolist() if isinstance(target_tokens, torch.Tensor) else list(target_tokens)
    draft = draft_tokens.tolist() if isinstance(draft_tokens, torch.Tensor) else list(draft_tokens)
    if len(target) != len(draft) + 1:
        raise ValueError(f"target_tokens must hold γ+1 = {len(draft) + 1} tokens for {len(draft)} draft tokens, "
                         f"got {len(target)}")
    n = 0
    while n < len(draft) and draft[n] == target[n]:
        n += 1
    return n, target[n]


def acceptance_rate(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Expected acceptance α = Σ min(p, q) = 1 − total-variation distance, over the last axis (..., vocab).

    >>> acceptance_rate(torch.tensor([0.5, 0.5]), torch.tensor([0.8, 0.2]))
    tensor(0.7000)
    """
    validate.float_tensor("p", p)
    validate.float_tensor("q", q)
    if p.shape != q.shape:
        raise ValueError(f"p and q must have the same shape, got {tuple(p.shape)} and {tuple(q.shape)}")
    return torch.minimum(p, q).sum(-1)


def expected_tokens_per_step(alpha: float, gamma: int) -> float:
    """Expected tokens one target pass yields, (1 − α^(γ+1)) / (1 − α), for i.i.d. acceptance α (γ+1 at α = 1).

    >>> expected_tokens_per_step(0.5, 4)  # (1 - 0.5**5) / (1 - 0.5)
    1.9375
    """
    a = validate.probability("alpha", alpha)
    g = validate.positive_int("gamma", gamma)
    if a == 1.0:
        return float(g + 1)
    return (1 - a ** (g + 1)) / (1 - a)


def predicted_speedup(alpha: float, gamma: int, c: float, verify_cost: float = 1.0) -> float:
    """Speedup over plain decoding: tokens per step / (γ·c + T(γ+1)/T(1)).

    c is the draft's cost per token relative to one target step; verify_cost is what one target pass over γ+1
    tokens costs relative to a one-token step (1 in Leviathan et al.'s model, more on a CPU).

    >>> round(predicted_speedup(0.8, 4, 0.05), 3)
    2.801
    """
    cost = validate.number("c", c, low=0)
    vc = validate.number("verify_cost", verify_cost, low=0, low_open=True)
    return expected_tokens_per_step(alpha, gamma) / (gamma * cost + vc)


def best_gamma(alpha: float, c: float, verify_costs: dict[int, float] | None = None, max_gamma: int = 16) -> int:
    """The γ in [1, max_gamma] with the highest predicted speedup (verify_costs[γ] = T(γ+1)/T(1), default 1)."""
    validate.positive_int("max_gamma", max_gamma)
    costs = verify_costs or {}
    return max(range(1, max_gamma + 1),
               key=lambda g: predicted_speedup(alpha, g, c, costs.get(g, 1.0)) if g in costs or not costs else -1)


def break_even_alpha(gamma: int, c: float, verify_cost: float = 1.0) -> float | None:
    """The α at which predicted_speedup is exactly 1 (0.0 if any α wins, None if even α = 1 loses).

    >>> round(break_even_alpha(4, 0.1), 3)
    0.287
    """
    validate.positive_int("gamma", gamma)
    if predicted_speedup(0.0, gamma, c, verify_cost) >= 1:
        return 0.0
    if predicted_speedup(1.0, gamma, c, verify_cost) < 1:
        return None
    low, high = 0.0, 1.0
    for _ in range(50):  # the speedup rises with α, so bisect
        mid = (low + high) / 2
        low, high = (mid, high) if predicted_speedup(mid, gamma, c, verify_cost) < 1 else (low, mid)
    return high
