"""KV cache: a preallocated cache with rollback, prefill/decode, cached and uncached generation, memory arithmetic."""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from llmlab.attention import LlamaWeights, forward


def _positive_int(name: str, value, low: int = 1) -> int:
    """Return value if it is an int >= low, else raise ValueError naming it."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    return value


class KVCache:
    """Keys and values of every layer, preallocated to `capacity` positions; append, truncate, measure."""

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


@dataclass(frozen=True)
class KVShape:
    """A model's KV-cache-relevant sizes (from the book's Llama table or a config)."""

    name: str
    layers: int
    heads: int
    kv_heads: int
    head_dim: int


LLAMA_PRESETS: dict[str, KVShape] = {
    # layers, query heads, KV heads, head dim from the published model configs (hidden = heads × head_dim)
    "Llama 2 7B": KVShape("Llama 2 7B", 32, 32, 32, 128),
    "Llama 2 13B": KVShape("Llama 2 13B", 40, 40, 40, 128),
    "Llama 2 70B": KVShape("Llama 2 70B", 80, 64, 8, 128),
    "Llama 3 8B": KVShape("Llama 3 8B", 32, 32, 8, 128),
    "Llama 3 70B": KVShape("Llama 3 70B", 80, 64, 8, 128),
    "Llama 3 405B": KVShape("Llama 3 405B", 126, 128, 8, 128),
    "SmolLM2-135M": KVShape("SmolLM2-135M", 30, 9, 3, 64),
}


def kv_cache_bytes(batch: int, seq_len: int, layers: int, kv_heads: int, head_dim: int, bytes_per_value: float,
                   window: int | None = None, layers_per_kv: int = 1) -> int:
    """KV cache size: 2 (K and V) × batch × tokens kept × layers with their own KV × kv_heads × head_dim × bytes.

    `window` keeps only the last `window` tokens (sliding-window attention); `layers_per_kv` > 1 shares one KV
    cache between that many adjacent layers (cross-layer sharing).
    """
    for pname, value in [("batch", batch), ("seq_len", seq_len), ("layers", layers), ("kv_heads", kv_heads),
                         ("head_dim", head_dim), ("layers_per_kv", layers_per_kv)]:
        _positive_int(pname, value)
    if isinstance(bytes_per_value, bool) or not isinstance(bytes_per_value, (int, float)) or bytes_per_value <= 0:
        raise ValueError(f"bytes_per_value must be a positive number (2 for fp16, 0.5 for int4), "
                         f"got {bytes_per_value!r}")
    if window is not None:
        _positive_int("window", window)
    kept = seq_len if window is None else min(seq_len, window)
    kv_layers = -(-layers // layers_per_kv)
    return round(2 * batch * kept * kv_layers * kv_heads * head_dim * bytes_per_value)


def kv_savings(shape: KVShape, batch: int, seq_len: int, bytes_per_value: float = 2, window: int = 4096,
               layers_per_kv: int = 2) -> dict[str, int]:
    """KV bytes for a model under full multi-head attention, its own GQA, MQA, a sliding window and layer sharing."""
    if not isinstance(shape, KVShape):
        raise TypeError(f"shape must be a KVShape (see LLAMA_PRESETS), got {type(shape).__name__}")
    base = dict(batch=batch, seq_len=seq_len, layers=shape.layers, head_dim=shape.head_dim,
                bytes_per_value=bytes_per_value)
    return {
        "MHA (every head its own KV)": kv_cache_bytes(kv_heads=shape.heads, **base),
        f"as built ({shape.kv_heads} KV heads)": kv_cache_bytes(kv_heads=shape.kv_heads, **base),
        "MQA (1 KV head)": kv_cache_bytes(kv_heads=1, **base),
        f"as built + window {window}": kv_cache_bytes(kv_heads=shape.kv_heads, window=window, **base),
        f"as built + KV shared by {layers_per_kv} layers": kv_cache_bytes(kv_heads=shape.kv_heads,
                                                                          layers_per_kv=layers_per_kv, **base),
    }


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
    start = time.perf_counter()
    generate(w, ids, max_new_tokens, use_cache=use_cache)
    return time.perf_counter() - start
