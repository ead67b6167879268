"""A small continuous-batching server on the kit's own decode loop, served over HTTP on loopback, and a load generator.

Requests join the running batch between decode steps (after their own prefill) and leave it when done: the
scheduling of vLLM, SGLang and TGI, without their paged KV memory, chunked prefill or fused kernels. With
`max_batch=1` the same server is sequential (first come, first served).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import torch

from llmlab import validate
from llmlab.attention import LlamaWeights
from llmlab.kv_cache import KVCache, prefill
from llmlab.serving.engine import ragged_decode_step
from llmlab.serving.latency import latency_summary
from llmlab.serving.prefix_cache import PrefixCache

LOOPBACK = "127.0.0.1"


@dataclass
class Request:
    """One generation request and its timestamps (time.perf_counter seconds)."""

    prompt: list[int]
    max_new_tokens: int
    received: float = field(default_factory=time.perf_counter)
    tokens: list[int] = field(default_factory=list)
    first_token_at: float | None = None
    finished_at: float | None = None
    cache: KVCache | None = None
    done: threading.Event = field(default_factory=threading.Event)

    def timings(self) -> dict[str, float]:
        """Server-side TTFT (queueing included), total latency and TPOT, seconds."""
        ttft = self.first_token_at - self.received
        total = self.finished_at - self.received
        tpot = (self.finished_at - self.first_token_at) / max(len(self.tokens) - 1, 1)
        return {"ttft": ttft, "latency": total, "tpot": tpot}


class ContinuousBatcher:
    """The scheduler: admit waiting requests (prefill each), run one ragged decode step for all, retire finished."""

    def __init__(self, w: LlamaWeights, max_batch: int = 16, eos_token_id: int | None = None,
                 prefix_cache: PrefixCache | None = None):
        if not isinstance(w, LlamaWeights):
            raise TypeError(f"w must be LlamaWeights (attention.from_model), got {type(w).__name__}")
        self.w = w
        self.max_batch = validate.positive_int("max_batch", max_batch)
        self.eos_token_id = eos_token_id
        self.prefix_cache = prefix_cache
        self.waiting: list[Request] = []
        self.active: list[Request] = []
        self.steps = 0
        self.batch_sizes: list[int] = []
        self._lock = threading.Condition()

    def submit(self, prompt: Sequence[int], max_new_tokens: int) -> Request:
        """Queue a request (token ids); wait on `request.done`."""
        validate.non_empty("prompt", prompt)
        validate.positive_int("max_new_tokens", max_new_tokens)
        if len(prompt) + max_new_tokens > self.w.max_positions:
            raise ValueError(f"prompt + max_new_tokens must be <= {self.w.max_positions}, got "
                             f"{len(prompt) + max_new_tokens}")
        req = Request([int(t) for t in prompt], max_new_tokens)
        with self._lock:
            self.waiting.append(req)
            self._lock.notify()
        return req

    def _emit(self, req: Request, token: int) -> bool:
        """Record a new token; returns True (and finishes the request) when it is done."""
        now = time.perf_counter()
        if req.first_token_at is None:
            req.first_token_at = now
        req.tokens.append(token)
        if len(req.tokens) >= req.max_new_tokens or token == self.eos_token_id:
            req.finished_at = now
            req.cache = None
            req.done.set()
            return True
        return False

    @torch.inference_mode()
    def _admit(self, req: Request) -> None:
        """Prefill one request (from the prefix cache when its prompt starts with a stored prefix)."""
        ids = torch.tensor([req.prompt], device=self.w.embed.device)
        if self.prefix_cache is not None:
            req.cache, logits, _ = self.prefix_cache.start(ids, req.max_new_tokens)
        else:
            req.cache = KVCache.for_weights(self.w, 1, ids.shape[1] + req.max_new_tokens)
            logits = prefill(self.w, ids, req.cache)
        if not self._emit(req, int(logits[0].argmax())):
            self.active.append(req)

    def step(self) -> bool:
        """Admit what fits, then one decode step over the active batch; False when there was nothing to do."""
        with self._lock:
            joining = self.waiting[:self.max_batch - len(self.active)]
            del self.waiting[:len(joining)]
        for req in joining:
            self._admit(req)
        if not self.active:
            return bool(joining)
        tokens = torch.tensor([r.tokens[-1] for r in self.active], device=self.w.embed.device)
        logits = ragged_decode_step(self.w, tokens, [r.cache for r in self.active])
        self.steps += 1
        self.batch_sizes.append(len(self.active))
        next_tokens = logits.argmax(-1).tolist()
        self.active = [r for r, t in zip(self.active, next_tokens) if not self._emit(r, t)]
        return True

    def run(self, stop: threading.Event) -> None:
        """Step until `stop` is set, sleeping on the queue when idle."""
        while not stop.is_set():
            if not self.step():
                with self._lock:
                    if not self.waiting:
                        self._lock.wait(timeout=0.05)


def _handler(batcher: ContinuousBatcher, timeout: float):
    """An HTTP handler class: POST /generate {"prompt_ids": [...], "max_new_tokens": n} → tokens and timings."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep notebooks and tests quiet
            pass

        def _reply(self, code: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self):
            if self.path != "/generate":
                return self._reply(404, {"error": f"unknown path {self.path}; use POST /generate"})
            try:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                req = batcher.submit(body["prompt_ids"], body.get("max_new_tokens", 16))
            except (ValueError, TypeError, KeyError) as exc:
                return self._reply(400, {"error": f"{type(exc).__name__}: {exc}"})
            if not req.done.wait(timeout):
                return self._reply(504, {"error": f"not finished within {timeout} s"})
            self._reply(200, {"tokens": req.tokens, **req.timings()})

    return Handler


@contextlib.contextmanager
def serve(w: LlamaWeights, max_batch: int = 16, eos_token_id: int | None = None,
          prefix_cache: PrefixCache | None = None, port: int = 0, timeout: float = 120.0) -> Iterator[str]:
    """Run a ContinuousBatcher behind an HTTP server on 127.0.0.1 (a free port by default); yields its base URL."""
    validate.integer("port", port, low=0, high=65535)
    validate.number("timeout", timeout, 0, low_open=True)
    batcher = ContinuousBatcher(w, max_batch, eos_token_id, prefix_cache)
    httpd = ThreadingHTTPServer((LOOPBACK, port), _handler(batcher, timeout))
    httpd.daemon_threads = True
    stop = threading.Event()
    threads = [threading.Thread(target=batcher.run, args=(stop,), daemon=True),
               threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)]
    for t in threads:
        t.start()
    try:
        yield f"http://{LOOPBACK}:{httpd.server_address[1]}"
    finally:
        stop.set()
        httpd.shutdown()
        httpd.server_close()
        for t in threads:
            t.join(timeout=5)


def post_generate(url: str, prompt_ids: Sequence[int], max_new_tokens: int, timeout: float = 120.0) -> dict:
    """POST one request to a loopback server; returns its JSON reply (raises RuntimeError on an HTTP error)."""
    host, port = url.removeprefix("http://").split(":")
    if host != LOOPBACK:
        raise ValueError(f"url must be on {LOOPBACK} (loopback only), got {url!r}")
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        conn.request("POST", "/generate", json.dumps({"prompt_ids": list(prompt_ids),
                                                      "max_new_tokens": max_new_tokens}),
                     {"Content-Type": "application/json"})
        resp = conn.getresponse()
        body = json.loads(resp.read())
    finally:
        conn.close()
    if resp.status != 200:
        raise RuntimeError(f"server answered {resp.status}: {body.get('error')}")
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
