"""llmlab.serving.engine: the ragged decode step equals per-sequence decode; batch-curve measurement."""

import pytest
import torch

from llmlab import attention, kv_cache
from llmlab.kit import fixtures
from llmlab.serving import engine


@pytest.fixture(scope="module")
def w():
    return attention.from_model(fixtures.tiny_model())


def test_ragged_step_equals_decoding_each_sequence_alone(w):
    gen = torch.Generator().manual_seed(0)
    prompts = [torch.randint(0, w.vocab_size, (1, n), generator=gen) for n in (3, 7, 5)]
    ragged = [kv_cache.KVCache.for_weights(w, 1, 16) for _ in prompts]
    alone = [kv_cache.KVCache.for_weights(w, 1, 16) for _ in prompts]
    with torch.inference_mode():
        for p, a, b in zip(prompts, ragged, alone):
            kv_cache.prefill(w, p, a)
            kv_cache.prefill(w, p, b)
        tokens = torch.tensor([5, 9, 11])
        for _ in range(3):
            got = engine.ragged_decode_step(w, tokens, ragged)
            expected = torch.cat([kv_cache.decode_step(w, tokens[j:j + 1], c) for j, c in enumerate(alone)])
            assert torch.allclose(got, expected, atol=1e-5)
            tokens = got.argmax(-1)
    assert [c.length for c in ragged] == [6, 10, 8]


def test_measure_batch_decode_points(w):
    prompt = torch.tensor([[1, 5, 7, 9, 11]])
    points = engine.measure_batch_decode(w, prompt, [1, 4], new_tokens=3)
    assert [p.batch for p in points] == [1, 4]
    for p in points:
        assert p.tpot > 0 and p.tokens_per_s == pytest.approx(p.batch / p.tpot)
        assert p.request_latency == pytest.approx(p.ttft + 2 * p.tpot)
    assert engine.time_ragged_step(w, [3, 6], steps=2) > 0


@pytest.mark.parametrize("call, match", [
    (lambda w: engine.ragged_decode_step(w, torch.tensor([1, 2]), [kv_cache.KVCache.for_weights(w, 1, 4)]),
     "same length"),
    (lambda w: engine.ragged_decode_step(w, torch.tensor([[1]]), [kv_cache.KVCache.for_weights(w, 1, 4)]), "1-d"),
    (lambda w: engine.measure_batch_decode(w, torch.tensor([[1, 2]]), [0]), "batch_sizes"),
    (lambda w: engine.measure_batch_decode(w, torch.tensor([[1, 2]]), [1], new_tokens=1), "new_tokens"),
])
def test_bad_input_names_the_parameter(w, call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call(w)
