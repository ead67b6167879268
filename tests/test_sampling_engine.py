"""The decoding loops run on the kit's own forward pass: same greedy tokens, same sampling distribution."""

from __future__ import annotations

import torch
from scipy.stats import chi2

from llmlab import sampling
from llmlab.kit import fixtures
from llmlab.sampling import engine


def _generate(model, ids, n):
    out = model.generate(ids, attention_mask=torch.ones_like(ids), pad_token_id=0, max_new_tokens=n, do_sample=False)
    return out[0, ids.shape[1]:].tolist()


def test_a_plain_llama_decodes_on_the_kit_engine_and_a_hooked_one_on_its_own():
    model = fixtures.tiny_model(seed=5)  # its own model: the session-wide one may carry other tests' state
    assert isinstance(engine.session(model, 1, 8), engine.KitSession)
    handle = model.model.layers[0].register_forward_hook(lambda mod, args, out: out)
    try:
        assert isinstance(engine.session(model, 1, 8), engine.ModelSession)
    finally:
        handle.remove()
    assert isinstance(engine.session(model, 1, 10**6), engine.ModelSession)  # past the RoPE table


def test_cached_weights_follow_an_in_place_weight_change():
    model = fixtures.tiny_model(seed=3)
    ids = torch.tensor([[5, 6, 7]])
    before = engine.kit_weights(model)
    assert engine.kit_weights(model) is before  # copied once
    with torch.no_grad():
        model.model.layers[1].mlp.down_proj.weight.mul_(-3.0)
    assert engine.kit_weights(model) is not before
    assert sampling.greedy(model, ids, 10, eos_token_id=[]).token_ids == _generate(model, ids, 10)


def test_kit_engine_greedy_equals_generate_in_fp32():
    model = fixtures.tiny_model(seed=1)
    for prompt in ([5, 6, 7], [100, 3, 40, 41, 42, 9]):
        ids = torch.tensor([prompt])
        assert sampling.greedy(model, ids, 16, eos_token_id=[]).token_ids == _generate(model, ids, 16)


def test_kit_engine_beam_search_reorders_its_cache_like_transformers(tiny):
    model, _ = tiny
    ids = torch.tensor([[5, 6, 7, 120, 77]])
    out = model.generate(ids, attention_mask=torch.ones_like(ids), pad_token_id=0, max_new_tokens=8, num_beams=3,
                         do_sample=False, eos_token_id=2)
    assert sampling.beam_search(model, ids, 3, 8, eos_token_id=2)[0].token_ids == out[0, 5:].tolist()


def test_sampled_pairs_follow_the_models_joint_distribution(tiny):
    """Chi-square test of 4000 sampled (first, second) token pairs against p(a) p(b | a) from the model itself."""
    model, _ = tiny
    ids = torch.tensor([[5, 6, 7]])
    settings = sampling.SamplingSettings(temperature=1.0, top_k=3)
    gens = sampling.decode(model, ids, 2, settings, num_samples=4000, seed=0, eos_token_id=[])
    with torch.no_grad():
        first = sampling.process_logits(model(ids).logits[0, -1], settings).softmax(-1)
        joint = {}
        for a in first.nonzero().flatten().tolist():
            nxt = model(torch.tensor([[5, 6, 7, a]])).logits[0, -1]
            second = sampling.process_logits(nxt, settings).softmax(-1)
            for b in second.nonzero().flatten().tolist():
                joint[(a, b)] = float(first[a] * second[b])
    counts = {pair: 0 for pair in joint}
    for g in gens:
        counts[tuple(g.token_ids)] += 1  # a pair outside the support would raise KeyError
    expected = torch.tensor([joint[p] * len(gens) for p in joint])
    observed = torch.tensor([float(counts[p]) for p in joint])
    stat = float(((observed - expected) ** 2 / expected).sum())
    assert stat < chi2.ppf(0.999, df=len(joint) - 1), (stat, counts)


def test_a_head_untied_after_loading_is_the_one_decoded_with():
    model = fixtures.tiny_model(seed=0)
    model.lm_head.weight = torch.nn.Parameter(torch.randn(model.lm_head.weight.shape,
                                                          generator=torch.Generator().manual_seed(0)) * 0.3)
    ids = torch.tensor([[5, 6, 7]])
    assert sampling.greedy(model, ids, 6, eos_token_id=[]).token_ids == _generate(model, ids, 6)


def _bf16_tiny(seed: int, tmp_path):
    """A tiny Llama loaded in bf16 the way models.load loads one (from_pretrained with a dtype, RoPE in fp32)."""
    from transformers import AutoModelForCausalLM
    fixtures.tiny_model(seed=seed).save_pretrained(tmp_path)
    return AutoModelForCausalLM.from_pretrained(tmp_path, dtype=torch.bfloat16).eval()


def test_kit_forward_is_bit_identical_to_transformers_in_bf16(tmp_path):
    from llmlab import attention, kv_cache
    model = _bf16_tiny(2, tmp_path)
    ids = torch.tensor([[100, 3, 40, 41, 42, 9, 7, 8]])
    with torch.inference_mode():
        w = attention.from_model(model)
        cache = kv_cache.KVCache.for_weights(w, 1, 8)
        cached = torch.cat([attention.forward(w, ids[:, :5], cache), attention.forward(w, ids[:, 5:6], cache),
                            attention.forward(w, ids[:, 6:], cache)], dim=1)
        reference = model(ids).logits
    assert reference.dtype == torch.bfloat16
    assert torch.equal(attention.forward(w, ids), reference)
    assert torch.equal(cached, reference)  # prefill, one-token step and a 2-token chunk through the cache


def test_kit_engine_greedy_equals_generate_in_bf16(tmp_path):
    model = _bf16_tiny(1, tmp_path)
    assert isinstance(engine.session(model, 1, 8), engine.KitSession)
    for prompt in ([5, 6, 7], [100, 3, 40, 41, 42, 9]):
        ids = torch.tensor([prompt])
        assert sampling.greedy(model, ids, 24, eos_token_id=[]).token_ids == _generate(model, ids, 24)
