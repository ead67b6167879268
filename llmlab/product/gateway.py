"""A model gateway: one interface over several engines, with timeouts, retries with backoff, fallback to the next
engine and finally to a canned answer, per-key rate limits and one structured log line per call (AI Engineering
ch. 10, "model gateway"). Every request gets a complete answer or a defined refusal: never lost, never half."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

from llmlab import validate

FALLBACK_TEXT = "Sorry, I can't answer right now. Please try again in a moment."
RATE_LIMITED_TEXT = "Too many requests: please wait a minute and try again."
MAX_PROMPT_CHARS = 8_000

Engine = Callable[[str], "str | Iterable[str]"]


class EngineTimeout(TimeoutError):
    """An engine did not finish within the gateway's timeout."""


def call_with_fallback(engines: Sequence[tuple[str, Engine]], prompt: str, retries: int, backoff_s: float,
                       sleep: Callable[[float], None] = time.sleep) -> tuple[str, str]:
    """(answer, engine name): each engine in order gets 1 + retries tries, sleeping backoff_s * 2**(k-1) before its
    k-th retry; an engine's reply is its chunks joined, kept only when no chunk raised. All failed: the fallback."""
    validate.integer("retries", retries, low=0)
    validate.number("backoff_s", backoff_s, 0)
    for name, engine in engines:
        for attempt in range(retries + 1):
            if attempt:
                sleep(backoff_s * 2 ** (attempt - 1))
            try:
                return "".join(engine(prompt)), name
            except Exception:  # noqa: BLE001 - any engine failure moves on to the next try
                continue
    return FALLBACK_TEXT, "fallback"


def with_timeout(engine: Engine, timeout_s: float) -> Engine:
    """The engine run in a daemon thread: its full reply within timeout_s, else EngineTimeout (a hung engine's
    thread is abandoned, never joined, so it cannot block the caller)."""
    validate.number("timeout_s", timeout_s, 0, low_open=True)

    def run(prompt: str) -> str:
        future: Future = Future()

        def work() -> None:
            try:
                reply = engine(prompt)
                text = reply if isinstance(reply, str) else "".join(reply)
                if not text.strip():
                    raise ValueError("the engine returned an empty reply")
                future.set_result(text)
            except BaseException as exc:  # noqa: BLE001 - handed to the caller through the future
                future.set_exception(exc)

        threading.Thread(target=work, daemon=True).start()
        try:
            return future.result(timeout=timeout_s)
        except FutureTimeout:
            raise EngineTimeout(f"no reply within {timeout_s} s") from None

    return run


class RateLimiter:
    """At most `limit` requests per key in any sliding window of `window_s` seconds."""

    def __init__(self, limit: int, window_s: float, clock: Callable[[], float] = time.monotonic):
        self.limit, self.window_s = validate.positive_int("limit", limit), validate.number("window_s", window_s, 0,
                                                                                          low_open=True)
        self.clock, self.calls = clock, {}

    def allow(self, key: str) -> bool:
        """Whether this key may make a request now (the request is counted when allowed)."""
        now, calls = self.clock(), self.calls.setdefault(key, deque())
        while calls and calls[0] <= now - self.window_s:
            calls.popleft()
        if len(calls) >= self.limit:
            return False
        calls.append(now)
        return True


@dataclass
class GatewayReply:
    """What the gateway returns for every request: a complete text and how it was obtained."""

    text: str
    engine: str
    status: str  # "ok", "fallback", "rate_limited" or "rejected"
    attempts: int
    seconds: float
    errors: list[str] = field(default_factory=list)


class Gateway:
    """One entry point over engines tried in order; each try bounded by timeout_s; a log line per request."""

    def __init__(self, engines: Sequence[tuple[str, Engine]], timeout_s: float = 30.0, retries: int = 1,
                 backoff_s: float = 0.5, limiter: RateLimiter | None = None, log: Callable[[str], None] | None = None,
                 sleep: Callable[[float], None] = time.sleep):
        validate.non_empty("engines", engines)
        self.timeout_s, self.retries = timeout_s, validate.integer("retries", retries, low=0)
        self.backoff_s, self.limiter, self.sleep = backoff_s, limiter, sleep
        self.lines: list[str] = []
        self.log = log or self.lines.append
        self.engines = [(name, with_timeout(fn, timeout_s)) for name, fn in engines]

    @staticmethod
    def _recorded(name: str, engine: Engine, tries: list[str]) -> Engine:
        """The engine, noting each try in `tries` ('' for a success, else the error)."""
        def run(prompt: str) -> str:
            try:
                text = engine(prompt)
            except Exception as exc:
                tries.append(f"{name}: {type(exc).__name__}: {exc}")
                raise
            tries.append("")
            return text
        return run

    def __call__(self, prompt: str, key: str = "anonymous") -> GatewayReply:
        """A complete reply for the prompt: from the first engine that succeeds, else the canned fallback."""
        start, tries = time.perf_counter(), []
        if not isinstance(prompt, str) or not prompt.strip() or len(prompt) > MAX_PROMPT_CHARS:
            size = len(prompt) if isinstance(prompt, str) else type(prompt).__name__
            reply = GatewayReply(f"Your message must be 1 to {MAX_PROMPT_CHARS} characters (got {size}).",
                                 "none", "rejected", 0, 0.0)
        elif self.limiter is not None and not self.limiter.allow(key):
            reply = GatewayReply(RATE_LIMITED_TEXT, "none", "rate_limited", 0, 0.0)
        else:
            engines = [(name, self._recorded(name, fn, tries)) for name, fn in self.engines]
            text, engine = call_with_fallback(engines, prompt, self.retries, self.backoff_s, self.sleep)
            reply = GatewayReply(text, engine, "fallback" if engine == "fallback" else "ok", len(tries), 0.0,
                                 [t for t in tries if t])
        reply.seconds = time.perf_counter() - start
        self.log(json.dumps({"key": key, "status": reply.status, "engine": reply.engine, "attempts": reply.attempts,
                             "seconds": round(reply.seconds, 4), "errors": reply.errors}))
        return reply


def model_engine(model, tokenizer, max_new_tokens: int = 48) -> Engine:
    """An engine over a loaded transformers model (greedy chat reply)."""
    from llmlab import models

    return lambda prompt: models.chat(model, tokenizer, prompt, max_new_tokens=max_new_tokens)


def available_engines(model, tokenizer, max_new_tokens: int = 48) -> list[tuple[str, Engine]]:
    """The default model, then the second tier when it is fetched (loaded on first use)."""
    from llmlab import models
    from llmlab.kit import fetch

    engines = [(models.DEFAULT_MODEL, model_engine(model, tokenizer, max_new_tokens))]
    if fetch.verify(models.SECOND_TIER)[0]:
        loaded: list = []

        def second(prompt: str) -> str:
            if not loaded:
                loaded.extend(models.load(models.SECOND_TIER, device="cpu"))
            return models.chat(loaded[0], loaded[1], prompt, max_new_tokens=max_new_tokens)

        engines.append((models.SECOND_TIER, second))
    return engines
