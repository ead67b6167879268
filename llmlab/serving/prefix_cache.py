"""Prefix (prompt) caching: keep the KV cache of a shared prompt prefix and start each request from a copy of it.

What vLLM's automatic prefix caching and SGLang's RadixAttention do with hashed KV blocks, here with whole
registered prefixes: a request whose prompt starts with a stored prefix prefills only the rest.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from llmlab import validate
from llmlab.attention import LlamaWeights
from llmlab.kv_cache import KVCache, prefill
from llmlab.serving.timing import summarise, timed


def copy_cache(cache: KVCache, capacity: int) -> KVCache:
    """A new KVCache (same layers, batch, heads) of `capacity` positions holding a copy of what `cache` holds."""
    validate.integer("capacity", capacity, low=cache.length)
    layers, batch, kv_heads, _, head_dim = cache.keys.shape
    new = KVCache(layers, batch, kv_heads, head_dim, capacity, cache.keys.dtype, cache.keys.device)
    n = cache.length
    new.keys[:, :, :, :n] = cache.keys[:, :, :, :n]
    new.values[:, :, :, :n] = cache.values[:, :, :, :n]
    new.lengths = [n] * layers
    return new


def common_prefix_length(a: Sequence[int], b: Sequence[int]) -> int:
    """How many leading tokens two token-id sequences share."""
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def prefill_tokens(requests: Sequence[Sequence[int]]) -> list[int]:
    """Tokens each request must prefill when every earlier prompt's KV cache is kept (automatic prefix caching).

    Request i reuses the longest prefix it shares with any earlier request; the rest must be computed, and at
    least one token always is (its logits give the first output token), even for a prompt seen before.
    """
    validate.non_empty("requests", requests)
    out = []
    for i, ids in enumerate(requests):
        validate.non_empty(f"requests[{i}]", ids)
        reused = max((common_prefix_length(ids, prev) for prev in requests[:i]), default=0)
        out.append(max(len(ids) - reused, 1))
    return out


class PrefixCache:
    """Registered prompt prefixes and their KV caches; `start` begins a request from the longest that matches."""

    def __init__(self, w: LlamaWeights):
        if not isinstance(w, LlamaWeights):
            raise TypeError(f"w must be LlamaWeights (attention.from_model), got {type(w).__name__}")
        self.w = w
        self.entries: dict[tuple[int, ...], KVCache] = {}

    @torch.inference_mode()
    def add(self, prefix: Sequence[int]) -> None:
        """Prefill a prefix (token ids) once and keep its KV cache."""
        key = tuple(int(t) for t in validate.non_empty("prefix", prefix))
        if key not in self.entries:
            cache = KVCache.for_weights(self.w, 1, len(key))
            prefill(self.w, torch.tensor([key], device=self.w.embed.device), cache)
            self.entries[key] = cache

    def match(self, ids: Sequence[int]) -> tuple[int, ...]:
        """The longest registered prefix that `ids` starts with and leaves at least one token after; () if none."""
        ids = tuple(int(t) for t in ids)
        best: tuple[int, ...] = ()
        for key in self.entries:
            if len(best) < len(key) < len(ids) and ids[:len(key)] == key:
                best = key
        return best

    @torch.inference_mode()
    def start(self, ids: torch.Tensor, max_new_tokens: int) -> tuple[KVCache, torch.Tensor, int]:
        """Prefill a (1, seq) prompt from its cached prefix; returns (cache, last logits (1, vocab), tokens reused)."""
        validate.token_ids("ids", ids)
        if ids.shape[0] != 1:
            raise ValueError(f"ids must be one prompt of shape (1, seq), got {tuple(ids.shape)}")
        validate.positive_int("max_new_tokens", max_new_tokens)
        capacity = ids.shape[1] + max_new_tokens
        key = self.match(ids[0].tolist())
        cache = copy_cache(self.entries[key], capacity) if key else KVCache.for_weights(self.w, 1, capacity)
        return cache, prefill(self.w, ids[:, len(key):], cache), len(key)


@dataclass(frozen=True)
class PrefixTiming:
    """TTFT of the same prompts prefilled in full and from a cached shared prefix (seconds, one per prompt)."""

    prefix_tokens: int
    suffix_tokens: list[int]
    uncached: list[float]
    cached: list[float]

    @property
    def speedup(self) -> float:
        """Median uncached TTFT ÷ median cached TTFT."""
        return summarise(self.uncached).median / summarise(self.cached).median


@torch.inference_mode()
def measure_prefix_ttft(w: LlamaWeights, prefix: Sequence[int], suffixes: Sequence[Sequence[int]]) -> PrefixTiming:
    """Time the prefill of prefix + each suffix without and with a PrefixCache holding the prefix."""
    validate.non_empty("suffixes", suffixes)
    cache = PrefixCache(w)
    cache.add(prefix)
    device = w.embed.device
    prompts = [torch.tensor([list(prefix) + list(s)], device=device) for s in suffixes]
    uncached, cached = [], []
    for ids in prompts:
        uncached.append(timed(prefill, w, ids, KVCache.for_weights(w, 1, ids.shape[1]))[1])
        (_, _, reused), seconds = timed(cache.start, ids, 1)
        cached.append(seconds)
        assert reused == len(prefix)
    return PrefixTiming(len(prefix), [len(s) for s in suffixes], uncached, cached)
