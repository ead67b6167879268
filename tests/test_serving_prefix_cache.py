"""llmlab.serving.prefix_cache: reuse a prefix's KV cache; same logits as a full prefill; token accounting."""

import pytest
import torch

from llmlab import attention, kv_cache
from llmlab.kit import fixtures
from llmlab.serving import prefix_cache as P


@pytest.fixture(scope="module")
def w():
    return attention.from_model(fixtures.tiny_model())


def test_start_from_a_cached_prefix_gives_the_full_prefill_logits(w):
    prefix = [1, 10, 20, 30, 40, 50]
    cache = P.PrefixCache(w)
    cache.add(prefix)
    ids = torch.tensor([prefix + [7, 8]])
    kv, logits, reused = cache.start(ids, max_new_tokens=4)
    with torch.inference_mode():
        expected = attention.forward(w, ids)[:, -1]
    assert reused == 6 and kv.length == 8 and kv.capacity == 12
    assert torch.allclose(logits, expected, atol=1e-5)
    assert cache.entries[tuple(prefix)].length == 6  # the stored prefix is untouched


def test_start_reuses_part_of_a_stored_prefix_with_the_full_prefill_logits(w):
    cache = P.PrefixCache(w)
    cache.add([1, 10, 20, 30, 40, 50])
    for ids in ([1, 10, 20, 99, 98], [1, 10, 20, 30, 40, 50]):  # diverges after 3 tokens; the prefix itself again
        kv, logits, reused = cache.start(torch.tensor([ids]), max_new_tokens=2)
        with torch.inference_mode():
            expected = attention.forward(w, torch.tensor([ids]))[:, -1]
        assert reused == min(3 if ids[3] == 99 else 6, len(ids) - 1) and kv.length == len(ids)
        assert torch.allclose(logits, expected, atol=1e-5)
    assert cache.reusable([2, 10]) == ((), 0)


def test_match_needs_a_token_left_and_picks_the_longest(w):
    cache = P.PrefixCache(w)
    cache.add([1, 2])
    cache.add([1, 2, 3])
    assert cache.match([1, 2, 3, 4]) == (1, 2, 3)
    assert cache.match([1, 2, 3]) == (1, 2)
    assert cache.match([9, 2, 3]) == ()


def test_copy_cache_is_independent(w):
    src = kv_cache.KVCache.for_weights(w, 1, 8)
    with torch.inference_mode():
        kv_cache.prefill(w, torch.tensor([[1, 2, 3]]), src)
    dst = P.copy_cache(src, 10)
    dst.keys.zero_()
    assert dst.length == 3 and src.keys[:, :, :, :3].abs().sum() > 0


def test_prefill_tokens_reuses_longest_shared_prefix_and_computes_at_least_one():
    system = [1, 2, 3, 4]
    reqs = [system + [5, 6], system + [7], system + [5, 9], system + [5, 6], [8]]
    assert P.prefill_tokens(reqs) == [6, 1, 1, 1, 1]
    assert P.common_prefix_length([1, 2, 3], [1, 2, 4]) == 2


def test_measure_prefix_ttft(w):
    t = P.measure_prefix_ttft(w, list(range(1, 30)), [[40, 41], [42]])
    assert t.prefix_tokens == 29 and t.suffix_tokens == [2, 1] and t.speedup > 0


@pytest.mark.parametrize("call, match", [
    (lambda w: P.PrefixCache("w"), "LlamaWeights"),
    (lambda w: P.PrefixCache(w).add([]), "prefix"),
    (lambda w: P.PrefixCache(w).start(torch.tensor([[1, 2], [3, 4]]), 1), "one prompt"),
    (lambda w: P.prefill_tokens([]), "requests"),
])
def test_bad_input_names_the_parameter(w, call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call(w)


def test_server_prefix_cache_agrees_with_the_exercise_rule(w):
    # exercise 10.4's prefill_tokens keeps every earlier prompt's KV; a PrefixCache that registers each prompt after
    # serving it prefills exactly as many tokens per request (shared prefixes, partial overlaps, repeats)
    requests = [[5, 9, 2, 7], [5, 9, 2, 7, 4, 1], [5, 9, 3], [5, 9, 2, 7, 4, 1], [8], [5, 9, 2, 7, 4, 1, 6, 6]]
    cache = P.PrefixCache(w)
    server = []
    for ids in requests:
        _, _, reused = cache.start(torch.tensor([ids]), 1)
        server.append(len(ids) - reused)
        cache.add(ids)
    assert server == P.prefill_tokens(requests) == [4, 2, 1, 1, 1, 2]
