"""KV cache, prefill/decode, cached vs uncached generation, memory arithmetic."""

from __future__ import annotations

import pytest
import torch

from llmlab import attention, kv_cache
from llmlab.kit import fixtures


@pytest.fixture(scope="module")
def tw():
    model = fixtures.tiny_model()
    return model, attention.from_model(model)


def test_append_length_bytes_and_truncate():
    cache = kv_cache.KVCache(layers=2, batch=1, kv_heads=3, head_dim=4, capacity=10)
    k = torch.randn(1, 3, 4, 4)
    for layer in range(2):
        keys, values = cache.append(layer, k, k + 1)
        assert torch.equal(keys, k) and torch.equal(values, k + 1)
    assert cache.length == 4 and cache.capacity == 10
    assert cache.bytes_used() == 2 * 2 * 1 * 3 * 4 * 4 * 4
    assert cache.bytes_allocated() == 2 * 2 * 1 * 3 * 10 * 4 * 4
    cache.truncate(1)
    assert cache.length == 1
    keys, _ = cache.append(0, torch.zeros(1, 3, 2, 4), torch.zeros(1, 3, 2, 4))
    assert keys.shape[2] == 3 and torch.equal(keys[:, :, 0], k[:, :, 0]) and (keys[:, :, 1:] == 0).all()


def test_rollback_then_decode_equals_never_having_gone_ahead(tw):
    _, w = tw
    ids = torch.tensor([[3, 10, 20, 30, 40]])
    cache = kv_cache.KVCache.for_weights(w, capacity=16)
    kv_cache.prefill(w, ids[:, :3], cache)
    kv_cache.prefill(w, torch.tensor([[99, 98]]), cache)  # speculative tokens, rejected
    cache.truncate(3)
    got = kv_cache.prefill(w, ids[:, 3:], cache)
    with torch.inference_mode():
        expected = attention.forward(w, ids)[:, -1]
    assert torch.allclose(got, expected, atol=1e-5)


def test_prefill_then_decode_matches_full_forward(tw):
    _, w = tw
    ids = torch.randint(0, 259, (2, 9), generator=torch.Generator().manual_seed(0))
    cache = kv_cache.KVCache.for_weights(w, batch=2, capacity=9)
    with torch.inference_mode():
        kv_cache.prefill(w, ids[:, :6], cache)
        for i in range(6, 9):
            step = kv_cache.decode_step(w, ids[:, i], cache)
        full = attention.forward(w, ids)[:, -1]
    assert torch.allclose(step, full, atol=1e-5)


def test_generate_with_and_without_cache_and_transformers_agree(tw):
    model, w = tw
    ids = torch.tensor([[1, 72, 101, 108, 108, 111]])
    cached = kv_cache.generate(w, ids, 12)
    uncached = kv_cache.generate(w, ids, 12, use_cache=False)
    with torch.inference_mode():
        hf = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=12, min_new_tokens=12,
                            do_sample=False, pad_token_id=0, eos_token_id=None)[:, ids.shape[1]:]
    assert torch.equal(cached, uncached) and torch.equal(cached, hf)


def test_generate_stops_at_eos(tw):
    _, w = tw
    ids = torch.tensor([[1, 72, 101]])
    first = kv_cache.generate(w, ids, 5)
    eos = int(first[0, -1])
    stop_at = int((first[0] == eos).nonzero()[0])  # its first occurrence
    stopped = kv_cache.generate(w, ids, 5, eos_token_id=eos)
    assert torch.equal(stopped, first[:, :stop_at + 1])


def test_generate_matches_transformers_on_real_model(real):
    model, tokenizer = real
    w = attention.from_model(model, max_positions=256)
    ids = tokenizer.apply_chat_template([{"role": "user", "content": "Name a colour."}], add_generation_prompt=True,
                                        return_tensors="pt", return_dict=True)["input_ids"]
    ours = kv_cache.generate(w, ids, 8)
    with torch.inference_mode():
        theirs = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=8, min_new_tokens=8,
                                do_sample=False, pad_token_id=tokenizer.pad_token_id)[:, ids.shape[1]:]
    assert torch.equal(ours, theirs)


def test_kv_cache_bytes_reproduces_the_books_llama2_13b_example():
    got = kv_cache.kv_cache_bytes(batch=32, seq_len=2048, layers=40, kv_heads=40, head_dim=128, bytes_per_value=2)
    assert got == 2 * 32 * 2048 * 40 * 5120 * 2 == 53_687_091_200


def test_kv_savings_window_sharing_and_gqa():
    assert kv_cache.kv_cache_bytes(1, 8192, 32, 8, 128, 2, window=4096) == \
        kv_cache.kv_cache_bytes(1, 4096, 32, 8, 128, 2)
    assert kv_cache.kv_cache_bytes(1, 100, 32, 8, 128, 2, layers_per_kv=2) == \
        kv_cache.kv_cache_bytes(1, 100, 16, 8, 128, 2)
    s = kv_cache.kv_savings(kv_cache.LLAMA_PRESETS["Llama 3 8B"], batch=1, seq_len=8192)
    values = list(s.values())
    assert values[0] == 4 * values[1] == 32 * values[2]
    assert values[0] == 2 * 8192 * 32 * 32 * 128 * 2


def test_cache_matches_what_the_formula_says(tw):
    _, w = tw
    cache = kv_cache.KVCache.for_weights(w, batch=2, capacity=20)
    kv_cache.prefill(w, torch.zeros(2, 7, dtype=torch.long), cache)
    assert cache.bytes_used() == kv_cache.kv_cache_bytes(2, 7, w.num_layers, w.num_kv_heads, w.head_dim, 4)


@pytest.mark.parametrize("call, match", [
    (lambda: kv_cache.kv_cache_bytes(-1, 10, 1, 1, 1, 2), r"batch must be an int in \[1, inf\), got -1"),
    (lambda: kv_cache.kv_cache_bytes(1, 10, 1, 1, 1, 0), r"bytes_per_value must be a positive number"),
    (lambda: kv_cache.kv_cache_bytes(1, 10, 1, 1, 1, 2, window=0), r"window must be an int in \[1, inf\), got 0"),
    (lambda: kv_cache.KVCache(1, 1, 1, 4, capacity=-5), r"capacity must be an int in \[1, inf\), got -5"),
    (lambda: kv_cache.kv_savings("Llama", 1, 1), r"shape must be a KVShape"),
])
def test_bad_sizes_raise(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


def test_cache_rejects_overflow_bad_shapes_and_bad_truncate():
    cache = kv_cache.KVCache(layers=1, batch=1, kv_heads=2, head_dim=4, capacity=3)
    with pytest.raises(ValueError, match=r"cache capacity is 3 positions; appending 4 to 0 would need 4"):
        cache.append(0, torch.zeros(1, 2, 4, 4), torch.zeros(1, 2, 4, 4))
    with pytest.raises(ValueError, match=r"k and v must have shape \(batch, kv_heads, seq, head_dim\) = \(1, 2"):
        cache.append(0, torch.zeros(1, 3, 1, 4), torch.zeros(1, 3, 1, 4))
    with pytest.raises(ValueError, match=r"layer must be an int in \[0, 0\], got 1"):
        cache.append(1, torch.zeros(1, 2, 1, 4), torch.zeros(1, 2, 1, 4))
    with pytest.raises(ValueError, match=r"length must be an int in \[0, 0\], got 2"):
        cache.truncate(2)


def test_generate_rejects_bad_arguments(tw):
    _, w = tw
    with pytest.raises(ValueError, match="max_new_tokens must be an int in \\[1, inf\\), got 0"):
        kv_cache.generate(w, torch.tensor([[1]]), 0)
    with pytest.raises(ValueError, match=r"ids must be an integer tensor"):
        kv_cache.generate(w, torch.zeros(1, 2), 3)
    with pytest.raises(ValueError, match="token must be a 1-d tensor"):
        kv_cache.decode_step(w, torch.tensor([[1]]), kv_cache.KVCache.for_weights(w))


def test_timing_helpers_return_positive_seconds(tw):
    _, w = tw
    ttft, tpot = kv_cache.time_prefill_decode(w, torch.tensor([[1, 2, 3]]), decode_tokens=2)
    assert ttft > 0 and tpot > 0
    assert kv_cache.time_generate(w, torch.tensor([[1, 2]]), 3, use_cache=False) > 0
    with pytest.raises(ValueError, match="decode_tokens must be an int in \\[1, inf\\), got 0"):
        kv_cache.time_prefill_decode(w, torch.tensor([[1]]), 0)
