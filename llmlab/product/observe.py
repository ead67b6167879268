"""Observability: JSONL spans of one request through the pipeline, metrics over many requests, and a drift check
between two versions of a prompt (AI Engineering ch. 10, "monitoring and observability")."""

from __future__ import annotations

import json
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from llmlab import validate
from llmlab.evaluation.stats import Interval, bootstrap_ci
from llmlab.prompting import is_refusal


class Tracer:
    """Collects spans {'trace_id', 'span', 'start', 'seconds', **attributes}; a span that raises records its error."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter):
        self.clock, self.spans = clock, []

    @contextmanager
    def span(self, name: str, trace_id: str, **attributes):
        """Time the block as one span of trace_id; the yielded dict takes more attributes."""
        validate.text("name", name)
        record = {"trace_id": trace_id, "span": name, **attributes}
        start = self.clock()
        try:
            yield record
        except Exception as exc:
            record["error"] = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            record["start"], record["seconds"] = start, self.clock() - start
            self.spans.append(record)

    def jsonl(self) -> str:
        """The spans as JSON lines."""
        return "".join(json.dumps(s, default=str) + "\n" for s in self.spans)

    def write(self, path: str | Path) -> Path:
        """Append the spans to a JSONL file."""
        path = Path(path)
        with path.open("a", encoding="utf-8") as f:
            f.write(self.jsonl())
        return path


def request_metrics(seconds: Sequence[float], replies: Sequence[str]) -> dict[str, float]:
    """Latency p50/p95/p99 (s), refusal rate and mean reply length in words over many requests."""
    validate.non_empty("seconds", seconds)
    validate.same_length(("seconds", "replies"), seconds, replies)
    p50, p95, p99 = np.percentile(np.asarray(seconds, dtype=np.float64), [50, 95, 99])
    return {"p50_s": float(p50), "p95_s": float(p95), "p99_s": float(p99),
            "refusal_rate": float(np.mean([is_refusal(r) for r in replies])),
            "mean_words": float(np.mean([len(r.split()) for r in replies]))}


def per_request(replies: Sequence[str]) -> dict[str, list[float]]:
    """Per-request values whose means are the drift metrics: refusal (0/1) and length in words."""
    return {"refusal_rate": [float(is_refusal(r)) for r in replies],
            "mean_words": [float(len(r.split())) for r in replies]}


def drift(before: Sequence[float], after: Sequence[float], seed: int = 0) -> tuple[Interval, Interval, bool]:
    """(interval before, interval after, drifted): drifted when the two bootstrap intervals of the mean do not
    overlap, a conservative test that flags only clear changes."""
    a, b = bootstrap_ci(before, seed=seed), bootstrap_ci(after, seed=seed)
    return a, b, bool(a.high < b.low or b.high < a.low)
