"""Shared argument handling for llmlab.interpret: prompts and targets to token ids, layer/head ranges."""

from __future__ import annotations

import torch

from llmlab import tokens, validate


def encode(tokenizer, prompt: str, chat: bool = False) -> torch.Tensor:
    """Token ids (1, seq) of a prompt (plain text unless chat=True); an empty prompt is a ValueError."""
    validate.text("prompt", prompt)
    ids = tokens.encode_prompt(tokenizer, prompt, chat)
    if ids.shape[1] == 0:
        raise ValueError(f"prompt must tokenize to at least one token, got {prompt!r}")
    return ids


def target_ids(tokenizer, target: str) -> list[int]:
    """Token ids of a target continuation (no special tokens); a target that tokenizes to nothing is a ValueError."""
    validate.text("target", target, allow_empty=True)
    ids = tokenizer(target, add_special_tokens=False)["input_ids"]
    if not ids:
        raise ValueError(f"target must tokenize to at least one token, got {target!r} (an empty string?)")
    return list(ids)


def num_layers(model) -> int:
    """Number of decoder layers of a transformers Llama-style model."""
    return model.config.num_hidden_layers


def num_heads(model) -> int:
    """Number of query heads per layer."""
    return model.config.num_attention_heads


def head_dim(model) -> int:
    """Size of one attention head's output."""
    return getattr(model.config, "head_dim", None) or model.config.hidden_size // num_heads(model)


def check_layer(model, layer: int, allow_embeddings: bool = False) -> int:
    """A decoder layer index in [0, layers - 1] (or [0, layers] for residual-stream indices); returns it."""
    high = num_layers(model) if allow_embeddings else num_layers(model) - 1
    return validate.integer("layer", layer, 0, high)


def check_head(model, head: int) -> int:
    """A head index in [0, heads - 1]; returns it."""
    return validate.integer("head", head, 0, num_heads(model) - 1)


def token_texts(tokenizer, ids) -> list[str]:
    """The text of each token id (decoded one by one)."""
    return [tokenizer.decode([int(i)]) for i in ids]
