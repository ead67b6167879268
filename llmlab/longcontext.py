"""Long context: sliding-window masks with attention sinks (StreamingLLM), a windowed forward on the kit's pieces,
RoPE scaling tables (position interpolation, NTK-aware, YaRN) and the KV bytes a window saves (chapter 14).

Conventions: a window w lets query i see keys i-w+1 .. i (itself and the w-1 before it); s sink tokens are the
first s positions, visible to every later query on top of the window (not counted inside it), and causal like
everything else: no query ever sees a key after itself.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F

from llmlab import attention, validate
from llmlab.attention import LlamaWeights


def _check_window(window: int, sinks: int) -> None:
    """Raise unless window >= 1 and sinks >= 0 are ints."""
    validate.integer("window", window, low=1)
    validate.integer("sinks", sinks, low=0)


def sliding_window_mask(seq_len: int, window: int, sinks: int = 0, past_len: int = 0,
                        device: str | torch.device | None = None) -> torch.Tensor:
    """Bool (seq_len, past_len + seq_len): True where a query may attend a key under a causal window with sinks."""
    validate.integer("seq_len", seq_len, low=1)
    validate.integer("past_len", past_len, low=0)
    _check_window(window, sinks)
    rows = torch.arange(seq_len, device=device)[:, None] + past_len
    cols = torch.arange(past_len + seq_len, device=device)[None, :]
    return (cols <= rows) & ((rows - cols < window) | (cols < sinks))


def sliding_window_mask_loop(seq_len: int, window: int, sinks: int = 0) -> torch.Tensor:
    """The same mask written as a double loop over (query, key): the reference the vectorised one is tested on."""
    _check_window(window, sinks)
    mask = torch.zeros(seq_len, seq_len, dtype=torch.bool)
    for i in range(seq_len):
        for j in range(i + 1):
            mask[i, j] = j >= i - window + 1 or j < sinks
    return mask


def _check_length(w: LlamaWeights, n: int) -> None:
    """Raise when a sequence is longer than the RoPE tables."""
    if n > w.max_positions:
        raise ValueError(f"sequence length must be <= {w.max_positions} (the RoPE table, max_positions), got {n}")


def masked_forward(w: LlamaWeights, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Logits (batch, seq, vocab) from the kit's pieces with any (seq, seq) bool attention mask."""
    validate.tensor("ids", ids, dims=2)
    b, s = ids.shape
    _check_length(w, s)
    hq, hk, d = w.num_heads, w.num_kv_heads, w.head_dim
    cos, sin = w.cos[:s], w.sin[:s]
    x = F.embedding(ids, w.embed)
    for layer in w.layers:
        h = attention.rms_norm(x, layer.attn_norm, w.eps)
        qkv = F.linear(h, layer.wqkv).view(b, s, hq + 2 * hk, d).transpose(1, 2)
        q = attention.apply_rope(qkv[:, :hq], cos, sin)
        k = attention.repeat_kv(attention.apply_rope(qkv[:, hq:hq + hk], cos, sin), hq // hk)
        v = attention.repeat_kv(qkv[:, hq + hk:], hq // hk)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        x = x + F.linear(out.transpose(1, 2).reshape(b, s, hq * d), layer.wo)
        x = x + attention.swiglu_mlp(attention.rms_norm(x, layer.mlp_norm, w.eps), layer.wgate, layer.wup,
                                     layer.wdown)
    return attention.output_head(w, attention.rms_norm(x, w.final_norm, w.eps))


def windowed_forward(w: LlamaWeights, ids: torch.Tensor, window: int, sinks: int = 0) -> torch.Tensor:
    """Logits of the kit's decoder when every layer attends through a sliding window (with sinks)."""
    _check_window(window, sinks)
    validate.tensor("ids", ids, dims=2)
    return masked_forward(w, ids, sliding_window_mask(ids.shape[1], window, sinks, device=ids.device))


def windowed(window: int, sinks: int = 0) -> Callable[[LlamaWeights, torch.Tensor], torch.Tensor]:
    """forward(w, ids) for tiny.train / tiny.eval_loss with a fixed window and sink count."""
    _check_window(window, sinks)
    return lambda w, ids: windowed_forward(w, ids, window, sinks)


def kv_bytes(w: LlamaWeights, seq_len: int, window: int | None = None, sinks: int = 0, bytes_per_value: int = 2
             ) -> int:
    """KV-cache bytes for one sequence: every position, or at most window + sinks of them with a window."""
    validate.integer("seq_len", seq_len, low=0)
    kept = seq_len
    if window is not None:
        _check_window(window, sinks)
        kept = min(seq_len, window + sinks)
    return 2 * w.num_layers * w.num_kv_heads * w.head_dim * kept * bytes_per_value


# ---------------------------------------------------------------------------------------------- RoPE scaling
def default_inv_freq(head_dim: int, base: float = 10000.0) -> torch.Tensor:
    """RoPE's (head_dim/2,) inverse frequencies base^(-2i/head_dim), fastest first."""
    validate.integer("head_dim", head_dim, low=2)
    if head_dim % 2:
        raise ValueError(f"head_dim must be even, got {head_dim}")
    validate.number("base", base, low=1.0, low_open=True)
    return 1.0 / base ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)


def _check_factor(factor: float) -> None:
    validate.number("factor", factor, low=1.0)


def pi_inv_freq(head_dim: int, base: float, factor: float) -> torch.Tensor:
    """Position interpolation (Chen et al. 2023): every frequency divided by the factor (positions squeezed)."""
    _check_factor(factor)
    return default_inv_freq(head_dim, base) / factor


def ntk_inv_freq(head_dim: int, base: float, factor: float) -> torch.Tensor:
    """NTK-aware scaling: the larger base base·s^(d/(d-2)); the slowest pair slows by s, the fastest not at all."""
    _check_factor(factor)
    return default_inv_freq(head_dim, base * factor ** (head_dim / (head_dim - 2)))


def yarn_inv_freq(head_dim: int, base: float, factor: float, original_max: int, beta_fast: float = 32.0,
                  beta_slow: float = 1.0) -> tuple[torch.Tensor, float]:
    """YaRN (Peng et al. 2023): interpolate slow dims, keep fast ones, ramp between; returns (inv_freq, mscale)."""
    _check_factor(factor)
    validate.integer("original_max", original_max, low=1)
    d = head_dim

    def dim_for(rotations: float) -> float:  # the dimension that turns `rotations` times over original_max
        return d * math.log(original_max / (rotations * 2 * math.pi)) / (2 * math.log(base))

    low, high = max(math.floor(dim_for(beta_fast)), 0), min(math.ceil(dim_for(beta_slow)), d - 1)
    high = high + 0.001 if low == high else high
    ramp = ((torch.arange(d // 2, dtype=torch.float32) - low) / (high - low)).clamp(0, 1)
    extrapolate = default_inv_freq(d, base)
    inv = extrapolate / factor * ramp + extrapolate * (1 - ramp)
    return inv, (0.1 * math.log(factor) + 1.0 if factor > 1 else 1.0)


def rope_tables(inv_freq: torch.Tensor, positions: int, mscale: float = 1.0, dtype: torch.dtype = torch.float32
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin tables (positions, head_dim) in Llama's half-split layout, scaled by YaRN's mscale."""
    validate.tensor("inv_freq", inv_freq, dims=1)
    validate.integer("positions", positions, low=1)
    angles = torch.arange(positions, dtype=torch.float32)[:, None] * inv_freq[None, :].float()
    emb = torch.cat((angles, angles), dim=-1)
    return (emb.cos() * mscale).to(dtype), (emb.sin() * mscale).to(dtype)


def scaled_inv_freq(kind: str, head_dim: int, base: float, factor: float, original_max: int) -> tuple[torch.Tensor,
                                                                                                        float]:
    """(inv_freq, mscale) of one RoPE variant: 'default', 'pi', 'ntk' or 'yarn'."""
    validate.one_of("kind", kind, ROPE_KINDS)
    if kind == "default":
        return default_inv_freq(head_dim, base), 1.0
    if kind == "pi":
        return pi_inv_freq(head_dim, base, factor), 1.0
    if kind == "ntk":
        return ntk_inv_freq(head_dim, base, factor), 1.0
    return yarn_inv_freq(head_dim, base, factor, original_max)


ROPE_KINDS = ("default", "pi", "ntk", "yarn")


def with_rope(w: LlamaWeights, kind: str, factor: float, original_max: int, positions: int,
              base: float = 10000.0) -> LlamaWeights:
    """w with RoPE tables of `positions` rows for one scaling variant (the weights are shared, not copied)."""
    import copy

    inv, mscale = scaled_inv_freq(kind, w.head_dim, base, factor, original_max)
    out = copy.copy(w)
    out.cos, out.sin = rope_tables(inv, positions, mscale, w.cos.dtype)
    out.head_rows = None
    return out


def loss_by_position(w: LlamaWeights, tokens: torch.Tensor, seq: int, windows: int = 8,
                     forward: Callable | None = None) -> torch.Tensor:
    """(seq,) mean next-token loss (nats) at each position over evenly spaced windows of a token stream."""
    validate.tensor("tokens", tokens, dims=1)
    _check_length(w, seq)
    if len(tokens) <= seq + 1:
        raise ValueError(f"tokens must hold more than seq + 1 = {seq + 1} tokens, got {len(tokens)}")
    fwd = forward or attention.forward
    starts = torch.linspace(0, len(tokens) - seq - 2, windows).long()
    idx = starts[:, None] + torch.arange(seq + 1)[None, :]
    x, y = tokens[idx][:, :-1], tokens[idx][:, 1:]
    with torch.no_grad():
        logits = fwd(w, x).float()
    return F.cross_entropy(logits.transpose(1, 2), y, reduction="none").mean(0)
