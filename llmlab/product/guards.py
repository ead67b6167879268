"""Guardrails on the model's output and input: a JSON format guard with retries, and a keyword topic filter.

AI Engineering ch. 10 puts both among the guardrails; the format guard retries a malformed reply (at a cost in
latency), and the keyword filter shows where simple filters fail (false alarms on harmless words, misses on
paraphrases).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Callable, Sequence

from llmlab import validate
from llmlab.structured import parse_json_object


@dataclass
class Guarded:
    """The outcome of a guarded call: the parsed value (None when every try failed), tries used, seconds spent."""

    value: dict | None
    tries: int
    seconds: float
    replies: list[str]


def parse_with_keys(reply: str, keys: Sequence[str]) -> dict | None:
    """The first JSON object in a reply when it parses and has every required key, else None."""
    validate.text("reply", reply, allow_empty=True)
    value = parse_json_object(reply)
    return value if value is not None and all(k in value for k in keys) else None


def json_guard(generate: Callable[[int], str], keys: Sequence[str], retries: int) -> Guarded:
    """Call generate(try_index) until its reply parses with the keys, at most 1 + retries times."""
    validate.integer("retries", retries, low=0)
    replies, start = [], time.perf_counter()
    for attempt in range(retries + 1):
        reply = generate(attempt)
        if not isinstance(reply, str):
            raise TypeError(f"generate must return a str, got {type(reply).__name__}")
        replies.append(reply)
        value = parse_with_keys(reply, keys)
        if value is not None:
            return Guarded(value, attempt + 1, time.perf_counter() - start, replies)
    return Guarded(None, retries + 1, time.perf_counter() - start, replies)


def success_by_retries(tries_needed: Sequence[int | None], max_retries: int) -> list[float]:
    """Share of requests that succeed within 1 + r tries, for r = 0 .. max_retries (None: never succeeded)."""
    validate.non_empty("tries_needed", tries_needed)
    validate.integer("max_retries", max_retries, low=0)
    return [sum(t is not None and t <= r + 1 for t in tries_needed) / len(tries_needed)
            for r in range(max_retries + 1)]


BLOCKED_TERMS = ("bomb", "weapon", "kill", "hack", "drugs", "suicide", "steal")


def topic_filter(text: str, blocked: Sequence[str] = BLOCKED_TERMS) -> bool:
    """Whether the text contains a blocked term as a whole word (case ignored): True means block."""
    validate.text("text", text, allow_empty=True)
    return any(re.search(rf"\b{re.escape(term)}\w*\b", text, re.IGNORECASE) for term in blocked)


def filter_errors(cases: Sequence[dict], blocked: Sequence[str] = BLOCKED_TERMS) -> dict:
    """Precision, recall and the failing cases of topic_filter on labelled {'text', 'unsafe': bool} cases."""
    validate.non_empty("cases", cases)
    flagged = [topic_filter(c["text"], blocked) for c in cases]
    tp = sum(f and c["unsafe"] for f, c in zip(flagged, cases))
    false_alarms = [c["text"] for f, c in zip(flagged, cases) if f and not c["unsafe"]]
    misses = [c["text"] for f, c in zip(flagged, cases) if c["unsafe"] and not f]
    n_flagged, n_unsafe = sum(flagged), sum(c["unsafe"] for c in cases)
    return {"precision": tp / n_flagged if n_flagged else 1.0, "recall": tp / n_unsafe if n_unsafe else 1.0,
            "false_alarms": false_alarms, "misses": misses}
