"""Check-can-fail tests for chapter 03's exercise checks."""

import math

import torch
from checks_harness import CheckCase, make_tests

from llmlab import attention, kv_cache
from llmlab.checks import ch03


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


CASES = [
    CheckCase(ch03.check_causal_mask, causal_mask, [mask_upper_triangle, mask_without_diagonal, mask_as_float]),
    CheckCase(ch03.check_attention_weights, attention.attention_weights,
              [weights_without_scaling, weights_mask_with_zero, weights_softmax_over_queries]),
    CheckCase(ch03.check_repeat_kv, attention.repeat_kv, [repeat_tiled, repeat_on_seq]),
    CheckCase(ch03.check_cache_append, cache_append, [append_by_cat, append_without_capacity_check]),
    CheckCase(ch03.check_kv_cache_bytes, kv_cache.kv_cache_bytes, [bytes_without_k_and_v, bytes_with_hidden_size]),
    CheckCase(ch03.check_apply_rope, attention.apply_rope, [rope_interleaved, rope_wrong_sign]),
]

test_passes, test_fails_on_stub, test_fails_on_wrong = make_tests(CASES)
