"""Attention from scratch and the Llama forward pass on real weights."""

from __future__ import annotations

import math

import pytest
import torch

from llmlab import attention
from llmlab.kit import fixtures


@pytest.fixture(scope="module")
def tiny_weights():
    model = fixtures.tiny_model()
    return model, attention.from_model(model)


def test_causal_mask_lower_triangle_and_past():
    assert torch.equal(attention.causal_mask(3), torch.tensor([[1, 0, 0], [1, 1, 0], [1, 1, 1]], dtype=torch.bool))
    m = attention.causal_mask(2, past_len=3)
    assert m.shape == (2, 5) and m[0].tolist() == [True] * 4 + [False] and m[1].all()


def test_attention_weights_sum_to_one_and_respect_mask():
    torch.manual_seed(0)
    q, k = torch.randn(2, 3, 4, 8), torch.randn(2, 3, 4, 8)
    probs = attention.attention_weights(q, k, attention.causal_mask(4))
    assert torch.allclose(probs.sum(-1), torch.ones(2, 3, 4))
    assert (probs[..., 0, 1:] == 0).all()
    manual = torch.softmax(q[0, 0] @ k[0, 0].T / math.sqrt(8) + torch.triu(torch.full((4, 4), -math.inf), 1), -1)
    assert torch.allclose(probs[0, 0], manual, atol=1e-6)


def test_attention_matches_torch_sdpa():
    torch.manual_seed(1)
    q, k, v = (torch.randn(1, 2, 5, 8) for _ in range(3))
    expected = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
    assert torch.allclose(attention.attention(q, k, v, attention.causal_mask(5)), expected, atol=1e-6)


def test_repeat_kv_repeats_each_head_in_place():
    x = torch.arange(2 * 3 * 1 * 1, dtype=torch.float).view(2, 3, 1, 1)
    out = attention.repeat_kv(x, 3)
    assert out.shape == (2, 9, 1, 1)
    assert out[0, :, 0, 0].tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert attention.repeat_kv(x, 1) is x


def test_rope_preserves_norm_and_relative_positions():
    torch.manual_seed(2)
    q, k = torch.randn(1, 1, 1, 16), torch.randn(1, 1, 1, 16)
    cos, sin = attention.rope_cos_sin(torch.arange(20), 16)
    rot = lambda x, p: attention.apply_rope(x, cos[p:p + 1], sin[p:p + 1])  # noqa: E731
    assert torch.allclose(rot(q, 7).norm(), q.norm(), atol=1e-5)
    # the score depends only on the distance between positions
    assert torch.allclose((rot(q, 5) * rot(k, 2)).sum(), (rot(q, 13) * rot(k, 10)).sum(), atol=1e-4)
    assert torch.equal(rot(q, 0), q)


def test_rms_norm_and_swiglu_match_transformers(tiny_weights):
    model, _ = tiny_weights
    torch.manual_seed(3)
    x = torch.randn(2, 3, 64)
    layer = model.model.layers[0]
    with torch.inference_mode():
        norm = attention.rms_norm(x, layer.input_layernorm.weight, layer.input_layernorm.variance_epsilon)
        assert torch.allclose(norm, layer.input_layernorm(x), atol=1e-6)
        mlp = layer.mlp
        got = attention.swiglu_mlp(x, mlp.gate_proj.weight, mlp.up_proj.weight, mlp.down_proj.weight)
        assert torch.allclose(got, mlp(x), atol=1e-6)


def test_forward_matches_transformers_on_tiny_model(tiny_weights):
    model, w = tiny_weights
    ids = torch.randint(0, 259, (2, 13), generator=torch.Generator().manual_seed(4))
    with torch.inference_mode():
        diff = (attention.forward(w, ids) - model(ids).logits).abs().max().item()
    assert diff <= 1e-4


def test_forward_matches_transformers_on_real_smollm2(real):
    model, tokenizer = real
    w = attention.from_model(model)
    ids = tokenizer("The capital of France is Paris. The capital of Italy is", return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        ours, theirs = attention.forward(w, ids), model(ids).logits
    assert ours.shape == theirs.shape == (1, ids.shape[1], 49152)
    assert (ours - theirs).abs().max().item() <= 1e-4
    assert (w.num_heads, w.num_kv_heads, w.head_dim, w.num_layers) == (9, 3, 64, 30)


def test_attention_probabilities_shape_and_causality(tiny_weights):
    _, w = tiny_weights
    maps = attention.attention_probabilities(w, torch.tensor([[5, 6, 7, 8]]))
    assert maps.shape == (2, 4, 4, 4)
    assert torch.allclose(maps.sum(-1), torch.ones(2, 4, 4), atol=1e-5)
    assert (maps.triu(1) == 0).all()


def test_weights_nbytes_counts_tied_embedding_once(tiny_weights):
    model, w = tiny_weights
    assert w.nbytes() == sum(p.numel() * 4 for p in model.parameters())


@pytest.mark.parametrize("call, match", [
    (lambda: attention.causal_mask(0), r"seq_len must be an int in \[1, inf\), got 0"),
    (lambda: attention.causal_mask(2, past_len=-1), r"past_len must be an int in \[0, inf\), got -1"),
    (lambda: attention.attention_scores(torch.zeros(1, 2, 4), torch.zeros(1, 2, 5)), r"q and k must have shapes"),
    (lambda: attention.attention_weights(torch.zeros(2, 4), torch.zeros(3, 4), torch.ones(3, 3, dtype=torch.bool)),
     r"mask must end in \(q_len, k_len\) = \(2, 3\)"),
    (lambda: attention.repeat_kv(torch.zeros(1, 2, 3, 4), 0), r"n_rep must be an int >= 1, got 0"),
    (lambda: attention.repeat_kv(torch.zeros(2, 3, 4), 2), r"x must be a 4-d tensor"),
    (lambda: attention.rope_cos_sin(torch.arange(3), 7), r"head_dim must be an even int >= 2, got 7"),
    (lambda: attention.rms_norm(torch.zeros(2, 4), torch.ones(3)), r"weight must have shape"),
])
def test_bad_input_raises_clear_errors(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


@pytest.mark.parametrize("call, match", [
    (lambda: attention.causal_mask(2.0), "seq_len must be an int, got float 2.0"),
    (lambda: attention.causal_mask(True), "seq_len must be an int, got bool True"),
    (lambda: attention.causal_mask(2, past_len="1"), "past_len must be an int, got str '1'"),
])
def test_causal_mask_wrong_type_raises_type_error(call, match):
    with pytest.raises(TypeError, match=match):
        call()


def test_forward_rejects_bad_ids_and_mask_type(tiny_weights):
    _, w = tiny_weights
    with pytest.raises(ValueError, match=r"ids must be an integer tensor of shape \(batch, seq\)"):
        attention.forward(w, torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="positions must be < 512"):
        attention.forward(w, torch.zeros(1, 513, dtype=torch.long))
    with pytest.raises(TypeError, match="mask must be a bool torch.Tensor"):
        attention.attention_weights(torch.zeros(2, 4), torch.zeros(2, 4), torch.ones(2, 2))
    with pytest.raises(TypeError, match="model must be a transformers LlamaForCausalLM"):
        attention.from_model(object())


def test_input_major_keeps_values_and_stores_columns_contiguously():
    w = torch.arange(12.0).reshape(3, 4)
    m = attention.input_major(w)
    assert torch.equal(m, w) and m.stride() == (1, 3)
    x = torch.randn(2, 4)
    assert torch.allclose(torch.nn.functional.linear(x, m), x @ w.T)


def test_output_head_reads_rows_for_a_few_tokens_and_ignores_them_once_lm_head_changes():
    from dataclasses import replace

    w = attention.from_model(fixtures.tiny_model(seed=0, vocab_size=12))
    h = torch.randn(1, 5, w.hidden_size)
    assert w.head_rows is not None and w.head_rows[0] is w.lm_head
    assert torch.allclose(attention.output_head(w, h), torch.nn.functional.linear(h, w.lm_head), atol=1e-5)
    doubled = replace(w, lm_head=w.lm_head * 2)  # head_rows now belongs to another tensor: not used
    assert torch.allclose(attention.output_head(doubled, h), 2 * attention.output_head(w, h), atol=1e-5)


def test_decode_layout_keeps_values_and_picks_input_major_only_for_tall_fp32():
    tall, wide = torch.randn(6, 4), torch.randn(4, 6)
    assert torch.equal(attention.decode_layout(tall), tall) and attention.decode_layout(tall).stride() == (1, 6)
    assert attention.decode_layout(wide).stride() == (6, 1)
    assert attention.decode_layout(tall.to(torch.bfloat16)).stride() == (4, 1)
    assert attention.decode_layout(tall.t().contiguous().t().to(torch.bfloat16)).stride() == (4, 1)
