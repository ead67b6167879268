"""KV cache: a preallocated cache with rollback, prefill/decode, cached and uncached generation, memory arithmetic."""

from __future__ import annotations

import time

import torch

from llmlab import validate as V
from llmlab.attention import LlamaWeights, forward
from llmlab.memory import LLAMA_PRESETS, KVShape, kv_cache_bytes, kv_savings  # noqa: F401 - the memory arithmetic lives in memory.py
from llmlab.serving.timing import timed


def _positive_int(name: str, value, low: int = 1) -> int:
    """Return value if it is an int >= low, else raise an error naming it."""
    return V.integer(name, value, low=low)


class KVCache:
    """Keys and values of every layer, preallocated to `capacity` positions; append, truncate, measure.

    >>> cache = KVCache(layers=1, batch=1, kv_heads=1, head_dim=2, capacity=4)
    >>> k = torch.ones(1, 1, 3, 2)
    >>> [t.shape for t in cache.append(0, k, k)], cache.length
    ([torch.Size([1, 1, 3, 2]), torch.Size([1, 1, 3, 2])], 3)
    >>> cache.truncate(1); cache.length
    1
    """

    def __init__(self, layers: int, batch: int, kv_heads: int, head_dim: int, capacity: int,
                 dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu"):
        for pname, value in [("layers", layers), ("batch", batch), ("kv_heads", kv_heads), ("head_dim", head_dim),
                             ("capacity", capacity)]:
            _positive_int(pname, value)
        if not isinstance(dtype, torch.dtype):
            raise TypeError(f"dtype must be a torch.dtype, got {dtype!r}")
        shape = (layers, batch, kv_heads, capacity, head_dim)
        self.keys = torch.zeros(shape, dtype=dtype, device=device)
        self.values = torch.zeros(shape, dtype=dtype, device=device)
        self.lengths = [0] * layers

    @classmethod
    def for_weights(cls, w: LlamaWeights, batch: int = 1, capacity: int = 512) -> KVCache:
        """An empty cache shaped for a model's weights."""
        return cls(w.num_layers, batch, w.num_kv_heads, w.head_dim, capacity, w.embed.dtype, w.embed.device)

    @property
    def capacity(self) -> int:
        """How many positions fit."""
        return self.keys.shape[3]

    @property
    def length(self) -> int:
        """Positions held by every layer."""
        return min(self.lengths)

    def append(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store new (batch, kv_heads, seq, head_dim) keys and values after a layer's entries; return all of them."""
        if not isinstance(layer, int) or not 0 <= layer < len(self.lengths):
            raise ValueError(f"layer must be an int in [0, {len(self.lengths) - 1}], got {layer!r}")
        want = (self.keys.shape[1], self.keys.shape[2], k.shape[2] if k.dim() == 4 else -1, self.keys.shape[4])
        if k.dim() != 4 or tuple(k.shape) != want or tuple(v.shape) != want:
            raise ValueError(f"k and v must have shape (batch, kv_heads, seq, head_dim) = "
                             f"({want[0]}, {want[1]}, seq, {want[3]}), got {tuple(k.shape)} and {tuple(v.shape)}")
        start = self.lengths[layer]
        end = start + k.shape[2]
        if end > self.capacity:
            raise ValueError(f"cache capacity is {self.capacity} positions; appending {k.shape[2]} to {start} "
                             f"would need {end}. Create the cache with a larger capacity.")
        self.keys[layer, :, :, start:end] = k
        self.values[layer, :, :, start:end] = v
        self.lengths[layer] = end
        return self.keys[layer, :, :, :end], self.values[layer, :, :, :end]

    def truncate(self, length: int) -> None:
        """Forget every position from `length` on (rollback, e.g. rejected speculative tokens)."""
        if isinstance(length, bool) or not isinstance(length, int) or not 0 <= length <= self.length:
            raise ValueError(f"length must be an int in [0, {self.length}], got {length!r}")
        self.lengths = [length] * len(self.lengths)

    def reorder(self, index: torch.Tensor) -> None:
        """Keep batch rows `index` (batch,) in that order, e.g. the beams that continue in beam search."""
        if not isinstance(index, torch.Tensor) or index.dim() != 1 or index.shape[0] != self.keys.shape[1] \
                or index.is_floating_point():
            raise ValueError(f"index must be an integer tensor of shape ({self.keys.shape[1]},), got {index!r}")
        self.keys = self.keys[:, index.to(self.keys.device)]
        self.values = self.values[:, index.to(self.values.device)]

    def bytes_used(self) -> int:
        """Bytes of keys and values actually held (2 × layers × batch × kv_heads × length × head_dim × size)."""
        per_position = self.keys[:, :, :, 0].numel() * self.keys.element_size()
        return 2 * per_position * self.length

    def bytes_allocated(self) -> int:
        """Bytes reserved for the full capacity."""
        return 2 * self.keys.numel() * self.keys.element_size()


def prefill(w: LlamaWeights, ids: torch.Tensor, cache: KVCache) -> torch.Tensor:
    """Run the whole prompt once, filling the cache; returns the last position's logits (batch, vocab)."""
    return forward(w, ids, cache)[:, -1]


def decode_step(w: LlamaWeights, token: torch.Tensor, cache: KVCache) -> torch.Tensor:
    """One new token per sequence (batch,) through the model using the cache; returns its logits (batch, vocab)."""
    if not isinstance(token, torch.Tensor) or token.dim() != 1:
        raise ValueError(f"token must be a 1-d tensor of ids (batch,), got {token!r}")
    return forward(w, token[:, None], cache)[:, -1]


@torch.inference_mode()
def generate(w: LlamaWeights, ids: torch.Tensor, max_new_tokens: int, use_cache: bool = True,
             eos_token_id: int | None = None) -> torch.Tensor:
    """Greedy new tokens (batch, n) after prompt ids (batch, seq); without the cache every step reruns everything."""
    _positive_int("max_new_tokens", max_new_tokens)
    if not isinstance(ids, torch.Tensor) or ids.dim() != 2 or ids.is_floating_point():
        raise ValueError(f"ids must be an integer tensor of shape (batch, seq), got {ids!r}")
    batch, seq = ids.shape
    out = torch.empty(batch, max_new_tokens, dtype=torch.long, device=ids.device)
    if use_cache:
        cache = KVCache.for_weights(w, batch, seq + max_new_tokens)
        logits = prefill(w, ids, cache)
    else:
        logits = forward(w, ids)[:, -1]
    for i in range(max_new_tokens):
        token = logits.argmax(dim=-1)
        out[:, i] = token
        if eos_token_id is not None and bool((out[:, :i + 1] == eos_token_id).any(dim=1).all()):
            return out[:, :i + 1]
        if i + 1 == max_new_tokens:
            break
        if use_cache:
            logits = decode_step(w, token, cache)
        else:
            logits = forward(w, torch.cat([ids, out[:, :i + 1]], dim=1))[:, -1]
    return out


@torch.inference_mode()
def time_prefill_decode(w: LlamaWeights, ids: torch.Tensor, decode_tokens: int = 4) -> tuple[float, float]:
    """Seconds for the prefill (time to first token) and mean seconds per decode step (time per output token)."""
    _positive_int("decode_tokens", decode_tokens)
    cache = KVCache.for_weights(w, ids.shape[0], ids.shape[1] + decode_tokens)
    start = time.perf_counter()
    token = prefill(w, ids, cache).argmax(-1)
    ttft = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(decode_tokens):
        token = decode_step(w, token, cache).argmax(-1)
    return ttft, (time.perf_counter() - start) / decode_tokens


def time_generate(w: LlamaWeights, ids: torch.Tensor, max_new_tokens: int, use_cache: bool = True) -> float:
    """Wall-clock seconds of one greedy generate() call."""
    return timed(generate, w, ids, max_new_tokens, use_cache=use_cache)[1]
