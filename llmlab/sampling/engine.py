"""The forward passes under the decoding loops: the kit's own Llama forward and KV cache, or the model's own.

A plain transformers Llama runs on `llmlab.attention.forward` with a preallocated `llmlab.kv_cache.KVCache`
(the engine chapter 10 measures); its weights are copied once per model and reused until a parameter changes.
Any other model, or a Llama someone is observing or editing (forward hooks, LoRA or quantized layers), runs on
`model(...)` with transformers' cache, so hooks see every step.
"""

from __future__ import annotations

import weakref

import torch

from llmlab import attention
from llmlab.kv_cache import KVCache

_WEIGHTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> (fingerprint, LlamaWeights)
_OWN_MODULES = ("torch.nn.", "transformers.models.llama.", "transformers.activations")


def _fingerprint(model) -> tuple:
    """Where every parameter lives and how often it was changed in place: a new value means stale weights.

    Tensors made under torch.inference_mode keep no version counter: for them only the address counts.
    """
    return tuple((p.data_ptr(), None if p.is_inference() else p._version, p.dtype) for p in model.parameters())


def _observed(model) -> bool:
    """Whether any forward hook (global or on a submodule) watches or edits the model's computation."""
    from torch.nn.modules import module as nn_module

    if nn_module._global_forward_hooks or nn_module._global_forward_pre_hooks:
        return True
    return any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())


def supports(model) -> bool:
    """Whether the kit's own forward pass computes exactly this model: a plain, unhooked transformers Llama."""
    config = getattr(model, "config", None)
    if type(model).__name__ != "LlamaForCausalLM" or config is None:
        return False
    if getattr(config, "attention_bias", False) or getattr(config, "mlp_bias", False) \
            or getattr(config, "hidden_act", "silu") != "silu":
        return False
    try:
        attention._rope_theta(config)
    except ValueError:
        return False
    if any(not type(m).__module__.startswith(_OWN_MODULES) for m in model.modules()):
        return False
    return not _observed(model)


def kit_weights(model) -> attention.LlamaWeights | None:
    """The kit's LlamaWeights for a supported model (copied once, refreshed when a parameter changes), else None."""
    if not supports(model):
        return None
    key = _fingerprint(model)
    hit = _WEIGHTS.get(model)
    if hit is not None and hit[0] == key:
        return hit[1]
    with torch.inference_mode():
        w = attention.from_model(model)
    _WEIGHTS[model] = (key, w)
    return w


class KitSession:
    """One decoding run on the kit's forward pass: a KV cache sized for the prompt and every new token."""

    def __init__(self, w: attention.LlamaWeights, batch: int, capacity: int):
        self.w = w
        self.cache = KVCache.for_weights(w, batch, capacity)

    def __call__(self, ids: torch.Tensor) -> torch.Tensor:
        """float32 logits (batch, vocab) of the last of ids (batch, seq), which continue the cache."""
        return attention.forward(self.w, ids, self.cache)[:, -1].float()

    def reorder(self, index: torch.Tensor) -> None:
        """Keep the cached rows `index` (beam search picks which beams continue)."""
        self.cache.reorder(index)


class ModelSession:
    """One decoding run on the model's own forward pass and transformers' cache."""

    def __init__(self, model):
        self.model = model
        self.past = None

    def __call__(self, ids: torch.Tensor) -> torch.Tensor:
        """float32 logits (batch, vocab) of the last of ids (batch, seq), which continue the cache."""
        out = self.model(input_ids=ids, past_key_values=self.past, use_cache=True)
        self.past = out.past_key_values
        return out.logits[:, -1, :].float()

    def reorder(self, index: torch.Tensor) -> None:
        """Keep the cached rows `index` (beam search picks which beams continue)."""
        self.past.reorder_cache(index)


def session(model, batch: int, capacity: int) -> KitSession | ModelSession:
    """A decoding run for `batch` rows of at most `capacity` positions: on the kit's engine where it applies."""
    w = kit_weights(model)
    if w is None or capacity > w.max_positions:
        return ModelSession(model)
    return KitSession(w, batch, capacity)
