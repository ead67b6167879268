"""A small continuous-batching server on the kit's own decode loop, served over HTTP on loopback.

Requests join the running batch between decode steps (after their own prefill) and leave it when done: the
scheduling of vLLM, SGLang and TGI, without their paged KV memory, chunked prefill or fused kernels. With
`max_batch=1` the same server is sequential (first come, first served).

What it promises, as a serving engine must:
- validate at the door (`protocol`): a bad request gets a 4xx naming the field, and never reaches the engine;
- fail one request, not the engine: an exception while serving a request fails that request only (500, its cache
  freed); if the batcher loop itself ever stops, every request gets a 503 and GET /health says so;
- push back: a bounded waiting queue, a 429 at once past it; a client that disconnects has its request aborted;
- drain: leaving `serve()` lets in-flight requests finish (up to `drain_timeout`), then fails the rest with a reply.
"""

from __future__ import annotations

import contextlib
import json
import select
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import torch

from llmlab import validate
from llmlab.attention import LlamaWeights
from llmlab.kv_cache import KVCache, prefill
from llmlab.serving import protocol
from llmlab.serving.engine import ragged_decode_step
from llmlab.serving.load import LOOPBACK, LoadResult, post_generate, request, run_load  # noqa: F401 - re-exported
from llmlab.serving.prefix_cache import PrefixCache

CLIENT_GONE = 499  # nginx's code for "client closed the request": recorded, never sent


class EngineUnavailable(Exception):
    """The engine takes no request now: it is shutting down, or its loop stopped (HTTP 503)."""


class QueueFull(Exception):
    """The waiting queue is at its bound (HTTP 429)."""


@dataclass
class Request:
    """One generation request, its timestamps (time.perf_counter seconds) and, once done, its HTTP status."""

    prompt: list[int]
    max_new_tokens: int
    received: float = field(default_factory=time.perf_counter)
    tokens: list[int] = field(default_factory=list)
    first_token_at: float | None = None
    finished_at: float | None = None
    cache: KVCache | None = None
    done: threading.Event = field(default_factory=threading.Event)
    status: int = 0
    error: str | None = None
    cancelled: bool = False

    def timings(self) -> dict[str, float]:
        """Server-side TTFT (queueing included), total latency and TPOT, seconds."""
        ttft = self.first_token_at - self.received
        total = self.finished_at - self.received
        tpot = (self.finished_at - self.first_token_at) / max(len(self.tokens) - 1, 1)
        return {"ttft": ttft, "latency": total, "tpot": tpot}


class ContinuousBatcher:
    """The scheduler: admit waiting requests (prefill each), run one ragged decode step for all, retire finished."""

    def __init__(self, w: LlamaWeights, max_batch: int = 16, eos_token_id: int | None = None,
                 prefix_cache: PrefixCache | None = None, max_waiting: int = 64):
        if not isinstance(w, LlamaWeights):
            raise TypeError(f"w must be LlamaWeights (attention.from_model), got {type(w).__name__}")
        self.w = w
        self.max_batch = validate.positive_int("max_batch", max_batch)
        self.max_waiting = validate.positive_int("max_waiting", max_waiting)
        self.eos_token_id = eos_token_id
        self.prefix_cache = prefix_cache
        self.waiting: list[Request] = []
        self.admitting: list[Request] = []  # out of the queue, being prefilled
        self.active: list[Request] = []
        self.steps = 0
        self.batch_sizes: list[int] = []
        self.counts = {"completed": 0, "failed": 0, "aborted": 0, "rejected": 0}
        self.crashed: str | None = None
        self.closing = False
        self._loop: threading.Thread | None = None
        self._lock = threading.Condition()  # an RLock inside: _finish may run under it

    def submit(self, prompt: Sequence[int], max_new_tokens: int) -> Request:
        """Queue a request (int token ids in [0, vocab)); wait on `request.done`, then read `request.status`."""
        prompt = protocol.check_prompt(prompt, self.w.vocab_size, self.w.max_positions, "prompt")
        protocol.check_budget(len(prompt), max_new_tokens, self.w.max_positions)
        with self._lock:
            if not self.alive:
                raise EngineUnavailable(f"the batcher loop stopped ({self.crashed or 'not running'})")
            if self.closing:
                raise EngineUnavailable("the server is shutting down")
            if len(self.waiting) >= self.max_waiting:
                raise QueueFull(f"the waiting queue is full ({self.max_waiting} requests); retry later")
            req = Request(prompt, max_new_tokens)
            self.waiting.append(req)
            self._lock.notify_all()
        return req

    @property
    def alive(self) -> bool:
        """False once the loop has stopped by an exception, or when a started loop thread has ended."""
        return self.crashed is None and (self._loop is None or self._loop.is_alive())

    def count(self, what: str) -> None:
        """Add one to a counter (completed, failed, aborted, rejected)."""
        with self._lock:
            self.counts[what] += 1

    def health(self) -> dict:
        """Status ('ok', 'draining' or 'down'), queue and batch sizes, and request counts."""
        with self._lock:
            status = "down" if not self.alive else "draining" if self.closing else "ok"
            return {"status": status, "error": self.crashed, "waiting": len(self.waiting),
                    "active": len(self.active), **self.counts}

    def _finish(self, req: Request, status: int, error: str | None = None) -> None:
        """Close a request: record its status, free its cache, wake whoever waits on it."""
        with self._lock:
            if req.done.is_set():
                return
            req.status, req.error, req.cache = status, error, None
            req.finished_at = time.perf_counter()
            self.counts["completed" if status == 200 else "aborted" if status == CLIENT_GONE else "failed"] += 1
            req.done.set()
            self._lock.notify_all()

    def abort(self, req: Request) -> None:
        """Cancel a request whose client left: out of the queue now, out of the batch before the next step."""
        with self._lock:
            req.cancelled = True
            if req in self.waiting:
                self.waiting.remove(req)
                self._finish(req, CLIENT_GONE, "aborted")

    def fail_all(self, status: int, error: str) -> None:
        """Finish every waiting and running request with an error reply."""
        with self._lock:
            for req in self.waiting + self.admitting + self.active:
                self._finish(req, status, error)
            self.waiting, self.admitting, self.active = [], [], []

    def _emit(self, req: Request, token: int) -> bool:
        """Record a new token; returns True (and finishes the request) when it is done."""
        if req.first_token_at is None:
            req.first_token_at = time.perf_counter()
        req.tokens.append(token)
        if len(req.tokens) >= req.max_new_tokens or token == self.eos_token_id:
            self._finish(req, 200)
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

    def _greedy(self, reqs: list[Request]) -> list[int]:
        """One ragged decode step over `reqs`; their greedy next tokens."""
        tokens = torch.tensor([r.tokens[-1] for r in reqs], device=self.w.embed.device)
        return ragged_decode_step(self.w, tokens, [r.cache for r in reqs]).argmax(-1).tolist()

    def _next_tokens(self) -> list[int | None]:
        """Next token of every active request; None where serving that request raised (it is failed with a 500)."""
        lengths = [r.cache.length for r in self.active]
        try:
            return self._greedy(self.active)
        except Exception:  # noqa: BLE001 - find the request at fault: roll every cache back, then one at a time
            for req, n in zip(self.active, lengths):
                req.cache.truncate(n)
        out: list[int | None] = []
        for req in self.active:
            try:
                out.append(self._greedy([req])[0])
            except Exception as exc:  # noqa: BLE001 - this request alone fails
                self._finish(req, 500, f"decode failed: {type(exc).__name__}: {exc}")
                out.append(None)
        return out

    def step(self) -> bool:
        """Drop aborted requests, admit what fits, one decode step over the batch; False when there was nothing."""
        with self._lock:
            for req in [r for r in self.active if r.cancelled]:
                self.active.remove(req)
                self._finish(req, CLIENT_GONE, "aborted")
            joining = self.waiting[:self.max_batch - len(self.active)]
            del self.waiting[:len(joining)]
            self.admitting = joining
        for req in joining:
            try:
                self._admit(req)
            except Exception as exc:  # noqa: BLE001 - this request alone fails
                self._finish(req, 500, f"prefill failed: {type(exc).__name__}: {exc}")
        self.admitting = []
        if not self.active:
            return bool(joining)
        next_tokens = self._next_tokens()
        self.steps += 1
        self.batch_sizes.append(len(self.active))
        self.active = [r for r, t in zip(self.active, next_tokens) if t is not None and not self._emit(r, t)]
        return True

    def run(self, stop: threading.Event) -> None:
        """Step until `stop` is set, sleeping on the queue when idle; if a step raises, fail everything (503)."""
        try:
            while not stop.is_set():
                if not self.step():
                    with self._lock:
                        if not self.waiting:
                            self._lock.wait(timeout=0.05)
        except Exception as exc:  # noqa: BLE001 - the loop must not die silently
            with self._lock:
                self.crashed = f"{type(exc).__name__}: {exc}"
            self.fail_all(503, f"the batcher loop stopped ({self.crashed})")

    def start(self, stop: threading.Event) -> threading.Thread:
        """Run the loop in a daemon thread; `alive` watches it."""
        self._loop = threading.Thread(target=self.run, args=(stop,), daemon=True, name="batcher")
        self._loop.start()
        return self._loop

    def drain(self, timeout: float) -> None:
        """Refuse new requests; wait up to `timeout` s for waiting and running ones to finish."""
        deadline = time.monotonic() + timeout
        with self._lock:
            self.closing = True
            while (self.waiting or self.admitting or self.active) and self.alive and time.monotonic() < deadline:
                self._lock.wait(timeout=min(0.05, max(deadline - time.monotonic(), 0.0)))


class _HTTPServer(ThreadingHTTPServer):
    """A thread per connection; a listen backlog for many clients at once (the default of 5 resets connections)."""

    request_queue_size = 256
    daemon_threads = True


def _handler(batcher: ContinuousBatcher, timeout: float, max_body_bytes: int):
    """An HTTP handler class: POST /generate {"prompt_ids": [...], "max_new_tokens": n} → tokens; GET /health."""
    vocab, positions = batcher.w.vocab_size, batcher.w.max_positions

    class Handler(BaseHTTPRequestHandler):
        inflight = 0  # /generate requests not yet answered, for the drain
        inflight_lock = threading.Condition()
        timeout = 10.0  # seconds to wait on a client's socket (a body shorter than its Content-Length)

        def log_message(self, *args):  # keep notebooks and tests quiet
            pass

        def _reply(self, code: int, body: dict, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(body).encode()
            with contextlib.suppress(OSError):  # the client may be gone
                self.send_response(code)
                for key, value in {"Content-Type": "application/json", "Content-Length": str(len(data)),
                                   **(headers or {})}.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

        def _client_gone(self) -> bool:
            """True when the client has closed its end of the connection."""
            try:
                readable, _, _ = select.select([self.connection], [], [], 0)
                return bool(readable) and not self.connection.recv(1, socket.MSG_PEEK)
            except (OSError, ValueError):
                return True

        def do_GET(self):
            if self.path == "/health":
                health = batcher.health()
                return self._reply(200 if health["status"] == "ok" else 503, health)
            if self.path == "/generate":
                return self._reply(405, {"error": "use POST /generate", "field": "method"})
            self._reply(404, {"error": f"unknown path {self.path!r}; use POST /generate or GET /health",
                              "field": "path"})

        def _method_not_allowed(self):
            self._reply(405, {"error": f"use POST /generate or GET /health, got {self.command}", "field": "method"})

        do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _method_not_allowed

        def do_POST(self):
            if self.path != "/generate":
                batcher.count("rejected")
                return self._reply(404 if self.path != "/health" else 405,
                                   {"error": f"use POST /generate or GET /health, got POST {self.path!r}",
                                    "field": "path"})
            with Handler.inflight_lock:
                Handler.inflight += 1
            try:
                self._generate()
            finally:
                with Handler.inflight_lock:
                    Handler.inflight -= 1
                    Handler.inflight_lock.notify_all()

        def _generate(self) -> None:
            header = self.headers.get("Content-Length")
            try:
                length = protocol.check_content_length(header, max_body_bytes)
                try:
                    raw = self.rfile.read(length)
                except OSError:
                    raise protocol.RequestError(408, "body", f"body shorter than its Content-Length {length} "
                                                             f"after {self.timeout} s") from None
                prompt, budget = protocol.parse_generate(raw, vocab, positions)
            except protocol.RequestError as exc:
                batcher.count("rejected")
                if exc.status == 413:  # read what fits a small buffer, so closing does not reset the reply
                    with contextlib.suppress(OSError):
                        self.rfile.read(min(int(header), 4 * max_body_bytes))
                return self._reply(exc.status, exc.body())
            try:
                req = batcher.submit(prompt, budget)
            except QueueFull as exc:
                return self._reply(429, {"error": str(exc), "field": "queue"}, {"Retry-After": "1"})
            except EngineUnavailable as exc:
                return self._reply(503, {"error": str(exc), "field": "server"})
            while not req.done.wait(0.05):
                if self._client_gone():
                    return batcher.abort(req)
                if time.perf_counter() - req.received > timeout:
                    batcher.abort(req)
                    return self._reply(504, {"error": f"not finished within {timeout} s", "field": "server"})
            if req.status != 200:
                return self._reply(req.status, {"error": req.error, "field": "server"})
            self._reply(200, {"tokens": req.tokens, **req.timings()})

    return Handler


@contextlib.contextmanager
def serve(w: LlamaWeights, max_batch: int = 16, eos_token_id: int | None = None,
          prefix_cache: PrefixCache | None = None, port: int = 0, timeout: float = 120.0, max_waiting: int = 64,
          max_body_bytes: int = 1 << 20, drain_timeout: float = 30.0) -> Iterator[str]:
    """Run a ContinuousBatcher behind an HTTP server on 127.0.0.1 (a free port by default); yields its base URL.

    On leaving, new requests get 503, in-flight ones have `drain_timeout` s to finish, the rest get a 503 reply.
    """
    validate.integer("port", port, low=0, high=65535)
    validate.number("timeout", timeout, 0, low_open=True)
    validate.positive_int("max_body_bytes", max_body_bytes)
    validate.number("drain_timeout", drain_timeout, 0)
    batcher = ContinuousBatcher(w, max_batch, eos_token_id, prefix_cache, max_waiting)
    handler = _handler(batcher, timeout, max_body_bytes)
    httpd = _HTTPServer((LOOPBACK, port), handler)
    stop = threading.Event()
    loop = batcher.start(stop)
    web = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    web.start()
    try:
        yield f"http://{LOOPBACK}:{httpd.server_address[1]}"
    finally:
        batcher.drain(drain_timeout)
        stop.set()
        loop.join(timeout=30)
        batcher.fail_all(503, "the server shut down before this request finished")
        with handler.inflight_lock:  # every /generate handler has written its reply
            handler.inflight_lock.wait_for(lambda: handler.inflight == 0, timeout=10)
        httpd.shutdown()
        httpd.server_close()
        web.join(timeout=5)
