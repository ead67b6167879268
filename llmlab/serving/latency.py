"""Latency metrics: TTFT, TPOT, total latency, percentiles and goodput against a service-level objective."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from llmlab import validate

# AI Engineering ch. 9: ten TTFTs (ms) whose mean, 390 ms, is dragged up by one outlier; the median is 100 ms.
BOOK_TTFTS_MS = [100, 102, 100, 100, 99, 104, 110, 90, 3000, 95]


def _values(name: str, values: Sequence[float]) -> list[float]:
    """A non-empty list of finite numbers from a sequence."""
    validate.non_empty(name, values)
    out = [float(v) for v in values]
    if any(not math.isfinite(v) for v in out):
        raise ValueError(f"{name} must hold finite numbers, got {values!r:.80}")
    return out


def total_latency(ttft: float, tpot: float, output_tokens: int) -> float:
    """End-to-end latency of one request: TTFT + TPOT × output tokens (AI Engineering ch. 9's formula)."""
    validate.number("ttft", ttft, 0)
    validate.number("tpot", tpot, 0)
    validate.integer("output_tokens", output_tokens, low=0)
    return ttft + tpot * output_tokens


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (q in [0, 100]) with linear interpolation between order statistics (numpy's default).

    Sort, take the fractional rank r = q/100 × (n − 1), interpolate between the values at floor(r) and ceil(r).
    """
    data = sorted(_values("values", values))
    q = validate.number("q", q, 0, 100)
    rank = q / 100 * (len(data) - 1)
    lo = math.floor(rank)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (rank - lo)


def latency_summary(values: Sequence[float], quantiles: Sequence[float] = (50, 90, 95, 99)) -> dict[str, float]:
    """Mean and percentiles of a list of latencies: {'mean': ..., 'p50': ..., 'p90': ...}."""
    data = _values("values", values)
    out = {"mean": sum(data) / len(data)}
    for q in quantiles:
        out[f"p{q:g}"] = percentile(data, q)
    return out


@dataclass(frozen=True)
class SLO:
    """A service-level objective: a request is good when TTFT ≤ ttft and TPOT ≤ tpot (seconds)."""

    ttft: float
    tpot: float

    def __post_init__(self):
        validate.number("ttft", self.ttft, 0, low_open=True)
        validate.number("tpot", self.tpot, 0, low_open=True)


def meets_slo(ttfts: Sequence[float], tpots: Sequence[float], slo: SLO) -> list[bool]:
    """For each request, whether it meets *both* parts of the SLO (TTFT ≤ slo.ttft and TPOT ≤ slo.tpot)."""
    a, b = _values("ttfts", ttfts), _values("tpots", tpots)
    validate.same_length(("ttfts", "tpots"), a, b)
    if not isinstance(slo, SLO):
        raise TypeError(f"slo must be an SLO, got {type(slo).__name__}")
    return [t <= slo.ttft and p <= slo.tpot for t, p in zip(a, b)]


def goodput(ttfts: Sequence[float], tpots: Sequence[float], slo: SLO, duration: float) -> float:
    """Requests per second that meet the whole SLO (AI Engineering ch. 9): good requests ÷ duration (s)."""
    validate.number("duration", duration, 0, low_open=True)
    return sum(meets_slo(ttfts, tpots, slo)) / duration
