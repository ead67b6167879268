"""Checks for chapter 03 (attention and the KV cache) exercises."""

from __future__ import annotations

import math

import torch

from llmlab.checks import Check


def check_causal_mask(causal_mask) -> None:
    """Exercise 03.1: causal_mask(seq_len) is a bool (seq_len, seq_len) tensor, True where key j <= query i."""
    with Check("Exercise 03.1 causal_mask") as c:
        for n in [1, 2, 5]:
            case = f"seq_len={n}"
            got = c.call(causal_mask, n, case=case)
            c.that(isinstance(got, torch.Tensor), case, f"expected a torch.Tensor, got {type(got).__name__}")
            c.that(got.dtype == torch.bool, case, f"expected dtype torch.bool (True = may attend), got {got.dtype}")
            c.close(got, torch.ones(n, n).tril().bool(), case=case, atol=0, rtol=0)
        got = causal_mask(4)
        c.that(bool(got.diagonal().all()), "diagonal", "every token must attend to itself (the diagonal is True)")
        c.that(not bool(got[0, 1:].any()), "first row", "the first token must not see any later token")


def check_attention_weights(attention_weights) -> None:
    """Exercise 03.2: attention_weights(q, k, mask) = softmax(q·kᵀ/√d) over keys, masked positions zero."""
    gen = torch.Generator().manual_seed(3)
    with Check("Exercise 03.2 attention_weights") as c:
        for shape in [(1, 3, 4), (2, 5, 8)]:
            q, k = torch.randn(*shape, generator=gen) * 2, torch.randn(*shape, generator=gen) * 2
            n, d = shape[1], shape[2]
            mask = torch.ones(n, n).tril().bool()
            scores = (q @ k.transpose(-2, -1) / math.sqrt(d)).masked_fill(~mask, float("-inf"))
            expected = torch.softmax(scores, dim=-1)
            case = f"q, k of shape {shape} with a causal mask"
            got = c.call(attention_weights, q.clone(), k.clone(), mask, case=case)
            c.that(isinstance(got, torch.Tensor), case, f"expected a torch.Tensor, got {type(got).__name__}")
            c.that(torch.allclose(got.sum(-1), torch.ones(shape[:2]), atol=1e-4), case,
                   "each row must sum to 1 (softmax over the keys, the last dimension)")
            c.that(bool((got.masked_fill(mask, 0) == 0).all()), case,
                   "masked (future) positions must get weight exactly 0: fill their scores with -inf before softmax")
            c.close(got, expected, case=case, atol=1e-5)


def check_repeat_kv(repeat_kv) -> None:
    """Exercise 03.3: repeat_kv(x, n_rep) repeats each KV head n_rep times in place: (b, h, s, d) -> (b, h·n, s, d)."""
    with Check("Exercise 03.3 repeat_kv") as c:
        x = torch.arange(2 * 3 * 2 * 2, dtype=torch.float32).view(2, 3, 2, 2)
        for n_rep in [1, 3]:
            case = f"x of shape (2, 3, 2, 2), n_rep={n_rep}"
            got = c.call(repeat_kv, x.clone(), n_rep, case=case)
            expected = x.repeat_interleave(n_rep, dim=1)
            c.close(got, expected, case=case, atol=0, rtol=0)
        got = repeat_kv(x, 3)
        c.that(torch.equal(got[:, 1], x[:, 0]), "query head 1",
               "query heads 0, 1, 2 share KV head 0 (AABBCC), not KV heads 0, 1, 2 (ABCABC)")


def check_cache_append(cache_append) -> None:
    """Exercise 03.4: cache_append(buffer, length, new) writes new at buffer[:, :, length:], returns the new length."""
    gen = torch.Generator().manual_seed(4)
    with Check("Exercise 03.4 cache_append") as c:
        buffer = torch.zeros(1, 2, 6, 3)
        expected = torch.zeros(1, 2, 6, 3)
        length = 0
        for s in [3, 1, 2]:
            new = torch.randn(1, 2, s, 3, generator=gen)
            case = f"appending {s} position(s) at length {length}"
            got = c.call(cache_append, buffer, length, new, case=case)
            expected[:, :, length:length + s] = new
            c.equal(got, length + s, case=case + " (returned length)")
            c.close(buffer, expected, case=case + " (buffer contents, written in place)", atol=0, rtol=0)
            length += s
        try:
            cache_append(buffer, length, torch.zeros(1, 2, 1, 3))
        except ValueError:
            c.that(True, "past capacity", "")
        except Exception as exc:  # noqa: BLE001 - reported as a failed case
            c.fail("past capacity", f"expected a ValueError, got {type(exc).__name__}: {exc}")
        else:
            c.fail("past capacity", "appending to a full buffer must raise ValueError, it returned normally")


def check_kv_cache_bytes(kv_cache_bytes) -> None:
    """Exercise 03.5: kv_cache_bytes(batch, seq_len, layers, kv_heads, head_dim, bytes_per_value)."""
    cases = [
        ((32, 2048, 40, 40, 128, 2), 53_687_091_200, "the book's Llama 2 13B example"),
        ((1, 8192, 32, 8, 128, 2), 1_073_741_824, "Llama 3 8B (GQA, 8 KV heads), 8K tokens"),
        ((4, 100, 30, 3, 64, 4), 18_432_000, "SmolLM2-135M fp32, batch 4"),
    ]
    with Check("Exercise 03.5 kv_cache_bytes") as c:
        for args, expected, case in cases:
            got = c.call(kv_cache_bytes, *args, case=case)
            c.close(got, expected, case=case, atol=0.5, rtol=0)


def check_apply_rope(apply_rope) -> None:
    """Exercise 03.6: apply_rope(x, cos, sin) = x·cos + rotate_half(x)·sin with Llama's half-split layout."""
    gen = torch.Generator().manual_seed(6)
    d = 8
    inv = 1.0 / (10000 ** (torch.arange(0, d, 2).float() / d))
    angles = torch.arange(5).float()[:, None] * inv
    emb = torch.cat([angles, angles], -1)
    cos, sin = emb.cos(), emb.sin()
    with Check("Exercise 03.6 apply_rope") as c:
        x = torch.randn(1, 2, 5, d, generator=gen)
        half = d // 2
        expected = x * cos + torch.cat([-x[..., half:], x[..., :half]], -1) * sin
        got = c.call(apply_rope, x.clone(), cos, sin, case="x of shape (1, 2, 5, 8)")
        c.close(got, expected, case="x of shape (1, 2, 5, 8)", atol=1e-5)
        c.close(got.norm(dim=-1), x.norm(dim=-1), case="rotation keeps each vector's length", atol=1e-4)
