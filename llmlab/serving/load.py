"""A loopback client for the kit's server: one request (raw or JSON) and a Poisson load generator."""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from llmlab import validate
from llmlab.serving.latency import latency_summary

LOOPBACK = "127.0.0.1"


def _host_port(url: str) -> tuple[str, int]:
    """(host, port) of a loopback http URL; ValueError for anything else."""
    host, _, port = url.removeprefix("http://").partition(":")
    if host != LOOPBACK or not port.isdigit():
        raise ValueError(f"url must be http://{LOOPBACK}:<port> (loopback only), got {url!r}")
    return host, int(port)


def request(url: str, method: str, path: str, body: bytes | None = None, timeout: float = 120.0,
            headers: dict[str, str] | None = None) -> tuple[int, dict]:
    """Send one HTTP request to a loopback server; returns (status, JSON reply) whatever the status."""
    host, port = _host_port(url)
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(method, path, body, {"Content-Type": "application/json", **(headers or {})})
        resp = conn.getresponse()
        raw = resp.read()
    finally:
        conn.close()
    try:
        return resp.status, json.loads(raw or b"{}")
    except ValueError:  # not JSON: http.server's own error pages
        return resp.status, {"error": raw.decode("utf-8", "replace")[:200]}


def post_generate(url: str, prompt_ids: Sequence[int], max_new_tokens: int, timeout: float = 120.0) -> dict:
    """POST one request to a loopback server; returns its JSON reply (raises RuntimeError on an HTTP error)."""
    status, body = request(url, "POST", "/generate", json.dumps({"prompt_ids": list(prompt_ids),
                                                                 "max_new_tokens": max_new_tokens}).encode(),
                           timeout)
    if status != 200:
        raise RuntimeError(f"server answered {status}: {body.get('error')}")
    return body


@dataclass
class LoadResult:
    """What a load run measured: per-request send time, client latency and server TTFT, and the tokens made."""

    sent: list[float]
    latency: list[float]
    ttft: list[float]
    tpot: list[float]
    tokens: list[int]
    wall: float

    @property
    def throughput(self) -> float:
        """Output tokens per second from the first send to the last reply."""
        return sum(self.tokens) / self.wall

    def summary(self) -> dict[str, float]:
        """Throughput, and latency and TTFT mean/p50/p90."""
        out = {"requests": len(self.tokens), "tokens": sum(self.tokens), "wall s": self.wall,
               "throughput tok/s": self.throughput}
        out.update({f"latency {k}": v for k, v in latency_summary(self.latency, (50, 90)).items()})
        out.update({f"ttft {k}": v for k, v in latency_summary(self.ttft, (50, 90)).items()})
        return out


def run_load(url: str, prompts: Sequence[Sequence[int]], max_new_tokens: Sequence[int], rate: float, seed: int = 0,
             timeout: float = 300.0) -> LoadResult:
    """Send each prompt at Poisson arrival times (`rate` per second, one thread each) and wait for every reply."""
    validate.non_empty("prompts", prompts)
    validate.same_length(("prompts", "max_new_tokens"), prompts, max_new_tokens)
    validate.number("rate", rate, 0, low_open=True)
    gaps = np.random.default_rng(seed).exponential(1 / rate, size=len(prompts))
    offsets = np.cumsum(gaps) - gaps[0]  # the first request goes at once
    n = len(prompts)
    results: list[dict | Exception | None] = [None] * n
    sent, ends = [0.0] * n, [0.0] * n
    start = time.perf_counter()

    def worker(i: int) -> None:
        time.sleep(max(0.0, start + offsets[i] - time.perf_counter()))
        sent[i] = time.perf_counter()
        try:
            results[i] = post_generate(url, prompts[i], max_new_tokens[i], timeout)
        except Exception as exc:  # noqa: BLE001 - reported below with the request's index
            results[i] = exc
        ends[i] = time.perf_counter()

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=max(0.0, start + timeout - time.perf_counter()))
    failed = [(i, r) for i, r in enumerate(results) if not isinstance(r, dict)]
    if failed:
        raise RuntimeError(f"{len(failed)} of {n} requests failed or timed out; first: request {failed[0][0]}: "
                           f"{failed[0][1]!r}")
    return LoadResult(sent=[s - start for s in sent], latency=[e - s for s, e in zip(sent, ends)],
                      ttft=[r["ttft"] for r in results], tpot=[r["tpot"] for r in results],
                      tokens=[len(r["tokens"]) for r in results], wall=max(ends) - start)
