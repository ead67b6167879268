"""Tokens and next-token prediction: counting tokens, next-token distributions, top candidates."""

from __future__ import annotations

from typing import Sequence

import torch

from llmlab import validate


def count_tokens(tokenizer, text: str) -> int:
    """Number of tokens the tokenizer turns `text` into (no special tokens added)."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def pad_token_id(tokenizer) -> int:
    """The id to pad with: the tokenizer's pad token, else its EOS token (a pad id of 0 is kept, not replaced)."""
    pad = tokenizer.pad_token_id
    if pad is None:
        pad = tokenizer.eos_token_id
    if pad is None:
        raise ValueError("tokenizer must define a pad_token_id or an eos_token_id, got neither")
    return int(pad)


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


def token_pieces(tokenizer, text: str) -> list[str]:
    """The text of each token `text` is split into (no special tokens added)."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    return [tokenizer.decode([i]) for i in tokenizer(text, add_special_tokens=False)["input_ids"]]


def log_softmax(logits: torch.Tensor) -> torch.Tensor:
    """Log-probabilities along the last axis, stable for large logits (the max is subtracted first)."""
    if not isinstance(logits, torch.Tensor) or not logits.is_floating_point() or logits.dim() < 1:
        raise TypeError(f"logits must be a floating torch.Tensor with at least 1 dim, got {type(logits).__name__}")
    shifted = logits - logits.amax(dim=-1, keepdim=True)
    return shifted - shifted.exp().sum(dim=-1, keepdim=True).log()


@torch.inference_mode()
def next_token_logprobs(model, tokenizer, prompt: str, chat: bool = True) -> torch.Tensor:
    """Log-probability of every vocabulary token being next after `prompt` (1-d tensor)."""
    ids = encode_prompt(tokenizer, prompt, chat).to(model.device)
    return log_softmax(model(ids).logits[0, -1].float()).cpu()


def option_probs(model, tokenizer, prompt: str, options: list[str], chat: bool = False) -> dict[str, float]:
    """Next-token probability of each option's first token (a task read off the next-token distribution)."""
    if not isinstance(options, (list, tuple)) or not options or not all(isinstance(o, str) and o for o in options):
        raise ValueError(f"options must be a non-empty list of non-empty str, got {options!r}")
    probs = next_token_probs(model, tokenizer, prompt, chat)
    first = {o: tokenizer(o, add_special_tokens=False)["input_ids"][0] for o in options}
    return {o: float(probs[i]) for o, i in first.items()}


@torch.inference_mode()
def generate_batch(model, tokenizer, prompts: Sequence[str | Sequence[dict]], max_new_tokens: int = 48,
                   batch_size: int = 16, chat: bool = True, **generation) -> list[str]:
    """Replies to many prompts, generated in left-padded batches by HF `generate` (greedy unless told otherwise).

    The kit's one batched entry point: the decode loop of chapter 02 (`sampling.decode`) runs one prompt at a time,
    and a batch of prompts of different lengths needs left padding and an attention mask, which `generate` handles
    at batch speed. chat=True wraps each prompt (a user message, or a list of messages) in the chat template; chat=False
    continues the raw text. Replies are returned as decoded, not stripped.
    """
    validate.non_empty("prompts", prompts)
    validate.positive_int("max_new_tokens", max_new_tokens)
    validate.positive_int("batch_size", batch_size)
    if chat:
        prompts = [tokenizer.apply_chat_template([{"role": "user", "content": p}] if isinstance(p, str) else list(p),
                                                 add_generation_prompt=True, tokenize=False) for p in prompts]
    generation.setdefault("do_sample", False)
    generation.setdefault("pad_token_id", pad_token_id(tokenizer))
    device = next(model.parameters()).device
    side, tokenizer.padding_side = tokenizer.padding_side, "left"
    replies: list[str] = []
    try:
        for i in range(0, len(prompts), batch_size):
            inputs = tokenizer(list(prompts[i:i + batch_size]), return_tensors="pt", padding=True,
                               add_special_tokens=False).to(device)
            out = model.generate(**inputs, max_new_tokens=max_new_tokens, **generation)
            replies += tokenizer.batch_decode(out[:, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
    finally:
        tokenizer.padding_side = side
    return replies


IGNORE_INDEX = -100  # cross-entropy's ignore_index: a label the loss skips


def mask_prompt_labels(prompt_ids: Sequence[int], answer_ids: Sequence[int]) -> tuple[list[int], list[int]]:
    """(input_ids, labels) for one finetuning example: prompt + answer, with every prompt label ignored.

    >>> mask_prompt_labels([5, 6, 7], [8, 9])
    ([5, 6, 7, 8, 9], [-100, -100, -100, 8, 9])
    """
    prompt, answer = list(prompt_ids), list(answer_ids)
    return prompt + answer, [IGNORE_INDEX] * len(prompt) + answer


def sft_example(tokenizer, messages: Sequence[dict], response: str) -> dict[str, list[int]]:
    """The prompt-masked SFT example of a chat: input_ids and labels, where only the assistant's reply is learned.

    The prompt is the chat template with the generation prompt; the reply is everything the full conversation
    adds after it, the template's end-of-turn included (as TRL builds completion-only examples), so no end
    token is hard-coded.
    """
    validate.non_empty("messages", messages)
    validate.text("response", response)
    messages = list(messages)
    prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=True)
    full = tokenizer.apply_chat_template(messages + [{"role": "assistant", "content": response}], tokenize=True,
                                         return_dict=True)
    p, f = list(prompt["input_ids"]), list(full["input_ids"])
    if f[:len(p)] != p:
        raise ValueError("the chat template's prompt is not a prefix of the full conversation; cannot mask it")
    input_ids, labels = mask_prompt_labels(p, f[len(p):])
    return {"input_ids": input_ids, "labels": labels}
