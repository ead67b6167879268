"""llmlab.serving.server: the continuous-batching server on loopback (tiny model, bounded and fast)."""

import json
import socket
import threading
import time

import pytest
import torch

from llmlab import attention, kv_cache
from llmlab.kit import fixtures
from llmlab.serving import load, prefix_cache, server


@pytest.fixture(scope="module")
def w():
    return attention.from_model(fixtures.tiny_model())


def _prompts(n: int):
    gen = torch.Generator().manual_seed(0)
    return [torch.randint(0, 259, (int(k),), generator=gen).tolist() for k in torch.randint(2, 9, (n,), generator=gen)]


def test_batcher_gives_the_same_tokens_as_generate_and_batches(w):
    batcher = server.ContinuousBatcher(w, max_batch=3)
    prompts, lengths = _prompts(5), [4, 7, 2, 5, 1]
    reqs = [batcher.submit(p, n) for p, n in zip(prompts, lengths)]
    for _ in range(50):
        if not batcher.step():
            break
    for req, p, n in zip(reqs, prompts, lengths):
        assert req.done.is_set() and req.tokens == kv_cache.generate(w, torch.tensor([p]), n)[0].tolist()
    assert max(batcher.batch_sizes) == 3 and len(batcher.active) == 0


def test_server_on_loopback_under_poisson_load(w):
    prompts = _prompts(8)
    with server.serve(w, max_batch=4, timeout=20) as url:
        assert url.startswith("http://127.0.0.1:")
        result = server.run_load(url, prompts, [3] * 8, rate=100.0, timeout=30)
        with pytest.raises(RuntimeError, match="400"):
            server.post_generate(url, [], 3)
    assert result.tokens == [3] * 8 and result.throughput > 0
    assert all(t <= lat for t, lat in zip(result.ttft, result.latency))
    assert set(result.summary()) >= {"throughput tok/s", "latency p50", "ttft p90"}


def test_server_with_prefix_cache_matches_plain_generation(w):
    system = list(range(3, 20))
    cache = prefix_cache.PrefixCache(w)
    cache.add(system)
    with server.serve(w, max_batch=2, prefix_cache=cache, timeout=20) as url:
        got = server.post_generate(url, system + [30, 31], 4)["tokens"]
    assert got == kv_cache.generate(w, torch.tensor([system + [30, 31]]), 4)[0].tolist()


def test_bad_input(w):
    with pytest.raises(ValueError, match="max_batch"):
        server.ContinuousBatcher(w, max_batch=0)
    with pytest.raises(ValueError, match="loopback"):
        server.post_generate("http://10.0.0.1:80", [1], 1)
    with pytest.raises(ValueError, match="max_new_tokens"):
        server.ContinuousBatcher(w).submit([1], 0)


# --- issue 30: validation at the door, failure isolation, backpressure, aborts, draining -----------------------

def _status(url, method, path, body=None):
    raw = None if body is None else json.dumps(body).encode()
    return load.request(url, method, path, raw, timeout=20)


def _wait_for(url, cond, tries=400):
    """Poll GET /health until cond(health) holds (at most tries × 25 ms); returns the last health."""
    for _ in range(tries):
        health = _status(url, "GET", "/health")[1]
        if cond(health):
            return health
        time.sleep(0.025)
    raise AssertionError(f"never reached: {health}")


@pytest.mark.parametrize("prompt, words", [
    ([1_000_000_000], ["prompt_ids[0]", "[0, 258]", "1000000000"]),
    ([4, -1], ["prompt_ids[1]", "[0, 258]", "-1"]),
    ([1.5, 2.0], ["prompt_ids[0]", "int", "1.5"]),
])
def test_regression_bad_ids_get_a_400_and_the_server_keeps_serving(w, prompt, words):
    """Issue 30: these passed validation, raised IndexError in the batcher thread and killed it for everyone."""
    with server.serve(w, max_batch=2, timeout=20) as url:
        status, reply = _status(url, "POST", "/generate", {"prompt_ids": prompt, "max_new_tokens": 3})
        assert status == 400 and reply["field"] == "prompt_ids"
        assert all(word in reply["error"] for word in words), reply
        assert server.post_generate(url, [5, 6], 3)["tokens"] == kv_cache.generate(w, torch.tensor([[5, 6]]), 3)[
            0].tolist()
        status, health = _status(url, "GET", "/health")
    assert status == 200 and health["status"] == "ok" and health["rejected"] == 1 and health["completed"] == 1
    with pytest.raises((TypeError, ValueError), match=r"prompt\["):
        server.ContinuousBatcher(w).submit(prompt, 3)


def test_http_errors_are_4xx_with_a_field(w):
    with server.serve(w, max_batch=2, timeout=20, max_body_bytes=1000) as url:
        assert _status(url, "POST", "/nope", {"prompt_ids": [1]})[0] == 404
        assert _status(url, "GET", "/generate")[0] == 405
        assert _status(url, "GET", "/nope")[0] == 404
        status, reply = load.request(url, "POST", "/generate", b'{"prompt_ids": [' + b"1, " * 400 + b"1]}")
        assert status == 413 and reply["field"] == "body" and "1000" in reply["error"]


def _poison(monkeypatch, capacity: int, where: str, after: int = 0):
    """Make the engine raise for the one request whose KV cache has `capacity` positions (its prompt + budget)."""
    real = {"decode": server.ragged_decode_step, "prefill": server.prefill}[where]

    def faulty(w, x, caches):
        for cache in caches if where == "decode" else [caches]:
            if cache.capacity == capacity and cache.length >= after:
                raise RuntimeError("poisoned request")
        return real(w, x, caches)

    monkeypatch.setattr(server, "ragged_decode_step" if where == "decode" else "prefill", faulty)


@pytest.mark.parametrize("where", ["decode", "prefill"])
def test_an_exception_in_one_request_fails_only_that_request(w, monkeypatch, where):
    prompts, budgets = _prompts(4), [6, 6, 6, 6]
    budgets[2] = 40 - len(prompts[2])  # the poisoned one: a cache of 40 positions, unlike the others
    _poison(monkeypatch, 40, where, after=len(prompts[2]) + 2 if where == "decode" else 0)  # decode: 3rd step
    batcher = server.ContinuousBatcher(w, max_batch=4)
    reqs = [batcher.submit(p, n) for p, n in zip(prompts, budgets)]
    for _ in range(60):
        if not batcher.step():
            break
    bad = reqs[2]
    assert bad.status == 500 and "poisoned request" in bad.error and bad.cache is None
    assert len(bad.tokens) == (3 if where == "decode" else 0)
    for i in (0, 1, 3):  # the batch's other requests: done, and their tokens unchanged
        expected = kv_cache.generate(w, torch.tensor([prompts[i]]), budgets[i])[0].tolist()
        assert reqs[i].status == 200 and reqs[i].tokens == expected
    assert batcher.counts["failed"] == 1 and batcher.counts["completed"] == 3 and batcher.alive


def test_a_failed_request_gets_a_500_over_http_and_the_server_stays_healthy(w, monkeypatch):
    _poison(monkeypatch, 40, "decode")
    with server.serve(w, max_batch=4, timeout=20) as url:
        status, reply = _status(url, "POST", "/generate", {"prompt_ids": [1, 2], "max_new_tokens": 38})
        assert status == 500 and "poisoned request" in reply["error"]
        assert server.post_generate(url, [1, 2], 5)["tokens"] == kv_cache.generate(w, torch.tensor([[1, 2]]), 5)[
            0].tolist()
        assert _status(url, "GET", "/health")[0] == 200


def test_if_the_batcher_loop_dies_every_request_gets_a_503_and_health_says_so(w, monkeypatch):
    def broken_step(self):
        if self.waiting:
            raise RuntimeError("scheduler bug")
        return False

    monkeypatch.setattr(server.ContinuousBatcher, "step", broken_step)
    with server.serve(w, max_batch=2, timeout=20) as url:
        assert _status(url, "GET", "/health")[0] == 200
        status, reply = _status(url, "POST", "/generate", {"prompt_ids": [1, 2], "max_new_tokens": 3})
        assert status == 503 and "scheduler bug" in reply["error"]
        status, health = _status(url, "GET", "/health")
        assert status == 503 and health["status"] == "down" and "scheduler bug" in health["error"]
        status, reply = _status(url, "POST", "/generate", {"prompt_ids": [3], "max_new_tokens": 3})
        assert status == 503 and "stopped" in reply["error"]


def _slow_decode(monkeypatch, seconds: float = 0.01):
    real = server.ragged_decode_step

    def slow(w, tokens, caches):
        time.sleep(seconds)
        return real(w, tokens, caches)

    monkeypatch.setattr(server, "ragged_decode_step", slow)


def _post_in_thread(url, body, replies):
    t = threading.Thread(target=lambda: replies.append(_status(url, "POST", "/generate", body)), daemon=True)
    t.start()
    return t


def test_backpressure_429_past_the_queue_and_drain_replies_to_everyone(w, monkeypatch):
    _slow_decode(monkeypatch)
    replies = []
    with server.serve(w, max_batch=1, max_waiting=1, timeout=20, drain_timeout=0.2) as url:
        threads = [_post_in_thread(url, {"prompt_ids": [1, 2], "max_new_tokens": 400}, replies)]
        _wait_for(url, lambda h: h["active"] == 1)
        threads.append(_post_in_thread(url, {"prompt_ids": [3], "max_new_tokens": 400}, replies))
        _wait_for(url, lambda h: h["waiting"] == 1)
        status, reply = _status(url, "POST", "/generate", {"prompt_ids": [4], "max_new_tokens": 2})
        assert status == 429 and "queue is full" in reply["error"]
    for t in threads:
        t.join(timeout=20)
    assert sorted(s for s, _ in replies) == [503, 503]  # drained with a reply, none dropped
    assert all("shut down" in r["error"] for _, r in replies)
    with pytest.raises(server.QueueFull):
        b = server.ContinuousBatcher(w, max_waiting=2)
        for _ in range(3):
            b.submit([1], 1)


def test_leaving_serve_finishes_in_flight_requests(w, monkeypatch):
    _slow_decode(monkeypatch, 0.005)
    replies, prompts = [], _prompts(6)
    with server.serve(w, max_batch=3, timeout=20, drain_timeout=20) as url:
        threads = [_post_in_thread(url, {"prompt_ids": p, "max_new_tokens": 20}, replies) for p in prompts]
        _wait_for(url, lambda h: h["waiting"] + h["active"] + h["completed"] == 6)
    for t in threads:
        t.join(timeout=20)
    assert len(replies) == 6 and all(s == 200 and len(r["tokens"]) == 20 for s, r in replies)


def test_a_disconnected_client_has_its_request_aborted_and_slot_freed(w, monkeypatch):
    _slow_decode(monkeypatch)
    with server.serve(w, max_batch=1, timeout=20) as url:
        port = int(url.rsplit(":", 1)[1])
        body = json.dumps({"prompt_ids": [1, 2], "max_new_tokens": 500}).encode()
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(b"POST /generate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
            _wait_for(url, lambda h: h["active"] == 1)
        health = _wait_for(url, lambda h: h["aborted"] == 1)
        assert health["active"] == 0 and health["completed"] == 0
        assert len(server.post_generate(url, [7], 3)["tokens"]) == 3  # the slot is free


def test_other_methods_get_a_405_not_a_5xx(w):
    with server.serve(w, max_batch=1, timeout=20) as url:
        for method in ("PUT", "DELETE", "PATCH", "OPTIONS"):
            status, reply = load.request(url, method, "/generate", b"{}")
            assert status == 405 and reply["field"] == "method", (method, status)
