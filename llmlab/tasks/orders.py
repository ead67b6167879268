"""Chapter 05's task: turn an order description into JSON; its data, prompt, metric and training loop."""

from __future__ import annotations

import json
from importlib import resources
from typing import Sequence

import torch

from llmlab.structured import parse_json_object  # noqa: F401 - chapter 05 reads it as orders.parse_json_object
from llmlab.tasks.jsonl import read_jsonl
from llmlab.tokens import generate_batch, sft_example

SYSTEM_PROMPT = "Reply with JSON: item, qty (int), color, city, shipping (standard or express)."
ORDER_SPLITS = ("train", "test")


def load_orders(split: str = "train") -> list[dict]:
    """The shipped order-to-JSON examples of one split: dicts with 'text' and 'target'."""
    if split not in ORDER_SPLITS:
        raise ValueError(f"split must be one of {list(ORDER_SPLITS)}, got {split!r}")
    path = resources.files("llmlab.data") / f"ch05_orders_{split}.jsonl"
    return read_jsonl(path)


def target_json(target: dict) -> str:
    """The canonical JSON string the model is trained to write for a target dict."""
    if not isinstance(target, dict):
        raise TypeError(f"target must be a dict, got {type(target).__name__}")
    return json.dumps(target)


def order_messages(text: str) -> list[dict]:
    """Chat messages asking the model to turn one order description into JSON."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"text must be a non-empty str, got {text!r}")
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": text}]


def exact_match(replies: Sequence[str], targets: Sequence[dict]) -> float:
    """Share of replies whose first JSON object equals its target dict exactly (keys, values, types)."""
    if len(replies) != len(targets) or not replies:
        raise ValueError(f"replies and targets must be non-empty and of equal length, got {len(replies)} "
                         f"and {len(targets)}")
    return sum(reply_correct(r, t) for r, t in zip(replies, targets)) / len(replies)


def reply_correct(reply: str, target: dict) -> bool:
    """Whether the reply's first JSON object equals the target dict exactly (keys, values, types)."""
    return parse_json_object(reply) == target


def encode_training_example(tokenizer, text: str, target: dict) -> dict[str, list[int]]:
    """input_ids and labels for one example; the prompt's labels are -100 so only the answer is learned."""
    return sft_example(tokenizer, order_messages(text), target_json(target))


def encode_examples(tokenizer, examples: Sequence[dict]) -> list[dict[str, list[int]]]:
    """Each order example ({'text', 'target'}) encoded for `lora.train_adapter` (prompt labels -100)."""
    return [encode_training_example(tokenizer, e["text"], e["target"]) for e in examples]


@torch.inference_mode()
def generate_replies(model, tokenizer, texts: Sequence[str], max_new_tokens: int = 48,
                     batch_size: int = 16) -> list[str]:
    """Greedy replies to order descriptions, generated in left-padded batches (`tokens.generate_batch`)."""
    if not isinstance(max_new_tokens, int) or max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be an int >= 1, got {max_new_tokens!r}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
    replies = generate_batch(model, tokenizer, [order_messages(t) for t in texts], max_new_tokens, batch_size)
    return [r.strip() for r in replies]
