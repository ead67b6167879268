"""A discrete-event simulator of static, dynamic and continuous batching under Poisson arrivals.

The engine runs decode steps; a step over B sequences takes step_time(B) seconds (on real hardware it grows slowly
with B while decode is memory-bound). Each request needs a prefill (`prefill_time` s, run alone) and then produces
its tokens one per step; its first token comes with the prefill.

- static:     wait until `max_batch` requests are waiting (the last batch goes when no more will come), run the
              batch until its longest request is done; finished sequences keep their slot idle.
- dynamic:    like static, but a batch also goes when its oldest request has waited `window` seconds.
- continuous: between any two steps, finished requests leave and waiting ones join (up to `max_batch`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from llmlab import validate
from llmlab.serving.latency import latency_summary

POLICIES = ("static", "dynamic", "continuous")


def poisson_arrivals(n: int, rate: float, seed: int = 0) -> np.ndarray:
    """Arrival times (s) of n requests at `rate` requests/s: cumulative exponential gaps, first at the first gap."""
    validate.positive_int("n", n)
    validate.number("rate", rate, 0, low_open=True)
    return np.cumsum(np.random.default_rng(seed).exponential(1 / rate, size=n))


def linear_step_time(base: float, per_sequence: float) -> Callable[[int], float]:
    """A step-time model: base + per_sequence × B seconds (fit it to a measured batch curve)."""
    validate.number("base", base, 0, low_open=True)
    validate.number("per_sequence", per_sequence, 0)
    return lambda b: base + per_sequence * b


def fit_step_time(batches: Sequence[int], seconds: Sequence[float]) -> tuple[float, float]:
    """Least-squares (base, per_sequence) of seconds ≈ base + per_sequence × batch."""
    validate.same_length(("batches", "seconds"), batches, seconds)
    if len(batches) < 2:
        raise ValueError(f"batches must hold at least 2 sizes to fit a line, got {len(batches)}")
    slope, intercept = np.polyfit(np.asarray(batches, float), np.asarray(seconds, float), 1)
    return float(max(intercept, 1e-6)), float(max(slope, 0.0))


@dataclass
class SimResult:
    """Per-request times of one simulated run (arrays of seconds, one entry per request)."""

    policy: str
    arrival: np.ndarray
    first_token: np.ndarray
    finish: np.ndarray
    output_tokens: np.ndarray

    @property
    def ttft(self) -> np.ndarray:
        """Time to first token of each request, queueing included."""
        return self.first_token - self.arrival

    @property
    def latency(self) -> np.ndarray:
        """End-to-end latency of each request."""
        return self.finish - self.arrival

    @property
    def tpot(self) -> np.ndarray:
        """Mean time per output token after the first (0 for one-token requests)."""
        steps = np.maximum(self.output_tokens - 1, 1)
        return np.where(self.output_tokens > 1, (self.finish - self.first_token) / steps, 0.0)

    @property
    def throughput(self) -> float:
        """Output tokens per second over the run (first arrival to last finish)."""
        return float(self.output_tokens.sum() / (self.finish.max() - self.arrival.min()))

    def summary(self) -> dict[str, float]:
        """Throughput and TTFT/latency mean and percentiles."""
        out = {"throughput": self.throughput}
        out.update({f"ttft {k}": v for k, v in latency_summary(self.ttft.tolist(), (50, 90, 99)).items()})
        out.update({f"latency {k}": v for k, v in latency_summary(self.latency.tolist(), (50, 90, 99)).items()})
        return out


def _run_to_completion(batch: list[int], start: float, out: np.ndarray, step_time, prefill_time: float,
                       first: np.ndarray, finish: np.ndarray) -> float:
    """Static/dynamic: prefill the batch, step until its longest request is done; returns the end time."""
    t = start
    for i in batch:
        t += prefill_time
        first[i] = t
    for i in batch:
        if out[i] == 1:
            finish[i] = first[i]
    b = len(batch)
    for k in range(2, int(out[batch].max()) + 1):
        t += step_time(b)
        for i in batch:
            if out[i] == k:
                finish[i] = t
    return t


def simulate(policy: str, arrivals: Sequence[float], output_tokens: Sequence[int], step_time: Callable[[int], float],
             max_batch: int = 8, prefill_time: float = 0.0, window: float = 0.5) -> SimResult:
    """Simulate one batching policy on one arrival trace; `window` (s) is the dynamic policy's longest wait."""
    validate.one_of("policy", policy, POLICIES)
    validate.non_empty("arrivals", arrivals)
    validate.same_length(("arrivals", "output_tokens"), arrivals, output_tokens)
    validate.positive_int("max_batch", max_batch)
    validate.number("prefill_time", prefill_time, 0)
    validate.number("window", window, 0)
    arr = np.asarray(arrivals, dtype=float)
    out = np.asarray(output_tokens, dtype=int)
    if (np.diff(arr) < 0).any():
        raise ValueError("arrivals must be sorted in time, they are not")
    if (out < 1).any():
        raise ValueError(f"output_tokens must all be >= 1, got min {out.min()}")
    n = len(arr)
    first, finish = np.full(n, np.nan), np.full(n, np.nan)
    t, nxt = 0.0, 0  # clock; index of the next request not yet admitted
    if policy in ("static", "dynamic"):
        while nxt < n:
            t = max(t, arr[nxt])
            full_at = arr[min(nxt + max_batch, n) - 1]  # when the batch would be full (or all requests are in)
            go = max(t, full_at) if policy == "static" else max(t, min(full_at, arr[nxt] + window))
            batch = [i for i in range(nxt, min(nxt + max_batch, n)) if arr[i] <= go]
            nxt += len(batch)
            t = _run_to_completion(batch, go, out, step_time, prefill_time, first, finish)
    else:
        active: list[int] = []
        done_tokens = np.zeros(n, dtype=int)
        while nxt < n or active:
            if not active:
                t = max(t, arr[nxt])
            while nxt < n and arr[nxt] <= t and len(active) < max_batch:
                t += prefill_time
                first[nxt] = t
                done_tokens[nxt] = 1
                if out[nxt] == 1:
                    finish[nxt] = t
                else:
                    active.append(nxt)
                nxt += 1
            if not active:
                continue
            t += step_time(len(active))
            done_tokens[active] += 1
            for i in [i for i in active if done_tokens[i] == out[i]]:
                finish[i] = t
                active.remove(i)
    return SimResult(policy, arr, first, finish, out)


def compare_policies(arrivals: Sequence[float], output_tokens: Sequence[int], step_time: Callable[[int], float],
                     max_batch: int = 8, prefill_time: float = 0.0, window: float = 0.5) -> dict[str, SimResult]:
    """simulate() for every policy on the same trace."""
    return {p: simulate(p, arrivals, output_tokens, step_time, max_batch, prefill_time, window) for p in POLICIES}
