"""Check-can-fail tests for chapter 03's exercise checks."""

import math

import pytest
import torch
from checks_harness import CheckCase, make_tests

from llmlab import attention, kv_cache
from llmlab.checks import ch03
from llmlab.kit import fixtures


def causal_mask(seq_len):
    return attention.causal_mask(seq_len)


def mask_upper_triangle(seq_len):
    return torch.ones(seq_len, seq_len).triu().bool()  # lets tokens see the future instead of the past


def mask_without_diagonal(seq_len):
    return torch.ones(seq_len, seq_len).tril(-1).bool()  # a token cannot see itself


def mask_as_float(seq_len):
    return torch.ones(seq_len, seq_len).tril()


def weights_without_scaling(q, k, mask):
    return torch.softmax((q @ k.transpose(-2, -1)).masked_fill(~mask, float("-inf")), -1)


def weights_mask_with_zero(q, k, mask):
    return torch.softmax((q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])).masked_fill(~mask, 0.0), -1)


def weights_softmax_over_queries(q, k, mask):
    return torch.softmax((q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])).masked_fill(~mask, float("-inf")), -2)


def repeat_tiled(x, n_rep):
    return x.repeat(1, n_rep, 1, 1)  # ABCABC: the wrong query heads get each KV head


def repeat_on_seq(x, n_rep):
    return x.repeat_interleave(n_rep, dim=2)


def cache_append(buffer, length, new):
    end = length + new.shape[2]
    if end > buffer.shape[2]:
        raise ValueError(f"buffer holds {buffer.shape[2]} positions, need {end}")
    buffer[:, :, length:end] = new
    return end


def append_by_cat(buffer, length, new):
    buffer = torch.cat([buffer[:, :, :length], new], dim=2)  # a new tensor: the preallocated buffer is untouched
    return buffer.shape[2]


def append_without_capacity_check(buffer, length, new):
    buffer[:, :, length:length + new.shape[2]] = new  # silently drops what does not fit
    return length + new.shape[2]


def bytes_without_k_and_v(batch, seq_len, layers, kv_heads, head_dim, bytes_per_value):
    return batch * seq_len * layers * kv_heads * head_dim * bytes_per_value


def bytes_with_hidden_size(batch, seq_len, layers, kv_heads, head_dim, bytes_per_value):
    return 2 * batch * seq_len * layers * (kv_heads * 4) * head_dim * bytes_per_value  # ignores GQA


def rope_interleaved(x, cos, sin):
    x1, x2 = x[..., 0::2], x[..., 1::2]  # GPT-J pairs (0,1),(2,3)... — not Llama's half split
    rotated = torch.stack([-x2, x1], -1).flatten(-2)
    return x * cos + rotated * sin


def rope_wrong_sign(x, cos, sin):
    half = x.shape[-1] // 2
    return x * cos + torch.cat([x[..., half:], -x[..., :half]], -1) * sin




def mask_transposed(seq_len):
    return torch.ones(seq_len, seq_len, dtype=torch.bool).tril().T


def mask_inverted(seq_len):
    return ~torch.ones(seq_len, seq_len, dtype=torch.bool).tril()


def mask_off_by_one_future(seq_len):
    return torch.ones(seq_len, seq_len, dtype=torch.bool).tril(1)


def weights_hard_coded_causal(q, k, mask):
    n = q.shape[-2]
    causal = torch.ones(n, n, dtype=torch.bool).tril()
    return torch.softmax((q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])).masked_fill(~causal, float("-inf")), -1)


def weights_ignore_mask(q, k, mask):
    return torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), -1)


def weights_scaled_by_d(q, k, mask):
    return torch.softmax((q @ k.transpose(-2, -1) / q.shape[-1]).masked_fill(~mask, float("-inf")), -1)


def weights_scaled_by_seq_len(q, k, mask):
    return torch.softmax((q @ k.transpose(-2, -1) / math.sqrt(q.shape[-2])).masked_fill(~mask, float("-inf")), -1)


def weights_zeroed_after_softmax(q, k, mask):
    return torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), -1).masked_fill(~mask, 0.0)


def weights_mask_inverted(q, k, mask):
    scores = (q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])).masked_fill(mask, float("-inf"))
    return torch.nan_to_num(torch.softmax(scores, -1))


def weights_scaled_by_sqrt_seq_len(q, k, mask):
    scores = (q @ k.transpose(-2, -1) / math.sqrt(k.shape[-2])).masked_fill(~mask, float("-inf"))
    return torch.softmax(scores, dim=-1)  # sqrt of the number of keys, not of the head dimension


def weights_transpose_1_2(q, k, mask):
    scores = (q @ k.transpose(1, 2) / math.sqrt(q.shape[-1])).masked_fill(~mask, float("-inf"))
    return torch.softmax(scores, dim=-1)  # right for (batch, seq, d) only, not for (..., seq, d)


def weights_large_negative_fill(q, k, mask):
    """A correct alternative: a very negative number instead of -inf still gives masked keys weight 0."""
    scores = torch.where(mask, q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5, torch.tensor(-1e9))
    return torch.softmax(scores, dim=-1)


def append_with_copy_(buffer, length, new):
    """A correct alternative: narrow() and copy_() write into the same storage."""
    if length + new.shape[2] > buffer.shape[2]:
        raise ValueError(f"buffer holds {buffer.shape[2]} positions, need {length + new.shape[2]}")
    buffer.narrow(2, length, new.shape[2]).copy_(new)
    return int(length + new.shape[2])


@pytest.mark.parametrize("check,answer", [(ch03.check_attention_weights, weights_large_negative_fill),
                                          (ch03.check_cache_append, append_with_copy_)])
def test_checks_pass_correct_alternatives(check, answer, capsys):
    check(answer)
    assert "✔" in capsys.readouterr().out


def repeat_expand_wrong_axis(x, n_rep):
    b, h, s, d = x.shape
    return x[:, None].expand(b, n_rep, h, s, d).reshape(b, h * n_rep, s, d)


def repeat_returns_input(x, n_rep):
    return x


def repeat_on_last_axis(x, n_rep):
    return x.repeat_interleave(n_rep, dim=-1).reshape(x.shape[0], -1, x.shape[2], x.shape[3])


def append_returns_old_length(buffer, length, new):
    cache_append(buffer, length, new)
    return length


def append_at_start(buffer, length, new):
    end = length + new.shape[2]
    if end > buffer.shape[2]:
        raise ValueError("full")
    buffer[:, :, :new.shape[2]] = new
    return end


def append_strict_capacity(buffer, length, new):
    if length + new.shape[2] >= buffer.shape[2]:
        raise ValueError("full")
    return cache_append(buffer, length, new)


def append_checks_length_only(buffer, length, new):
    if length >= buffer.shape[2]:  # misses a block that starts inside the buffer but runs past its end
        raise ValueError("full")
    end = length + new.shape[2]
    buffer[:, :, length:end] = new[:, :, :buffer.shape[2] - length]
    return end


def append_returns_tensor_length(buffer, length, new):
    return torch.tensor(cache_append(buffer, length, new))


def bytes_in_gb(batch, seq_len, layers, kv_heads, head_dim, bytes_per_value):
    return 2 * batch * seq_len * layers * kv_heads * head_dim * bytes_per_value / 1e9


def bytes_in_bits(batch, seq_len, layers, kv_heads, head_dim, bytes_per_value):
    return 2 * batch * seq_len * layers * kv_heads * head_dim * bytes_per_value * 8


def bytes_forgetting_batch(batch, seq_len, layers, kv_heads, head_dim, bytes_per_value):
    return 2 * seq_len * layers * kv_heads * head_dim * bytes_per_value


def rope_swapped_halves(x, cos, sin):
    half = x.shape[-1] // 2
    return x * cos + torch.cat([x[..., half:], -x[..., :half]], -1) * sin


def rope_cos_only(x, cos, sin):
    return x * cos


def rope_no_rotation(x, cos, sin):
    return x.clone()


# ---------------------------------------------------------------- 03.7 the transformer block


def _block(x, layer, cos, sin, config, residual=True, prenorm=True, scale=True, causal=True, rope_v=False,
           rope_k=True, tiled=False, act=torch.nn.functional.silu, swap_gate_up=False, out_proj=True):
    F = torch.nn.functional
    b, s, _ = x.shape
    hq, hk, d = config.num_attention_heads, config.num_key_value_heads, config.head_dim
    eps = config.rms_norm_eps
    h = attention.rms_norm(x, layer.input_layernorm.weight, eps) if prenorm else x
    q = F.linear(h, layer.self_attn.q_proj.weight).view(b, s, hq, d).transpose(1, 2)
    k = F.linear(h, layer.self_attn.k_proj.weight).view(b, s, hk, d).transpose(1, 2)
    v = F.linear(h, layer.self_attn.v_proj.weight).view(b, s, hk, d).transpose(1, 2)
    q = attention.apply_rope(q, cos, sin)
    k = attention.apply_rope(k, cos, sin) if rope_k else k
    v = attention.apply_rope(v, cos, sin) if rope_v else v
    rep = (lambda t: t.repeat(1, hq // hk, 1, 1)) if tiled else (lambda t: attention.repeat_kv(t, hq // hk))
    scores = q @ rep(k).transpose(-2, -1) / (math.sqrt(d) if scale else 1.0)
    if causal:
        scores = scores.masked_fill(~attention.causal_mask(s), float("-inf"))
    out = (torch.softmax(scores, -1) @ rep(v)).transpose(1, 2).reshape(b, s, hq * d)
    a = F.linear(out, layer.self_attn.o_proj.weight) if out_proj else out
    x = (x + a) if residual else a
    if not prenorm:
        x = attention.rms_norm(x, layer.input_layernorm.weight, eps)
    h = attention.rms_norm(x, layer.post_attention_layernorm.weight, eps) if prenorm else x
    gate, up = layer.mlp.gate_proj.weight, layer.mlp.up_proj.weight
    if swap_gate_up:
        gate, up = up, gate
    m = F.linear(act(F.linear(h, gate)) * F.linear(h, up), layer.mlp.down_proj.weight)
    x = (x + m) if residual else m
    return attention.rms_norm(x, layer.post_attention_layernorm.weight, eps) if not prenorm else x


def decoder_block(x, layer, cos, sin, config):
    return _block(x, layer, cos, sin, config)


def _variant(name, **kwargs):
    def block(x, layer, cos, sin, config):
        return _block(x, layer, cos, sin, config, **kwargs)
    block.__name__ = name
    return block


BLOCK_MISTAKES = [_variant("block_without_residuals", residual=False), _variant("block_post_norm", prenorm=False),
                  _variant("block_without_sqrt_d", scale=False), _variant("block_without_causal_mask", causal=False),
                  _variant("block_rope_on_values", rope_v=True), _variant("block_no_rope_on_keys", rope_k=False),
                  _variant("block_gqa_tiled", tiled=True), _variant("block_relu", act=torch.relu),
                  _variant("block_gate_and_up_swapped", swap_gate_up=True),
                  _variant("block_without_output_projection", out_proj=False)]


def _model():
    model = fixtures.tiny_model(seed=1, num_layers=2)
    return model, fixtures.tiny_tokenizer()


CASES = [
    CheckCase(ch03.check_causal_mask, causal_mask, [mask_upper_triangle, mask_without_diagonal, mask_as_float,
                                                    mask_transposed, mask_inverted, mask_off_by_one_future]),
    CheckCase(ch03.check_attention_weights, attention.attention_weights,
              [weights_without_scaling, weights_mask_with_zero, weights_softmax_over_queries, weights_hard_coded_causal,
               weights_ignore_mask, weights_scaled_by_d, weights_scaled_by_seq_len, weights_zeroed_after_softmax,
               weights_mask_inverted, weights_scaled_by_sqrt_seq_len, weights_transpose_1_2]),
    CheckCase(ch03.check_repeat_kv, attention.repeat_kv,
              [repeat_tiled, repeat_on_seq, repeat_expand_wrong_axis, repeat_returns_input, repeat_on_last_axis]),
    CheckCase(ch03.check_cache_append, cache_append, [append_by_cat, append_without_capacity_check,
              append_returns_old_length, append_at_start, append_strict_capacity, append_returns_tensor_length,
              append_checks_length_only]),
    CheckCase(ch03.check_kv_cache_bytes, kv_cache.kv_cache_bytes,
              [bytes_without_k_and_v, bytes_with_hidden_size, bytes_in_gb, bytes_in_bits, bytes_forgetting_batch]),
    CheckCase(ch03.check_apply_rope, attention.apply_rope, [rope_interleaved, rope_wrong_sign, rope_swapped_halves,
              rope_cos_only, rope_no_rotation]),
    CheckCase(ch03.check_decoder_block, decoder_block, BLOCK_MISTAKES, args=_model()),
]

test_passes, test_fails_on_stub, test_fails_on_wrong = make_tests(CASES)
