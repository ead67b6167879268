"""Memory arithmetic in one place: weights, NF4 bits per weight, training (full/LoRA/QLoRA), activations, KV cache.

GB means 1e9 bytes everywhere here (the books' unit); parameters are counted in billions (7 for a 7B model).
"""

from __future__ import annotations

from dataclasses import dataclass

from llmlab import validate as V

GB = 1e9
METHODS = ("full", "lora", "qlora")


def weights_gb(params_billion: float, bits: float = 16, group_size: int | None = None, scale_bits: int = 16) -> float:
    """Memory of the weights alone in GB (1e9 bytes): parameters × (bits + scale_bits / group_size) / 8.

    With group_size None there are no per-group scales (plain 16/32-bit weights, or scales ignored).

    >>> weights_gb(7, bits=16)
    14.0
    >>> round(weights_gb(7, bits=4, group_size=64), 3)
    3.719
    """
    V.number("params_billion", params_billion, 0, low_open=True)
    V.number("bits", bits, 0, 64, low_open=True)
    if group_size is not None:
        V.positive_int("group_size", group_size)
    V.positive_int("scale_bits", scale_bits)
    return params_billion * (bits + (scale_bits / group_size if group_size else 0)) / 8


def inference_memory_gb(params_billion: float, bits: float = 16, overhead: float = 1.2) -> float:
    """Rule-of-thumb serving memory: weights x overhead (20% for KV cache, activations, buffers).

    >>> round(inference_memory_gb(7, bits=16), 2)
    16.8
    """
    if isinstance(overhead, bool) or not isinstance(overhead, (int, float)) or overhead < 1:
        raise ValueError(f"overhead must be a number >= 1, got {overhead!r}")
    return weights_gb(params_billion, bits) * overhead


def activation_memory_gb(num_layers: int, hidden: int, num_heads: int, seq_len: int, batch: int = 1) -> float:
    """Stored activations of a transformer for backprop at 16 bits, no recomputation: L*s*b*h*(34 + 5*a*s/h) bytes.

    Formula from Korthikanti et al. 2022, "Reducing Activation Recomputation in Large Transformer Models".
    """
    for pname, value in [("num_layers", num_layers), ("hidden", hidden), ("num_heads", num_heads),
                         ("seq_len", seq_len), ("batch", batch)]:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{pname} must be an int >= 1, got {value!r}")
    return num_layers * seq_len * batch * hidden * (34 + 5 * num_heads * seq_len / hidden) / GB


def training_memory_gb(params_billion: float, method: str = "full", bits: float = 16,
                       trainable_billion: float = 0.0, optimizer_states: int = 2,
                       activations_gb: float = 0.0) -> dict[str, float]:
    """Training memory by part (weights, gradients, optimizer, activations, total) in GB.

    full: every parameter has a gradient and `optimizer_states` Adam states, all at `bits`.
    lora / qlora: the base is frozen (no gradient, no state; 4-bit NF4 base for qlora) and only
    `trainable_billion` adapter parameters get a 16-bit gradient and fp32 Adam states.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {list(METHODS)}, got {method!r}")
    V.number("params_billion", params_billion, 0, low_open=True)
    V.number("bits", bits, 0, low_open=True)
    if isinstance(optimizer_states, bool) or not isinstance(optimizer_states, int) or optimizer_states < 0:
        raise ValueError(f"optimizer_states must be an int >= 0, got {optimizer_states!r}")
    for pname, value in [("trainable_billion", trainable_billion), ("activations_gb", activations_gb)]:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ValueError(f"{pname} must be a number >= 0, got {value!r}")
    if method == "full":
        parts = {"weights": weights_gb(params_billion, bits), "gradients": weights_gb(params_billion, bits),
                 "optimizer": optimizer_states * weights_gb(params_billion, bits)}
    else:
        base_bits = nf4_bits_per_param(64, double_quant=True) if method == "qlora" else bits
        adapter = trainable_billion
        parts = {"weights": params_billion * base_bits / 8 + adapter * 2,
                 "gradients": adapter * 2, "optimizer": optimizer_states * adapter * 4}
    parts["activations"] = float(activations_gb)
    parts["total"] = sum(parts.values())
    return parts


def nf4_bits_per_param(block_size: int = 64, *, double_quant: bool, dq_block_size: int = 256) -> float:
    """Average bits per weight of NF4: 4 + one fp32 absmax per block (4.5 at 64), or with QLoRA's double
    quantization an 8-bit absmax per block plus one fp32 scale per dq_block_size blocks (≈4.127 at 64/256).

    >>> nf4_bits_per_param(64, double_quant=False)
    4.5
    >>> round(nf4_bits_per_param(64, double_quant=True), 3)
    4.127
    """
    V.positive_int("block_size", block_size)
    V.positive_int("dq_block_size", dq_block_size)
    if not isinstance(double_quant, bool):
        raise TypeError(f"double_quant must be True or False, got {double_quant!r}")
    if double_quant:
        return 4 + 8 / block_size + 32 / (block_size * dq_block_size)
    return 4 + 32 / block_size


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

    >>> kv_cache_bytes(batch=1, seq_len=1024, layers=30, kv_heads=3, head_dim=64, bytes_per_value=2)
    23592960
    """
    for pname, value in [("batch", batch), ("seq_len", seq_len), ("layers", layers), ("kv_heads", kv_heads),
                         ("head_dim", head_dim), ("layers_per_kv", layers_per_kv)]:
        V.positive_int(pname, value)
    if isinstance(bytes_per_value, bool) or not isinstance(bytes_per_value, (int, float)) or bytes_per_value <= 0:
        raise ValueError(f"bytes_per_value must be a positive number (2 for fp16, 0.5 for int4), "
                         f"got {bytes_per_value!r}")
    if window is not None:
        V.positive_int("window", window)
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
