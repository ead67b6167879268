"""Prefix (prompt) caching: keep the KV cache of a shared prompt prefix and start each request from a copy of it.

What vLLM's automatic prefix caching and SGLang's RadixAttention do with hashed KV blocks, here with registered
prefixes: a request reuses the KV of the longest leading part it shares with a stored prefix and prefills only the
rest, by the rule of `prefill_tokens` (exercise 10.4): shared tokens are reused, at least one token is prefilled.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from llmlab import validate
from llmlab.attention import LlamaWeights
from llmlab.kv_cache import KVCache, prefill
from llmlab.serving.timing import summarise, timed


def copy_cache(cache: KVCache, capacity: int, length: int | None = None) -> KVCache:
    """A new KVCache (same layers, batch, heads) of `capacity` positions holding a copy of the first `length`
    positions `cache` holds (all of them by default; a causal prefix's KV does not depend on what follows it)."""
    n = cache.length if length is None else validate.integer("length", length, 0, cache.length)
    validate.integer("capacity", capacity, low=n)
    layers, batch, kv_heads, _, head_dim = cache.keys.shape
    new = KVCache(layers, batch, kv_heads, head_dim, capacity, cache.keys.dtype, cache.keys.device)
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

    def reusable(self, ids: Sequence[int]) -> tuple[tuple[int, ...], int]:
        """(registered prefix, tokens of it to reuse) for a prompt: the most leading tokens `ids` shares with a stored
        prefix, leaving at least one token to prefill (the rule of `prefill_tokens`); ((), 0) if none is shared."""
        ids = tuple(int(t) for t in ids)
        best: tuple[tuple[int, ...], int] = ((), 0)
        for key in self.entries:
            n = min(common_prefix_length(ids, key), len(ids) - 1)
            if n > best[1]:
                best = (key, n)
        return best

    def match(self, ids: Sequence[int]) -> tuple[int, ...]:
        """The registered prefix whose KV cache `start` reuses for `ids` (see `reusable`); () if none."""
        return self.reusable(ids)[0]

    @torch.inference_mode()
    def start(self, ids: torch.Tensor, max_new_tokens: int) -> tuple[KVCache, torch.Tensor, int]:
        """Prefill a (1, seq) prompt from its cached prefix; returns (cache, last logits (1, vocab), tokens reused)."""
        validate.token_ids("ids", ids)
        if ids.shape[0] != 1:
            raise ValueError(f"ids must be one prompt of shape (1, seq), got {tuple(ids.shape)}")
        validate.positive_int("max_new_tokens", max_new_tokens)
        capacity = ids.shape[1] + max_new_tokens
        key, n = self.reusable(ids[0].tolist())
        cache = copy_cache(self.entries[key], capacity, n) if n else KVCache.for_weights(self.w, 1, capacity)
        return cache, prefill(self.w, ids[:, n:], cache), n


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
