"""Parameter and FLOP counts of a decoder from its config: embedding vs the rest, 6ND to train, 2N per token to run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llmlab import validate

SECONDS_PER_DAY = 86_400


@dataclass(frozen=True)
class DecoderConfig:
    """The shape of a decoder-only transformer; `experts` > 1 makes every MLP a mixture with `active` experts per token.

    mlp_matrices is 3 for a gated (SwiGLU) MLP, 2 for a plain one (GPT-3). positions > 0 counts learned position
    embeddings (GPT-3); rotary models have none. Biases and norm weights are small and counted when `biases` is set.
    """

    name: str
    vocab: int
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    inner: int
    tied: bool
    mlp_matrices: int = 3
    experts: int = 1
    active: int = 1
    positions: int = 0
    biases: bool = False
    source: str = ""

    def __post_init__(self) -> None:
        for field in ("vocab", "hidden", "layers", "heads", "kv_heads", "inner", "experts", "active"):
            validate.positive_int(field, getattr(self, field))
        validate.integer("positions", self.positions, low=0)
        validate.integer("mlp_matrices", self.mlp_matrices, low=2, high=3)
        validate.integer("active", self.active, low=1, high=self.experts)
        if self.hidden % self.heads or self.heads % self.kv_heads:
            raise ValueError(f"hidden ({self.hidden}) must divide by heads ({self.heads}) and heads by kv_heads "
                             f"({self.kv_heads})")

    @property
    def head_dim(self) -> int:
        """Width of one attention head."""
        return self.hidden // self.heads


def from_hf_config(config: Any, name: str = "") -> DecoderConfig:
    """A DecoderConfig from a Hugging Face Llama/Mistral/Mixtral-style config (SwiGLU MLP, no biases)."""
    for key in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size"):
        if not hasattr(config, key):
            raise TypeError(f"config must be a Llama-style transformers config with {key}, got {type(config).__name__}")
    heads = config.num_attention_heads
    return DecoderConfig(
        name=name or getattr(config, "name_or_path", "") or type(config).__name__, vocab=config.vocab_size,
        hidden=config.hidden_size, layers=config.num_hidden_layers, heads=heads,
        kv_heads=getattr(config, "num_key_value_heads", None) or heads, inner=config.intermediate_size,
        tied=bool(getattr(config, "tie_word_embeddings", False)),
        experts=getattr(config, "num_local_experts", 1) or 1, active=getattr(config, "num_experts_per_tok", 1) or 1,
        source="its transformers config")


# Published shapes, each with where it is written down.
GPT3_175B = DecoderConfig(
    "GPT-3 175B", vocab=50257, hidden=12288, layers=96, heads=96, kv_heads=96, inner=4 * 12288, tied=True,
    mlp_matrices=2, positions=2048, biases=True,
    source="Brown et al. 2020, Table 2.1 (d_ff = 4 d_model; GPT-2 vocabulary and tied head)")
LLAMA2_7B = DecoderConfig(
    "Llama-2-7B", vocab=32000, hidden=4096, layers=32, heads=32, kv_heads=32, inner=11008, tied=False,
    source="meta-llama/Llama-2-7b-hf config.json; Touvron et al. 2023 call it 7B (6.74B in the model card)")
MIXTRAL_8X7B = DecoderConfig(
    "Mixtral 8x7B", vocab=32000, hidden=4096, layers=32, heads=32, kv_heads=8, inner=14336, tied=False,
    experts=8, active=2, source="mistralai/Mixtral-8x7B-v0.1 config.json; Jiang et al. 2024: 46.7B total, 12.9B active")
PUBLISHED = {c.name: c for c in (GPT3_175B, LLAMA2_7B, MIXTRAL_8X7B)}
# Published (parameters, training tokens) pairs: Brown et al. 2020 (GPT-3), Hoffmann et al. 2022 (Chinchilla).
TRAINED = {"GPT-3 175B": (175e9, 300e9), "Chinchilla 70B": (70e9, 1.4e12)}


def param_counts(cfg: DecoderConfig) -> dict[str, int]:
    """Parameters by part: embedding, lm_head (0 when tied), attention, mlp, router, norms; total and active."""
    if not isinstance(cfg, DecoderConfig):
        raise TypeError(f"cfg must be a DecoderConfig, got {type(cfg).__name__}")
    h, kv = cfg.hidden, cfg.kv_heads * cfg.head_dim
    attention = 2 * h * h + 2 * h * kv + ((2 * h + 2 * kv) if cfg.biases else 0)  # q, o (h x h) and k, v (h x kv)
    expert = cfg.mlp_matrices * h * cfg.inner + ((cfg.inner + h) if cfg.biases else 0)
    norms = 2 * h * (2 if cfg.biases else 1)  # two norms per layer (LayerNorm also has a bias)
    router = h * cfg.experts if cfg.experts > 1 else 0
    embedding = cfg.vocab * h + cfg.positions * h
    lm_head = 0 if cfg.tied else cfg.vocab * h
    final_norm = h * (2 if cfg.biases else 1)
    per_layer = attention + cfg.experts * expert + router + norms
    counts = {"embedding": embedding, "lm_head": lm_head, "attention": cfg.layers * attention,
              "mlp": cfg.layers * cfg.experts * expert, "router": cfg.layers * router,
              "norms": cfg.layers * norms + final_norm}
    counts["total"] = embedding + lm_head + cfg.layers * per_layer + final_norm
    counts["non_embedding"] = counts["total"] - embedding - lm_head
    counts["active"] = counts["total"] - cfg.layers * (cfg.experts - cfg.active) * expert
    return counts


def training_flops(params: float, tokens: float) -> float:
    """Training compute C ≈ 6 N D: 2 N D for the forward pass and twice that for the backward pass."""
    validate.number("params", params, 0, low_open=True)
    validate.number("tokens", tokens, 0, low_open=True)
    return 6.0 * params * tokens


def forward_flops_per_token(cfg: DecoderConfig, context: int = 0) -> float:
    """Forward FLOPs for one token: 2 per active weight it multiplies (lm_head too, tied or not, not the embedding
    lookup) plus attention's 4 x layers x context x (heads x head_dim) for the scores and the weighted sum."""
    counts = param_counts(cfg)
    validate.integer("context", context, low=0)
    matmul = counts["active"] - counts["embedding"] - counts["norms"] + (cfg.vocab * cfg.hidden if cfg.tied else 0)
    return 2.0 * matmul + 4.0 * cfg.layers * context * cfg.heads * cfg.head_dim


def training_step_flops(cfg: DecoderConfig, batch: int, seq: int) -> float:
    """FLOPs of one training step (forward + backward = 3 x forward) on batch x seq tokens, every position attending
    to all seq keys (what a dense attention kernel computes before masking)."""
    validate.positive_int("batch", batch)
    validate.positive_int("seq", seq)
    return 3.0 * batch * seq * forward_flops_per_token(cfg, context=seq)


def training_days(flops: float, chips: int, flops_per_s: float, utilization: float = 1.0) -> float:
    """Days to spend `flops` on `chips` accelerators of peak `flops_per_s` each, at the given utilization."""
    validate.number("flops", flops, 0, low_open=True)
    validate.positive_int("chips", chips)
    validate.number("flops_per_s", flops_per_s, 0, low_open=True)
    validate.probability("utilization", utilization, open_low=True)
    return flops / (chips * flops_per_s * utilization * SECONDS_PER_DAY)


def training_cost(days: float, chips: int, dollars_per_chip_hour: float, utilization: float = 1.0) -> float:
    """Dollars to rent `chips` for `days` (days at full use; a lower utilization stretches them by 1/utilization)."""
    validate.number("days", days, 0, low_open=True)
    validate.positive_int("chips", chips)
    validate.number("dollars_per_chip_hour", dollars_per_chip_hour, 0, low_open=True)
    validate.probability("utilization", utilization, open_low=True)
    return dollars_per_chip_hour * chips * 24 * days / utilization


def profiled_training_step_flops(w: Any, batch: int, seq: int, explicit_attention: bool = False, seed: int = 0) -> int:
    """FLOPs torch's FlopCounterMode counts for one forward + backward pass of a tiny decoder (LlamaWeights).

    The CPU's fused attention kernel has no FLOP formula in the counter, so by default attention counts 0; with
    explicit_attention the scores and weighted sum run as plain matmuls (the attention-map path), which it counts.
    """
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from llmlab import attention
    from llmlab.scaling import tiny

    validate.positive_int("batch", batch)
    validate.integer("seq", seq, low=1, high=w.max_positions - 1)
    gen = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, tiny.BYTE_VOCAB, (batch * seq + seq + 2,), generator=gen)
    x, y = tiny.batch_at(tokens, torch.arange(batch) * seq, seq)
    tiny.tie_head(w)
    with FlopCounterMode(display=False) as counter:
        forward = (lambda w_, ids: attention.forward(w_, ids, attention_maps=[])) if explicit_attention else None
        tiny.lm_loss(w, x, y, forward or attention.forward).backward()
    for t in tiny.trainable(w):
        t.grad = None
    return int(counter.get_total_flops())


def tiny_config(spec: Any) -> DecoderConfig:
    """The DecoderConfig of a tiny byte-level decoder (llmlab.scaling.tiny.TinySpec; tied head, SwiGLU)."""
    from llmlab.scaling.tiny import BYTE_VOCAB, TinySpec

    if not isinstance(spec, TinySpec):
        raise TypeError(f"spec must be a TinySpec, got {type(spec).__name__}")
    return DecoderConfig(f"tiny {spec.layers}x{spec.hidden}", vocab=BYTE_VOCAB, hidden=spec.hidden,
                         layers=spec.layers, heads=spec.heads, kv_heads=spec.kv_heads, inner=spec.inner, tied=True,
                         source="llmlab.scaling.tiny")
