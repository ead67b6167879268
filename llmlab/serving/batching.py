"""A discrete-event simulator of static, dynamic and continuous batching under Poisson arrivals.

The engine runs decode steps; a step over B sequences takes step_time(B) seconds (on real hardware it grows slowly
with B while decode is memory-bound). Each request needs a prefill (`prefill_time` s, run alone) and then produces
its tokens one per step; its first token comes with the prefill.

- static:     wait until `max_batch` requests are waiting (the last batch goes when no more will come), run the
              batch until its longest request is done; finished sequences keep their slot idle.
- dynamic:    like static, but a batch also goes when its oldest request has waited `window` seconds.
- continuous: between any two steps, finished requests leave and waiting ones join (up to `max_batch`, and
              optionally a token budget: each request in the batch reserves prompt + new tokens of KV cache).
              One step of it is `continuous_step`; `simulate(..., scheduler=...)` runs any function like it.
"""

from __future__ import annotations

import math
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


def reserved_tokens(request: dict) -> int:
    """KV-cache tokens a request reserves while in the batch: its prompt plus every token it may generate."""
    return request["prompt"] + request["max_new"]


def continuous_step(waiting: list[dict], running: list[dict], max_batch: int,
                    token_budget: float) -> tuple[list[dict], list[dict], list[dict]]:
    """One continuous-batching step: admit (FIFO, within max_batch and the token budget), decode, retire.

    A request is a dict {"id", "prompt", "max_new", "made"} (prompt tokens, tokens to generate, tokens made).
    Admitted requests are prefilled (their first token, made = 1); requests already running make one more token;
    every request that has made all its tokens retires. Returns (waiting, running, retired) as new lists.
    """
    waiting = [dict(r) for r in waiting]
    running = [dict(r) for r in running]
    reserved = sum(reserved_tokens(r) for r in running)
    admitted = []
    while (waiting and len(running) + len(admitted) < max_batch
           and reserved + reserved_tokens(waiting[0]) <= token_budget):
        request = waiting.pop(0)
        request["made"] = 1
        reserved += reserved_tokens(request)
        admitted.append(request)
    for request in running:
        request["made"] += 1
    batch = running + admitted
    return (waiting, [r for r in batch if r["made"] < r["max_new"]],
            [r for r in batch if r["made"] >= r["max_new"]])


def _simulate_continuous(arr: np.ndarray, out: np.ndarray, prompts: np.ndarray, step_time, max_batch: int,
                         prefill_time: float, token_budget: float, scheduler) -> tuple[np.ndarray, np.ndarray]:
    """Drive `scheduler` (continuous_step's signature) over a trace; returns (first token, finish) times."""
    n = len(arr)
    first, finish = np.full(n, np.nan), np.full(n, np.nan)
    waiting: list[dict] = []
    running: list[dict] = []
    t, nxt = 0.0, 0
    for _ in range(int(out.sum()) + 2 * n + 1):  # every useful step admits a request or makes a token
        if nxt >= n and not waiting and not running:
            return first, finish
        if not waiting and not running:
            t = max(t, arr[nxt])
        while nxt < n and arr[nxt] <= t:
            waiting.append({"id": nxt, "prompt": int(prompts[nxt]), "max_new": int(out[nxt]), "made": 0})
            nxt += 1
        before = {r["id"] for r in running}
        waiting, running, retired = scheduler(waiting, running, max_batch, token_budget)
        for r in running + retired:
            if r["id"] not in before:  # admitted now: prefilled one after another
                t += prefill_time
                first[r["id"]] = t
        if before:
            t += step_time(len(before))
        for r in retired:
            finish[r["id"]] = first[r["id"]] if r["id"] not in before else t
    raise RuntimeError("the scheduler stopped making progress (no request admitted or finished)")


def simulate(policy: str, arrivals: Sequence[float], output_tokens: Sequence[int], step_time: Callable[[int], float],
             max_batch: int = 8, prefill_time: float = 0.0, window: float = 0.5,
             prompt_tokens: Sequence[int] | None = None, token_budget: int | None = None,
             scheduler: Callable | None = None) -> SimResult:
    """Simulate one batching policy on one arrival trace; `window` (s) is the dynamic policy's longest wait.

    continuous only: `token_budget` caps the batch's reserved prompt + new tokens (None: no cap), and `scheduler`
    replaces `continuous_step` (the same signature).
    """
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
    prompts = np.zeros(len(arr), dtype=int) if prompt_tokens is None else np.asarray(prompt_tokens, dtype=int)
    validate.same_length(("arrivals", "prompt_tokens"), arr, prompts)
    if token_budget is not None:
        validate.positive_int("token_budget", token_budget)
        if (prompts + out).max() > token_budget:
            raise ValueError(f"token_budget must hold the largest request's prompt + output tokens, "
                             f"{(prompts + out).max()}, got {token_budget}")
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
        budget = math.inf if token_budget is None else token_budget
        first, finish = _simulate_continuous(arr, out, prompts, step_time, max_batch, prefill_time, budget,
                                             scheduler or continuous_step)
    return SimResult(policy, arr, first, finish, out)


def compare_policies(arrivals: Sequence[float], output_tokens: Sequence[int], step_time: Callable[[int], float],
                     max_batch: int = 8, prefill_time: float = 0.0, window: float = 0.5) -> dict[str, SimResult]:
    """simulate() for every policy on the same trace."""
    return {p: simulate(p, arrivals, output_tokens, step_time, max_batch, prefill_time, window) for p in POLICIES}
