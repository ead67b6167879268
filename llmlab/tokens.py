"""Tokens and next-token prediction: counting tokens, next-token distributions, top candidates."""

from __future__ import annotations

import torch


def count_tokens(tokenizer, text: str) -> int:
    """Number of tokens the tokenizer turns `text` into (no special tokens added)."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def next_token_id(logits: torch.Tensor) -> torch.Tensor:
    """Most likely next token for each sequence: argmax of the last position of (batch, seq, vocab) logits."""
    if not isinstance(logits, torch.Tensor) or logits.dim() != 3:
        shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise ValueError(f"logits must be a 3-d tensor (batch, seq, vocab), got {shape}")
    return logits[:, -1, :].argmax(dim=-1)


def encode_prompt(tokenizer, prompt: str, chat: bool = True) -> torch.Tensor:
    """Token ids (1, seq) for a prompt, wrapped in the chat template when chat=True."""
    if not isinstance(prompt, str) or not prompt:
        raise ValueError(f"prompt must be a non-empty str, got {prompt!r}")
    if chat:
        return tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                             return_tensors="pt", return_dict=True)["input_ids"]
    return tokenizer(prompt, return_tensors="pt")["input_ids"]


@torch.inference_mode()
def next_token_probs(model, tokenizer, prompt: str, chat: bool = True) -> torch.Tensor:
    """Probability of every vocabulary token being next after `prompt` (1-d tensor, sums to 1)."""
    ids = encode_prompt(tokenizer, prompt, chat).to(model.device)
    logits = model(ids).logits[0, -1].float()
    return torch.softmax(logits, dim=-1).cpu()


def top_tokens(probs: torch.Tensor, tokenizer, k: int = 10) -> list[tuple[str, float]]:
    """The k most likely tokens as (text, probability), most likely first."""
    if not isinstance(k, int) or not 1 <= k <= probs.numel():
        raise ValueError(f"k must be an int in [1, {probs.numel()}], got {k!r}")
    values, ids = probs.topk(k)
    return [(tokenizer.decode([int(i)]), float(v)) for v, i in zip(values, ids)]
