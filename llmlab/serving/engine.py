"""Batched decoding on the kit's own model code: equal-length batches (kv_cache) and ragged continuous batches.

A decode step reads every weight once whatever the batch, so B sequences per step cost little more than one
until the matmuls become compute-bound. Continuous batching needs sequences of *different* lengths in one step:
`ragged_decode_step` runs the big matmuls on the whole batch and attention per sequence, each on its own KVCache
(what vLLM, SGLang and TGI do with paged KV blocks and fused kernels).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from llmlab import validate
from llmlab.attention import LlamaWeights, rms_norm, rotate_half, swiglu_mlp
from llmlab.kv_cache import KVCache, prefill, time_prefill_decode
from llmlab.prepack import linear


@torch.inference_mode()
def ragged_decode_step(w: LlamaWeights, tokens: torch.Tensor, caches: Sequence[KVCache]) -> torch.Tensor:
    """One token for each of B sequences (tokens (B,)), each continuing its own batch-1 cache; logits (B, vocab).

    The same computation as kv_cache.decode_step on each sequence alone (see attention.forward), except that the
    projections and the MLP run once on the stacked (B, 1, hidden) batch. Sequences may have different lengths.
    """
    validate.tensor("tokens", tokens, dims=1)
    validate.non_empty("caches", caches)
    validate.same_length(("tokens", "caches"), tokens, caches)
    b = len(caches)
    hq, hk, d = w.num_heads, w.num_kv_heads, w.head_dim
    positions = torch.tensor([c.length for c in caches], device=tokens.device)
    if int(positions.max()) >= w.max_positions:
        raise ValueError(f"positions must be < {w.max_positions} (the RoPE table), got {int(positions.max())}")
    cos, sin = w.cos[positions][:, None, None], w.sin[positions][:, None, None]  # (B, 1, 1, head_dim)
    x = F.embedding(tokens[:, None], w.embed)  # (B, 1, hidden)
    for i, layer in enumerate(w.layers):
        qkv = linear(rms_norm(x, layer.attn_norm, w.eps), layer.wqkv).view(b, 1, hq + 2 * hk, d).transpose(1, 2)
        qk = qkv[:, :hq + hk] * cos + rotate_half(qkv[:, :hq + hk]) * sin
        q, k, v = qk[:, :hq], qk[:, hq:], qkv[:, hq + hk:]  # (B, heads, 1, head_dim)
        outs = []
        for j, cache in enumerate(caches):
            keys, values = cache.append(i, k[j:j + 1], v[j:j + 1])
            outs.append(F.scaled_dot_product_attention(q[j:j + 1], keys, values, enable_gqa=hq != hk))
        x = x + linear(torch.cat(outs).transpose(1, 2).reshape(b, 1, hq * d), layer.wo)
        x = x + swiglu_mlp(rms_norm(x, layer.mlp_norm, w.eps), layer.wgate, layer.wup, layer.wdown,
                           layer.fused_gate_up())
    return linear(rms_norm(x, w.final_norm, w.eps), w.lm_head)[:, -1]


@dataclass(frozen=True)
class BatchPoint:
    """Measured decode at one batch size: prefill seconds, seconds per step, tokens/s, per-request latency."""

    batch: int
    prompt_tokens: int
    new_tokens: int
    ttft: float
    tpot: float

    @property
    def tokens_per_s(self) -> float:
        """Decode throughput of the whole batch: batch ÷ seconds per step."""
        return self.batch / self.tpot

    @property
    def request_latency(self) -> float:
        """Seconds one request waits for all its tokens: TTFT + TPOT × (new tokens − 1)."""
        return self.ttft + self.tpot * (self.new_tokens - 1)


def measure_batch_decode(w: LlamaWeights, prompt: torch.Tensor, batch_sizes: Sequence[int], new_tokens: int = 8,
                         repeats: int = 1) -> list[BatchPoint]:
    """Greedy decode of the same (1, seq) prompt copied into batches of each size (kv_cache.time_prefill_decode).

    Keeps the fastest of `repeats` runs per batch size; the first step's cost is the prefill (TTFT).
    """
    validate.token_ids("prompt", prompt)
    validate.non_empty("batch_sizes", batch_sizes)
    for value in batch_sizes:
        validate.positive_int("batch_sizes[i]", value)
    validate.integer("new_tokens", new_tokens, low=2)
    validate.positive_int("repeats", repeats)
    time_prefill_decode(w, prompt[:1, :4], decode_tokens=1)  # warm-up
    points = []
    for b in batch_sizes:
        ids = prompt[:1].repeat(b, 1)
        runs = [time_prefill_decode(w, ids, decode_tokens=new_tokens - 1) for _ in range(repeats)]
        ttft, tpot = min(r[0] for r in runs), min(r[1] for r in runs)
        points.append(BatchPoint(b, prompt.shape[1], new_tokens, ttft, tpot))
    return points


def time_ragged_step(w: LlamaWeights, lengths: Sequence[int], steps: int = 3) -> float:
    """Mean seconds of one ragged decode step for sequences already holding `lengths` tokens (random ids)."""
    validate.non_empty("lengths", lengths)
    validate.positive_int("steps", steps)
    gen = torch.Generator().manual_seed(0)
    caches = []
    for n in lengths:
        validate.positive_int("lengths[i]", n)
        cache = KVCache.for_weights(w, 1, n + steps + 1)
        ids = torch.randint(0, w.vocab_size, (1, n), generator=gen).to(w.embed.device)
        with torch.inference_mode():
            prefill(w, ids, cache)
        caches.append(cache)
    tokens = torch.zeros(len(lengths), dtype=torch.long, device=w.embed.device)
    ragged_decode_step(w, tokens, caches)
    start = time.perf_counter()
    for _ in range(steps):
        tokens = ragged_decode_step(w, tokens, caches).argmax(-1)
    return (time.perf_counter() - start) / steps
