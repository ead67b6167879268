"""A fuzz-and-load driver for the kit's server: many clients send good requests, every bad kind, and random bodies.

Random bodies come from a seeded generator (numpy), built so that each is invalid by construction (a truncated
object, bytes that cannot start JSON, a prompt with one bad item planted in it), so "every bad one gets a 4xx" is
a sound test. Every good request's tokens are compared with the same request served alone (`expected`).
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from llmlab import validate
from llmlab.serving.load import request

BAD_KINDS = ("out_of_vocab", "id_equals_vocab", "negative_id", "float_ids", "bool_id", "nested_list",
             "string_prompt", "null_prompt", "missing_prompt", "empty_prompt", "zero_budget", "float_budget",
             "over_cache", "unknown_field", "not_an_object", "bad_json", "nan", "deep_nesting", "oversize",
             "wrong_path", "random_json", "random_bytes", "truncated")


def _random_atom(rng: np.random.Generator, vocab: int) -> Any:
    """A random JSON value that is never a valid token id."""
    pick = int(rng.integers(8))
    return [float(rng.integers(vocab)) + 0.5, int(rng.integers(max(vocab, 2**31), 2**62)), -int(rng.integers(1, 2**40)),
            bool(rng.integers(2)), None, "".join(chr(int(c)) for c in rng.integers(32, 0x2FF, rng.integers(0, 9))),
            [int(rng.integers(vocab))], {"id": int(rng.integers(vocab))}][pick]


def random_bad_body(rng: np.random.Generator, vocab: int) -> dict:
    """A random request object with one bad value planted (a token id, max_new_tokens, or an extra field)."""
    prompt: list[Any] = rng.integers(0, vocab, int(rng.integers(1, 12))).tolist()
    body: dict[str, Any] = {"prompt_ids": prompt, "max_new_tokens": int(rng.integers(1, 5))}
    where = int(rng.integers(3))
    if where == 0:
        prompt[int(rng.integers(len(prompt)))] = _random_atom(rng, vocab)
    elif where == 1:
        body["max_new_tokens"] = _random_atom(rng, vocab) if rng.integers(2) else -int(rng.integers(0, 100))
    else:
        body["x" + str(int(rng.integers(1000)))] = _random_atom(rng, vocab)
    return body


def bad_request(kind: str, rng: np.random.Generator, vocab: int, max_positions: int,
                max_body_bytes: int) -> tuple[str, bytes]:
    """(path, body) of one bad request of `kind` (one of BAD_KINDS)."""
    validate.one_of("kind", kind, BAD_KINDS)
    ids = rng.integers(0, vocab, 4).tolist()
    dumps = {
        "out_of_vocab": lambda: {"prompt_ids": [1_000_000_000]},
        "id_equals_vocab": lambda: {"prompt_ids": ids[:1] + [vocab]},
        "negative_id": lambda: {"prompt_ids": ids[:2] + [-1]},
        "float_ids": lambda: {"prompt_ids": [1.5, 2.0]},
        "bool_id": lambda: {"prompt_ids": [True, 5]},
        "nested_list": lambda: {"prompt_ids": [ids[:2], ids[2:]]},
        "string_prompt": lambda: {"prompt_ids": "hello"},
        "null_prompt": lambda: {"prompt_ids": None},
        "missing_prompt": lambda: {"max_new_tokens": 3},
        "empty_prompt": lambda: {"prompt_ids": []},
        "zero_budget": lambda: {"prompt_ids": ids, "max_new_tokens": 0},
        "float_budget": lambda: {"prompt_ids": ids, "max_new_tokens": 2.0},
        "over_cache": lambda: {"prompt_ids": ids, "max_new_tokens": max_positions},
        "unknown_field": lambda: {"prompt_ids": ids, "temperature": 0.7},
        "not_an_object": lambda: ids,
        "random_json": lambda: random_bad_body(rng, vocab),
    }
    if kind in dumps:
        return "/generate", json.dumps(dumps[kind]()).encode()
    good = json.dumps({"prompt_ids": ids, "max_new_tokens": 2}).encode()
    if kind == "bad_json":
        return "/generate", b'{"prompt_ids": [1, 2,'
    if kind == "nan":
        return "/generate", b'{"prompt_ids": [1, NaN]}'
    if kind == "deep_nesting":
        depth = min(max_body_bytes // 2, 100_000)
        return "/generate", b"[" * depth + b"]" * depth
    if kind == "oversize":
        return "/generate", b'{"prompt_ids": [' + b"1, " * (max_body_bytes // 3) + b"1]}"
    if kind == "wrong_path":
        return "/generate/" + "x" * int(rng.integers(1, 8)), good
    if kind == "truncated":
        return "/generate", good[:int(rng.integers(1, len(good)))]
    noise = rng.integers(0, 256, int(rng.integers(1, 200)), dtype=np.uint8).tobytes()  # random_bytes
    return "/generate", b"\x00" + noise  # NUL cannot start a JSON text


@dataclass
class FuzzReport:
    """What one fuzz-and-load run saw; `lost` counts good requests not served right and requests never answered."""

    sent: int = 0
    good_sent: int = 0
    good_completed: int = 0
    bad_sent: int = 0
    bad_rejected: int = 0
    lost: int = 0
    health_checks: int = 0
    unhealthy: int = 0
    statuses: Counter = field(default_factory=Counter)
    kinds: Counter = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    wall: float = 0.0

    def counts(self) -> dict[str, int]:
        """The headline counts."""
        return {"sent": self.sent, "good completed": self.good_completed, "bad rejected": self.bad_rejected,
                "lost": self.lost, "health checks failed": self.unhealthy}


def fuzz_and_load(url: str, good: Sequence[tuple[list[int], int]], expected: Sequence[list[int]], vocab: int,
                  max_positions: int, max_body_bytes: int, clients: int = 64, per_client: int = 4,
                  bad_share: float = 0.5, seed: int = 0, timeout: float = 60.0) -> FuzzReport:
    """`clients` threads each send `per_client` requests: a `bad_share` of them bad (cycling over BAD_KINDS), the
    others drawn from `good` (prompt, max_new_tokens) and checked against `expected` tokens; /health polled meanwhile.
    """
    validate.non_empty("good", good)
    validate.same_length(("good", "expected"), good, expected)
    validate.positive_int("clients", clients)
    validate.positive_int("per_client", per_client)
    validate.probability("bad_share", bad_share)
    report, lock, stop = FuzzReport(), threading.Lock(), threading.Event()

    def record(ok: bool, kind: str, bad: bool, status: int | None, problem: str) -> None:
        with lock:
            report.sent += 1
            report.kinds[kind if bad else "good"] += 1
            report.bad_sent += bad
            report.good_sent += not bad
            report.statuses[status] += 1
            if ok:
                report.bad_rejected += bad
                report.good_completed += not bad
            else:
                report.lost += 1
                report.problems.append(problem)

    def client(index: int) -> None:
        rng = np.random.default_rng([seed, index])
        for k in range(per_client):
            j = index * per_client + k  # request j is bad when the running count of bad ones steps up
            bad = int((j + 1) * bad_share) > int(j * bad_share)
            if bad:
                kind = BAD_KINDS[int(j * bad_share) % len(BAD_KINDS)]
                path, body = bad_request(kind, rng, vocab, max_positions, max_body_bytes)
            else:
                pick = int(rng.integers(len(good)))
                kind, path = "good", "/generate"
                body = json.dumps({"prompt_ids": good[pick][0], "max_new_tokens": good[pick][1]}).encode()
            try:
                status, reply = request(url, "POST", path, body, timeout)
            except Exception as exc:  # noqa: BLE001 - no reply at all: lost
                record(False, kind, bad, None, f"{kind}: no reply ({type(exc).__name__}: {exc})")
                continue
            if bad:
                ok = 400 <= status < 500 and bool(reply.get("error")) and bool(reply.get("field"))
            else:
                ok = status == 200 and reply.get("tokens") == expected[pick]
            record(ok, kind, bad, status, f"{kind} {body[:60]!r}: {status} {str(reply)[:120]}")

    def monitor() -> None:
        while not stop.is_set():
            try:
                healthy = request(url, "GET", "/health", timeout=timeout)[0] == 200
            except Exception:  # noqa: BLE001 - no reply is unhealthy
                healthy = False
            with lock:
                report.health_checks += 1
                report.unhealthy += not healthy
            stop.wait(0.1)

    start = time.perf_counter()
    watcher = threading.Thread(target=monitor, daemon=True)
    watcher.start()
    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=max(0.0, start + timeout - time.perf_counter()))
    stop.set()
    watcher.join(timeout=timeout)
    report.wall = time.perf_counter() - start
    unfinished = clients * per_client - report.sent
    if unfinished:
        report.lost += unfinished
        report.problems.append(f"{unfinished} requests not finished within {timeout} s")
    return report
