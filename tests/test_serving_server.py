"""llmlab.serving.server: the continuous-batching server on loopback (tiny model, bounded and fast)."""

import pytest
import torch

from llmlab import attention, fixtures, kv_cache
from llmlab.serving import prefix_cache, server


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
