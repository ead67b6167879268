"""What tokens cost: $ per 1M tokens from $/hour and throughput; prompt cost with cached vs uncached tokens."""

from __future__ import annotations

from llmlab import validate


def cost_per_million_tokens(dollars_per_hour: float, tokens_per_s: float) -> float:
    """$ per 1M tokens for a machine rented at `dollars_per_hour` producing `tokens_per_s`.

    AI Engineering ch. 9: $2/h at 100 tokens/s is 360,000 tokens per hour, about $5.56 per 1M tokens.

    >>> round(cost_per_million_tokens(dollars_per_hour=2.0, tokens_per_s=1000), 4)
    0.5556
    """
    validate.number("dollars_per_hour", dollars_per_hour, 0)
    validate.number("tokens_per_s", tokens_per_s, 0, low_open=True)
    return dollars_per_hour / (tokens_per_s * 3600) * 1e6


def prompt_cost(input_tokens: int, cached_tokens: int, dollars_per_million: float, cached_discount: float) -> float:
    """$ for one prompt when `cached_tokens` of its `input_tokens` hit the prompt cache at a discount in [0, 1]."""
    validate.integer("input_tokens", input_tokens, low=0)
    validate.integer("cached_tokens", cached_tokens, low=0, high=input_tokens)
    validate.number("dollars_per_million", dollars_per_million, 0)
    validate.probability("cached_discount", cached_discount)
    fresh = input_tokens - cached_tokens
    return (fresh + cached_tokens * (1 - cached_discount)) * dollars_per_million / 1e6


def cached_savings(requests: int, prefix_tokens: int, suffix_tokens: int, dollars_per_million: float,
                   cached_discount: float, write_premium: float = 0.0) -> dict[str, float]:
    """$ for `requests` prompts sharing a prefix, without and with a prompt cache (the first request fills it).

    Writing the cache is billed too: the first request pays its prefix at (1 + write_premium) × the input price
    (Anthropic's prompt-caching pricing: 1.25× for a 5-minute cache, so write_premium=0.25; reads at 0.1×).
    """
    validate.positive_int("requests", requests)
    validate.integer("prefix_tokens", prefix_tokens, low=0)
    validate.integer("suffix_tokens", suffix_tokens, low=0)
    validate.number("write_premium", write_premium, 0)
    n = prefix_tokens + suffix_tokens
    uncached = requests * prompt_cost(n, 0, dollars_per_million, cached_discount)
    write = prefix_tokens * write_premium * dollars_per_million / 1e6
    cached = (prompt_cost(n, 0, dollars_per_million, cached_discount) + write
              + (requests - 1) * prompt_cost(n, prefix_tokens, dollars_per_million, cached_discount))
    return {"uncached": uncached, "cached": cached, "saved": uncached - cached,
            "saved_fraction": (uncached - cached) / uncached if uncached else 0.0}
