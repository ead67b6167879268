"""The server's door: parse and validate a POST /generate body before anything reaches the engine.

Every rejection is a `RequestError` with an HTTP status (400 for a bad field, 413 for a body over the cap) whose
message names the field, the allowed range and the value received. Token ids must be ints in [0, vocab size):
JSON booleans, floats (even 2.0), nested lists and strings are refused here, so the batcher never sees them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from llmlab import validate

FIELDS = ("prompt_ids", "max_new_tokens")
DEFAULT_MAX_NEW_TOKENS = 16


class RequestError(Exception):
    """A request refused at the door: an HTTP status (4xx), the field at fault and a message."""

    def __init__(self, status: int, field: str, message: str):
        super().__init__(message)
        self.status, self.field, self.message = status, field, message

    def body(self) -> dict[str, str]:
        """The JSON reply: the message and the field."""
        return {"error": self.message, "field": self.field}


def _short(value: Any, limit: int = 60) -> str:
    """A repr cut to `limit` characters, so a huge value never goes back in full."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _reject_constant(name: str) -> None:
    """json.loads hook: NaN and ±Infinity are not JSON."""
    raise ValueError(f"{name} is not valid JSON")


def check_prompt(prompt: Any, vocab_size: int, max_positions: int, field: str = "prompt_ids") -> list[int]:
    """A non-empty list of int token ids in [0, vocab_size), shorter than max_positions; returns it as a list."""
    if isinstance(prompt, (str, bytes, dict)) or not isinstance(prompt, Sequence):
        raise TypeError(f"{field} must be a list of int token ids, got {type(prompt).__name__} {_short(prompt)}")
    if len(prompt) == 0:
        raise ValueError(f"{field} must hold 1 to {max_positions - 1} token ids, got an empty list")
    if len(prompt) >= max_positions:
        raise ValueError(f"{field} must hold 1 to {max_positions - 1} token ids, got {len(prompt)}")
    for i, token in enumerate(prompt):
        validate.integer(f"{field}[{i}]", token, low=0, high=vocab_size - 1)
    return list(prompt)


def check_budget(prompt_len: int, max_new_tokens: Any, max_positions: int) -> int:
    """max_new_tokens: an int in [1, max_positions − prompt length] (prompt + new tokens must fit the cache)."""
    try:
        return validate.integer("max_new_tokens", max_new_tokens, low=1, high=max_positions - prompt_len)
    except ValueError as exc:
        raise ValueError(f"{exc} (a prompt of {prompt_len} tokens plus the new ones must fit the cache of "
                         f"{max_positions} positions)") from None


def check_content_length(header: str | None, max_body_bytes: int) -> int:
    """The Content-Length header as an int in [0, max_body_bytes]; RequestError 411/400/413 otherwise."""
    if header is None:
        raise RequestError(411, "Content-Length", "Content-Length header is required")
    try:
        length = int(header)
    except ValueError:
        raise RequestError(400, "Content-Length", f"Content-Length must be an int, got {_short(header)}") from None
    if length < 0:
        raise RequestError(400, "Content-Length", f"Content-Length must be >= 0, got {length}")
    if length > max_body_bytes:
        raise RequestError(413, "body", f"body must be at most {max_body_bytes} bytes, got {length}")
    return length


def parse_generate(raw: bytes, vocab_size: int, max_positions: int) -> tuple[list[int], int]:
    """Validate a /generate body {"prompt_ids": [...], "max_new_tokens": n}; returns (prompt, max_new_tokens)."""
    try:
        body = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError as exc:
        raise RequestError(400, "body", f"body must be UTF-8 JSON, got undecodable bytes ({exc.reason})") from None
    except (ValueError, RecursionError) as exc:
        raise RequestError(400, "body", f"body must be a JSON object, got invalid JSON ({_short(str(exc))})") from None
    if not isinstance(body, dict):
        raise RequestError(400, "body", f"body must be a JSON object with {list(FIELDS)}, got {type(body).__name__} "
                                        f"{_short(body)}")
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        raise RequestError(400, unknown[0], f"unknown field {_short(unknown[0])}; allowed fields: {list(FIELDS)}")
    if "prompt_ids" not in body:
        raise RequestError(400, "prompt_ids", "prompt_ids is required: a list of int token ids in "
                                              f"[0, {vocab_size - 1}]")
    try:
        prompt = check_prompt(body["prompt_ids"], vocab_size, max_positions)
    except (TypeError, ValueError) as exc:
        raise RequestError(400, "prompt_ids", str(exc)) from None
    try:
        budget = check_budget(len(prompt), body.get("max_new_tokens", DEFAULT_MAX_NEW_TOKENS), max_positions)
    except (TypeError, ValueError) as exc:
        raise RequestError(400, "max_new_tokens", str(exc)) from None
    return prompt, budget
