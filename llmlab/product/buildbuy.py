"""Build vs buy: the tokens per day above which a self-hosted machine costs less than an API (LLMs in Production
ch. 1). The machine's $/1M tokens comes from the one owner, `llmlab.serving.cost.cost_per_million_tokens`."""

from __future__ import annotations

import math

from llmlab import validate
from llmlab.serving.cost import cost_per_million_tokens


def daily_costs(tokens_per_day: float, dollars_per_hour: float, tokens_per_s: float,
                api_dollars_per_million: float) -> dict[str, float]:
    """$ per day for `tokens_per_day`: on the API, and self-hosted on as many machines as the throughput needs."""
    validate.number("tokens_per_day", tokens_per_day, 0)
    validate.number("api_dollars_per_million", api_dollars_per_million, 0)
    capacity = tokens_per_s * 86_400
    machines = max(1, math.ceil(tokens_per_day / capacity)) if capacity > 0 else 1
    cost_per_million_tokens(dollars_per_hour, tokens_per_s)  # validates the machine's numbers
    return {"api": tokens_per_day * api_dollars_per_million / 1e6, "self_hosted": machines * dollars_per_hour * 24,
            "machines": float(machines)}


def break_even_tokens_per_day(dollars_per_hour: float, tokens_per_s: float, api_dollars_per_million: float) -> float:
    """Tokens per day at which one machine running all day costs as much as the API; inf when the API is cheaper
    even with the machine saturated (its $/1M tokens at full load is above the API price)."""
    own = cost_per_million_tokens(dollars_per_hour, tokens_per_s)
    validate.number("api_dollars_per_million", api_dollars_per_million, 0, low_open=True)
    if own > api_dollars_per_million:
        return math.inf
    return dollars_per_hour * 24 / api_dollars_per_million * 1e6
