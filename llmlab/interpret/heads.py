"""Attention maps per layer and head (from llmlab.attention) and head ablation: which heads a prediction needs."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Iterable, Iterator

import torch

from llmlab import attention, validate
from llmlab.interpret._common import check_head, check_layer, encode, head_dim, num_heads, num_layers, target_ids


def attention_maps(model, ids: torch.Tensor, weights: attention.LlamaWeights | None = None) -> torch.Tensor:
    """Every layer's and head's attention weights (layers, heads, seq, seq) for ids (1, seq).

    Computed by chapter 03's from-scratch forward on the model's weights; pass `weights`
    (attention.from_model(model)) to avoid copying them again on every call.
    """
    validate.token_ids("ids", ids)
    w = weights if weights is not None else attention.from_model(model)
    return attention.attention_probabilities(w, ids.to(w.embed.device)).cpu()


def _o_proj(model, layer: int):
    """The output projection of a layer's attention: its input is the heads' outputs side by side."""
    return model.get_decoder().layers[layer].self_attn.o_proj


@contextlib.contextmanager
def ablate_heads(model, heads: Iterable[tuple[int, int]]) -> Iterator[None]:
    """Within the block, the listed (layer, head) pairs output zeros (zero-ablation before o_proj)."""
    by_layer: dict[int, list[int]] = {}
    for pair in heads:
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise TypeError(f"heads must hold (layer, head) pairs, got {pair!r}")
        by_layer.setdefault(check_layer(model, pair[0]), []).append(check_head(model, pair[1]))
    d = head_dim(model)
    hooks = []

    def make_hook(zeroed: list[int]):
        def hook(module, args):
            x = args[0].clone()                                    # (batch, seq, heads * head_dim)
            for h in zeroed:
                x[..., h * d:(h + 1) * d] = 0
            return (x,)
        return hook

    try:
        for layer, zeroed in by_layer.items():
            hooks.append(_o_proj(model, layer).register_forward_pre_hook(make_hook(zeroed)))
        yield
    finally:
        for h in hooks:
            h.remove()


def next_token_probability(model, ids: torch.Tensor, token_id: int) -> torch.Tensor:
    """Probability of `token_id` after each sequence of ids (batch, seq): (batch,)."""
    logits = model(input_ids=ids.to(model.device)).logits[:, -1].float()
    return torch.softmax(logits, dim=-1)[:, token_id].cpu()


@dataclass
class HeadEffects:
    """Target probability with every head zero-ablated in turn."""

    base: float                  # probability of the target token with no head ablated
    probs: torch.Tensor          # (layers, heads) probability with that one head ablated

    @property
    def delta(self) -> torch.Tensor:
        """(layers, heads) change in the target's probability when the head is ablated (negative: it helped)."""
        return self.probs - self.base

    def top(self, k: int = 5) -> list[tuple[int, int, float]]:
        """The k heads whose ablation lowers the target's probability most: (layer, head, change)."""
        validate.integer("k", k, 1, self.probs.numel())
        values, flat = self.delta.flatten().topk(k, largest=False)
        heads = self.probs.shape[1]
        return [(int(i) // heads, int(i) % heads, float(v)) for v, i in zip(values, flat)]


@torch.inference_mode()
def head_ablation_effects(model, tokenizer, prompt: str, target: str, chat: bool = False) -> HeadEffects:
    """Zero-ablate each head alone and record the target's next-token probability (one batch per layer)."""
    ids = encode(tokenizer, prompt, chat)
    token = target_ids(tokenizer, target)[0]
    base = float(next_token_probability(model, ids, token)[0])
    n_heads, d = num_heads(model), head_dim(model)
    keep = torch.ones(n_heads, 1, n_heads * d, device=model.device)  # row h zeroes head h
    for h in range(n_heads):
        keep[h, 0, h * d:(h + 1) * d] = 0
    batch = ids.expand(n_heads, -1)
    rows = []
    for layer in range(num_layers(model)):
        hook = _o_proj(model, layer).register_forward_pre_hook(lambda m, args: (args[0] * keep.to(args[0].dtype),))
        try:
            rows.append(next_token_probability(model, batch, token))
        finally:
            hook.remove()
    return HeadEffects(base=base, probs=torch.stack(rows))
