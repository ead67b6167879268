"""Attention from scratch (causal mask, GQA, RoPE, RMSNorm, SwiGLU) and the Llama forward pass on real weights."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from llmlab import validate as V
from llmlab.prepack import linear, pack


def _validate_tensor(name: str, x, dims: int) -> None:
    """Raise TypeError/ValueError unless x is a tensor with `dims` dimensions."""
    V.tensor(name, x, dims=dims, allow_empty=True)


def causal_mask(seq_len: int, past_len: int = 0, device: str | torch.device | None = None) -> torch.Tensor:
    """Boolean (seq_len, past_len + seq_len) mask: True where query i may attend to key j (j <= past_len + i).

    >>> causal_mask(3)
    tensor([[ True, False, False],
            [ True,  True, False],
            [ True,  True,  True]])
    >>> causal_mask(1, past_len=2)  # one new token sees the two cached ones and itself
    tensor([[True, True, True]])
    """
    V.integer("seq_len", seq_len, low=1)
    V.integer("past_len", past_len, low=0)
    rows = torch.arange(seq_len, device=device).unsqueeze(1) + past_len
    cols = torch.arange(past_len + seq_len, device=device).unsqueeze(0)
    return cols <= rows


def attention_scores(q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Scaled dot products q·kᵀ/√d for (..., q_len, d) queries and (..., k_len, d) keys."""
    if not isinstance(q, torch.Tensor) or not isinstance(k, torch.Tensor):
        raise TypeError(f"q and k must be torch.Tensors, got {type(q).__name__} and {type(k).__name__}")
    if q.dim() < 2 or q.shape[-1] != k.shape[-1] or q.shape[:-2] != k.shape[:-2]:
        raise ValueError(f"q and k must have shapes (..., q_len, d) and (..., k_len, d) with the same leading "
                         f"dims and d, got {tuple(q.shape)} and {tuple(k.shape)}")
    return q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])


def attention_weights(q: torch.Tensor, k: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Softmax over keys of the scaled scores, with disallowed (mask False) positions set to zero.

    >>> attention_weights(torch.ones(1, 1, 2, 4), torch.ones(1, 1, 2, 4), causal_mask(2))
    tensor([[[[1.0000, 0.0000],
              [0.5000, 0.5000]]]])
    """
    scores = attention_scores(q, k)
    if mask is not None:
        if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
            raise TypeError(f"mask must be a bool torch.Tensor, got {getattr(mask, 'dtype', type(mask).__name__)}")
        if tuple(mask.shape[-2:]) != tuple(scores.shape[-2:]):
            raise ValueError(f"mask must end in (q_len, k_len) = {tuple(scores.shape[-2:])}, "
                             f"got {tuple(mask.shape)}")
        scores = scores.masked_fill(~mask, float("-inf"))
    return torch.softmax(scores, dim=-1)


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Scaled dot-product attention: the attention weights times the values."""
    if not isinstance(v, torch.Tensor) or v.shape[:-1] != k.shape[:-1]:
        raise ValueError(f"v must be a tensor of shape (..., k_len, d_v) matching k {tuple(k.shape)}, "
                         f"got {tuple(v.shape) if isinstance(v, torch.Tensor) else type(v).__name__}")
    return attention_weights(q, k, mask) @ v


def repeat_kv(x: torch.Tensor, n_rep: int) -> torch.Tensor:
    """Grouped-query attention: repeat each of (batch, kv_heads, seq, d)'s heads n_rep times, in place order.

    >>> repeat_kv(torch.zeros(1, 2, 5, 4), 3).shape  # 2 kv heads shared by 6 query heads
    torch.Size([1, 6, 5, 4])
    """
    _validate_tensor("x", x, 4)
    if not isinstance(n_rep, int) or n_rep < 1:
        raise ValueError(f"n_rep must be an int >= 1, got {n_rep!r}")
    if n_rep == 1:
        return x
    b, h, s, d = x.shape
    return x[:, :, None].expand(b, h, n_rep, s, d).reshape(b, h * n_rep, s, d)


def rope_cos_sin(positions: torch.Tensor, head_dim: int, theta: float = 10000.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotary embedding tables cos, sin of shape (len(positions), head_dim) (Llama's half-split layout).

    >>> [t.shape for t in rope_cos_sin(torch.arange(3), 4)]
    [torch.Size([3, 4]), torch.Size([3, 4])]
    """
    if not isinstance(head_dim, int) or head_dim < 2 or head_dim % 2:
        raise ValueError(f"head_dim must be an even int >= 2, got {head_dim!r}")
    if not isinstance(theta, (int, float)) or theta <= 0:
        raise ValueError(f"theta must be a positive number, got {theta!r}")
    if not isinstance(positions, torch.Tensor) or positions.dim() != 1:
        raise ValueError(f"positions must be a 1-d tensor, got {positions!r}")
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64, device=positions.device).float()
                                / head_dim))
    freqs = positions.float()[:, None] * inv_freq[None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos(), emb.sin()


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """(x1, x2) -> (-x2, x1) on the two halves of the last dimension.

    >>> rotate_half(torch.tensor([1.0, 2.0, 3.0, 4.0]))
    tensor([-3., -4.,  1.,  2.])
    """
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate (batch, heads, seq, head_dim) queries or keys by their positions' angles."""
    _validate_tensor("x", x, 4)
    if tuple(cos.shape) != (x.shape[2], x.shape[3]) or cos.shape != sin.shape:
        raise ValueError(f"cos and sin must have shape (seq, head_dim) = {(x.shape[2], x.shape[3])}, "
                         f"got {tuple(cos.shape)} and {tuple(sin.shape)}")
    return x * cos + rotate_half(x) * sin


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """RMSNorm: x / sqrt(mean(x²) + eps) * weight over the last dimension.

    >>> rms_norm(torch.tensor([3.0, 4.0]), torch.ones(2))  # rms of (3, 4) is 3.54
    tensor([0.8485, 1.1314])
    """
    if not isinstance(x, torch.Tensor) or x.shape[-1:] != weight.shape:
        raise ValueError(f"weight must have shape (x.shape[-1],), got {tuple(weight.shape)} for x of shape "
                         f"{tuple(getattr(x, 'shape', ()))}")
    # normalized in float32 and cast back before the weight multiplies, as transformers' Llama does: in bf16 any
    # other order rounds differently, and greedy tokens drift from transformers' after a few dozen
    h = x.float()
    return weight * (h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + eps)).to(x.dtype)


def swiglu_mlp(x: torch.Tensor, gate: torch.Tensor, up: torch.Tensor, down: torch.Tensor,
               gate_up: torch.Tensor | None = None) -> torch.Tensor:
    """Llama's MLP: down(silu(gate(x)) * up(x)), weights in nn.Linear's (out, in) layout.

    gate_up, if given, is [gate; up] stacked into one (2 * inner, hidden) matrix: one matrix-vector product then
    computes both (a decode step reads the same bytes with one call instead of two).
    """
    if gate.shape != up.shape or down.shape[::-1] != gate.shape or x.shape[-1] != gate.shape[1]:
        raise ValueError(f"gate/up must be (inner, hidden) and down (hidden, inner) with hidden = x.shape[-1]; "
                         f"got gate {tuple(gate.shape)}, up {tuple(up.shape)}, down {tuple(down.shape)}, "
                         f"x {tuple(x.shape)}")
    if gate_up is None:
        return linear(F.silu(linear(x, gate)) * linear(x, up), down)
    if gate_up.shape != (2 * gate.shape[0], gate.shape[1]):
        raise ValueError(f"gate_up must be [gate; up] of shape {(2 * gate.shape[0], gate.shape[1])}, "
                         f"got {tuple(gate_up.shape)}")
    g, u = linear(x, gate_up).chunk(2, dim=-1)
    return linear(F.silu(g) * u, down)


def input_major(weight: torch.Tensor) -> torch.Tensor:
    """The same (out, in) matrix, stored with the input dimension outermost (a transposed view of a copy).

    A decode step multiplies one vector by each matrix; on CPU that reads this layout about 1.5x faster than
    nn.Linear's (out, in) rows (measured in benchmarks/bench_attention.py).
    """
    return weight.t().contiguous().t()


def decode_layout(weight: torch.Tensor) -> torch.Tensor:
    """The same (out, in) matrix in the layout a CPU decode step reads fastest (benchmarks/bench_decode.py).

    fp32 matrices at least as tall as wide (q/k/v, gate/up, o, lm_head) read faster input-major; down_proj and every
    bf16 matrix keep nn.Linear's rows (bf16 then also runs transformers' own kernels, so its rounding matches), and
    a bf16 matrix on a CPU with AMX also gets a prepacked copy for `linear` (llmlab.prepack).
    """
    tall = weight.dim() == 2 and weight.shape[0] >= weight.shape[1]
    return input_major(weight) if weight.dtype == torch.float32 and tall else pack(weight.contiguous())


@dataclass
class Layer:
    """One decoder layer's weights (decode_layout); q/k/v are fused into one matrix (one matrix-vector product).

    wgate_up, when set, is [wgate; wup] as one matrix whose two halves wgate and wup are views of; forward uses
    it only while they still are (replacing wgate or wup falls back to two products).
    """

    wqkv: torch.Tensor
    wo: torch.Tensor
    wgate: torch.Tensor
    wup: torch.Tensor
    wdown: torch.Tensor
    attn_norm: torch.Tensor
    mlp_norm: torch.Tensor
    wgate_up: torch.Tensor | None = None

    def fused_gate_up(self) -> torch.Tensor | None:
        """wgate_up if wgate and wup are still its two halves, else None."""
        f = self.wgate_up
        if f is None or f.shape[0] != 2 * self.wgate.shape[0]:
            return None
        inner = self.wgate.shape[0]
        halves = (f.data_ptr(), f[inner:].data_ptr(), f.stride())
        return f if halves == (self.wgate.data_ptr(), self.wup.data_ptr(), self.wgate.stride()) \
            and self.wup.stride() == f.stride() and self.wup.shape == self.wgate.shape else None


@dataclass
class LlamaWeights:
    """Everything the from-scratch forward needs: sizes, per-layer weights and the RoPE tables."""

    vocab_size: int
    hidden_size: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    intermediate_size: int
    eps: float
    embed: torch.Tensor
    layers: list[Layer]
    final_norm: torch.Tensor
    lm_head: torch.Tensor
    cos: torch.Tensor
    sin: torch.Tensor
    # (lm_head, the same matrix as contiguous (vocab, hidden) rows), read by output_head for a few tokens at once;
    # ignored as soon as lm_head is another tensor (dataclasses.replace, assignment), so it cannot go stale that way
    head_rows: tuple[torch.Tensor, torch.Tensor] | None = None


    @property
    def num_layers(self) -> int:
        """Number of decoder layers."""
        return len(self.layers)

    @property
    def max_positions(self) -> int:
        """Longest sequence the precomputed RoPE tables cover."""
        return self.cos.shape[0]

    def nbytes(self) -> int:
        """Bytes of weights one forward pass reads (the tied embedding/lm_head counted once)."""
        tensors = [self.final_norm, self.lm_head] + [t for layer in self.layers for name, t in vars(layer).items()
                                                     if name != "wgate_up" and t is not None]
        return sum(t.numel() * t.element_size() for t in tensors)


def _rope_theta(config) -> float:
    """rope_theta from a transformers LlamaConfig (v4 or v5 layout); only the default RoPE is supported."""
    params = getattr(config, "rope_parameters", None) or {}
    kind = params.get("rope_type", "default")
    if kind != "default":
        raise ValueError(f"rope_type must be 'default' (plain RoPE), got {kind!r}")
    return float(params.get("rope_theta", getattr(config, "rope_theta", 10000.0)))


def load_weights(state_dict: dict[str, torch.Tensor], config, max_positions: int | None = None) -> LlamaWeights:
    """LlamaWeights from a LlamaForCausalLM state dict and its config (fusing q/k/v and gate/up, decode_layout)."""
    if not isinstance(state_dict, dict):
        raise TypeError(f"state_dict must be a dict of tensors, got {type(state_dict).__name__}")
    hidden, heads, kv_heads = config.hidden_size, config.num_attention_heads, config.num_key_value_heads
    head_dim = getattr(config, "head_dim", None) or hidden // heads
    max_positions = max_positions or config.max_position_embeddings
    if not isinstance(max_positions, int) or max_positions < 1:
        raise ValueError(f"max_positions must be an int >= 1, got {max_positions!r}")

    def get(key: str) -> torch.Tensor:
        if key not in state_dict:
            raise ValueError(f"state_dict must contain {key!r} (a LlamaForCausalLM state dict), it does not")
        return state_dict[key].detach().clone()

    layers = []
    inner = config.intermediate_size
    for i in range(config.num_hidden_layers):
        p = f"model.layers.{i}."
        gate_up = decode_layout(torch.cat([get(p + f"mlp.{n}_proj.weight") for n in ("gate", "up")]))
        layers.append(Layer(
            wqkv=decode_layout(torch.cat([get(p + f"self_attn.{n}_proj.weight") for n in "qkv"])),
            wo=decode_layout(get(p + "self_attn.o_proj.weight")),
            wgate=gate_up[:inner],
            wup=gate_up[inner:],
            wdown=decode_layout(get(p + "mlp.down_proj.weight")),
            attn_norm=get(p + "input_layernorm.weight"),
            mlp_norm=get(p + "post_attention_layernorm.weight"),
            wgate_up=gate_up,
        ))
    embed = get("model.embed_tokens.weight")
    # tied when the state dict has no separate head or its head is the embedding itself (a head reassigned after
    # loading, as a test may do, is used even if the config still says tie_word_embeddings)
    head = state_dict.get("lm_head.weight")
    tied = head is None or head.data_ptr() == state_dict["model.embed_tokens.weight"].data_ptr()
    lm_head = decode_layout(embed if tied else get("lm_head.weight"))
    positions = torch.arange(max_positions, device=embed.device)
    cos, sin = rope_cos_sin(positions, head_dim, _rope_theta(config))
    return LlamaWeights(vocab_size=embed.shape[0], hidden_size=hidden, num_heads=heads, num_kv_heads=kv_heads,
                        head_dim=head_dim, intermediate_size=config.intermediate_size, eps=config.rms_norm_eps,
                        embed=embed, layers=layers, final_norm=get("model.norm.weight"), lm_head=lm_head,
                        cos=cos.to(embed.dtype), sin=sin.to(embed.dtype),
                        head_rows=(lm_head, embed if tied else lm_head.contiguous()))


def from_model(model, max_positions: int | None = None) -> LlamaWeights:
    """LlamaWeights taken from a loaded transformers Llama model (models.load() or fixtures.tiny_model())."""
    if not hasattr(model, "state_dict") or not hasattr(model, "config"):
        raise TypeError(f"model must be a transformers LlamaForCausalLM, got {type(model).__name__}")
    return load_weights(model.state_dict(), model.config, max_positions)


def attention_block(w: LlamaWeights, layer: Layer, index: int, x: torch.Tensor, start: int, cache=None,
                    need_weights: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Self-attention sub-layer on normed x (batch, seq, hidden): projections, RoPE, cache, GQA, output."""
    b, s, _ = x.shape
    hq, hk, d = w.num_heads, w.num_kv_heads, w.head_dim
    qkv = linear(x, layer.wqkv).view(b, s, hq + 2 * hk, d).transpose(1, 2)
    cos, sin = w.cos[start:start + s], w.sin[start:start + s]
    qk = apply_rope(qkv[:, :hq + hk], cos, sin)  # queries and keys rotated together in one call
    q, k, v = qk[:, :hq], qk[:, hq:], qkv[:, hq + hk:]
    if cache is not None:
        k, v = cache.append(index, k, v)
    n_rep = hq // hk
    probs = None
    if need_weights:
        mask = causal_mask(s, k.shape[2] - s, device=x.device)
        probs = attention_weights(q, repeat_kv(k, n_rep), mask)
        out = probs @ repeat_kv(v, n_rep)
    elif k.shape[2] == s:
        out = F.scaled_dot_product_attention(q, k, v, is_causal=s > 1, enable_gqa=n_rep > 1)
    else:
        mask = causal_mask(s, k.shape[2] - s, device=x.device) if s > 1 else None
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=n_rep > 1)
    return linear(out.transpose(1, 2).reshape(b, s, hq * d), layer.wo), probs


def forward(w: LlamaWeights, ids: torch.Tensor, cache=None, attention_maps: list | None = None,
            features: list | None = None) -> torch.Tensor:
    """Logits (batch, seq, vocab) for token ids (batch, seq); with a KV cache, ids continue what it holds.

    features, if a list, receives the final-normed hidden states (batch, seq, hidden) the head reads.
    """
    if not isinstance(ids, torch.Tensor) or ids.dim() != 2 or ids.is_floating_point():
        raise ValueError(f"ids must be an integer tensor of shape (batch, seq), got "
                         f"{tuple(ids.shape) if isinstance(ids, torch.Tensor) else type(ids).__name__}")
    if ids.shape[1] == 0:
        raise ValueError("ids must hold at least one token, got shape " + str(tuple(ids.shape)))
    start = cache.length if cache is not None else 0
    if start + ids.shape[1] > w.max_positions:
        raise ValueError(f"positions must be < {w.max_positions} (the RoPE table), got up to "
                         f"{start + ids.shape[1] - 1}")
    x = F.embedding(ids, w.embed)
    for i, layer in enumerate(w.layers):
        a, probs = attention_block(w, layer, i, rms_norm(x, layer.attn_norm, w.eps), start, cache,
                                   attention_maps is not None)
        if attention_maps is not None:
            attention_maps.append(probs)
        x = x + a
        x = x + swiglu_mlp(rms_norm(x, layer.mlp_norm, w.eps), layer.wgate, layer.wup, layer.wdown,
                           layer.fused_gate_up())
    h = rms_norm(x, w.final_norm, w.eps)
    if features is not None:
        features.append(h)
    return output_head(w, h)


def output_head(w: LlamaWeights, h: torch.Tensor) -> torch.Tensor:
    """Logits (batch, seq, vocab) from final-normed hidden states (batch, seq, hidden).

    One token reads the input-major lm_head; 2-16 tokens (a speculative verify pass) read head_rows, which on
    CPU is 2-4x faster for so few rows (benchmarks/bench_speculative.py measures T(k)/T(1)).
    """
    n = h.shape[0] * h.shape[1]
    if w.head_rows is None or w.head_rows[0] is not w.lm_head or not 2 <= n <= 16:
        return linear(h, w.lm_head)
    rows = w.head_rows[1]
    return (rows @ h.reshape(n, -1).t()).t().reshape(*h.shape[:-1], rows.shape[0])


@torch.inference_mode()
def attention_probabilities(w: LlamaWeights, ids: torch.Tensor) -> torch.Tensor:
    """Every layer's and head's attention weights for one sequence: (layers, heads, seq, seq)."""
    if not isinstance(ids, torch.Tensor) or ids.dim() != 2 or ids.shape[0] != 1:
        raise ValueError(f"ids must be a (1, seq) tensor, got "
                         f"{tuple(ids.shape) if isinstance(ids, torch.Tensor) else type(ids).__name__}")
    maps: list = []
    forward(w, ids, attention_maps=maps)
    return torch.stack([m[0] for m in maps])
