"""Chapter 05's task: turn an order description into JSON; its data, prompt, metric and training loop."""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from importlib import resources
from typing import Sequence

import torch
from torch import nn

from llmlab.structured import first_json_object
from llmlab.tasks.jsonl import read_jsonl
from llmlab.tokens import generate_batch, pad_token_id

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


def parse_json_object(reply: str) -> dict | None:
    """The first {...} JSON object in a reply, or None when there is none that parses."""
    if not isinstance(reply, str):
        raise TypeError(f"reply must be a str, got {type(reply).__name__}")
    text = first_json_object(reply)
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def exact_match(replies: Sequence[str], targets: Sequence[dict]) -> float:
    """Share of replies whose first JSON object equals its target dict exactly (keys, values, types)."""
    if len(replies) != len(targets) or not replies:
        raise ValueError(f"replies and targets must be non-empty and of equal length, got {len(replies)} "
                         f"and {len(targets)}")
    return sum(parse_json_object(r) == t for r, t in zip(replies, targets)) / len(replies)


def encode_training_example(tokenizer, text: str, target: dict) -> dict[str, list[int]]:
    """input_ids and labels for one example; the prompt's labels are -100 so only the answer is learned."""
    prompt = tokenizer.apply_chat_template(order_messages(text), add_generation_prompt=True, tokenize=False)
    answer = target_json(target) + "<|im_end|>"
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    answer_ids = tokenizer(answer, add_special_tokens=False)["input_ids"]
    return {"input_ids": prompt_ids + answer_ids, "labels": [-100] * len(prompt_ids) + answer_ids}


def collate(batch: Sequence[dict[str, list[int]]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad encoded examples into input_ids, attention_mask and labels tensors."""
    if not batch:
        raise ValueError("batch must contain at least one example, got []")
    width = max(len(b["input_ids"]) for b in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), -100, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for i, b in enumerate(batch):
        n = len(b["input_ids"])
        ids[i, :n] = torch.tensor(b["input_ids"])
        labels[i, :n] = torch.tensor(b["labels"])
        mask[i, :n] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def answer_loss(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Next-token cross-entropy on the labelled (answer) positions only; the vocabulary head runs only there."""
    causal = model.get_base_model() if hasattr(model, "get_base_model") else model
    decoder = causal.get_decoder()
    hidden = decoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
    labels = batch["labels"][:, 1:]
    keep = labels != -100
    logits = causal.get_output_embeddings()(hidden[:, :-1][keep])
    return nn.functional.cross_entropy(logits.float(), labels[keep])


@dataclass(frozen=True)
class TrainLog:
    """What a training run produced: the loss at every step, the wall time and the process CPU time (all threads)."""

    losses: list[float]
    seconds: float
    cpu_seconds: float


def train_adapter(model, tokenizer, examples: Sequence[dict], steps: int, batch_size: int = 8,
                  lr: float = 2e-3, seed: int = 0, log_every: int = 0, max_cpu_seconds: float = math.inf) -> TrainLog:
    """Train the model's trainable parameters (its LoRA adapter) with AdamW on order examples.

    Stops early, after the step in progress, once the process has used `max_cpu_seconds` of CPU time (summed
    over threads: 2 cores for 10 minutes = 1200), a budget that does not shrink when others share the CPU.
    """
    for pname, value in [("steps", steps), ("batch_size", batch_size)]:
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{pname} must be an int >= 1, got {value!r}")
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr!r}")
    if not max_cpu_seconds > 0:
        raise ValueError(f"max_cpu_seconds must be > 0, got {max_cpu_seconds!r}")
    if not examples:
        raise ValueError("examples must contain at least one example, got []")
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("model has no trainable parameters: add a LoRA adapter first")
    encoded = [encode_training_example(tokenizer, e["text"], e["target"]) for e in examples]
    gen = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / 10) * (1 - s / steps))
    pad_id = pad_token_id(tokenizer)
    model.train()
    losses: list[float] = []
    order = torch.randperm(len(encoded), generator=gen).tolist()
    start, cpu_start = time.perf_counter(), time.process_time()
    for step in range(steps):
        if len(order) < batch_size:
            order += torch.randperm(len(encoded), generator=gen).tolist()
        picked, order = order[:batch_size], order[batch_size:]
        batch = {k: v.to(model.device) for k, v in collate([encoded[i] for i in picked], pad_id).items()}
        loss = answer_loss(model, batch)
        loss.backward()
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
        if log_every and (step + 1) % log_every == 0:
            print(f"step {step + 1}/{steps}  loss {loss.item():.4f}  wall {time.perf_counter() - start:.0f}s  "
                  f"cpu {time.process_time() - cpu_start:.0f}s", flush=True)
        if time.process_time() - cpu_start > max_cpu_seconds:
            break
    model.eval()
    return TrainLog(losses=losses, seconds=time.perf_counter() - start, cpu_seconds=time.process_time() - cpu_start)


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


ORDER_TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def order_lora_config(r: int = 8, alpha: int = 16, dropout: float = 0.05, last_layers: int = 10,
                      num_layers: int = 30):
    """The peft LoraConfig of the chapter 05 finetune: every linear layer of the last `last_layers` blocks.

    Adapting only the top blocks means backpropagation stops there, which keeps CPU training affordable.
    """
    from peft import LoraConfig

    from llmlab.lora.layers import validate_lora_args

    validate_lora_args(r, alpha, dropout)
    if not isinstance(num_layers, int) or num_layers < 1:
        raise ValueError(f"num_layers must be an int >= 1, got {num_layers!r}")
    if not isinstance(last_layers, int) or not 1 <= last_layers <= num_layers:
        raise ValueError(f"last_layers must be an int in [1, {num_layers}], got {last_layers!r}")
    return LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=list(ORDER_TARGET_MODULES),
                      layers_to_transform=list(range(num_layers - last_layers, num_layers)),
                      bias="none", task_type="CAUSAL_LM")
