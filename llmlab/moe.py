"""Mixture of experts: a top-k router over SwiGLU experts, the Switch balancing loss, capacity with token dropping,
an MoE forward for the kit's tiny decoders, and upcycling a dense MLP into experts (chapter 14).

Conventions (one spec for the package, the exercise and its check):
- the router's softmax is over experts (the last axis), one distribution per token;
- a token keeps its k most probable experts (ties go to the lower expert index), and their weights are those
  probabilities renormalised to sum to 1 over the chosen k (Mixtral's choice; Switch's k = 1 then weighs 1.0);
- the balancing loss is N · Σ_i f_i · P_i (Fedus et al. 2021), with N experts, f_i the share of the T·k
  token-to-expert assignments that go to expert i, and P_i the mean router probability of expert i. A uniform
  router scores 1.0; transformers' Mixtral loss counts f over tokens instead and so scores k times this;
- with a capacity factor c, each expert takes at most ceil(c · T · k / N) assignments, first come first served in
  token order; a dropped assignment adds nothing (the token's residual stream carries it past the layer).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from llmlab import attention, validate
from llmlab.attention import Layer, LlamaWeights


@dataclass
class Routing:
    """What the router decided for T tokens: probabilities (T, N), chosen experts (T, k) and their weights (T, k)."""

    probs: torch.Tensor
    experts: torch.Tensor
    weights: torch.Tensor

    @property
    def num_experts(self) -> int:
        """N, the number of experts."""
        return self.probs.shape[-1]


def _check_k(k: int, num_experts: int) -> None:
    """Raise unless 1 <= k <= num_experts."""
    if isinstance(k, bool) or not isinstance(k, int):
        raise TypeError(f"k must be an int, got {type(k).__name__} {k!r}")
    if not 1 <= k <= num_experts:
        raise ValueError(f"k must be in [1, {num_experts}] (the number of experts), got {k}")


def route(logits: torch.Tensor, k: int) -> Routing:
    """Top-k routing of (T, N) router logits: softmax over experts, k best per token, weights renormalised over k."""
    validate.tensor("logits", logits, dims=2)
    _check_k(k, logits.shape[1])
    probs = torch.softmax(logits.float(), dim=-1)
    order = torch.sort(probs, dim=-1, descending=True, stable=True).indices[:, :k]
    top = probs.gather(1, order)
    return Routing(probs=probs, experts=order, weights=top / top.sum(-1, keepdim=True))


def expert_fractions(experts: torch.Tensor, num_experts: int) -> torch.Tensor:
    """f_i: the share of all T·k token-to-expert assignments that go to each expert (sums to 1)."""
    validate.tensor("experts", experts, dims=2)
    validate.positive_int("num_experts", num_experts)
    counts = torch.bincount(experts.reshape(-1), minlength=num_experts).float()
    return counts / experts.numel()


def balancing_loss(r: Routing) -> torch.Tensor:
    """Switch Transformer's auxiliary loss N · Σ f_i · P_i (1.0 when routing is uniform); differentiable through P."""
    f = expert_fractions(r.experts, r.num_experts)
    return r.num_experts * (f * r.probs.mean(0)).sum()


def capacity(tokens: int, k: int, num_experts: int, capacity_factor: float) -> int:
    """Assignments one expert may take: ceil(capacity_factor · tokens · k / num_experts)."""
    validate.number("capacity_factor", capacity_factor, low=0.0, low_open=True)
    return math.ceil(capacity_factor * tokens * k / num_experts)


def kept_mask(experts: torch.Tensor, num_experts: int, capacity_factor: float | None) -> torch.Tensor:
    """(T, k) bool: which assignments fit under each expert's capacity (first come first served in token order)."""
    if capacity_factor is None:
        return torch.ones_like(experts, dtype=torch.bool)
    cap = capacity(experts.shape[0], experts.shape[1], num_experts, capacity_factor)
    flat = experts.reshape(-1)
    onehot = F.one_hot(flat, num_experts)
    seat = (onehot.cumsum(0) * onehot).sum(-1)  # 1-based place of each assignment in its expert's queue
    return (seat <= cap).reshape(experts.shape)


@dataclass
class Experts:
    """N SwiGLU experts in nn.Linear's layout: gate and up (N, inner, hidden), down (N, hidden, inner)."""

    gate: torch.Tensor
    up: torch.Tensor
    down: torch.Tensor

    @property
    def num_experts(self) -> int:
        """N, the number of experts."""
        return self.gate.shape[0]


def moe_mlp(x: torch.Tensor, router: torch.Tensor, experts: Experts, k: int,
            capacity_factor: float | None = None) -> tuple[torch.Tensor, Routing, torch.Tensor]:
    """(output like x, routing, kept (T, k)): each token's mixture of its chosen SwiGLU experts' outputs."""
    validate.tensor("x", x)
    if capacity_factor is not None:
        validate.number("capacity_factor", capacity_factor, low=0.0, low_open=True)
    flat = x.reshape(-1, x.shape[-1])
    r = route(F.linear(flat, router), k)
    kept = kept_mask(r.experts, experts.num_experts, capacity_factor)
    out = torch.zeros_like(flat)
    for e in range(experts.num_experts):
        tok, slot = torch.nonzero((r.experts == e) & kept, as_tuple=True)
        if len(tok):
            y = attention.swiglu_mlp(flat[tok], experts.gate[e], experts.up[e], experts.down[e])
            out = out.index_add(0, tok, y * r.weights[tok, slot, None].to(y.dtype))
    return out.reshape(x.shape), r, kept


@dataclass
class MoELayer(Layer):
    """A decoder layer whose MLP is a router (N, hidden) over N SwiGLU experts (the dense MLP fields are unused)."""

    router: torch.Tensor = None
    egate: torch.Tensor = None
    eup: torch.Tensor = None
    edown: torch.Tensor = None

    def experts(self) -> Experts:
        """This layer's experts."""
        return Experts(self.egate, self.eup, self.edown)


class MoEForward:
    """forward(w, ids) -> logits for LlamaWeights whose layers may be MoELayers; keeps the last call's routings."""

    def __init__(self, k: int = 2, capacity_factor: float | None = None):
        validate.positive_int("k", k)
        if capacity_factor is not None:
            validate.number("capacity_factor", capacity_factor, low=0.0, low_open=True)
        self.k, self.capacity_factor = k, capacity_factor
        self.routings: list[Routing] = []

    def __call__(self, w: LlamaWeights, ids: torch.Tensor) -> torch.Tensor:
        validate.tensor("ids", ids, dims=2)
        if ids.shape[1] > w.max_positions:
            raise ValueError(f"ids must hold at most {w.max_positions} positions (the RoPE table), "
                             f"got {ids.shape[1]}")
        self.routings = []
        x = F.embedding(ids, w.embed)
        for i, layer in enumerate(w.layers):
            a, _ = attention.attention_block(w, layer, i, attention.rms_norm(x, layer.attn_norm, w.eps), 0)
            x = x + a
            h = attention.rms_norm(x, layer.mlp_norm, w.eps)
            if isinstance(layer, MoELayer):
                y, r, _ = moe_mlp(h, layer.router, layer.experts(), self.k, self.capacity_factor)
                self.routings.append(r)
            else:
                y = attention.swiglu_mlp(h, layer.wgate, layer.wup, layer.wdown)
            x = x + y
        return attention.output_head(w, attention.rms_norm(x, w.final_norm, w.eps))

    def balancing_loss(self) -> torch.Tensor:
        """Mean over MoE layers of the last call's balancing loss (0 when no layer is MoE)."""
        if not self.routings:
            return torch.zeros(())
        return torch.stack([balancing_loss(r) for r in self.routings]).mean()

    def usage(self) -> torch.Tensor:
        """(MoE layers, N): the share of assignments each expert got in the last call."""
        return torch.stack([expert_fractions(r.experts, r.num_experts) for r in self.routings])


def moe_layer(layer: Layer, num_experts: int, inner: int, seed: int = 0, trainable: bool = True,
              std: float = 0.02) -> MoELayer:
    """A copy of a decoder layer whose MLP is replaced by num_experts fresh SwiGLU experts of width `inner`."""
    validate.integer("num_experts", num_experts, low=1)
    validate.positive_int("inner", inner)
    hidden = layer.attn_norm.shape[0]
    gen = torch.Generator().manual_seed(seed)

    def init(*shape: int) -> torch.Tensor:
        return (torch.randn(*shape, generator=gen) * std).requires_grad_(trainable)

    fields = {name: t for name, t in vars(layer).items()}
    return MoELayer(**fields, router=init(num_experts, hidden), egate=init(num_experts, inner, hidden),
                    eup=init(num_experts, inner, hidden), edown=init(num_experts, hidden, inner))


def to_moe(w: LlamaWeights, num_experts: int, inner: int, seed: int = 0) -> LlamaWeights:
    """A tiny decoder whose every MLP is an MoE of num_experts experts (attention and embeddings shared with w)."""
    out = copy.copy(w)
    out.layers = [moe_layer(layer, num_experts, inner, seed + i) for i, layer in enumerate(w.layers)]
    return out


def upcycle(layer: Layer, num_experts: int, seed: int = 0, router_std: float = 0.02) -> MoELayer:
    """Sparse upcycling (Komatsuzaki et al. 2022): every expert is a copy of the dense MLP, the router is new."""
    validate.integer("num_experts", num_experts, low=1)
    gate, up, down = (t.detach().contiguous() for t in (layer.wgate, layer.wup, layer.wdown))
    gen = torch.Generator().manual_seed(seed)
    router = (torch.randn(num_experts, gate.shape[1], generator=gen) * router_std).to(gate.dtype)
    fields = {name: t for name, t in vars(layer).items()}
    return MoELayer(**fields, router=router, egate=gate.expand(num_experts, *gate.shape).clone(),
                    eup=up.expand(num_experts, *up.shape).clone(), edown=down.expand(num_experts, *down.shape).clone())


def upcycled(w: LlamaWeights, layer_index: int, num_experts: int = 4, seed: int = 0) -> LlamaWeights:
    """A shallow copy of w whose layer `layer_index` MLP is upcycled into num_experts copies."""
    validate.integer("layer_index", layer_index, low=0, high=w.num_layers - 1)
    out = copy.copy(w)
    out.layers = list(w.layers)
    out.layers[layer_index] = upcycle(w.layers[layer_index], num_experts, seed)
    return out


def active_mlp_params(hidden: int, inner: int, num_experts: int, k: int) -> tuple[int, int]:
    """(total, active per token) parameters of one MoE MLP: N experts of 3·hidden·inner plus an N×hidden router."""
    _check_k(k, num_experts)
    expert = 3 * hidden * inner
    return num_experts * expert + num_experts * hidden, k * expert + num_experts * hidden
