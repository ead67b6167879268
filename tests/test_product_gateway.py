"""Tests for chapter 13's gateway with fake engines that fail, hang, time out and stop half-way."""

import json
import threading

import pytest

from llmlab.product import gateway as gw


def failing(times: int, text: str = "fine"):
    """An engine that raises `times` times, then answers; it counts its calls."""
    calls = []

    def engine(prompt):
        calls.append(prompt)
        if len(calls) <= times:
            raise RuntimeError(f"boom {len(calls)}")
        return text
    engine.calls = calls
    return engine


def half(prompt):
    yield "The answer is"
    raise ConnectionError("stream cut")


def test_retries_backoff_then_fallback_to_next_engine():
    sleeps, first, second = [], failing(99), failing(1, "from second")
    text, name = gw.call_with_fallback([("a", first), ("b", second)], "q", retries=2, backoff_s=0.1,
                                       sleep=sleeps.append)
    assert (text, name) == ("from second", "b")
    assert len(first.calls) == 3 and len(second.calls) == 2
    assert sleeps == pytest.approx([0.1, 0.2, 0.1])


def test_half_answer_is_never_returned_and_all_failing_gives_fallback():
    text, name = gw.call_with_fallback([("half", half)], "q", retries=1, backoff_s=0.0, sleep=lambda s: None)
    assert (text, name) == (gw.FALLBACK_TEXT, "fallback")


def test_gateway_times_out_a_hung_engine_and_logs_every_call():
    release = threading.Event()

    def hung(prompt):
        release.wait(5)
        return "too late"
    lines = []
    g = gw.Gateway([("hung", hung), ("ok", failing(0, "quick"))], timeout_s=0.05, retries=0, log=lines.append)
    reply = g("hello", key="k1")
    release.set()
    assert (reply.text, reply.engine, reply.status, reply.attempts) == ("quick", "ok", "ok", 2)
    assert "EngineTimeout" in reply.errors[0]
    assert json.loads(lines[0])["engine"] == "ok"


def test_gateway_never_loses_a_request():
    g = gw.Gateway([("half", half), ("empty", lambda p: "  ")], timeout_s=1.0, retries=1, backoff_s=0.0,
                   limiter=gw.RateLimiter(2, 60.0, clock=lambda: 0.0))
    replies = [g(p, key="k") for p in ["a", "b", "c", "", "x" * (gw.MAX_PROMPT_CHARS + 1)]]
    assert [r.status for r in replies] == ["fallback", "fallback", "rate_limited", "rejected", "rejected"]
    assert replies[0].text == gw.FALLBACK_TEXT and replies[0].attempts == 4
    assert len(g.lines) == 5 and all(r.text for r in replies)


def test_rate_limiter_window_per_key():
    now = [0.0]
    limiter = gw.RateLimiter(2, 10.0, clock=lambda: now[0])
    assert [limiter.allow("a"), limiter.allow("a"), limiter.allow("a"), limiter.allow("b")] == [True, True, False, True]
    now[0] = 10.0
    assert limiter.allow("a")
    with pytest.raises(ValueError, match="window_s"):
        gw.RateLimiter(1, 0.0)
